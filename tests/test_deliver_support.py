"""What the delivery tests share: alerts (some with hostile names), fast retry settings, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from derisk.deliver import Deliverer, RetryPolicy
from derisk.detect.alert import Alert, LawRef, Target, make_alert

START: Final = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
FAST: Final = RetryPolicy(max_attempts=4, base_delay=0.02, max_delay=0.1)
#: Names from the network that try to end a syslog frame, line, SD-ELEMENT or JSON string.
HOSTILE: Final = (
    'evil"] [x@1 a="b"]\n<13>1 - forged - - - - injected\r\n\x00\\"' + "\u202e" + "é" * 5000,
    ']]]\\\\\\"""\x00\x00\n\n' + "A" * 10_000,
)


class FakeLaw:
    """The shape :func:`derisk.know.laws.laws_for` returns, for ``make_alert``'s injected lookup."""

    jurisdiction = "CN"
    law = "National Intelligence Law"
    article = "7"
    confidence = "A"
    source = "https://example.invalid/nil"
    in_force = True

    def citation(self) -> str:
        return "National Intelligence Law art. 7 [A]"


def laws_for(jurisdiction: str) -> list[Any]:
    return [FakeLaw()] if jurisdiction == "CN" else []


def alert(n: int = 0, *, destination: str | None = None, score: float = 0.85, kind: str = "beacon") -> Alert:
    """A beacon alert; ``destination`` may be hostile (kept whole, as a reader's bug might let it be)."""
    made = make_alert(
        kind,
        score,
        Target(
            src_ip=f"10.0.0.{n % 250 + 1}",
            system="Warehouse management",
            destination=f"cn-{n}.example.com",
            dst_ip="203.0.113.7",
            server_name=f"cn-{n}.example.com",
            organisation="Example Cloud",
            controller="Example Group",
            jurisdiction="CN",
            jurisdiction_basis="registry",
        ),
        "checks in with {dest} every 60 s",
        {"interval_s": 60.0, "host_count": 1},
        laws_for,
        flow_ids=(f"f{n}",),
        flow_count=12,
        first_seen=START,
        last_seen=START + timedelta(hours=1),
    )
    if destination is None:
        return made
    t = made.target
    hostile = Target(
        src_ip=t.src_ip,
        system=destination,
        destination=destination,
        dst_ip=t.dst_ip,
        server_name=destination,
        organisation=destination,
        controller=t.controller,
        jurisdiction=t.jurisdiction,
        jurisdiction_basis=t.jurisdiction_basis,
    )
    laws = (*made.laws, LawRef("CN", destination, "]", "U", None))
    return replace(made, target=hostile, laws=laws)


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def settled(deliverer: Deliverer, sink: str, count: int) -> Callable[[], bool]:
    """Whether ``count`` alerts reached an end (delivered or dead-lettered) on ``sink``."""

    def check() -> bool:
        s = deliverer.status()[sink]
        return bool(s["delivered"] + s["dead_lettered"] + s["lost"] >= count and s["queued"] == 0)

    return check


def dead_letters(folder: Path, sink: str) -> list[dict[str, Any]]:
    import json

    path = folder / f"{sink}.ndjson"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (also its own CA) and its key, as PEM files."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "derisk test syslog")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file
