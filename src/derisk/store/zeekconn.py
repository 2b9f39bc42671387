"""The ``SELECT`` that turns Zeek conn records (Zeek's names, as :mod:`derisk.store.zeekread` reads
them) into flow columns: the protocol number, the last-seen time, ports of TCP and UDP only, the
attempt flag and whether the text columns need a pass of their own. Plain SQL text; DuckDB runs it
in the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from derisk.safetext import MAX_FIELD_CHARS
from derisk.store.sqltext import ident, literal

#: Zeek's connection states of an attempt (no connection established).
ATTEMPT_STATES: Final = ("S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")


def _attempt(has: Mapping[str, str]) -> str:
    """``is_attempt``: an attempt state and no payload either way (null when ``conn_state`` is unset,
    and for attempt states when the log has no payload counts). A side sent no payload when Zeek's
    count says 0 or, where Zeek left it unset (one-packet connections), when its IP bytes fit in
    bare headers: IP (20/40) plus TCP with the most options (60), UDP (8) or ICMP (8)."""
    if "conn_state" not in has:
        return "CAST(NULL AS BOOLEAN)"
    states = ", ".join(literal(s) for s in ATTEMPT_STATES)
    state = ident("conn_state")
    if "orig_bytes" not in has or "resp_bytes" not in has:
        return f"CASE WHEN {state} IN ({states}) THEN NULL WHEN {state} IS NOT NULL THEN false END"
    header = (
        "CASE WHEN contains(src_ip, ':') THEN "
        "CASE protocol WHEN 6 THEN 100 WHEN 17 THEN 48 WHEN 1 THEN 48 WHEN 58 THEN 48 ELSE 40 END "
        "ELSE CASE protocol WHEN 6 THEN 80 WHEN 17 THEN 28 WHEN 1 THEN 28 WHEN 58 THEN 48 ELSE 20 END END"
    )

    def silent(payload: str, ip_bytes: str, packets: str) -> str:
        return (
            f"CASE WHEN {ident(payload)} IS NOT NULL THEN {ident(payload)} = 0 "
            f"ELSE coalesce({ident(ip_bytes)}, 0) <= coalesce({ident(packets)}, 0) * ({header}) END"
        )

    return (
        f"CASE WHEN {state} IS NULL THEN NULL WHEN {state} NOT IN ({states}) THEN false "
        f"ELSE ({silent('orig_bytes', 'orig_ip_bytes', 'orig_pkts')}) "
        f"AND ({silent('resp_bytes', 'resp_ip_bytes', 'resp_pkts')}) END"
    )


def _plain_text(has: Mapping[str, str]) -> str:
    """Whether ``service`` and ``conn_state`` need no unescaping or bounding: no ``\\x``, not empty,
    at most :data:`derisk.safetext.MAX_FIELD_CHARS` characters (checked on DuckDB's threads; the
    caller then skips its own pass over the batch's text when every row is plain)."""
    checks = [
        f"coalesce(NOT contains({ident(name)}, '\\x') AND length({ident(name)}) BETWEEN 1 AND "
        f"{MAX_FIELD_CHARS}, true)"
        for name in ("service", "conn_state")
        if name in has
    ]
    return " AND ".join(checks) or "true"


def conversion(inner: str, has: Mapping[str, str], first: str, uid_hash: bool = True) -> str:
    """The ``SELECT`` turning conn records with Zeek's names (``inner``) into flow columns
    (``uid_hash`` null unless asked for)."""
    orig_h, proto = ident("id.orig_h"), ident("proto")
    # Zeek writes the names in lower case; others are compared in lower case.
    protocol = (
        f"CAST(CASE WHEN {proto} = 'tcp' THEN 6 WHEN {proto} = 'udp' THEN 17 WHEN {proto} = 'icmp' THEN "
        f"CASE WHEN contains({orig_h}, ':') THEN 58 ELSE 1 END "
        f"ELSE CASE lower({proto}) WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17 "
        f"WHEN 'icmp' THEN CASE WHEN contains({orig_h}, ':') THEN 58 ELSE 1 END END END AS SMALLINT)"
    )
    protocol = (
        f"coalesce({protocol}, CAST({ident('ip_proto')} AS SMALLINT))" if "ip_proto" in has else protocol
    )
    last = (
        f"first_us + CAST(round_even({ident('duration')} * 1000000, 0) AS BIGINT)"
        if "duration" in has
        else "CAST(NULL AS BIGINT)"
    )

    def optional(name: str, kind: str) -> str:
        return ident(name) if name in has else f"CAST(NULL AS {kind})"

    transport = "protocol IN (6, 17)"
    return f"""
        WITH log AS (
            SELECT {first} AS first_us, {protocol} AS protocol, {orig_h} AS src_ip, *
            FROM ({inner})
        )
        SELECT
            first_us,
            {last} AS last_us,
            src_ip,
            CASE WHEN {transport} THEN {ident("id.orig_p")} END AS src_port,
            {ident("id.resp_h")} AS dst_ip,
            CASE WHEN {transport} THEN {ident("id.resp_p")} END AS dst_port,
            protocol,
            {ident("orig_ip_bytes")} AS bytes_out,
            {ident("resp_ip_bytes")} AS bytes_in,
            {ident("orig_pkts")} AS packets_out,
            {ident("resp_pkts")} AS packets_in,
            {optional("service", "VARCHAR")} AS service,
            {ident("uid")} AS uid,
            {optional("conn_state", "VARCHAR")} AS conn_state,
            {_attempt(has)} AS is_attempt,
            {f"hash({ident('uid')})" if uid_hash else "CAST(NULL AS UBIGINT)"} AS uid_hash,
            {_plain_text(has)} AS plain_text
        FROM log
    """
