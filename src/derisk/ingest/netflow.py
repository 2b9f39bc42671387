"""NetFlow v5/v9 and IPFIX from nfdump files (``nfcapd.YYYYMMDDhhmm``), read through nfdump itself.

:func:`read_nfcapd` streams one nfcapd file, or a directory of them, as batches of
:data:`derisk.flows.INGEST_SCHEMA`. Each file is first checked with ``nfdump -v`` (nfdump exits 0
on a corrupt file while reading it, so its own check decides), then ``nfdump -r`` prints its records
in a fixed format that Arrow's CSV reader parses block by block: memory stays flat whatever the
file's size. NetFlow records are unidirectional; :mod:`.netflow_pairs` pairs the two directions of
a connection into one flow. Contract for users: ``docs/ingest-netflow.md``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any, Final

import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from derisk.errors import InputError
from derisk.flows import BATCH_ROWS
from derisk.ingest import NFCAPD_MAGICS
from derisk.ingest.netflow_pairs import RECORD_SCHEMA, Pairer
from derisk.ingest.netflow_pipe import pipe_command, pipe_plan, pipe_records, pipe_stream
from derisk.readahead import ReadAhead

log = logging.getLogger(__name__)


#: nfdump's output: epoch start (ms), duration, protocol number (-N), addresses in full (-6), ports,
#: packets and bytes of the record's direction and (biflows only) of the reverse one, exporter
#: address and nfdump's exporter id (records are paired within one exporter).
_FORMAT: Final = "fmt:%tsr,%td,%pr,%sa,%sp,%da,%dp,%ipkt,%ibyt,%opkt,%obyt,%ra,%exp"
_COLUMNS: Final = [
    "first",
    "duration",
    "protocol",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "packets",
    "bytes",
    "rev_packets",
    "rev_bytes",
    "exporter",
    "sysid",
]
#: How Arrow's CSV reader types each printed column (numbers with nfdump's padding parse as they are).
_TYPES: Final = {
    "first": pa.float64(),
    "duration": pa.float64(),
    "protocol": pa.int64(),
    "src_ip": pa.string(),
    "src_port": pa.float64(),
    "dst_ip": pa.string(),
    "dst_port": pa.float64(),
    "packets": pa.int64(),
    "bytes": pa.int64(),
    "rev_packets": pa.int64(),
    "rev_bytes": pa.int64(),
    "exporter": pa.string(),
    "sysid": pa.string(),
}
_NO_FLOWS: Final = b"No matching flows"
_ICMP: Final = pa.array([1, 58], pa.int16())
_MAX_ERROR: Final = 200
_EXPORTER = re.compile(r"SysID: *(\d+), IP: *([0-9A-Fa-f.:]+), version: *(\d+), ID: *(\d+)")
_SAMPLER = re.compile(r"Sampler:.*?packet interval: *(\d+), packet space: *(\d+)")


def is_nfcapd(head: bytes) -> bool:
    return head[:4] in NFCAPD_MAGICS


def nfcapd_files(path: Path) -> list[Path]:
    """The nfdump files of a directory (by content), in name order (nfcapd names sort by time)."""
    found = []
    for entry in sorted(path.iterdir()):
        # nfcapd.current.PID is the file nfcapd is still writing
        if entry.is_file() and not entry.name.startswith(".") and ".current." not in entry.name:
            try:
                with entry.open("rb") as fh:
                    if is_nfcapd(fh.read(4)):
                        found.append(entry)
            except OSError:
                continue
    return found


def _nfdump() -> str:
    found = shutil.which("nfdump")
    if found is None:
        raise InputError(
            "nfdump files need nfdump (Debian: apt-get install nfdump; scripts/system-deps installs it)",
            source="nfdump",
        )
    return found


def _env() -> dict[str, str]:
    return {**os.environ, "TZ": "UTC", "LC_ALL": "C"}


def _first_line(text: bytes) -> str:
    lines = [line for line in text.decode("utf-8", "replace").splitlines() if line.strip()]
    return (lines[-1] if lines else "unreadable").strip()[:_MAX_ERROR]


def check_file(path: Path) -> None:
    """Raise InputError unless nfdump finds ``path`` a consistent nfdump file."""
    try:
        done = subprocess.run(
            [_nfdump(), "-v", str(path)], capture_output=True, timeout=600, env=_env(), check=False
        )
    except subprocess.TimeoutExpired:
        raise InputError("nfdump could not check this file within 10 minutes", source=str(path)) from None
    if done.returncode != 0:
        raise InputError(
            f"not a readable nfdump file (nfdump: {_first_line(done.stderr or done.stdout)})",
            source=str(path),
        )


def samplers(path: Path) -> list[dict[str, Any]]:
    """The exporters of a file with the sampling each announced (``nfdump -E``).

    nfcapd multiplies packets and bytes by the announced rate when it writes the file, so the
    counts read back are already scaled; the rate is recorded so that the report can say so.
    """
    try:
        done = subprocess.run(
            [_nfdump(), "-E", str(path)], capture_output=True, timeout=600, env=_env(), check=False
        )
    except subprocess.TimeoutExpired:
        raise InputError("nfdump could not list its exporters within 10 minutes", source=str(path)) from None
    found: list[dict[str, Any]] = []
    for line in done.stdout.decode("utf-8", "replace").splitlines():
        exporter = _EXPORTER.search(line)
        if exporter:
            found.append(
                {
                    "exporter": exporter.group(2),
                    "version": int(exporter.group(3)),
                    "id": int(exporter.group(4)),
                    "sampling_rate": 1,
                }
            )
            continue
        sampler = _SAMPLER.search(line)
        if sampler and found:
            interval, space = int(sampler.group(1)), int(sampler.group(2))
            if interval > 0:
                found[-1]["sampling_rate"] = max(found[-1]["sampling_rate"], (interval + space) // interval)
    return found


def _records(block: pa.RecordBatch, source: str) -> pa.RecordBatch:
    """One block of nfdump's text output as :data:`.netflow_pairs.RECORD_SCHEMA`.

    Arrow's CSV reader already parsed the numbers (it accepts nfdump's padding); only the address
    columns are trimmed. nfdump prints an ICMP record's type and code as the destination port
    (``8.0``), hence ports read as floating point and set to null for ICMP.
    """
    protocol = block.column("protocol").cast(pa.int16())
    icmp = pc.is_in(protocol, value_set=_ICMP)
    no_port = pa.scalar(None, pa.float64())
    first = pc.round(pc.multiply(block.column("first"), 1e6)).cast(pa.int64())
    duration = pc.round(pc.multiply(block.column("duration"), 1e6)).cast(pa.int64())
    columns = {
        "first_us": first,
        "last_us": pc.add(first, duration),
        "src_ip": pc.utf8_trim_whitespace(block.column("src_ip")),
        "src_port": pc.if_else(icmp, no_port, block.column("src_port")).cast(pa.int32()),
        "dst_ip": pc.utf8_trim_whitespace(block.column("dst_ip")),
        "dst_port": pc.if_else(icmp, no_port, block.column("dst_port")).cast(pa.int32()),
        "protocol": protocol,
        "packets": block.column("packets"),
        "bytes": block.column("bytes"),
        "rev_packets": block.column("rev_packets"),
        "rev_bytes": block.column("rev_bytes"),
        "source_ref": pc.binary_join_element_wise(
            source, pc.utf8_trim_whitespace(block.column("exporter")), "/", block.column("sysid"), ""
        ),
    }
    return pa.RecordBatch.from_pydict(columns, schema=RECORD_SCHEMA)


def _stream(out: IO[bytes]) -> Iterator[pa.RecordBatch]:
    """nfdump's printed records, block by block, as text columns."""
    head = out.peek(len(_NO_FLOWS)) if hasattr(out, "peek") else b""
    if head.startswith(_NO_FLOWS) or not head:
        return
    reader = csv.open_csv(
        out,
        read_options=csv.ReadOptions(column_names=_COLUMNS, block_size=4 << 20),
        parse_options=csv.ParseOptions(delimiter=",", quote_char=False),
        convert_options=csv.ConvertOptions(column_types=_TYPES),
    )
    yield from reader


