"""The npm registry without Node: download the IP data packages over HTTPS and check them.

Trust comes from the **data lock** shipped with each release of derisk
(``derisk/data/ipdata-lock.json``: per package its exact version, tarball address and SHA-512 as
the registry published it when the release was made, written by ``scripts/make_ipdata_lock.py``).
``derisk data update`` installs exactly those tarballs and refuses any whose SHA-512 differs, so a
registry (or a mirror, or a man in the middle) that serves other bytes cannot change what derisk
installs. ``--version V`` asks the registry for another version; such a package is checked only
against the registry's own published SHA-512 and recorded as ``verified: registry``.

Tarballs are unpacked by hand, regular files under ``package/`` only (no links, no absolute or
``..`` paths, bounded sizes), which works the same on every Python 3.11 release (``extractall``'s
``filter`` appeared in 3.11.4).
"""

from __future__ import annotations

import base64
import hashlib
import json
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any, Final

from derisk.errors import DataError, InputError, NetworkError

LOCK_FILE: Final = "ipdata-lock.json"
DEFAULT_REGISTRY: Final = "https://registry.npmjs.org"
TIMEOUT_S: Final = 60
MAX_TARBALL: Final = 1 << 30
MAX_MEMBER: Final = 2 << 30
_CHUNK: Final = 1 << 20


def load_lock(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The data lock (package name → version, tarball, integrity): this release's, or ``path``
    (a site that vetted other versions pins them in a lock file of its own, same layout)."""
    ref: Any = path if path is not None else resources.files("derisk.data") / LOCK_FILE
    try:
        doc = json.loads(ref.read_text(encoding="utf-8"))
        packages: dict[str, dict[str, str]] = doc["packages"]
        for name, entry in packages.items():
            if not (entry["version"] and entry["tarball"] and entry["integrity"].startswith("sha512-")):
                raise ValueError(f"incomplete entry for {name}")
        return packages
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"unreadable data lock ({exc})", source=str(ref)) from None


def sri_sha512(path: Path) -> str:
    """The Subresource-Integrity form of a file's SHA-512, as npm publishes it."""
    h = hashlib.sha512()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return "sha512-" + base64.b64encode(h.digest()).decode()


def _rebase(url: str, registry: str | None) -> str:
    """The same tarball from a mirror: the lock's registry prefix replaced by ``registry``."""
    if not registry:
        return url
    path = urllib.parse.urlsplit(url).path
    return registry.rstrip("/") + path


def _get(url: str, dest: Path | None = None) -> bytes:
    """GET ``url`` over HTTPS (or HTTP to a loopback mirror); into ``dest`` when given."""
    scheme = urllib.parse.urlsplit(url).scheme
    host = urllib.parse.urlsplit(url).hostname or ""
    if scheme != "https" and not (scheme == "http" and host in ("127.0.0.1", "localhost", "::1")):
        raise NetworkError(f"refusing to download over {scheme or 'no scheme'}: {url[:120]}")
    request = urllib.request.Request(url, headers={"User-Agent": "derisk", "Accept": "*/*"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - scheme checked
            if dest is None:
                body: bytes = response.read(16 << 20)
                return body
            size = 0
            with dest.open("wb") as out:
                while chunk := response.read(_CHUNK):
                    size += len(chunk)
                    if size > MAX_TARBALL:
                        raise NetworkError(f"{url[:120]}: larger than {MAX_TARBALL >> 20} MB")
                    out.write(chunk)
            return b""
    except urllib.error.HTTPError as exc:
        raise NetworkError(f"{url[:120]}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise NetworkError(f"{url[:120]}: {reason}") from None


def download_locked(
    name: str, work: Path, registry: str | None, lock: Path | None = None
) -> tuple[Path, str, str]:
    """(tarball, version, integrity) of ``name`` as the lock names it, its SHA-512 checked."""
    entry = load_lock(lock).get(name)
    if entry is None:
        raise DataError(f"the data lock has no entry for {name}")
    tgz = work / PurePosixPath(urllib.parse.urlsplit(entry["tarball"]).path).name
    _get(_rebase(entry["tarball"], registry), tgz)
    got = sri_sha512(tgz)
    if got != entry["integrity"]:
        raise NetworkError(
            f"{name}@{entry['version']} does not match derisk's data lock: "
            f"SHA-512 {got[:24]}… ≠ {entry['integrity'][:24]}…; nothing was installed"
        )
    return tgz, entry["version"], got


def download_version(name: str, version: str, work: Path, registry: str | None) -> tuple[Path, str, str]:
    """(tarball, version, integrity) of another version, checked against the registry's SHA-512."""
    base = (registry or DEFAULT_REGISTRY).rstrip("/")
    meta_url = f"{base}/{urllib.parse.quote(name, safe='@')}/{urllib.parse.quote(version, safe='')}"
    try:
        meta: Any = json.loads(_get(meta_url))
        dist = meta["dist"]
        exact, expected, tarball = str(meta["version"]), str(dist["integrity"]), str(dist["tarball"])
    except (ValueError, KeyError, TypeError):
        raise NetworkError(f"the registry gave no usable metadata for {name}@{version}") from None
    tgz = work / f"{name.rsplit('/', 1)[-1]}-{exact}.tgz"
    _get(_rebase(tarball, registry), tgz)
    got = sri_sha512(tgz)
    if got != expected:
        raise NetworkError(
            f"{name}@{exact} failed verification: SHA-512 {got[:24]}… ≠ registry {expected[:24]}…"
        )
    return tgz, exact, got


def safe_extract(tgz: Path, into: Path) -> Path:
    """Extract the regular files of an npm tarball (``package/…``) without trusting its paths."""
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    continue  # directories are made as needed; links and devices are never followed
                parts = PurePosixPath(member.name).parts
                if len(parts) < 2 or parts[0] != "package" or any(p in ("", ".", "..") for p in parts):
                    continue
                if member.size > MAX_MEMBER:
                    raise InputError(
                        f"{member.name[:80]} is larger than {MAX_MEMBER >> 20} MB", source=str(tgz)
                    )
                dest = into.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    continue
                with source, dest.open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"not a readable npm tarball ({exc})", source=str(tgz)) from None
    pkg = into / "package"
    if not pkg.is_dir():
        raise InputError("tarball has no package/ folder", source=str(tgz))
    return pkg
