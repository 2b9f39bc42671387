"""Integer keys for the rows of :mod:`derisk.detect.incremental`'s buffer of recent flows.

:class:`Interner` gives a dense code per distinct string; :class:`PairInterner` a dense code per
distinct pair of strings (host x address, host x server name) without building the joined string
per row: the pair's two codes are combined into one integer, and the joined name is made only when
a key is named (an alert's key). Both forget the keys no buffer row uses any more
(:meth:`~Interner.compact`), so they hold the window's keys, not every key ever seen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from derisk.detect.incremental_keys import key_codes
from derisk.detect.segments import I64

if TYPE_CHECKING:
    from derisk.detect.incremental_arrays import PartArrays

SEP = "\x1f"
_SHIFT = 32


def distinct(codes: I64) -> I64:
    """The distinct codes (dense, from 0) among ``codes``, sorted, -1 (null) left out: one counting
    pass instead of a sort or a hash."""
    valid = codes[codes >= 0]
    return np.flatnonzero(np.bincount(valid)) if len(valid) else np.zeros(0, dtype=np.int64)


def renumber(live: I64, codes: I64) -> I64:
    """``codes`` renumbered so that ``live`` (sorted) becomes 0, 1, …; -1 stays -1."""
    remap = np.full(int(live[-1]) + 2 if len(live) else 1, -1, dtype=np.int64)
    remap[live] = np.arange(len(live), dtype=np.int64)
    return np.asarray(remap[codes], dtype=np.int64)  # -1 picks the trailing -1


def _worth_compacting(held: int, codes: I64) -> I64 | None:
    """The live codes when fewer than half of the ``held`` keys are still used, else None."""
    if held <= 2 * len(codes) + 4096:  # bounded by the buffer's rows: nothing to do
        return None
    live = distinct(codes)
    return live if held > 2 * len(live) + 4096 else None


class Interner:
    """A dense integer per distinct string (-1 for null), kept across batches."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def __len__(self) -> int:
        return len(self.names)

    def name(self, code: int) -> str:
        return self.names[code]

    def code_of(self, value: str) -> int:
        """The code of ``value``, -1 when it is not held."""
        return self.index.get(value, -1)

    def codes(self, arr: pa.ChunkedArray | pa.Array) -> I64:
        codes, uniq = key_codes(arr)
        missing = [u for u, c in zip(uniq, map(self.index.get, uniq), strict=True) if c is None]
        if missing:
            first = len(self.names)
            self.index.update(zip(missing, range(first, first + len(missing)), strict=True))
            self.names.extend(missing)
        mapped = np.fromiter(map(self.index.__getitem__, uniq), dtype=np.int64, count=len(uniq))
        return np.asarray(np.r_[mapped, -1][codes], dtype=np.int64)  # -1 picks the trailing -1

    def compact(self, codes: I64) -> I64:
        """Keep only the strings of ``codes`` (when fewer than half of those held are still used);
        returns ``codes`` renumbered."""
        live = _worth_compacting(len(self.names), codes)
        if live is None:
            return codes
        self.keep(live)
        return renumber(live, codes)

    def keep(self, live: I64) -> None:
        """Keep only the strings of the codes ``live`` (sorted), renumbered 0, 1, … in that order."""
        self.names = [self.names[c] for c in live.tolist()]
        self.index = dict(zip(self.names, range(len(self.names)), strict=True))

    def known(self, values: set[str]) -> I64:
        return np.array([self.index[v] for v in values if v in self.index], dtype=np.int64)


