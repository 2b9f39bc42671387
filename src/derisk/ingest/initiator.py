"""Which side opened a flow metered from packets.

NFStream gives a flow's ``src`` as the sender of the first packet it saw. When a capture begins
after a connection opened (its first packet is the server's SYN-ACK, or data, or a UDP answer), that
sender is the server: the flow would read as opened from outside ("inbound") and lose the service
name the client sent. Such a flow is turned round when the first sender's port is a server port
(``data/server-ports.yaml``: the System Ports and listed User Ports) and the receiver's port is not
and is 1024 or above — the way Zeek decides with its ``likely_server_ports`` for connections it did
not see open. Two server ports (NTP 123 to 123) or two client ports are left as metered.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.data import read_yaml
from derisk.errors import DataError

_SOURCE: Final = "derisk/data/server-ports.yaml"
#: Column pairs exchanged when a flow is turned round.
_PAIRS: Final = (
    ("src_ip", "dst_ip"),
    ("src_port", "dst_port"),
    ("bytes_out", "bytes_in"),
    ("packets_out", "packets_in"),
)


def parse_server_ports(doc: Any, source: str = _SOURCE) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """A table of 65,536 flags, true at the server ports of ``doc``."""
    if not isinstance(doc, dict) or doc.get("schema") != "derisk.server-ports/1":
        raise DataError("expected schema derisk.server-ports/1", source=source)
    if not isinstance(doc.get("source"), str) or not doc["source"].strip():
        raise DataError("missing source", source=source)
    flags = np.zeros(65536, dtype=np.bool_)
    low, _, high = str(doc.get("system_ports", "")).partition("-")
    try:
        flags[int(low) : int(high) + 1] = True
    except ValueError:
        raise DataError("system_ports must be a range such as 1-1023", source=source) from None
    ports = doc.get("user_ports")
    if not isinstance(ports, dict) or not all(isinstance(p, int) and 1024 <= p <= 65535 for p in ports):
        raise DataError("user_ports must map port numbers 1024-65535 to service names", source=source)
    flags[list(ports)] = True
    return flags


@cache
def server_ports() -> np.ndarray[Any, np.dtype[np.bool_]]:
    """The shipped server ports (read once)."""
    return parse_server_ports(read_yaml("server-ports.yaml"))


def by_opener(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with the flows whose first packet came from the server turned round."""
    if batch.num_rows == 0:
        return batch
    src = np.asarray(pc.fill_null(batch.column("src_port"), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    dst = np.asarray(pc.fill_null(batch.column("dst_port"), 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    flags = server_ports()
    src_ok, dst_ok = (src >= 0) & (src < 65536), (dst >= 0) & (dst < 65536)
    src_server = np.zeros(len(src), dtype=np.bool_)
    dst_server = np.zeros(len(dst), dtype=np.bool_)
    src_server[src_ok] = flags[src[src_ok]]
    dst_server[dst_ok] = flags[dst[dst_ok]]
    turn = src_server & ~dst_server & (dst >= 1024)
    if not turn.any():
        return batch
    flip = pa.array(turn)
    columns = {name: batch.column(name) for name in batch.schema.names}
    for a, b in _PAIRS:
        columns[a] = pc.if_else(flip, batch.column(b), batch.column(a))
        columns[b] = pc.if_else(flip, batch.column(a), batch.column(b))
    return pa.RecordBatch.from_pydict(columns, schema=batch.schema)
