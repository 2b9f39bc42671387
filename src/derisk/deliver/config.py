"""Where alerts go, checked before anything is sent: :class:`DeliveryConfig` and :func:`from_options`.

Every problem in the option values is reported at once (one :class:`~derisk.errors.UsageError` whose
details list each), so ``derisk watch --check`` can show them all before a run starts. The webhook's
HMAC secret is never an option value: the configuration names the environment variable that holds
it, and the secret is read from the environment when the deliverer starts.
"""

from __future__ import annotations

import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlsplit

from derisk.errors import Problem, UsageError, raise_problems

SYSLOG_SCHEMES: Final = {"udp": 514, "tcp": 514, "tls": 6514}
#: Facility names of RFC 5424 section 6.2.1 that an alert stream may sensibly use.
FACILITIES: Final = {
    "user": 1,
    "daemon": 3,
    "auth": 4,
    "authpriv": 10,
    "security": 13,
    **{f"local{n}": 16 + n for n in range(8)},
}
#: RFC 5612 reserves Private Enterprise Number 32473 for documentation and examples; derisk has no
#: number of its own, so an organisation that has one should set its own SD-ID.
DEFAULT_SD_ID: Final = "derisk@32473"
_SD_NAME = re.compile(r"^[!#-<>-\\^-~]{1,32}$")  # PRINTUSASCII except '=', SP, ']' and '"'
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per alert and the exponential backoff between them (with jitter)."""

    #: Attempts per alert before it is dead-lettered (the first one included).
    max_attempts: int = 8
    #: Delay before the first retry, doubled for each further retry, capped at ``max_delay``.
    base_delay: float = 1.0
    max_delay: float = 60.0


@dataclass(frozen=True)
class EcsFileTarget:
    """A rotating NDJSON file of ECS documents, for Filebeat or Elastic Agent."""

    path: Path
    #: A file is rotated before a line would take it past this size (a longer line gets a file of its own).
    max_bytes: int = 100 * 1024 * 1024
    #: Rotated files kept beside the current one (``PATH.1`` newest … ``PATH.N`` oldest).
    keep: int = 5


@dataclass(frozen=True)
class SyslogTarget:
    """An RFC 5424 receiver over UDP (RFC 5426), TCP (RFC 6587 octet counting) or TLS (RFC 5425)."""

    transport: str
    host: str
    port: int
    #: CA certificates (PEM) that the TLS server's certificate must chain to; None: the system's.
    ca_file: Path | None = None
    facility: int = FACILITIES["local0"]
    sd_id: str = DEFAULT_SD_ID
    #: Largest message sent, in octets (RFC 5426 asks receivers to take 2048 over UDP; RFC 5425 8192).
    max_bytes: int = 2048
    #: Put the UTF-8 byte-order mark before MSG, as RFC 5424 section 6.4 asks for UTF-8 text (off:
    #: MSG is MSG-ANY, for receivers that show the mark as garbage).
    bom: bool = True


@dataclass(frozen=True)
class WebhookTarget:
    """A JSON POST per alert, signed with HMAC-SHA256 under a secret taken from the environment."""

    url: str
    secret_env: str


@dataclass(frozen=True)
class DeliveryConfig:
    """Every sink an alert is delivered to, and how hard to try."""

    ecs_file: EcsFileTarget | None = None
    syslog: SyslogTarget | None = None
    webhook: WebhookTarget | None = None
    #: Folder of the dead-letter files (``SINK.ndjson``); None: ``dead-letter/`` in the state folder.
    dead_letter: Path | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: Seconds one network operation (connect, send, a whole HTTP exchange) may take.
    timeout: float = 10.0
    #: Alerts waiting per sink; beyond that new ones are dead-lettered at once (reason ``queue full``).
    queue_size: int = 10_000
    #: Dead-letter files stop growing at this size; what no longer fits is counted as lost.
    dead_letter_max_bytes: int = 256 * 1024 * 1024

    @property
    def sinks(self) -> tuple[str, ...]:
        names = []
        if self.ecs_file is not None:
            names.append("ecs-file")
        if self.syslog is not None:
            names.append("syslog")
        if self.webhook is not None:
            names.append("webhook")
        return tuple(names)


def parse_syslog(url: str, problems: list[Problem]) -> SyslogTarget | None:
    """``udp://HOST[:PORT]``, ``tcp://…`` or ``tls://…[?ca=FILE]``, with optional ``facility=local0``,
    ``sd-id=NAME@PEN`` and ``bom=off`` query values."""
    where = "--syslog"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        problems.append(Problem(where, f"{url[:200]!r} is not a URL ({exc})"))
        return None
    if parts.scheme not in SYSLOG_SCHEMES:
        problems.append(Problem(where, f"{url[:200]!r}: expected udp://, tcp:// or tls://HOST:PORT"))
        return None
    host = parts.hostname
    if not host:
        problems.append(Problem(where, f"{url[:200]!r} names no host"))
        return None
    if parts.path not in ("", "/") or parts.username or parts.fragment:
        problems.append(Problem(where, f"{url[:200]!r}: only a host, a port and query options are allowed"))
    query = parse_qs(parts.query, keep_blank_values=True)
    known = {"ca", "facility", "sd-id", "bom"}
    for key in sorted(set(query) - known):
        problems.append(Problem(where, f"unknown option {key[:40]!r} (known: bom, ca, facility, sd-id)"))
    bom = query.get("bom", ["on"])[-1]
    if bom not in ("on", "off"):
        problems.append(Problem(where, f"bom must be on or off, not {bom[:20]!r}"))
    ca: Path | None = None
    if "ca" in query:
        if parts.scheme != "tls":
            problems.append(Problem(where, "ca= applies to tls:// only"))
        ca = Path(query["ca"][-1])
        if not ca.is_file():
            problems.append(Problem(where, f"CA file {str(ca)[:200]!r} does not exist"))
        else:
            problem = check_ca_file(ca)
            if problem:
                problems.append(Problem(where, problem))
    facility = FACILITIES["local0"]
    if "facility" in query:
        name = query["facility"][-1]
        if name not in FACILITIES:
            problems.append(
                Problem(where, f"facility {name[:40]!r} unknown (known: {', '.join(FACILITIES)})")
            )
        else:
            facility = FACILITIES[name]
    sd_id = query.get("sd-id", [DEFAULT_SD_ID])[-1]
    if not _SD_NAME.match(sd_id) or "@" not in sd_id:
        problems.append(
            Problem(where, f"sd-id {sd_id[:40]!r} is not NAME@ENTERPRISE-NUMBER (RFC 5424 6.3.2)")
        )
        sd_id = DEFAULT_SD_ID
    return SyslogTarget(
        transport=parts.scheme,
        host=host,
        port=port or SYSLOG_SCHEMES[parts.scheme],
        ca_file=ca,
        facility=facility,
        sd_id=sd_id,
        max_bytes=2048 if parts.scheme == "udp" else 8192,
        bom=bom != "off",
    )


def check_ca_file(ca: Path) -> str | None:
    """Why ``ca`` cannot serve as the CA bundle of a TLS connection, or None when it can."""
    try:
        ssl.create_default_context(cafile=str(ca))
    except (ssl.SSLError, OSError, ValueError) as exc:
        return f"CA file {str(ca)[:200]!r} holds no usable PEM certificate ({str(exc)[:120]})"
    return None


def read_secret(env_name: str) -> bytes:
    """The webhook secret from the environment variable ``env_name``; a UsageError when it is unset."""
    value = os.environ.get(env_name, "")
    if not value:
        raise UsageError(
            f"environment variable {env_name} is not set or empty", source="--webhook-secret-env"
        )
    return value.encode("utf-8")


def _check_webhook(url: str, secret_env: str | None, problems: list[Problem]) -> WebhookTarget | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        problems.append(Problem("--webhook", f"{url[:200]!r} is not a URL ({exc})"))
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(Problem("--webhook", f"{url[:200]!r}: expected http:// or https://HOST/PATH"))
        return None
    if parts.username or parts.password:
        problems.append(
            Problem("--webhook", "credentials in the URL would be logged; use --webhook-secret-env")
        )
    if not secret_env:
        problems.append(Problem("--webhook-secret-env", "required with --webhook (alerts are signed)"))
        return None
    if not _ENV_NAME.match(secret_env):
        problems.append(
            Problem("--webhook-secret-env", f"{secret_env[:60]!r} is not an environment variable name")
        )
        return None
    if not os.environ.get(secret_env):
        problems.append(
            Problem("--webhook-secret-env", f"environment variable {secret_env} is not set or empty")
        )
    return WebhookTarget(url=url, secret_env=secret_env)


def _check_folder(path: Path, option: str, problems: list[Problem], *, must_exist: bool) -> None:
    if path.exists() and not path.is_dir():
        problems.append(Problem(option, f"{str(path)[:200]!r} is not a folder"))
    elif must_exist and not path.is_dir():
        problems.append(Problem(option, f"folder {str(path)[:200]!r} does not exist"))


def from_options(
    *,
    ecs_file: str | Path | None = None,
    syslog: str | None = None,
    webhook: str | None = None,
    webhook_secret_env: str | None = None,
    dead_letter: str | Path | None = None,
    ecs_max_bytes: int = EcsFileTarget.max_bytes,
    ecs_keep: int = EcsFileTarget.keep,
    retry: RetryPolicy | None = None,
    timeout: float = 10.0,
    queue_size: int = 10_000,
) -> DeliveryConfig:
    """A :class:`DeliveryConfig` from the values of ``--ecs-file``, ``--syslog``, ``--webhook``,
    ``--webhook-secret-env`` and ``--dead-letter`` (None: not given); raises one UsageError listing
    every problem. Nothing is opened or sent here."""
    problems: list[Problem] = []
    ecs = None
    if ecs_file is not None:
        path = Path(ecs_file)
        if str(ecs_file) in ("", "-") or path.is_dir():
            problems.append(Problem("--ecs-file", f"{str(ecs_file)[:200]!r}: expected a file path"))
        else:
            _check_folder(path.parent, "--ecs-file", problems, must_exist=True)
        if ecs_max_bytes < 4096 or ecs_keep < 1:
            problems.append(
                Problem("--ecs-file", "rotation needs a size of at least 4096 bytes and at least one file")
            )
        ecs = EcsFileTarget(path=path, max_bytes=ecs_max_bytes, keep=ecs_keep)
    target = parse_syslog(syslog, problems) if syslog is not None else None
    hook = None
    if webhook is not None:
        hook = _check_webhook(webhook, webhook_secret_env, problems)
    elif webhook_secret_env is not None:
        problems.append(Problem("--webhook-secret-env", "given without --webhook"))
    dead = Path(dead_letter) if dead_letter is not None else None
    if dead is not None:
        _check_folder(dead, "--dead-letter", problems, must_exist=False)
    policy = retry or RetryPolicy()
    if policy.max_attempts < 1 or policy.base_delay < 0 or policy.max_delay < policy.base_delay:
        problems.append(Problem("retry", "needs at least one attempt and 0 <= base delay <= max delay"))
    if timeout <= 0 or queue_size < 1:
        problems.append(Problem("delivery", "timeout and queue size must be positive"))
    raise_problems(problems, source="alert delivery", kind=UsageError, summary="invalid options")
    return DeliveryConfig(
        ecs_file=ecs,
        syslog=target,
        webhook=hook,
        dead_letter=dead,
        retry=policy,
        timeout=timeout,
        queue_size=queue_size,
    )
