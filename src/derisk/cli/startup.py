"""Start-up costs of a command: modules an analysis would import without using them.

pandas is the largest (0.25-0.45 CPU s, half of what a one-packet ``derisk analyze`` imports) and
derisk never uses it, yet two libraries import it on their own:

* pyarrow, on the first conversion of any Python value (``pa.array``, ``pa.scalar``, a table from
  a dict), to learn pandas' types in case the value is a pandas object; when pandas cannot be
  imported it treats values as the plain Python and NumPy values derisk gives it, and every pyarrow
  call that needs pandas (``to_pandas``, ``from_pandas``) imports it then;
* NFStream, whose streamer module imports it for ``to_pandas``, which derisk does not call
  (:func:`derisk.ingest.pcap` imports NFStream with pandas deferred to that first use).

:func:`pandas_deferred` holds pandas back for the duration of a command that needs none of it (an
analysis on DuckDB, not one on Spark, whose Arrow functions PySpark declares through pandas): an
import of pandas there fails as if pandas were not installed.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
import threading
from collections.abc import Iterator, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Final

#: The modules held back: pandas and every submodule of it.
_HELD: Final = "pandas"


class _Holder(importlib.abc.MetaPathFinder):
    """A finder ahead of all others that refuses pandas while a command holds it back."""

    def __init__(self) -> None:
        self.depth = 0
        self.lock = threading.Lock()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if self.depth and (fullname == _HELD or fullname.startswith(_HELD + ".")):
            raise ModuleNotFoundError(f"{fullname} is not imported by this derisk command", name=fullname)
        return None


_holder = _Holder()


@contextlib.contextmanager
def pandas_deferred(active: bool = True) -> Iterator[None]:
    """Within the block, ``import pandas`` fails unless pandas was imported already; nested blocks
    and threads share one finder. ``active=False`` makes the block do nothing."""
    if not active or _HELD in sys.modules:
        yield
        return
    with _holder.lock:
        _holder.depth += 1
        if _holder.depth == 1:
            sys.meta_path.insert(0, _holder)
    try:
        yield
    finally:
        with _holder.lock:
            _holder.depth -= 1
            if _holder.depth == 0 and _holder in sys.meta_path:
                sys.meta_path.remove(_holder)
