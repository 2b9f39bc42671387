"""The NFStream adapter: NFStream imported on first use, its shared options, and a streamer that reads
a named pipe too.

derisk's one entry to NFStream's package (the watchdog, :mod:`derisk.ingest.meterwatch`, only watches
its processes): :mod:`derisk.ingest.pcap` meters captures through it, :mod:`derisk.live.capture` an
interface.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import stat
import sys
import threading
import types
from pathlib import Path
from typing import Any, Final

from derisk import children

#: NFStream options shared by the meter and the benchmark's bare run, so the two measure the same work.
NFSTREAM_OPTIONS: Final[dict[str, Any]] = {
    "decode_tunnels": True,
    "idle_timeout": 120,
    "active_timeout": 1800,
    "accounting_mode": 1,  # IP layer: the IP total length of each packet
    "n_dissections": 20,
    "statistical_analysis": False,
    "splt_analysis": 0,
}


class _DeferredPandas(types.ModuleType):
    """What NFStream's streamer module gets for ``import pandas``: pandas itself is imported on the
    first attribute asked for (only its ``to_pandas`` would ask; derisk reads flows one by one)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("pandas"), name)


_nfstream_lock = threading.Lock()


def load_nfstream() -> Any:
    """Import NFStream on first use: ``derisk --help`` needs none of it.

    NFStream's package imports pandas at its top for ``to_pandas`` alone (0.25-0.45 CPU s); unless
    pandas is loaded already, NFStream is imported with a stand-in that imports pandas when used.
    Its meter processes are forked: :func:`derisk.children.install` makes each end with its parent.
    """
    with _nfstream_lock:
        if "nfstream" not in sys.modules and "pandas" not in sys.modules:
            sys.modules["pandas"] = _DeferredPandas("pandas")
            try:
                import nfstream
            finally:
                if isinstance(sys.modules.get("pandas"), _DeferredPandas):
                    del sys.modules["pandas"]
        import nfstream
    children.install()
    return nfstream


_PIPE_STREAMER: Any = None


def _pipe_streamer() -> Any:
    """NFStreamer that also takes a named pipe as a capture file (NFStream checks ``isfile``)."""
    global _PIPE_STREAMER
    if _PIPE_STREAMER is None:
        nfstream = load_nfstream()
        from nfstream.utils import NFMode

        base = nfstream.NFStreamer

        class PipeStreamer(base):  # type: ignore[misc,valid-type]
            @property
            def source(self) -> Any:
                return self._source

            @source.setter
            def source(self, value: Any) -> None:
                path = Path(os.fspath(value))
                if not stat.S_ISFIFO(path.stat().st_mode):
                    raise ValueError(f"{path} is not a named pipe")
                self._mode, self._source = NFMode.SINGLE_FILE, str(path)

        _PIPE_STREAMER = PipeStreamer
    return _PIPE_STREAMER


def streamer(path: Path, **options: Any) -> Any:
    if stat.S_ISFIFO(path.stat().st_mode):
        return _pipe_streamer()(source=str(path), **options)
    return load_nfstream().NFStreamer(source=str(path), **options)


def libpcap() -> str | None:
    """The shared library with libpcap that NFStream ships (its engine exports libpcap's functions)."""
    spec = importlib.util.find_spec("_lib_engine")
    return spec.origin if spec is not None and spec.origin else None
