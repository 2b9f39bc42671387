"""Join the two one-way halves of a connection that NFStream metered apart because of their VLAN tags.

NFStream keys a flow by its VLAN id too. Where a SPAN port or a tap tags one direction of a
connection and not the other (or tags the two with different VLANs), each connection comes out
of the meter as two one-way flows: the request half, and the reply half oriented from the server.
Counted as two flows, the connection's bytes are split, the reply half reads as traffic the server
opened, and detections run on halves.

:class:`HalfJoiner` sits after the meter. A flow is a *half* when it carries packets in one
direction only (``packets_in`` 0) and has ports. Two halves are joined when

- each is the other's reverse 5-tuple (addresses and ports swapped, same protocol),
- their VLAN ids differ (one may have none: NFStream's 0),
- they overlap in time, or one starts within the idle timeout of the other's end,
- and each is the other's *only* such candidate.

The joined flow is opened by the half whose first packet came first (on a tie, the half sent from
the higher port, a client's ephemeral port); the reply half's bytes and packets become ``bytes_in``
and ``packets_in``; first and last seen span both; names, application and fingerprints come from
the opener where it has them, else from the reply half. Everything else passes untouched.

Flows arrive in batches, and the two halves of a connection may come in different ones. Halves are
held, by capture time rather than by count: the *watermark* is the latest ``last_seen`` the meter
has handed out. NFStream hands out a flow one idle timeout after its last packet, so a half is
decided once the watermark is two idle timeouts past its last packet (and past its candidate's);
a half still waiting on an undecided candidate four idle timeouts later goes out alone. Memory is
bounded by time and by count: beyond :data:`HELD_CAP` halves (a flood of one-way flows), the oldest
are decided at once. The join itself is an Arrow hash join of the held halves against themselves,
reversed.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.flows import INGEST_SCHEMA

__all__ = ["HalfJoiner"]

_KEY: Final = ["src_ip", "src_port", "dst_ip", "dst_port", "protocol"]
#: The key columns of a half read as its reverse: its dst becomes the src to match.
_REVERSED: Final = {"dst_ip": "src_ip", "dst_port": "src_port", "src_ip": "dst_ip", "src_port": "dst_port"}
#: Text columns taken from the opener when it has a value, else from the reply half.
_EITHER: Final = ("ja4", "user_agent", "dns_query", "source_ref", "conn_state")
_UNKNOWN_APP: Final = "Unknown"  # nDPI's label for a flow it could not classify
#: At most this many halves are held (about 40 MB); beyond it the oldest are decided at once.
HELD_CAP: Final = 262_144


def _ints(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


class HalfJoiner:
    """Joins one-way halves split by VLAN tags across the batches handed to :meth:`push`.

    ``joined`` counts the halves joined (two per connection).
    """

    def __init__(self, idle_timeout_s: int, *, cap: int = HELD_CAP) -> None:
        self._idle = idle_timeout_s * 1_000_000
        self._cap = cap
        self._held: list[pa.Table] = []
        self._next_id = 0
        self._watermark: int | None = None
        self.joined = 0

    @property
    def held(self) -> int:
        """Halves held now, waiting for their other half."""
        return sum(table.num_rows for table in self._held)

    def push(self, batch: pa.RecordBatch, vlans: pa.Array | list[int]) -> pa.Table:
        """Take a batch of :data:`INGEST_SCHEMA` flows and the VLAN id of each (0 for none); return
        the flows that can go on now: the batch's flows that are not halves, joined pairs, halves
        released alone."""
        table = pa.Table.from_batches([batch], schema=INGEST_SCHEMA)
        vlan = pa.array(vlans, type=pa.int32()) if isinstance(vlans, list) else vlans.cast(pa.int32())
        half = pc.fill_null(
            pc.and_(
                pc.and_(pc.equal(table["packets_in"], 0), pc.greater(table["packets_out"], 0)),
                pc.and_(
                    pc.and_(pc.is_valid(table["src_port"]), pc.is_valid(table["dst_port"])),
                    pc.and_(pc.is_valid(table["first_seen"]), pc.is_valid(table["last_seen"])),
                ),
            ),
            False,
        )
        out = [table.filter(pc.invert(half))]
        halves = table.filter(half)
        if halves.num_rows:
            ids = pa.array(np.arange(self._next_id, self._next_id + halves.num_rows, dtype=np.int64))
            self._next_id += halves.num_rows
            halves = halves.append_column("_id", ids).append_column("_vlan", vlan.filter(half))
            self._held.append(halves)
        latest = pc.max(pc.cast(table["last_seen"], pa.int64())).as_py()
        if latest is not None:
            self._watermark = latest if self._watermark is None else max(self._watermark, latest)
        out.append(self._settle(final=False))
        return pa.concat_tables(out).combine_chunks()

    def finish(self) -> pa.Table:
        """Decide every half still held (the meter has no more flows)."""
        return self._settle(final=True)

    def _settle(self, *, final: bool) -> pa.Table:
        empty = INGEST_SCHEMA.empty_table()
        if not self._held:
            return empty
        held = pa.concat_tables(self._held).combine_chunks()
        last = _ints(held["last_seen"])
        if final:
            ready = np.ones(held.num_rows, dtype=bool)
            forced = ready
        else:
            mark = self._watermark if self._watermark is not None else int(last.max())
            ready = last < mark - 2 * self._idle
            forced = last < mark - 4 * self._idle
            if held.num_rows > self._cap:  # a flood of one-way flows: the oldest go on, joined or not
                cut = np.partition(last, held.num_rows - self._cap)[held.num_rows - self._cap]
                ready, forced = ready | (last < cut), forced | (last < cut)
        if not ready.any():
            return empty
        count, partner = self._candidates(held)
        rows = np.arange(held.num_rows)
        single = count == 1
        partner_ready = np.where(single, ready[partner], False)
        partner_single = np.where(single, count[partner] == 1, False)
        paired = single & partner_single & ready & partner_ready
        alone = ready & ~paired & ((count != 1) | ~partner_single | forced)
        first = rows[paired & (rows < partner)]
        merged = self._merge(held, first, partner[first]) if len(first) else empty
        self.joined += 2 * len(first)
        released = held.filter(pa.array(alone)).select(INGEST_SCHEMA.names)
        self._held = [held.filter(pa.array(~(paired | alone)))]
        return pa.concat_tables([merged, released])

    def _candidates(self, held: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        """For each held half (by row): how many candidates it has, and its candidate's row when one."""
        span = pc.min_max(held["_vlan"])
        if span["min"].as_py() == span["max"].as_py():  # one VLAN (or none): no half has a partner
            none = np.zeros(held.num_rows, dtype=np.int64)
            return none, none.copy()
        left = held.select([*_KEY, "_id", "_vlan", "first_seen", "last_seen"])
        right = held.select([*_KEY, "_id", "_vlan", "first_seen", "last_seen"]).rename_columns(
            [_REVERSED.get(name, name) for name in _KEY] + ["b_id", "b_vlan", "b_first", "b_last"]
        )
        edges = left.join(right, keys=_KEY, join_type="inner")
        if edges.num_rows:
            a_first, a_last = _ints(edges["first_seen"]), _ints(edges["last_seen"])
            b_first, b_last = _ints(edges["b_first"]), _ints(edges["b_last"])
            near = (b_first <= a_last + self._idle) & (a_first <= b_last + self._idle)
            apart = _ints(edges["_vlan"]) != _ints(edges["b_vlan"])
            keep = near & apart
            a_ids, b_ids = _ints(edges["_id"])[keep], _ints(edges["b_id"])[keep]
        else:
            a_ids = b_ids = np.zeros(0, dtype=np.int64)
        ids = _ints(held["_id"])  # increasing: halves are appended in the order they came
        a_rows, b_rows = np.searchsorted(ids, a_ids), np.searchsorted(ids, b_ids)
        count = np.zeros(held.num_rows, dtype=np.int64)
        np.add.at(count, a_rows, 1)
        partner = np.zeros(held.num_rows, dtype=np.int64)
        partner[a_rows] = b_rows  # meaningful only where count is 1
        return count, partner

    def _merge(self, held: pa.Table, one: np.ndarray, other: np.ndarray) -> pa.Table:
        """One flow per pair of rows: opened by the half whose first packet came first."""
        first, src_port, dst_port = (
            _ints(held["first_seen"]),
            _ints(held["src_port"]),
            _ints(held["dst_port"]),
        )
        one_opens = (first[one] < first[other]) | (
            (first[one] == first[other]) & (src_port[one] >= dst_port[one])
        )
        opener = held.take(pa.array(np.where(one_opens, one, other)))
        reply = held.take(pa.array(np.where(one_opens, other, one)))
        named = pc.is_valid(opener["server_name"])
        app_known = pc.fill_null(pc.not_equal(opener["application"], _UNKNOWN_APP), False)
        columns: dict[str, pa.Array | pa.ChunkedArray] = {name: opener[name] for name in INGEST_SCHEMA.names}
        # the opener's first packet came first; the reply half may end last
        later = pc.greater(reply["last_seen"], opener["last_seen"])
        columns["last_seen"] = pc.if_else(later, reply["last_seen"], opener["last_seen"])
        columns["bytes_in"] = reply["bytes_out"]
        columns["packets_in"] = reply["packets_out"]
        columns["server_name"] = pc.if_else(named, opener["server_name"], reply["server_name"])
        columns["server_name_source"] = pc.if_else(
            named, opener["server_name_source"], reply["server_name_source"]
        )
        columns["application"] = pc.if_else(
            pc.or_(app_known, pc.is_null(reply["application"])), opener["application"], reply["application"]
        )
        for name in _EITHER:
            columns[name] = pc.coalesce(opener[name], reply[name])
        return pa.table([columns[name] for name in INGEST_SCHEMA.names], schema=INGEST_SCHEMA)
