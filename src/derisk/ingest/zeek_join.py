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

from derisk.ingest.logtext import bound_text, normalise_name

__all__ = ["Companions", "Enrichment", "bound_text", "normalise_name"]

_IPV4 = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"
_IPV6 = r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$"


def first_per_key(keys: np.ndarray, count: int, values: pa.Array) -> pa.Array:
    """For each key ``0 .. count - 1``, the first non-null value among rows with that key (or null).

    ``keys`` gives each row's key, -1 for rows that belong to none.
    """
    rows = np.flatnonzero((keys >= 0) & np.asarray(pc.is_valid(values).to_numpy(zero_copy_only=False)))
    missing = len(keys)
    first = np.full(count, missing, dtype=np.int64)
    np.minimum.at(first, keys[rows], rows)
    return values.take(pa.array(first, mask=first == missing))


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
    order: np.ndarray  # the answer (row of the flattened answers) of each sorted entry

    @classmethod
    def build(cls, key: np.ndarray, ts_us: np.ndarray) -> _AsOf:
        times = np.sort(ts_us)
        rank = np.searchsorted(times, ts_us, side="right").astype(np.int64)
        keys = key * (len(times) + 1) + rank
        order = np.argsort(keys, kind="stable")
        return cls(times, keys[order], key[order], order)

    def lookup(self, key: np.ndarray, ts_us: np.ndarray) -> np.ndarray:
        """For each (key, time): the latest answer with that key at or before the time, or -1."""
        rank = np.searchsorted(self.times, ts_us, side="right").astype(np.int64)
        idx = np.searchsorted(self.keys, key * (len(self.times) + 1) + rank, side="right") - 1
        safe = np.clip(idx, 0, len(self.keys) - 1)
        found = (key >= 0) & (idx >= 0) & (self.key_codes[safe] == key)
        result: np.ndarray = np.where(found, self.order[safe], -1)
        return result


