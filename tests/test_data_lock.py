"""``derisk data update`` trusts the data lock, not the registry, and needs no Node.js.

A registry mirror runs on 127.0.0.1 in the test (loopback only) and serves npm tarballs packed from
the IP data fixture; locks are written for them as ``scripts/make_ipdata_lock.py`` writes the real one.
"""

from __future__ import annotations

import http.server
import io
import json
import tarfile
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from derisk.cli import main
from derisk.enrich.datadir import read_manifest
from derisk.enrich.ipdata import load_ipdata
from derisk.enrich.registry import load_lock, safe_extract, sri_sha512
from derisk.enrich.update import PACKAGES, update

FIXTURE = Path(__file__).parent / "fixtures" / "ip-location-db"


def _pack(folder: Path, dest: Path, extra: dict[str, bytes] | None = None) -> None:
    """An npm-style tarball: every file of ``folder`` under ``package/``."""
    with tarfile.open(dest, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=f"package/{path.name}")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def tarballs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tarballs")
    out = {}
    for name, (prefix, _, _) in PACKAGES.items():
        version = json.loads((FIXTURE / prefix / "package.json").read_text())["version"]
        out[name] = root / f"{prefix}-{version}.tgz"
        _pack(FIXTURE / prefix, out[name])
    return out


class _Registry(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = self.server.files.get(urllib.parse.unquote(self.path))  # type: ignore[attr-defined]
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        self.wfile.write(body or b"not found")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def mirror(tarballs: dict[str, Path]) -> Iterator[_Registry]:
    server = _Registry(("127.0.0.1", 0), _Handler)
    server.files = {}
    for name, tgz in tarballs.items():
        server.files[f"/{name}/-/{tgz.name}"] = tgz.read_bytes()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: _Registry) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def _lock(tmp_path: Path, tarballs: dict[str, Path], integrity: dict[str, str] | None = None) -> Path:
    packages = {}
    for name, tgz in tarballs.items():
        version = json.loads((FIXTURE / PACKAGES[name][0] / "package.json").read_text())["version"]
        packages[name] = {
            "version": version,
            "tarball": f"https://registry.npmjs.org/{name}/-/{tgz.name}",
            "integrity": (integrity or {}).get(name) or sri_sha512(tgz),
        }
    path = tmp_path / "lock.json"
    path.write_text(json.dumps({"schema": "derisk.ipdata-lock/1", "packages": packages}), encoding="utf-8")
    return path


def test_the_shipped_lock_names_every_package_with_a_sha512() -> None:
    lock = load_lock()
    assert set(lock) == set(PACKAGES)
    for entry in lock.values():
        assert entry["tarball"].startswith("https://registry.npmjs.org/")
        assert entry["integrity"].startswith("sha512-") and len(entry["integrity"]) == 95


