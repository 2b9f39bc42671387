"""Enrich conn.log batches from Zeek's companion logs (ssl, http, dns): read by DuckDB, their text
prepared with Arrow, joined by DuckDB (:mod:`derisk.store.zeekjoin` by uid, :mod:`derisk.store.answers` for DNS answers).

Companion logs are loaded whole: they hold one row per TLS handshake, HTTP request or DNS query,
far fewer than conn.log rows, and a join needs them at hand. Every text value from them is
attacker-controlled and is bounded with :func:`derisk.safetext.bound` as it is loaded.

Rules (documented for users in ``docs/ingest-zeek.md``):

* ``server_name``: the TLS SNI of the connection (ssl.log ``server_name``, source ``sni``); else the
  HTTP ``Host`` of its first request that has one (http.log ``host``, port removed, source
  ``http-host``); else a name from DNS (source ``dns-answer``): among dns.log A/AAAA answers listing
  the flow's responder address, with a query time at or before the flow's start, the most recent one
  asked by the flow's own originator, or when that client never asked, the most recent one asked by
  anyone (a resolver may have asked on its behalf). The name is the query, lower-cased, without a
  trailing dot. No age limit applies: clients cache answers beyond their TTL.
* ``dns_query``: on the DNS connection itself, the first query in dns.log with that uid.
* ``ja4``: ssl.log ``ja4`` when the JA4 package added it; ``user_agent``: the first request's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.ingest.logtext import bound_text, normalise_name
from derisk.store.answers import AnswerIndex
from derisk.store.zeekjoin import Database, UidJoin, connect

__all__ = ["Companions", "Enrichment", "bound_text", "normalise_name"]

_IPV4 = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"
_IPV6 = r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$"


@dataclass(frozen=True)
class Enrichment:
    """Columns a conn batch gains from its companions."""

    server_name: pa.Array
    server_name_source: pa.Array
    ja4: pa.Array
    user_agent: pa.Array
    dns_query: pa.Array


def _sequenced(table: pa.Table, start: int) -> pa.Table:
    return table.append_column("seq", pa.array(np.arange(start, start + table.num_rows, dtype=np.int64)))


class Companions:
    """Companion logs loaded whole, handed to DuckDB for the joins by uid and by DNS answer."""

    def __init__(
        self,
        ssl: pa.Table | None,
        http: pa.Table | None,
        dns: pa.Table | None,
        database: Database | None = None,
    ) -> None:
        """Tables with Zeek column names; ``dns`` has ``ts`` as timestamp[us] and ``answers`` as lists.

        ``database``: the input's private DuckDB database (from :func:`derisk.store.zeekjoin.connect`),
        which this then owns and closes; by default one is opened.
        """
        dns = self._prepare_dns(dns)
        parts = [t for t in (self._prepare_ssl(ssl), self._prepare_http(http)) if t is not None]
        if dns is not None:
            parts.append(pa.table({"uid": dns["uid"], "dns_query": dns["query"]}))
        sequenced, start = [], 0
        for part in parts:  # "first" is in logged order: ssl (then quic), http, dns
            sequenced.append(_sequenced(part, start))
            start += part.num_rows
        answers = self._prepare_answers(dns)
        # One DuckDB database for the input's reads and joins (opening one costs about 0.1 s).
        self._con: Database | None = database if database is not None else connect()
        self._by_uid = UidJoin(sequenced, self._con)
        self._answers = AnswerIndex(self._con)
        if answers is not None:
            self._answers.add(answers)

    @staticmethod
    def _prepare_ssl(ssl: pa.Table | None) -> pa.Table | None:
        if ssl is None or ssl.num_rows == 0:
            return None
        ssl = ssl.combine_chunks()
        name = normalise_name(bound_text(ssl["server_name"]))
        ja4 = bound_text(ssl["ja4"]) if "ja4" in ssl.column_names else pa.nulls(ssl.num_rows, pa.string())
        return pa.table({"uid": ssl["uid"], "sni": name, "ja4": ja4})

    @staticmethod
    def _prepare_http(http: pa.Table | None) -> pa.Table | None:
        if http is None or http.num_rows == 0:
            return None
        http = http.combine_chunks()
        host = bound_text(http["host"])
        if pc.any(pc.match_substring(host, ":")).as_py():
            host = pc.replace_substring_regex(host, r":[0-9]+$", "")
        host = normalise_name(host)
        agent = (
            bound_text(http["user_agent"])
            if "user_agent" in http.column_names
            else pa.nulls(http.num_rows, pa.string())
        )
        return pa.table({"uid": http["uid"], "host": host, "user_agent": agent})

    @staticmethod
    def _prepare_dns(dns: pa.Table | None) -> pa.Table | None:
        """dns.log with its queries bounded and normalised once, for both of its uses."""
        if dns is None or dns.num_rows == 0:
            return None
        dns = dns.combine_chunks()
        return dns.set_column(
            dns.column_names.index("query"), "query", normalise_name(bound_text(dns["query"]))
        )

    @staticmethod
    def _prepare_answers(dns: pa.Table | None) -> pa.Table | None:
        """One row per A/AAAA address answered: (client, address, time in µs, query), in log order."""
        if dns is None or dns.num_rows == 0 or "answers" not in dns.column_names:
            return None
        query = dns["query"].combine_chunks()
        answers = dns["answers"].combine_chunks()
        if "qtype_name" in dns.column_names:
            is_address = pc.is_in(dns["qtype_name"].combine_chunks(), value_set=pa.array(["A", "AAAA"]))
            answers = pc.if_else(pc.fill_null(is_address, True), answers, pa.scalar(None, answers.type))
        flat = pc.list_flatten(answers)
        parent = pc.list_parent_indices(answers)
        looks_ip = pc.or_(pc.match_substring_regex(flat, _IPV4), pc.match_substring_regex(flat, _IPV6))
        ts = pc.take(dns["ts"].combine_chunks(), parent)
        keep = pc.and_(
            pc.and_(pc.fill_null(looks_ip, False), pc.is_valid(pc.take(query, parent))), pc.is_valid(ts)
        )
        flat, parent, ts = flat.filter(keep), parent.filter(keep), ts.filter(keep)
        if len(flat) == 0:
            return None
        client = (
            pc.take(dns["id.orig_h"].combine_chunks(), parent)
            if "id.orig_h" in dns.column_names
            else pa.nulls(len(flat), pa.string())
        )
        return pa.table(
            {"client": client, "address": flat, "ts": ts.cast(pa.int64()), "name": pc.take(query, parent)}
        )

    def enrich(
        self,
        uid: pa.Array,
        orig_h: pa.Array,
        resp_h: pa.Array,
        ts: pa.Array,
        uid_hash: pa.Array | None = None,
    ) -> Enrichment:
        """The companion columns for a batch of conn.log rows (same order, same length).

        ``uid_hash``: DuckDB's hash of each uid, when the reader computed it (a faster join).
        """
        columns = self._by_uid.join(uid, uid_hash)
        name = columns["server_name"]
        if len(self._answers) and name.null_count:
            if name.null_count == len(name):  # no row named by its companions (the usual batch)
                answered = self._answers.names(orig_h, resp_h, ts.cast(pa.int64()))
                if answered.null_count < len(answered):
                    columns["server_name_source"] = pc.if_else(
                        pc.is_valid(answered), pa.scalar("dns-answer"), pa.scalar(None, pa.string())
                    )
                    columns["server_name"] = answered
                return Enrichment(**columns)
            if name.null_count * 2 >= len(name):  # most rows unnamed: look up all, keep where unnamed
                found = self._answers.names(orig_h, resp_h, ts.cast(pa.int64()))
                answered = pc.if_else(pc.is_null(name), found, pa.scalar(None, pa.string()))
            else:
                wanted = pc.is_null(name)
                rows = pc.indices_nonzero(wanted)
                found = self._answers.names(
                    orig_h.take(rows), resp_h.take(rows), ts.take(rows).cast(pa.int64())
                )
                rank = pc.subtract(pc.cumulative_sum(wanted.cast(pa.int64())), 1)
                answered = found.take(pc.if_else(wanted, rank, pa.scalar(None, pa.int64())))
            if answered.null_count < len(answered):
                columns["server_name_source"] = pc.if_else(
                    pc.is_valid(answered), pa.scalar("dns-answer"), columns["server_name_source"]
                )
                columns["server_name"] = pc.coalesce(name, answered)
        return Enrichment(**columns)

    @property
    def joins_by_uid(self) -> bool:
        """Whether any companion row has a uid (else the conn batches' uids need no hash)."""
        return self._by_uid.has_rows

    @property
    def database(self) -> Database | None:
        """The input's DuckDB database, for :func:`derisk.store.zeekread.read_conn` (opaque here)."""
        return self._con

    def close(self) -> None:
        self._by_uid.close()
        self._answers.close()
        if self._con is not None:
            self._con.close()
            self._con = None