def _single_names(address: np.ndarray, names: pa.Array, ts_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per address code: an answer index when all its answers carry one name (else -1); first time."""
    count = int(address.max()) + 1
    name = _codes(names, pc.unique(names))
    low = np.full(count, np.iinfo(np.int64).max)
    high = np.full(count, -1)
    first = np.full(count, np.iinfo(np.int64).max)
    np.minimum.at(low, address, name)
    np.maximum.at(high, address, name)
    np.minimum.at(first, address, ts_us)
    some = np.full(count, -1)
    some[address] = np.arange(len(address))
    single: np.ndarray = np.where(low == high, some, -1)
    return single, first


_HASH_PRIME = np.uint64(1_099_511_628_211)  # FNV-1a's 64-bit prime
_HASH_BYTES = 64


def hash_strings(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string (of its first 64 bytes and its length), vectorised with NumPy.

    Nulls hash like empty strings; callers compare the strings themselves after a hash match.
    """
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    values = values.cast(pa.string())
    offset_type = np.int32
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[values.offset : values.offset + n + 1].astype(
        np.int64
    )
    lengths = offsets[1:] - offsets[:-1]
    if data_buffer is None or data_buffer.size == 0:
        return lengths.astype(np.uint64)
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    width = int(min(_HASH_BYTES, lengths.max()))
    hashed = lengths.astype(np.uint64)
    if int(lengths.min()) == width == int(lengths.max()):  # Zeek's uids: all of one length
        start = int(offsets[0])
        matrix = data[start : start + n * width].reshape(n, width)
        for column in range(width):
            hashed = (hashed ^ matrix[:, column]) * _HASH_PRIME
        return hashed
    for column in range(width):
        inside = column < lengths
        byte = data[np.minimum(offsets[:-1] + column, data.size - 1)].astype(np.uint64)
        hashed = np.where(inside, (hashed ^ byte) * _HASH_PRIME, hashed)
    return hashed


#: Below this many uids, Arrow's ``index_in`` (which hashes the set at every call) is the cheaper join.
_SMALL_SET = 1 << 16


class UidIndex:
    """Positions of Zeek uids in a fixed set, found by hash and binary search.

    ``pc.index_in`` would rebuild a hash table of the whole set for every conn.log batch; with an
    ssl.log as long as conn.log that would cost as much as reading it. This hashes the set once.
    A hash match is confirmed by comparing the strings, so collisions never give a wrong join.
    """

    def __init__(self, uids: pa.Array) -> None:
        self._uids = uids
        hashed = hash_strings(uids)
        self._order = np.argsort(hashed, kind="stable")
        self._sorted = hashed[self._order]

    def positions(self, probe: pa.Array) -> pa.Array:
        """For each probed uid, its position in the set (int64), or null when absent or null."""
        if len(self._sorted) == 0:
            return pa.nulls(len(probe), pa.int64())
        if len(self._sorted) <= _SMALL_SET:  # a hash table of a small set is cheaper to rebuild
            return pc.index_in(probe, value_set=self._uids).cast(pa.int64())
        hashed = hash_strings(probe)
        at = np.clip(np.searchsorted(self._sorted, hashed), 0, len(self._sorted) - 1)
        candidate = np.where(self._sorted[at] == hashed, self._order[at], -1)
        index = pa.array(candidate, mask=candidate < 0)
        same = pc.fill_null(pc.equal(self._uids.take(index), probe), False)
        return pc.if_else(same, index, pa.scalar(None, pa.int64()))


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
        dns = self._prepare_dns(dns)
        parts = [t for t in (self._prepare_ssl(ssl), self._prepare_http(http)) if t is not None]
        if dns is not None:
            parts.append(pa.table({"uid": dns["uid"], "dns_query": dns["query"]}))
        merged = self._merge(parts)
        self._by_uid = (
            {name: merged[name].combine_chunks() for name in merged.column_names}
            if merged is not None
            else None
        )
        self._uid_index = UidIndex(self._by_uid["uid"]) if self._by_uid is not None else None
        self._answers = self._prepare_answers(dns)

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
    def _merge(parts: list[pa.Table]) -> pa.Table | None:
        """One row per uid with the final companion columns (SNI before Host)."""
        if not parts:
            return None
        rows = pa.concat_tables(parts, promote_options="default").combine_chunks()
        encoded = pc.dictionary_encode(rows["uid"].combine_chunks())
        uids = encoded.dictionary
        keys = pc.fill_null(encoded.indices, -1).to_numpy().astype(np.int64)
        merged = pa.table({"uid": uids})
        for name in rows.column_names[1:]:
            merged = merged.append_column(name, first_per_key(keys, len(uids), rows[name].combine_chunks()))
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
        ts_us = ts.cast(pa.int64()).to_numpy()
        names = pc.take(query, parent)
        addresses = pc.unique(flat)
        address_code = _codes(flat, addresses)
        by_addr = _AsOf.build(address_code, ts_us)
        clients = by_pair = None
        if "id.orig_h" in dns.column_names:
            client = pc.take(dns["id.orig_h"].combine_chunks(), parent)
            clients = pc.unique(client)
            pair = _codes(client, clients) * len(addresses) + address_code
            by_pair = _AsOf.build(pair, ts_us)
        return _Answers(
            names, addresses, clients, by_addr, by_pair, *_single_names(address_code, names, ts_us)
        )

    def enrich(self, uid: pa.Array, orig_h: pa.Array, resp_h: pa.Array, ts: pa.Array) -> Enrichment:
        """The companion columns for a batch of conn.log rows (same order, same length)."""
        n = len(uid)
        if self._by_uid is None or self._uid_index is None:
            columns = {name: pa.nulls(n, pa.string()) for name in _BY_UID_COLUMNS}
        else:
            index = self._uid_index.positions(uid)
            if index.null_count == n:
                columns = {name: pa.nulls(n, pa.string()) for name in _BY_UID_COLUMNS}
            else:
                columns = {name: self._by_uid[name].take(index) for name in _BY_UID_COLUMNS}
        if self._answers is not None and columns["server_name"].null_count:
            name, source = columns["server_name"], columns["server_name_source"]
            answered = self._answers.lookup(orig_h, resp_h, ts, pc.is_null(name))
            if answered is not None:
                columns["server_name_source"] = pc.if_else(
                    pc.is_valid(answered), pa.scalar("dns-answer"), source
                )
                columns["server_name"] = pc.coalesce(name, answered)
        return Enrichment(**columns)


@dataclass(frozen=True)
class _Answers:
    """DNS A/AAAA answers (one row per answered address) indexed by address and by (client, address)."""

    names: pa.Array  # the query of each answer
    addresses: pa.Array
    clients: pa.Array | None
    by_addr: _AsOf
    by_pair: _AsOf | None
    #: Per address: the answer to use when every answer for it named the same thing (else -1), and
    #: the time of its first answer. For those addresses the rule reduces to "answered before".
    single: np.ndarray
    first_time: np.ndarray

    def lookup(self, orig_h: pa.Array, resp_h: pa.Array, ts: pa.Array, wanted: pa.Array) -> pa.Array | None:
        """The name each ``wanted`` flow's responder address was last an answer for (null if none).

        None when no wanted flow went to an answered address.
        """
        address = _codes(resp_h, self.addresses)
        candidate = np.asarray(pc.fill_null(wanted, False).to_numpy(zero_copy_only=False)) & (address >= 0)
        rows = np.flatnonzero(candidate)
        if len(rows) == 0:
            return None
        ts_us = pc.fill_null(ts.cast(pa.int64()), np.iinfo(np.int64).min).to_numpy()[rows]
        codes = address[rows]
        answer = np.full(len(resp_h), -1, dtype=np.int64)
        answer[rows] = np.where(ts_us >= self.first_time[codes], self.single[codes], -1)
        mixed = self.single[codes] < 0
        if mixed.any():
            rows, codes, ts_us = rows[mixed], codes[mixed], ts_us[mixed]
            found = self.by_addr.lookup(codes, ts_us)
            if self.by_pair is not None and self.clients is not None:
                client = _codes(orig_h.take(pa.array(rows)), self.clients)
                pair = np.where(client >= 0, client * len(self.addresses) + codes, -1)
                own = self.by_pair.lookup(pair, ts_us)
                found = np.where(own >= 0, own, found)
            answer[rows] = found
        return self.names.take(pa.array(answer, mask=answer < 0))