def test_locked_packages_install_from_a_mirror_without_npm(
    tmp_path: Path, mirror: _Registry, tarballs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no npm, no node
    lock = _lock(tmp_path, tarballs)
    data = tmp_path / "data"
    args = ["data", "update", "--data-dir", str(data), "--registry", _url(mirror), "--lock", str(lock)]
    assert main(args) == 0
    manifest = read_manifest(data)
    assert {s.verified for s in manifest.sources} == {"lock"}
    assert load_ipdata(data).manifest.version == manifest.version


def test_a_tarball_that_differs_from_the_lock_installs_nothing(
    tmp_path: Path, mirror: _Registry, tarballs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    update(data, source=FIXTURE)
    before = read_manifest(data).version
    tampered = next(iter(tarballs))
    lock = _lock(tmp_path, tarballs, {tampered: "sha512-" + "A" * 86 + "=="})
    args = ["data", "update", "--data-dir", str(data), "--registry", _url(mirror), "--lock", str(lock)]
    assert main(args) == 8
    err = capsys.readouterr().err
    assert "does not match derisk's data lock" in err and err.count("\n") == 1
    assert read_manifest(data).version == before


def test_the_shipped_lock_refuses_other_bytes_under_its_versions(
    tmp_path: Path, mirror: _Registry, tarballs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The mirror serves the fixture's bytes where the real tarballs should be: refused."""
    shipped = load_lock()
    for name, entry in shipped.items():
        mirror.files[f"/{name}/-/{entry['tarball'].rsplit('/', 1)[-1]}"] = tarballs[name].read_bytes()
    assert main(["data", "update", "--data-dir", str(tmp_path / "d"), "--registry", _url(mirror)]) == 8
    assert "does not match derisk's data lock" in capsys.readouterr().err
    assert not (tmp_path / "d" / "ipdata").exists()


def test_offline_tarballs_are_checked_against_the_lock(
    tmp_path: Path, tarballs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "offline"
    folder.mkdir()
    for tgz in tarballs.values():
        (folder / tgz.name).write_bytes(tgz.read_bytes())
    lock = _lock(tmp_path, tarballs)
    data = tmp_path / "data"
    assert main(["data", "update", "--data-dir", str(data), "--from", str(folder), "--lock", str(lock)]) == 0
    assert {s.verified for s in read_manifest(data).sources} == {"lock"}
    # Same versions, other bytes: refused, the installed data stays.
    first = next(iter(tarballs.values()))
    _pack(FIXTURE / "asn", folder / first.name, extra={"package/extra.txt": b"tampered"})
    before = read_manifest(data).version
    assert main(["data", "update", "--data-dir", str(data), "--from", str(folder), "--lock", str(lock)]) == 8
    assert "does not match derisk's data lock" in capsys.readouterr().err
    assert read_manifest(data).version == before


def test_unpacked_folders_need_unverified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["data", "update", "--data-dir", str(data), "--from", str(FIXTURE)]) == 8
    assert "pass --unverified" in capsys.readouterr().err
    assert main(["data", "update", "--data-dir", str(data), "--from", str(FIXTURE), "--unverified"]) == 0
    assert {s.verified for s in read_manifest(data).sources} == {"none"}
    capsys.readouterr()
    assert main(["data", "status", "--data-dir", str(data)]) == 0
    assert "checked against: none" in capsys.readouterr().out


def test_another_version_is_checked_against_the_registry(
    tmp_path: Path, mirror: _Registry, tarballs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    for name, tgz in tarballs.items():
        meta = {
            "version": "9.9.9",
            "dist": {"integrity": sri_sha512(tgz), "tarball": f"https://x/{name}/-/{tgz.name}"},
        }
        mirror.files[f"/{name}/9.9.9"] = json.dumps(meta).encode()
    data = tmp_path / "data"
    assert (
        main(["data", "update", "--data-dir", str(data), "--registry", _url(mirror), "--version", "9.9.9"])
        == 0
    )
    assert {s.verified for s in read_manifest(data).sources} == {"registry"}
    name = next(iter(tarballs))
    mirror.files[f"/{name}/9.9.9"] = json.dumps(
        {
            "version": "9.9.9",
            "dist": {"integrity": "sha512-" + "B" * 86 + "==", "tarball": f"https://x/{name}/-/a.tgz"},
        }
    ).encode()
    mirror.files[f"/{name}/-/a.tgz"] = tarballs[name].read_bytes()
    assert (
        main(["data", "update", "--data-dir", str(data), "--registry", _url(mirror), "--version", "9.9.9"])
        == 8
    )
    assert "failed verification" in capsys.readouterr().err


def test_a_plain_http_registry_off_loopback_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "update", "--data-dir", str(tmp_path), "--registry", "http://192.0.2.1"]) == 8
    assert "refusing to download over http" in capsys.readouterr().err


def test_hostile_tarball_members_are_never_written(tmp_path: Path) -> None:
    tgz = tmp_path / "evil.tgz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name in ("package/ok.txt", "../escape.txt", "/abs.txt", "package/../../up.txt", "other/x.txt"):
            info = tarfile.TarInfo(name)
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
        link = tarfile.TarInfo("package/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    out = safe_extract(tgz, tmp_path / "into")
    assert sorted(p.name for p in out.iterdir()) == ["ok.txt"]
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "up.txt").exists()
    assert not Path("/abs.txt").exists()
