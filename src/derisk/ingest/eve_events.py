"""Suricata EVE JSON lines, parsed in bulk by Arrow's JSON reader with an explicit schema.

Only the keys derisk uses are read (:data:`EVE_SCHEMA`); the rest of each event is skipped by the
parser. A piece of the log that Arrow rejects as a whole (a truncated line, bytes that are not
UTF-8, a NUL, a value of the wrong type, nesting where a string belongs) is cut in halves until the
lines at fault are found: they are counted and skipped, every other line is kept. So a damaged line
costs a few extra parses of its piece, and a correct log none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.json as pajson

_NAME: Final = pa.string()

#: The keys of an EVE event that derisk reads. Others are ignored, at any depth.
EVE_SCHEMA: Final = pa.schema(
    [
        pa.field("timestamp", pa.string()),
        pa.field("flow_id", pa.int64()),
        pa.field("event_type", pa.string()),
        #: The packet's number; absent on events of Suricata's pseudo-packets (flow timeout, shutdown).
        pa.field("pcap_cnt", pa.int64()),
        pa.field("src_ip", pa.string()),
        pa.field("src_port", pa.int64()),
        pa.field("dest_ip", pa.string()),
        pa.field("dest_port", pa.int64()),
        pa.field("proto", pa.string()),
        pa.field("app_proto", pa.string()),
        #: Suricata 7+ alerts: the packet's direction in the flow (``to_server``, ``to_client``).
        pa.field("direction", pa.string()),
        pa.field(
            "flow",
            pa.struct(
                [
                    pa.field("pkts_toserver", pa.int64()),
                    pa.field("pkts_toclient", pa.int64()),
                    pa.field("bytes_toserver", pa.int64()),
                    pa.field("bytes_toclient", pa.int64()),
                    pa.field("start", pa.string()),
                    pa.field("end", pa.string()),
                    pa.field("state", pa.string()),
                    # Suricata 7+ alerts: the flow's client, whatever the alert's direction.
                    pa.field("src_ip", pa.string()),
                ]
            ),
        ),
        pa.field(
            "netflow",
            pa.struct(
                [
                    pa.field("pkts", pa.int64()),
                    pa.field("bytes", pa.int64()),
                    pa.field("start", pa.string()),
                    pa.field("end", pa.string()),
                ]
            ),
        ),
        pa.field("tcp", pa.struct([pa.field("tcp_flags_ts", pa.string())])),
        pa.field("tls", pa.struct([pa.field("sni", _NAME), pa.field("ja4", pa.string())])),
        pa.field("quic", pa.struct([pa.field("sni", _NAME)])),
        pa.field("http", pa.struct([pa.field("hostname", _NAME), pa.field("http_user_agent", pa.string())])),
        pa.field(
            "dns",
            pa.struct(
                [
                    pa.field("type", pa.string()),
                    pa.field("rrname", _NAME),
                    pa.field("rrtype", pa.string()),
                    pa.field("rdata", pa.string()),
                    pa.field("queries", pa.list_(pa.struct([pa.field("rrname", _NAME)]))),
                    pa.field(
                        "answers",
                        pa.list_(
                            pa.struct([pa.field("rrtype", pa.string()), pa.field("rdata", pa.string())])
                        ),
                    ),
                    pa.field(
                        "grouped",
                        pa.struct(
                            [pa.field("A", pa.list_(pa.string())), pa.field("AAAA", pa.list_(pa.string()))]
                        ),
                    ),
                ]
            ),
        ),
    ]
)


@dataclass
class Skipped:
    """Lines of a piece that could not be read: how many, and the first one's line number and cause."""

    count: int = 0
    first_line: int | None = None
    first_cause: str | None = None

    def add(self, line: int, cause: str) -> None:
        self.count += 1
        if self.first_line is None or line < self.first_line:
            self.first_line, self.first_cause = line, cause


def _parse(data: bytes | pa.Buffer) -> pa.Table:
    size = data.size if isinstance(data, pa.Buffer) else len(data)
    table = pajson.read_json(
        pa.BufferReader(data),
        read_options=pajson.ReadOptions(use_threads=False, block_size=max(1 << 20, size + 1)),
        parse_options=pajson.ParseOptions(
            explicit_schema=EVE_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False
        ),
    )
    table.validate(full=True)  # Arrow's JSON reader does not check that strings are UTF-8
    return table


def _cause(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "UTF8" in text or "utf8" in text.lower() or "invalid utf" in text.lower():
        return "not UTF-8 text"
    return "not an EVE JSON object of the expected types" if "changed from" in text else "not valid JSON"


def parse_piece(data: pa.Buffer, first_line: int) -> tuple[pa.Table, Skipped]:
    """Parse whole lines of an EVE log (numbered from ``first_line``); bad lines are skipped and counted."""
    skipped = Skipped()
    try:
        return _parse(data), skipped
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    lines = data.to_pybytes().split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    parts: list[pa.Table] = []
    _bisect(lines, 0, len(lines), first_line, parts, skipped)
    table = pa.concat_tables(parts) if parts else EVE_SCHEMA.empty_table()
    return table, skipped


def _bisect(
    lines: list[bytes], start: int, stop: int, first_line: int, parts: list[pa.Table], skipped: Skipped
) -> None:
    """Parse ``lines[start:stop]``, halving around the lines Arrow rejects."""
    chunk = lines[start:stop]
    if not any(line.strip() for line in chunk):
        return
    try:
        parts.append(_parse(b"\n".join(chunk) + b"\n"))
        return
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        if stop - start == 1:
            skipped.add(first_line + start, _cause(exc))
            return
    middle = (start + stop) // 2
    _bisect(lines, start, middle, first_line, parts, skipped)
    _bisect(lines, middle, stop, first_line, parts, skipped)
