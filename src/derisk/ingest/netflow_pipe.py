"""nfdump files through nfdump's ``pipe`` output, about twice as fast to print as its ``fmt:`` output.

nfdump 1.7 prints a file's records in its legacy ``pipe`` format (numbers only: addresses as 32-bit
words, times in epoch milliseconds) at about twice the speed of a ``fmt:`` format (1.8-1.9 s
against 3.8-4.2 s per million records here; docs/benchmarks.md). That format has no exporter and no
reverse (``out``) counters, so it is used only where it loses nothing: :func:`pipe_plan` asks nfdump
first whether any record has reverse counters or an exporter outside the file's exporter list (one
``-c 1`` pass), and the file must have a single exporter. Otherwise :mod:`.netflow` reads it
through ``fmt:``. ``tests/test_ingest_netflow.py`` checks that both give identical records and
flows on every fixture.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from derisk.ingest.netflow_layout import Addresses
from derisk.ingest.netflow_pairs import RECORD_SCHEMA

#: One exporter: with more, the pass per exporter would change the order of the records, hence
#: where batches are cut for pairing, hence flows at the cuts.
_MAX_EXPORTERS: Final = 1
_EXPORTER = re.compile(r"SysID: *(\d+), IP: *([0-9A-Fa-f.:]+),")
_COLUMNS: Final = [
    "af",
    "first",
    "last",
    "protocol",
    *(f"s{i}" for i in range(4)),
    "src_port",
    *(f"d{i}" for i in range(4)),
    "dst_port",
    "src_as",
    "dst_as",
    "in",
    "out",
    "flags",
    "tos",
    "packets",
    "bytes",
]
#: The columns :func:`pipe_records` reads; Arrow converts no other (a third less CPU to parse).
_USED: Final = [c for c in _COLUMNS if c not in {"src_as", "dst_as", "in", "out", "flags", "tos"}]
_AF_INET6: Final = 10
#: What fmt:'s %ra prints for records of no exporter (not an address anything binds to).
_NO_EXPORTER: Final = "0.0.0.0"  # noqa: S104
_NO_FLOWS: Final = b"No matching flows"


def pipe_plan(
    nfdump: str, path: Path, env: dict[str, str], exporters_text: str
) -> list[tuple[int, str]] | None:
    """The (sysid, address) of each exporter to read with ``pipe``, or None when ``fmt:`` is needed.

    ``exporters_text`` is ``nfdump -E``'s output for the file; a file without exporter records has
    its records under sysid 0, address 0.0.0.0 (as ``fmt:``'s ``%exp`` and ``%ra`` print them).
    """
    found = [(int(m.group(1)), m.group(2)) for m in _EXPORTER.finditer(exporters_text)]
    exporters = found or [(0, _NO_EXPORTER)]
    if len(exporters) > _MAX_EXPORTERS or len({s for s, _ in exporters}) != len(exporters):
        return None
    known = " or ".join(f"sysid {sysid}" for sysid, _ in exporters)
    probe = f"out bytes > 0 or out packets > 0 or not ({known})"
    done = subprocess.run(
        [nfdump, "-q", "-N", "-r", str(path), "-c", "1", "-o", "pipe", probe],
        capture_output=True,
        timeout=600,
        env=env,
        check=False,
    )
    if done.returncode != 0 or done.stderr.strip() or not done.stdout.startswith(_NO_FLOWS):
        return None
    return exporters


def pipe_command(nfdump: str, path: Path) -> list[str]:
    """The read of a file :func:`pipe_plan` passed (no filter: every record is its one exporter's)."""
    return [nfdump, "-q", "-N", "-r", str(path), "-o", "pipe"]


def pipe_stream(out: IO[bytes]) -> Iterator[pa.RecordBatch]:
    head = out.peek(len(_NO_FLOWS)) if hasattr(out, "peek") else b""
    if head.startswith(_NO_FLOWS) or not head:
        return
    yield from csv.open_csv(
        out,
        read_options=csv.ReadOptions(column_names=_COLUMNS, block_size=4 << 20),
        parse_options=csv.ParseOptions(delimiter="|", quote_char=False),
        convert_options=csv.ConvertOptions(
            column_types=dict.fromkeys(_USED, pa.int64()), include_columns=_USED
        ),
    )


def _addresses(block: pa.RecordBatch, prefix: str, six: np.ndarray) -> pa.Array:
    words = [np.asarray(block.column(f"{prefix}{i}").to_numpy(), np.int64) for i in range(4)]
    found = Addresses(block.num_rows)
    rows = np.flatnonzero(~six)
    found.put(rows, words[3][rows].astype(np.uint32), False)
    rows = np.flatnonzero(six)
    if len(rows):
        packed = np.ascontiguousarray(np.stack([w[rows] for w in words], axis=1).astype(">u4"))
        found.put(rows, packed.view("V16")[:, 0], True)
    return found.text()


def pipe_records(block: pa.RecordBatch, source_ref: str) -> pa.RecordBatch:
    """One block of ``pipe`` output as :data:`.netflow_pairs.RECORD_SCHEMA`."""
    protocol = block.column("protocol").cast(pa.int16())
    portless = pc.is_in(protocol, value_set=pa.array([1, 58], pa.int16()))
    no_port = pa.scalar(None, pa.int64())
    six = np.asarray(block.column("af").to_numpy()) == _AF_INET6
    columns = {
        "first_us": pc.multiply(block.column("first"), 1000),
        "last_us": pc.multiply(block.column("last"), 1000),
        "src_ip": _addresses(block, "s", six),
        "src_port": pc.if_else(portless, no_port, block.column("src_port")).cast(pa.int32()),
        "dst_ip": _addresses(block, "d", six),
        "dst_port": pc.if_else(portless, no_port, block.column("dst_port")).cast(pa.int32()),
        "protocol": protocol,
        "packets": block.column("packets"),
        "bytes": block.column("bytes"),
        "rev_packets": pa.array(np.zeros(block.num_rows, np.int64)),
        "rev_bytes": pa.array(np.zeros(block.num_rows, np.int64)),
        "source_ref": pa.repeat(pa.scalar(source_ref, pa.string()), block.num_rows),
    }
    return pa.RecordBatch.from_pydict(columns, schema=RECORD_SCHEMA)
