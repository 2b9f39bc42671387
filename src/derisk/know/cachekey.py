"""The key of the compiled curated graph's cache (:mod:`derisk.know.compiled`) and its stamp.

The key is a SHA-256 of the derisk version, of every file of ``derisk/data/groups`` (name and bytes)
and of the source of the modules that compile them: a cache file with another key is stale. The
stamp is a SHA-256 of a key and of the identity of those files (device, inode, size, modification
and change times): while a cache file's stamp matches the files as they are, none of them was
written since its key was computed, so the key is not computed again (the files are stat'ed
instead of read and hashed).
"""

from __future__ import annotations

import hashlib
import os
from importlib import resources
from pathlib import Path
from typing import Any, Final

from derisk import __version__

FORMAT: Final = "derisk-compiled-graph/2"
#: Besides ``derisk/know/*.py``, the modules and data whose content decides what the compiled graph
#: and index hold (all in the key).
_CODE: Final = (
    ("derisk", "countries.py"),
    ("derisk.data", "eu-members.yaml"),
    ("derisk.data", "__init__.py"),
    ("derisk.i18n", "data.py"),
)


def _key_files() -> list[tuple[str, Any]]:
    """What the key covers besides the version, in order: (label, resource) of every group file and
    of the compiling code."""
    groups = resources.files("derisk.data").joinpath("groups")
    out = [
        (f"groups/{name}", groups.joinpath(name)) for name in sorted(entry.name for entry in groups.iterdir())
    ]
    know = resources.files("derisk.know")
    code = [("derisk.know", n) for n in sorted(e.name for e in know.iterdir() if e.name.endswith(".py"))]
    out += [
        (f"{package}/{name}", resources.files(package).joinpath(name)) for package, name in [*code, *_CODE]
    ]
    return out


def cache_key() -> str:
    """SHA-256 of the derisk version, the shipped group files and the code that compiles them."""
    digest = hashlib.sha256(f"{FORMAT}\0{__version__}\0".encode())
    for label, resource in _key_files():
        digest.update(label.encode() + b"\0")
        digest.update(resource.read_bytes())
    return digest.hexdigest()


def _identities() -> str | None:
    """The identity of the files :func:`cache_key` reads (device, inode, size, modification and
    change times in nanoseconds), or None when they are not plain files (a zip import). Listed with
    ``os.scandir`` (a third of the cost of the resource objects :func:`cache_key` reads through)."""
    groups = resources.files("derisk.data").joinpath("groups")
    know = resources.files("derisk.know")
    if not isinstance(groups, Path) or not isinstance(know, Path):
        return None
    parts = []
    try:
        with os.scandir(groups) as listing:
            found = sorted((f"groups/{e.name}", e.path) for e in listing)
        with os.scandir(know) as listing:
            found += sorted((f"derisk.know/{e.name}", e.path) for e in listing if e.name.endswith(".py"))
        for package, name in _CODE:
            where = resources.files(package).joinpath(name)
            if not isinstance(where, Path):
                return None
            found.append((f"{package}/{name}", str(where)))
        for label, path in found:
            info = os.stat(path)  # noqa: PTH116 (a path string from scandir: no Path object per file)
            parts.append(
                f"{label}\0{info.st_dev},{info.st_ino},{info.st_size},{info.st_mtime_ns},{info.st_ctime_ns}"
            )
    except OSError:
        return None
    return "\n".join(parts)


def file_stamp(key: str, identities: str | None) -> str | None:
    """SHA-256 of ``key`` and of the files' :func:`_identities` taken before ``key`` was computed:
    equal only while none of them was written, replaced or renamed since (a write sets the change
    time, which no tool sets back). Checking it stats the files instead of reading and hashing them
    (about 0.002 against 0.011-0.017 CPU s)."""
    if identities is None:
        return None
    return hashlib.sha256(f"{FORMAT}\0{__version__}\0{key}\0{identities}".encode()).hexdigest()


def current_key(header: dict[str, Any]) -> tuple[bool, str | None]:
    """Whether the file's key is the key of the files as they are: its stamp (:func:`file_stamp`)
    still matches them, else the key computed again from their content; and, when only the content
    says so (the same files reinstalled, copied or touched), the stamp they have now, for the file
    to be stamped again (else every later run hashes them all again)."""
    key = header.get("key")
    if not isinstance(key, str):
        return False, None
    stamp = header.get("stamp")
    identities = _identities()
    if isinstance(stamp, str) and stamp == file_stamp(key, identities):
        return True, None
    if key != cache_key():
        return False, None
    return True, file_stamp(key, identities)