class PairInterner:
    """A dense integer per distinct pair of strings (-1 when either is null), kept across batches;
    the name of a pair is its two strings joined by ``\\x1f``. The pairs are found by a binary
    search over their combined codes (two sorted integer arrays), not a Python dict: 16 bytes a pair,
    and a batch's pairs are looked up in one vectorised pass."""

    def __init__(self) -> None:
        self.left, self.right = Interner(), Interner()
        self.left_of = np.zeros(0, dtype=np.int64)
        self.right_of = np.zeros(0, dtype=np.int64)
        self._sorted = np.zeros(0, dtype=np.int64)  # combined codes (left << 32 | right), sorted
        self._code = np.zeros(0, dtype=np.int64)  # the pair code of each sorted entry

    def __len__(self) -> int:
        return len(self.left_of)

    def name(self, code: int) -> str:
        return f"{self.left.names[self.left_of[code]]}{SEP}{self.right.names[self.right_of[code]]}"

    def code_of(self, name: str) -> int:
        """The code of the pair named ``name`` (``left\\x1fright``), -1 when it is not held."""
        left, sep, right = name.partition(SEP)
        lc, rc = self.left.code_of(left), self.right.code_of(right)
        if not sep or lc < 0 or rc < 0:
            return -1
        return int(self._lookup(np.array([lc << _SHIFT | rc], dtype=np.int64))[0])

    def _lookup(self, keys: I64) -> I64:
        """The pair code of each combined code, -1 when not held."""
        if len(self._sorted) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        return np.where(self._sorted[pos] == keys, self._code[pos], -1)

    def _index(self) -> None:
        keys = self.left_of << _SHIFT | self.right_of
        self._code = np.argsort(keys, kind="stable").astype(np.int64)
        self._sorted = keys[self._code]

    def codes(self, left: pa.ChunkedArray | pa.Array, right: pa.ChunkedArray | pa.Array) -> I64:
        lc, rc = self.left.codes(left), self.right.codes(right)
        combined = np.where((lc >= 0) & (rc >= 0), lc << _SHIFT | rc, -1)
        uniq, inverse = np.unique(combined, return_inverse=True)
        mapped = np.full(len(uniq), -1, dtype=np.int64)
        valid = uniq >= 0
        mapped[valid] = self._lookup(uniq[valid])
        fresh = valid & (mapped < 0)
        if fresh.any():  # pairs new to the buffer: appended, and inserted in the sorted index
            keys = uniq[fresh]  # sorted, as np.unique returns them
            first = len(self.left_of)
            new = np.arange(first, first + len(keys), dtype=np.int64)
            mapped[fresh] = new
            self.left_of = np.r_[self.left_of, keys >> _SHIFT]
            self.right_of = np.r_[self.right_of, keys & ((1 << _SHIFT) - 1)]
            at = np.searchsorted(self._sorted, keys)
            self._sorted = np.insert(self._sorted, at, keys)
            self._code = np.insert(self._code, at, new)
        return np.asarray(mapped[inverse.reshape(-1)], dtype=np.int64)

    def compact(self, codes: I64) -> I64:
        """Keep only the pairs of ``codes`` (when fewer than half of those held are still used), and
        only the strings those pairs use; returns ``codes`` renumbered."""
        live = _worth_compacting(len(self.left_of), codes)
        if live is None:
            return codes
        self.keep(live)
        return renumber(live, codes)

    def keep(self, live: I64) -> None:
        """Keep only the pairs of the codes ``live`` (sorted), renumbered 0, 1, … in that order, and
        only the strings those pairs use."""
        self.left_of = self.left.compact(self.left_of[live])
        self.right_of = self.right.compact(self.right_of[live])
        self._index()


def compact_keys(keys: dict[str, Interner | PairInterner], win: PartArrays) -> None:
    """Forget the key strings no window row uses any more (their codes renumbered in the window's
    arrays), so the interners hold the window's keys, not every key ever seen."""
    for k, interner in keys.items():
        if len(interner) <= 2 * len(win) + 4096:  # bounded by the buffer's rows
            continue
        used = np.zeros(len(interner) + 1, dtype=bool)
        for _, rec in win:
            used[rec[k]] = True
        live = np.flatnonzero(used[:-1])
        if len(interner) <= 2 * len(live) + 4096:
            continue
        interner.keep(live)
        for p in win.parts():
            rec = np.array(win.get(p))
            rec[k] = renumber(live, rec[k].astype(np.int64))
            win.put(p, rec)
