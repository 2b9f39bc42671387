"""Where derisk keeps downloaded reference data, and the manifest that says what is there.

The data directory is chosen by ``--data-dir``, else ``$DERISK_DATA_DIR``, else
``$XDG_DATA_HOME/derisk`` (``~/.local/share/derisk``). It holds one folder per data set and a
``manifest.json`` naming each set's source, version, licence and checksum; every attribution records
the manifest version that produced it.

``ipdata`` is a symbolic link to the folder of the installed version (``.ipdata-<random>``), replaced in
one atomic rename by ``derisk data update``, so a reader sees the previous data or the new data,
never a mix and never nothing, whenever an update is killed. Readers resolve the link once
(:func:`current`) and read the manifest and the tables from the same folder.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from derisk.errors import DataError

MANIFEST: Final = "manifest.json"
IPDATA_DIR: Final = "ipdata"


def data_dir(explicit: Path | None = None) -> Path:
    if explicit is not None:
        return explicit
    env = os.environ.get("DERISK_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "derisk"


@dataclass(frozen=True)
class SourceRecord:
    """One installed data set: where it came from and how it was checked."""

    name: str
    kind: str
    version: str
    origin: str
    licence: str
    integrity: str | None = None
    files: tuple[str, ...] = ()
    #: What the bytes were checked against: ``lock`` (the data lock shipped with derisk), ``registry``
    #: (the registry's own published SHA-512 only), or ``none`` (unpacked files taken as they are).
    verified: str = "none"


@dataclass(frozen=True)
class Manifest:
    ipdata_kind: str
    installed_at: str
    sources: tuple[SourceRecord, ...] = field(default_factory=tuple)

    @property
    def version(self) -> str:
        """Short stable identifier of the installed data, recorded with every attribution."""
        text = json.dumps([asdict(s) for s in self.sources], sort_keys=True)
        return f"{self.ipdata_kind}:{hashlib.sha256(text.encode()).hexdigest()[:12]}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ipdata_kind": self.ipdata_kind,
            "installed_at": self.installed_at,
            "version": self.version,
            "sources": [asdict(s) for s in self.sources],
        }


#: Where an older derisk moved the installed data for a moment while swapping in new data.
LEGACY_OLD: Final = ".ipdata-old"


def current(root: Path) -> Path:
    """The folder of the installed IP data (the link resolved), or where it would be."""
    link = root / IPDATA_DIR
    if link.exists():
        return link.resolve()
    if (root / LEGACY_OLD / MANIFEST).exists():
        return root / LEGACY_OLD  # an older derisk was killed between its two renames
    return link


def read_manifest(root: Path, folder: Path | None = None) -> Manifest:
    path = (folder or current(root)) / MANIFEST
    if not path.exists():
        raise DataError(
            "no IP data installed (run `derisk data update`, or `derisk data update --from DIR` offline)",
            source=str(root),
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        sources = tuple(SourceRecord(**{**s, "files": tuple(s.get("files", ()))}) for s in doc["sources"])
        return Manifest(ipdata_kind=doc["ipdata_kind"], installed_at=doc["installed_at"], sources=sources)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(
            f"corrupt manifest ({exc}); run `derisk data update` again", source=str(path)
        ) from None


def write_manifest(folder: Path, manifest: Manifest) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest.to_json(), indent=2) + "\n", encoding="utf-8")
