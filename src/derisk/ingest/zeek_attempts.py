"""Zeek connection attempts: ``conn_state`` and whether a connection carried any payload.

Documented for users in ``docs/ingest-zeek.md`` ("Connection attempts").
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

#: Zeek ``conn_state`` values of connections that may have carried nothing: no SYN-ACK (S0), rejected
#: (REJ), reset before the responder's SYN-ACK (RSTOS0, RSTRH), a half-open remainder (SH, SHR) and
#: midstream traffic (OTH). With no payload in either direction they are attempts (``is_attempt``).
ATTEMPT_STATES: Final = ("S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")

#: Largest headers a packet without payload has, per IP version: IP (20, 40) plus TCP with the most
#: options (60), UDP (8) or ICMP (8). Used when Zeek left a payload count unset.
_HEADERS: Final = {6: (80, 100), 17: (28, 48), 1: (28, 48), 58: (48, 48)}
_IP_HEADER: Final = (20, 40)


def _silent(payload: pa.Array | None, ip_bytes: pa.Array, packets: pa.Array, header: pa.Array) -> pa.Array:
    """Whether one side sent no payload: Zeek's count when set, else IP bytes within bare headers.

    Zeek leaves ``orig_bytes``/``resp_bytes`` unset for connections of a single packet (no
    ``duration``); a lone UDP datagram then still shows its payload in ``orig_ip_bytes``.
    """
    estimate = pc.less_equal(pc.fill_null(ip_bytes, 0), pc.multiply(pc.fill_null(packets, 0), header))
    if payload is None:
        return estimate
    return pc.if_else(pc.is_valid(payload), pc.equal(payload, 0), estimate)


def attempt_flags(
    state: pa.Array,
    payload: tuple[pa.Array, pa.Array] | None,
    ip_bytes: tuple[pa.Array, pa.Array],
    packets: tuple[pa.Array, pa.Array],
    protocol: pa.Array,
    ipv6: pa.Array,
) -> pa.Array:
    """``is_attempt`` per connection: an attempt state and no payload either way.

    ``state`` is ``conn_state`` (null when unset: the flag is null); ``payload`` the originator's and
    responder's ``orig_bytes``/``resp_bytes`` (None when the log has no such columns: the flag is
    then null for attempt states); ``ip_bytes`` and ``packets`` the IP-layer counts of each side.
    """
    encoded = state if pa.types.is_dictionary(state.type) else pc.dictionary_encode(state)
    per_state = pc.is_in(encoded.dictionary, value_set=pa.array(ATTEMPT_STATES))
    attempt_state = per_state.take(encoded.indices)
    if payload is None:
        return pc.if_else(attempt_state, pa.scalar(None, pa.bool_()), attempt_state)
    header = pa.array([_IP_HEADER[1], _IP_HEADER[0]], pa.int64()).take(
        pc.if_else(pc.fill_null(ipv6, False), 0, 1).cast(pa.int64())
    )
    for number, (v4, v6) in _HEADERS.items():
        here = pc.fill_null(pc.equal(protocol, number), False)
        header = pc.if_else(here, pc.if_else(pc.fill_null(ipv6, False), v6, v4), header)
    silent = pc.and_(
        _silent(payload[0], ip_bytes[0], packets[0], header),
        _silent(payload[1], ip_bytes[1], packets[1], header),
    )
    return pc.and_(attempt_state, silent)