#: Whether files may be read through nfdump's pipe output (tests compare both ways).
_PIPE = True


def _file_records(path: Path, *, pipe: bool | None = None) -> Iterator[pa.RecordBatch]:
    """One file's records (:data:`.netflow_pairs.RECORD_SCHEMA`) as nfdump prints them: through
    its fast ``pipe`` output where that loses nothing (:mod:`.netflow_pipe`), else ``fmt:``."""
    nfdump, env = _nfdump(), _env()
    listed = subprocess.run([nfdump, "-E", str(path)], capture_output=True, timeout=600, env=env, check=False)
    plan = (
        pipe_plan(nfdump, path, env, listed.stdout.decode("utf-8", "replace"))
        if (_PIPE if pipe is None else pipe)
        else None
    )
    if plan is None:
        yield from _printed(
            path, [nfdump, "-q", "-N", "-6", "-r", str(path), "-o", _FORMAT], _stream, _records
        )
        return
    for sysid, address in plan:
        source_ref = f"{path.name}@{address}/{sysid:6d}"  # as fmt:'s %exp prints it
        yield from _printed(
            path, pipe_command(nfdump, path), pipe_stream, partial(_pipe_block, source_ref=source_ref)
        )


def _pipe_block(block: pa.RecordBatch, source: str, *, source_ref: str) -> pa.RecordBatch:
    return pipe_records(block, source_ref)


