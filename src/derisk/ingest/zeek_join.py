"""Enrich conn.log batches from Zeek's companion logs (ssl, http, dns), vectorised.

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

from derisk.safetext import MAX_FIELD_CHARS, bound

_IPV4 = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"
_IPV6 = r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$"


def bound_text(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Bound every value's length (the long ones go through :func:`bound`); empty strings -> null."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.null_count == len(values):
        return values.cast(pa.string())
    values = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    long = pc.fill_null(pc.greater(pc.utf8_length(values), MAX_FIELD_CHARS), False)
    if not pc.any(long).as_py():
        return values
    out = values.to_pylist()
    for i in pc.indices_nonzero(long).to_pylist():
        out[i] = bound(out[i])
    return pa.array(out, type=pa.string())


def normalise_name(values: pa.Array) -> pa.Array:
    """Host names compare without case and without a trailing dot."""
    lowered = pc.utf8_lower(values)
    return pc.replace_substring_regex(lowered, r"\.$", "")


def first_per_uid(table: pa.Table, columns: list[str]) -> pa.Table:
    """One row per uid: per column, its first non-null value in file order."""
    if table.num_rows == 0:
        return pa.table({"uid": pa.array([], pa.string()), **{c: pa.array([], pa.string()) for c in columns}})
    grouped = table.group_by("uid", use_threads=False).aggregate([(c, "first") for c in columns])
    return grouped.select(["uid", *[f"{c}_first" for c in columns]]).rename_columns(["uid", *columns])


@dataclass(frozen=True)
class _AsOf:
    """Answers sorted by (key, time rank), for an as-of lookup with :func:`numpy.searchsorted`.

    A key is a non-negative integer (an address code, or a client and address code pair); the time
    rank of an instant is how many answers were given at or before it, so ``key * (n + 1) + rank``
    orders answers by key and then by time in a single int64.
    """

    times: np.ndarray  # every answer's query time (µs), sorted
    keys: np.ndarray  # key * (n + 1) + rank, sorted
    key_codes: np.ndarray  # the key of each sorted entry
    names: pa.Array  # the query of each sorted entry

    @classmethod
    def build(cls, key: np.ndarray, ts_us: np.ndarray, names: pa.Array) -> _AsOf:
        times = np.sort(ts_us)
        rank = np.searchsorted(times, ts_us, side="right").astype(np.int64)
        keys = key * (len(times) + 1) + rank
        order = np.argsort(keys, kind="stable")
        return cls(times, keys[order], key[order], names.take(pa.array(order)))

    def lookup(self, key: np.ndarray, ts_us: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """For each (key, time): whether an answer with that key came at or before it, and its name."""
        rank = np.searchsorted(self.times, ts_us, side="right").astype(np.int64)
        keys = key * (len(self.times) + 1) + rank
        idx = np.searchsorted(self.keys, keys, side="right") - 1
        safe = np.clip(idx, 0, len(self.keys) - 1)
        found = (key >= 0) & (idx >= 0) & (self.key_codes[safe] == key)
        return found, self.names.take(pa.array(safe))


def _codes(values: pa.Array, dictionary: pa.Array) -> np.ndarray:
    """Position of each value in ``dictionary`` as int64, -1 where absent or null."""
    codes: np.ndarray = (
        pc.fill_null(pc.index_in(values, value_set=dictionary), -1).to_numpy().astype(np.int64)
    )
    return codes


@dataclass(frozen=True)
class Enrichment:
    """Columns a conn batch gains from its companions."""

    server_name: pa.Array
    server_name_source: pa.Array
    ja4: pa.Array
    user_agent: pa.Array
    dns_query: pa.Array


_BY_UID_COLUMNS = ("server_name", "server_name_source", "ja4", "user_agent", "dns_query")


class Companions:
    """Companion logs loaded whole and indexed for vectorised joins by uid and by DNS answer."""

    def __init__(self, ssl: pa.Table | None, http: pa.Table | None, dns: pa.Table | None) -> None:
        """Tables with Zeek column names; ``dns`` has ``ts`` as timestamp[us] and ``answers`` as lists."""
        parts = [t for t in (self._prepare_ssl(ssl), self._prepare_http(http)) if t is not None]
        dns_uid = self._prepare_dns_uid(dns)
        if dns_uid is not None:
            parts.append(dns_uid)
        self._by_uid = self._merge(parts)
        self._uids = self._by_uid["uid"].combine_chunks() if self._by_uid is not None else None
        self._answers = self._prepare_answers(dns)

    @staticmethod
    def _prepare_ssl(ssl: pa.Table | None) -> pa.Table | None:
        if ssl is None or ssl.num_rows == 0:
            return None
        ssl = ssl.combine_chunks()
        name = normalise_name(bound_text(ssl["server_name"]))
        ja4 = bound_text(ssl["ja4"]) if "ja4" in ssl.column_names else pa.nulls(ssl.num_rows, pa.string())
        return first_per_uid(pa.table({"uid": ssl["uid"], "sni": name, "ja4": ja4}), ["sni", "ja4"])

    @staticmethod
    def _prepare_http(http: pa.Table | None) -> pa.Table | None:
        if http is None or http.num_rows == 0:
            return None
        http = http.combine_chunks()
        host = bound_text(http["host"])
        host = normalise_name(pc.replace_substring_regex(host, r":[0-9]+$", ""))
        agent = (
            bound_text(http["user_agent"])
            if "user_agent" in http.column_names
            else pa.nulls(http.num_rows, pa.string())
        )
        return first_per_uid(
            pa.table({"uid": http["uid"], "host": host, "user_agent": agent}), ["host", "user_agent"]
        )

    @staticmethod
    def _prepare_dns_uid(dns: pa.Table | None) -> pa.Table | None:
        if dns is None or dns.num_rows == 0:
            return None
        dns = dns.combine_chunks()
        query = normalise_name(bound_text(dns["query"]))
        return first_per_uid(pa.table({"uid": dns["uid"], "dns_query": query}), ["dns_query"])

    @staticmethod
    def _merge(parts: list[pa.Table]) -> pa.Table | None:
        """One row per uid with the final companion columns (SNI before Host)."""
        if not parts:
            return None
        merged = parts[0]
        for part in parts[1:]:
            merged = merged.join(
                part, keys="uid", join_type="full outer", coalesce_keys=True, use_threads=False
            )
        merged = merged.combine_chunks()
        n = merged.num_rows

        def column(name: str) -> pa.Array:
            if name in merged.column_names:
                return merged[name].combine_chunks()
            return pa.nulls(n, pa.string())

        sni, host = column("sni"), column("host")
        none = pa.scalar(None, pa.string())
        source = pc.if_else(
            pc.is_valid(sni), pa.scalar("sni"), pc.if_else(pc.is_valid(host), pa.scalar("http-host"), none)
        )
        return pa.table(
            {
                "uid": column("uid"),
                "server_name": pc.coalesce(sni, host),
                "server_name_source": source,
                "ja4": column("ja4"),
                "user_agent": column("user_agent"),
                "dns_query": column("dns_query"),
            }
        )

    @staticmethod
    def _prepare_answers(dns: pa.Table | None) -> _Answers | None:
        if dns is None or dns.num_rows == 0 or "answers" not in dns.column_names:
            return None
        dns = dns.combine_chunks()
        query = normalise_name(bound_text(dns["query"]))
        answers = dns["answers"].combine_chunks()
        if "qtype_name" in dns.column_names:
            is_address = pc.is_in(dns["qtype_name"].combine_chunks(), value_set=pa.array(["A", "AAAA"]))
            answers = pc.if_else(pc.fill_null(is_address, False), answers, pa.scalar(None, answers.type))
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
        ts_us = ts.cast(pa.int64()).to_numpy()
        names = pc.take(query, parent)
        addresses = pc.unique(flat)
        address_code = _codes(flat, addresses)
        by_addr = _AsOf.build(address_code, ts_us, names)
        clients = by_pair = None
        if "id.orig_h" in dns.column_names:
            client = pc.take(dns["id.orig_h"].combine_chunks(), parent)
            clients = pc.unique(client)
            pair = _codes(client, clients) * len(addresses) + address_code
            by_pair = _AsOf.build(pair, ts_us, names)
        return _Answers(addresses, clients, by_addr, by_pair)

    def enrich(self, uid: pa.Array, orig_h: pa.Array, resp_h: pa.Array, ts: pa.Array) -> Enrichment:
        """The companion columns for a batch of conn.log rows (same order, same length)."""
        n = len(uid)
        if self._by_uid is None:
            columns = {name: pa.nulls(n, pa.string()) for name in _BY_UID_COLUMNS}
        else:
            index = pc.index_in(uid, value_set=self._uids)
            columns = {name: self._by_uid[name].combine_chunks().take(index) for name in _BY_UID_COLUMNS}
        if self._answers is not None and columns["server_name"].null_count:
            name, source = columns["server_name"], columns["server_name_source"]
            answered = self._answers.lookup(orig_h, resp_h, ts)
            answered = pc.if_else(pc.is_null(name), answered, pa.scalar(None, pa.string()))
            columns["server_name_source"] = pc.if_else(pc.is_valid(answered), pa.scalar("dns-answer"), source)
            columns["server_name"] = pc.coalesce(name, answered)
        return Enrichment(**columns)


@dataclass(frozen=True)
class _Answers:
    """DNS A/AAAA answers indexed by address, and by (client, address)."""

    addresses: pa.Array
    clients: pa.Array | None
    by_addr: _AsOf
    by_pair: _AsOf | None

    def lookup(self, orig_h: pa.Array, resp_h: pa.Array, ts: pa.Array) -> pa.Array:
        """The name each flow's responder address was last given as an answer for (or null)."""
        ts_us = pc.fill_null(ts.cast(pa.int64()), np.iinfo(np.int64).min).to_numpy()
        address = _codes(resp_h, self.addresses)
        found, names = self.by_addr.lookup(address, ts_us)
        if self.by_pair is not None and self.clients is not None:
            client = _codes(orig_h, self.clients)
            pair = np.where((client >= 0) & (address >= 0), client * len(self.addresses) + address, -1)
            found_pair, names_pair = self.by_pair.lookup(pair, ts_us)
            names = pc.if_else(pa.array(found_pair), names_pair, names)
            found = found | found_pair
        return pc.if_else(pa.array(found), names, pa.scalar(None, pa.string()))
