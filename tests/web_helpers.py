"""A dashboard workspace for the web tests, built the way a user builds one.

The demo scenario's capture (with its hostile server names and user agents) plus a few more hostile
strings is written by the generator, analysed by ``derisk analyze``, and given accounts of each
role, a site file and a screening case.
"""

from __future__ import annotations

import re
import shutil
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import yaml

from derisk.cli import main
from derisk.demo.scenario import SampledAddressBook, build_scenario
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.model import Conversation, HttpRequest, TlsHello
from derisk.gen.packets import write_capture
from derisk.web.auth import UserStore

with warnings.catch_warnings():
    # Starlette suggests another HTTP client package for its test client; httpx is what we have.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

START: Final = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
PASSWORD: Final = "correct horse battery staple"
USERS: Final = {"ada": "admin", "ann": "analyst", "vic": "viewer"}
#: Extra hostile strings beyond the demo's own; each must render inert everywhere.
HOSTILE_HOST: Final = "\"'><img src=x onerror=alert(7)>.evil.example"
HOSTILE_UA: Final = "</title><script>alert(8)</script>\x1b[31m\u202e" + "A" * 3000
REPO: Final = Path(__file__).resolve().parent.parent


def build_workspace(root: Path, ipdata_dir: Path, *, hours: float = 1.0) -> Path:
    """Capture → ``derisk analyze`` → workspace with accounts, ``site.yaml`` and ``cases/``."""
    book = SampledAddressBook(load_ipdata(ipdata_dir))
    scenario = build_scenario(book, start=START, hours=hours, hostile=True)
    cdn = book.address(13335, None, 3)
    extra = [
        Conversation("tcp", "10.40.50.23", cdn, START.replace(minute=30), 41000, 443, tls=TlsHello(HOSTILE_HOST)),
        Conversation("tcp", "10.40.50.23", cdn, START.replace(minute=31), 41001, 80,
                     http=HttpRequest(host=HOSTILE_HOST, user_agent=HOSTILE_UA)),
    ]  # fmt: skip
    capture = root / "capture.pcap"
    write_capture([*scenario.conversations, *extra], capture)
    site = root / "site.yaml"
    site.write_text(yaml.safe_dump(scenario.site), encoding="utf-8")
    ws = root / "ws"
    code = main(["analyze", str(capture), "--site", str(site), "--workspace", str(ws),
                 "--data-dir", str(ipdata_dir), "-q"])  # fmt: skip
    assert code == 0
    # The register and plan need critical functions, which the demo's site file leaves out.
    with_functions = dict(scenario.site)
    with_functions["systems"] = [
        {**s, "hosting": "Alibaba Cloud", "support": s["vendor"]}
        if s["name"] == "Warehouse management"
        else s
        for s in scenario.site["systems"]
    ]
    with_functions["functions"] = [
        {"name": "parcel sorting", "systems": ["Warehouse management"]},
        {"name": "customs declarations", "systems": ["Customs gateway", "Warehouse management"]},
        {"name": "video surveillance", "systems": ["CCTV"]},
    ]
    (ws / "site.yaml").write_text(yaml.safe_dump(with_functions), encoding="utf-8")
    (ws / "cases").mkdir()
    shutil.copy(REPO / "examples" / "deals" / "liege-cargo.yaml", ws / "cases" / "liege-cargo.yaml")
    store = UserStore(ws)
    for name, role in USERS.items():
        store.add(name, PASSWORD, role)
    return ws


__all__ = ["TestClient", "build_workspace", "csrf_of"]


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)