def _printed(
    path: Path,
    command: list[str],
    stream: Callable[[IO[bytes]], Iterator[pa.RecordBatch]],
    convert: Callable[[pa.RecordBatch, str], pa.RecordBatch],
) -> Iterator[pa.RecordBatch]:
    """The records nfdump prints with ``command``, block by block.

    Runs in a read-ahead thread; nfdump's standard error goes to a temporary file, so that a file
    that makes it write much there cannot block it.
    """
    source = f"{path.name}@"
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=_env())
        assert proc.stdout is not None
        try:
            try:
                for block in stream(proc.stdout):
                    yield convert(block, source)
            except (pa.ArrowInvalid, ValueError) as exc:
                raise InputError(
                    f"nfdump printed records derisk cannot read ({str(exc).splitlines()[0][:_MAX_ERROR]})",
                    source=str(path),
                ) from None
            code = proc.wait()
            errors.seek(0)
            text = errors.read(1 << 16)
            if code != 0 or text.strip():
                raise InputError(
                    f"not a readable nfdump file (nfdump: {_first_line(text)})", source=str(path)
                )
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()


#: Files whose nfdump runs at once (the next file is printed while this one is paired); each holds
#: at most ``_DEPTH`` blocks of 4 MiB of text converted to records.
_FILES_AHEAD: Final = 2
_DEPTH: Final = 4


def _records_of(files: list[Path]) -> Iterator[tuple[Path, ReadAhead[pa.RecordBatch]]]:
    """Each file with a read-ahead of its records, the next file's already running."""
    running: deque[tuple[Path, ReadAhead[pa.RecordBatch]]] = deque()
    waiting = deque(files)
    try:
        while waiting or running:
            while waiting and len(running) < _FILES_AHEAD:
                file = waiting.popleft()
                running.append(
                    (file, ReadAhead(partial(_file_records, file), depth=_DEPTH, name="derisk-nfdump"))
                )
            file, reader = running.popleft()
            try:
                yield file, reader
            finally:
                reader.close()
    finally:
        for _, reader in running:
            reader.close()


def _paired(files: list[Path], progress: Callable[[int], None] | None) -> Iterator[pa.RecordBatch]:
    pairer = Pairer()
    for _, reader in _records_of(files):
        pending: list[pa.RecordBatch] = []
        rows = 0
        for records in reader:
            pending.append(records)
            rows += records.num_rows
            if progress is not None:
                progress(records.num_rows)
            while rows >= BATCH_ROWS:  # cut at a fixed count, whatever nfdump's output format
                table = pa.Table.from_batches(pending)
                yield from pairer.pair(table.slice(0, BATCH_ROWS))
                pending, rows = table.slice(BATCH_ROWS).to_batches(), rows - BATCH_ROWS
        if pending:  # pairs do not cross files (nfcapd rotates every few minutes)
            yield from pairer.pair(pa.Table.from_batches(pending))


def read_nfcapd(
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield the flows of an nfdump file, or a directory of them, as ``INGEST_SCHEMA`` batches.

    ``progress`` is called with the number of NetFlow records read since its last call. The
    exporters and their sampling rates go into ``notes`` (``exporters``), with a warning when any
    exporter sampled.
    """
    files = nfcapd_files(path) if path.is_dir() else [path]
    if not files:
        raise InputError("no nfdump (nfcapd) file in this directory", source=str(path))
    for file in files:
        check_file(file)
    exporters: list[dict[str, Any]] = []
    for file in files:
        for found in samplers(file):
            if found not in exporters:
                exporters.append(found)
    sampled = [e for e in exporters if e["sampling_rate"] > 1]
    for exporter in sampled:
        log.warning(
            "%s: exporter %s (NetFlow v%d, id %d) sampled 1 packet in %d; nfcapd scaled packets and "
            "bytes by %d, so volumes are estimates",
            path,
            exporter["exporter"],
            exporter["version"],
            exporter["id"],
            exporter["sampling_rate"],
            exporter["sampling_rate"],
        )
    if notes is not None:
        notes["exporters"] = exporters
        notes["sampling_rate"] = max((e["sampling_rate"] for e in exporters), default=1)
    flows = 0
    for batch in _paired(files, progress):
        flows += batch.num_rows
        yield batch
    if not flows:
        log.warning("%s: no flow records in %d nfdump file(s)", path, len(files))
