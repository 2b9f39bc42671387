"""The per-row arrays of :mod:`derisk.detect.incremental`'s detection window, per part, on disk.

Each row of the window has a start, a sequence number, bytes out and in, five integer key codes and
three detection flags: 53 bytes as one record (:data:`REC`). :class:`PartArrays` keeps them per
part (the part of the row's host, as the window's rows themselves in
:class:`~derisk.store.detect_state.WindowRows`), each part's records in rising sequence order in
its own file of a private scratch folder; memory holds per part only its row count and its oldest
start, and a cache of recently used parts up to :data:`CACHE_BYTES` (so a small window, a live
watch's, is never read from disk). A scoring works through the window one part at a time, so its
memory follows one part, not the window. The folder is not state: after a restart the window is
read back from the workspace's flows.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from derisk import scratch
from derisk.detect.incremental_rows import grown
from derisk.errors import StoreError

#: One window row: start (epoch seconds), sequence number, bytes, key codes, detection flags.
REC: Final = np.dtype(
    [
        ("start", "<f8"),
        ("seq", "<i8"),
        ("out", "<i8"),
        ("in", "<i8"),
        ("host", "<i4"),
        ("who", "<i4"),
        ("dest", "<i4"),
        ("pair", "<i4"),
        ("hname", "<i4"),
        ("ok", "u1"),
    ]
)
KEYS: Final = ("host", "who", "dest", "pair", "hname")
#: The bit of each window detection in a record's ``ok``.
OK_BITS: Final = {"beacon": 1, "long": 2, "upload": 4}

#: Bytes of part records kept in memory besides the files (about 1.2 million rows).
CACHE_BYTES = 64 * 1024 * 1024

Recs = npt.NDArray[np.void]


def records(
    start: npt.NDArray[np.float64],
    seq: npt.NDArray[np.int64],
    out: npt.NDArray[np.int64],
    inb: npt.NDArray[np.int64],
    keys: dict[str, npt.NDArray[np.int64]],
    ok: dict[str, npt.NDArray[np.bool_]],
) -> Recs:
    """Records of these rows (key codes fit int32: they are dense below the window's rows)."""
    rec = np.empty(len(start), dtype=REC)
    rec["start"], rec["seq"], rec["out"], rec["in"] = start, seq, out, inb
    for k in KEYS:
        rec[k] = keys[k]
    flags = np.zeros(len(start), dtype=np.uint8)
    for k, bit in OK_BITS.items():
        flags |= np.where(ok[k], bit, 0).astype(np.uint8)
    rec["ok"] = flags
    return rec


def ok_of(rec: Recs, kind: str) -> npt.NDArray[np.bool_]:
    """Which records the window detection ``kind`` (beacon, long, upload) reads."""
    return np.asarray((rec["ok"] & OK_BITS[kind]) != 0, dtype=bool)


def _size(rec: Recs) -> int:
    """Bytes ``rec`` holds: the whole array it is the start of, when it is one (:func:`grown`)."""
    base = rec.base
    return base.nbytes if isinstance(base, np.ndarray) else rec.nbytes


def _remove(folder: list[str]) -> None:
    for f in folder:
        scratch.remove(f)
    folder.clear()


class PartArrays:
    """The window's per-row records, one file per part (see the module)."""

    def __init__(self, parts: int) -> None:
        self.count = np.zeros(parts, dtype=np.int64)  # rows per part
        self.oldest = np.full(parts, math.inf)  # the oldest start per part
        self._cache: dict[int, Recs] = {}
        self._folder: list[str] = []
        self._done = weakref.finalize(self, _remove, self._folder)

    def __len__(self) -> int:
        return int(self.count.sum())

    def parts(self) -> list[int]:
        """The parts that hold rows."""
        return [int(p) for p in np.flatnonzero(self.count)]

    def min_start(self) -> float | None:
        return float(self.oldest.min()) if len(self) else None

    def _path(self, part: int) -> Path:
        if not self._folder:
            self._folder.append(scratch.make_dir("windowkeys"))
        return Path(self._folder[0]) / f"part-{part}.rec"

    def _cached(self, part: int, rec: Recs) -> None:
        """Keep ``rec`` in memory as the most recently used part, within :data:`CACHE_BYTES`."""
        self._cache.pop(part, None)
        self._cache[part] = rec
        held = sum(_size(r) for r in self._cache.values())
        for p in list(self._cache):  # least recently used first, the newest last
            if held <= CACHE_BYTES:
                break
            held -= _size(self._cache.pop(p))

    def cached_bytes(self) -> int:
        """Memory the cached parts hold (with the room of arrays appended in place)."""
        return sum(_size(r) for r in self._cache.values())

    def get(self, part: int) -> Recs:
        """The records of ``part`` in sequence order (read only: change them with :meth:`put`)."""
        if part in self._cache:
            rec = self._cache.pop(part)
            self._cache[part] = rec
            return rec
        n = int(self.count[part])
        if n == 0:
            return np.zeros(0, dtype=REC)
        try:
            rec = np.fromfile(self._path(part), dtype=REC, count=n)
        except (OSError, ValueError) as exc:
            raise StoreError(f"could not read the detection window's keys: {exc}") from None
        if len(rec) != n:
            raise StoreError("the detection window's keys on disk miss rows the state holds")
        self._cached(part, rec)
        return rec

    def __iter__(self) -> Iterator[tuple[int, Recs]]:
        """Every part that holds rows with its records, one at a time."""
        for p in self.parts():
            yield p, self.get(p)

    def append(self, part: int, rec: Recs) -> None:
        """Add ``rec`` (sequence numbers above those held) at the end of ``part``."""
        if len(rec) == 0:
            return
        try:
            with self._path(part).open("ab") as f:
                rec.tofile(f)
        except OSError as exc:
            raise StoreError(f"could not write the detection window's keys: {exc}") from None
        if part in self._cache:  # appended in place while its array has room
            self._cached(part, grown(self._cache[part], rec))
        self.count[part] += len(rec)
        self.oldest[part] = min(float(self.oldest[part]), float(rec["start"].min()))

    def put(self, part: int, rec: Recs) -> None:
        """Replace the records of ``part`` with ``rec``."""
        path = self._path(part)
        try:
            with path.open("wb") as f:
                rec.tofile(f)
        except OSError as exc:
            raise StoreError(f"could not write the detection window's keys: {exc}") from None
        self.count[part] = len(rec)
        self.oldest[part] = float(rec["start"].min()) if len(rec) else math.inf
        if len(rec):
            self._cached(part, np.array(rec))  # a copy: a view would keep its base alive
        else:
            self._cache.pop(part, None)

    def close(self) -> None:
        """Remove the folder now (also done when the object is garbage-collected)."""
        self._cache.clear()
        with contextlib.suppress(OSError):
            self._done()
