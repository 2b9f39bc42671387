"""Network enrichment of oriented flows: AS, AS country, geolocation and registrable domain of ``dst``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.enrich.domains import registrable_domains
from derisk.enrich.ipdata import IpData
from derisk.flows import contiguous
from derisk.site import Oriented

#: Distinct addresses (and server names) an :class:`Enricher` remembers before it starts afresh:
#: bounds its memory whatever the input's size.
MEMO_LIMIT: Final = 100_000

_NAMES_DST: Final = pa.array(["outbound", "external"])
#: What an address's row of the IP data gives a flow (as ``dst_`` + the name).
_ADDRESS_COLUMNS: Final = ("asn", "as_org", "as_country", "geo_country")


class _Memo:
    """Values computed per distinct key, kept across batches: a key seen before is not computed again.

    ``compute`` maps an array of distinct, non-null keys to a table with one row per key, in order
    (elementwise: a key's row does not depend on the other keys), so remembered rows are the rows
    it would compute again. The keys asked for are looked up among the remembered ones with one
    hash pass in Arrow (``index_in``), not one Python call per key.
    """

    def __init__(self, compute: Callable[[pa.Array], pa.Table], limit: int) -> None:
        self._compute = compute
        self._limit = limit
        self._keys: pa.Array | None = None
        self._values: pa.Table | None = None

    def per_row(self, values: pa.Array) -> pa.Table:
        """One row per value of ``values`` (any, repeated, null: a row of nulls), in order.

        The values are looked up among the remembered keys directly (one hash pass over the
        column, no dictionary of it first); only those not remembered are made distinct and computed.
        """
        if self._keys is not None and self._values is not None:
            found = pc.index_in(values, value_set=self._keys)
            if found.null_count == values.null_count:  # every value remembered (the usual batch)
                return self._values.take(found)
        encoded = values.dictionary_encode()
        return self.rows(encoded.dictionary).take(encoded.indices)

    def rows(self, keys: pa.Array) -> pa.Table:
        """One row per key of ``keys`` (distinct, non-null), in order."""
        if self._keys is None or self._values is None:
            found = pa.nulls(len(keys), pa.int32())
        else:
            found = pc.index_in(keys, value_set=self._keys)
        missing = np.flatnonzero(np.asarray(pc.is_null(found).to_numpy(zero_copy_only=False), dtype=bool))
        if len(missing) == 0:
            assert self._values is not None or len(keys) == 0
            return self._compute(keys) if self._values is None else self._values.take(found)
        remembered = 0 if self._keys is None else len(self._keys)
        if remembered + len(missing) > self._limit or self._keys is None or self._values is None:
            # Start afresh (bounded memory): remember only this batch's keys.
            self._keys, self._values = keys, self._compute(keys).combine_chunks()
            return self._values
        fresh = keys.take(pa.array(missing, pa.int64()))
        self._keys = pa.concat_arrays([self._keys, fresh])
        self._values = pa.concat_tables([self._values, self._compute(fresh)]).combine_chunks()
        rows = np.asarray(pc.fill_null(found, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        rows[missing] = np.arange(remembered, remembered + len(missing), dtype=np.int64)
        return self._values.take(pa.array(rows))


class Enricher:
    """:func:`enrich_batch` for the batches of one input, remembering the addresses and server names
    of earlier batches (an input's batches share most of them), up to :data:`MEMO_LIMIT` of each."""

    def __init__(self, ipdata: IpData, limit: int = MEMO_LIMIT) -> None:
        self._addresses = _Memo(partial(_address_table, ipdata), limit)
        self._domains = _Memo(_domain_table, limit)

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Add the ``dst_*`` network columns; one lookup per address not seen in an earlier batch."""
        found = self._addresses.per_row(contiguous(batch.column("dst_ip")))
        # A server name describes the responder; after orientation that is dst unless an outside
        # party opened the flow to one of our servers.
        return self._with(batch, found, pc.is_in(batch.column("direction"), value_set=_NAMES_DST))

    def coded(self, oriented: Oriented) -> pa.RecordBatch:
        """:meth:`__call__` on a batch :meth:`derisk.site.Site.orient_coded` oriented, with what
        orientation found: the addresses are looked up by its codes (the batch's distinct ``dst``
        addresses, not every row's) and the rows whose server name names ``dst`` are its."""
        codes, addresses = oriented.dst_codes, oriented.addresses
        present = np.zeros(len(addresses) + 1, dtype=bool)
        present[codes] = True
        wanted = np.flatnonzero(present[:-1])  # the distinct dst addresses, in dictionary order
        rank = np.cumsum(present) - 1  # an address's row among them
        keys = addresses.take(pa.array(wanted, pa.int64())) if len(wanted) < len(addresses) else addresses
        missing = codes >= len(addresses)
        rows = pa.array(rank[codes], pa.int64(), mask=missing if missing.any() else None)
        found = self._addresses.rows(keys).take(rows)
        return self._with(oriented.batch, found, pa.array(oriented.names_dst, pa.bool_()))

    def _with(self, batch: pa.RecordBatch, found: pa.Table, names_dst: pa.Array) -> pa.RecordBatch:
        columns = {name: batch.column(name) for name in batch.schema.names}
        columns["dst_asn"] = found.column("asn")
        columns["dst_as_org"] = found.column("as_org")
        columns["dst_as_country"] = found.column("as_country")
        columns["dst_geo_country"] = found.column("geo_country")
        names = pc.if_else(names_dst, batch.column("server_name"), pa.scalar(None, pa.string()))
        columns["dst_domain"] = self._domains.per_row(contiguous(names)).column("domain")
        return pa.RecordBatch.from_pydict({k: contiguous(v) for k, v in columns.items()})


def _address_table(ipdata: IpData, addresses: pa.Array) -> pa.Table:
    """``ipdata``'s row for each address, in the order of ``addresses`` (without the address)."""
    found = ipdata.lookup(addresses)
    columns = found.select(_ADDRESS_COLUMNS)
    return columns.take(pc.index_in(addresses, value_set=found.column("ip")))


def _domain_table(names: pa.Array) -> pa.Table:
    return pa.table({"domain": registrable_domains(names)})


def enrich_batch(batch: pa.RecordBatch, ipdata: IpData) -> pa.RecordBatch:
    """Add the ``dst_*`` network columns; one lookup per distinct address in the batch."""
    return Enricher(ipdata)(batch)


def with_ordinals(batch: pa.RecordBatch, first_ordinal: int) -> pa.RecordBatch:
    """Number the flows of an input (the store makes ``flow_id`` from it: deterministic per input)."""
    ordinals = pa.array(np.arange(first_ordinal, first_ordinal + batch.num_rows, dtype=np.int64))
    return batch.append_column(pa.field("ordinal", pa.int64(), nullable=False), ordinals)
