"""IP address → AS number, AS organisation, AS registration country, geolocated country.

Two interchangeable sources:

* ``ip-location-db``: the CSV packages ``@ip-location-db/asn`` and ``…/asn-country`` (CC BY 4.0)
  and ``…/geolite2-country`` (measured geolocation: MaxMind GeoLite2, CC BY-SA 4.0 under the
  GeoLite2 EULA), converted at install time into Arrow files of sorted ranges.
  Lookups are vectorised range searches (``numpy.searchsorted``) over the distinct addresses of a
  batch; a capture has few distinct addresses, so the cost is independent of the number of flows.
* ``maxmind``: GeoLite2 ASN and Country ``.mmdb`` files a user supplies (``derisk data update
  --mmdb-asn F --mmdb-country F``); looked up with the ``maxminddb`` reader per distinct address.

Geolocated country (where a server stands) and AS registration country are kept apart, and both
apart from the controlling jurisdiction that attribution adds later.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from derisk import ipaddrs
from derisk.enrich.datadir import Manifest, current, data_dir, read_manifest
from derisk.errors import DataError

LOOKUP_SCHEMA: Final = pa.schema(
    [
        pa.field("ip", pa.string()),
        pa.field("asn", pa.int64()),
        pa.field("as_org", pa.string()),
        pa.field("as_country", pa.string()),
        pa.field("geo_country", pa.string()),
    ]
)

#: Arrow files written by the installer, per address family.
TABLES: Final = ("asn", "geo", "ascc")


def ip_key(text: str) -> tuple[int, bytes] | None:
    """(family, 16-byte big-endian key) of an address; IPv4 keys are 4 bytes left-padded."""
    return ipaddrs.key_of(text)


class IpData(Protocol):
    manifest: Manifest

    def lookup(self, ips: pa.Array) -> pa.Table: ...

    def sample_addresses(self, asn: int, geo_country: str | None, count: int) -> list[str]: ...


@dataclass
class _Ranges:
    """Sorted, non-overlapping ranges of one family with their values."""

    starts: np.ndarray[Any, Any]
    ends: np.ndarray[Any, Any]
    values: pa.Table

    def find(self, keys: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Row index of the range holding each key, or -1."""
        if len(self.starts) == 0 or len(keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        idx = np.searchsorted(self.starts, keys, side="right") - 1
        safe = np.clip(idx, 0, len(self.starts) - 1)
        hit = (idx >= 0) & (keys <= self.ends[safe])
        return np.where(hit, safe, -1).astype(np.int64)


def _keys(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """A column of 16-byte range keys as a NumPy view. A file's column of one chunk is viewed where
    it lies, in the memory-mapped file (only the pages a search touches are read); ``combine_chunks``
    copies even a single chunk (about 40 MB for the full data sets: 0.01-0.4 CPU s a run, with the
    page faults of reading every page)."""
    array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    data = array.buffers()[1]
    if data is None:  # no rows
        return np.zeros(0, dtype="S16")
    return np.frombuffer(data, dtype="S16")[array.offset : array.offset + len(array)]


def _ranges_from_table(table: pa.Table) -> _Ranges:
    starts, ends = _keys(table.column("start")), _keys(table.column("end"))
    return _Ranges(starts=starts, ends=ends, values=table.drop_columns(["start", "end"]))


def _take(values: pa.Table, column: str, rows: np.ndarray[Any, Any], typ: pa.DataType) -> pa.Array:
    if column not in values.column_names:
        return pa.nulls(len(rows), typ)
    mask = rows < 0
    taken = pc.take(values.column(column), pa.array(np.where(mask, 0, rows)))
    return (
        pc.if_else(pa.array(mask), pa.scalar(None, typ), taken) if len(values) else pa.nulls(len(rows), typ)
    )


class RangeIpData:
    """The ip-location-db source: sorted ranges in Arrow files, vectorised search."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.manifest = manifest
        self._ranges: dict[str, _Ranges] = {}
        for name in TABLES:
            path = folder / f"{name}.arrow"
            if not path.exists():
                raise DataError("IP data incomplete; run `derisk data update` again", source=str(path))
            try:
                with pa.memory_map(str(path)) as source:
                    table = ipc.open_file(source).read_all()
            except (OSError, pa.ArrowInvalid) as exc:
                raise DataError(f"unreadable IP data ({exc})", source=str(path)) from None
            self._ranges[name] = _ranges_from_table(table)

    def lookup(self, ips: pa.Array) -> pa.Table:
        uniques = pc.drop_null(pc.unique(ips))
        texts = uniques.combine_chunks() if isinstance(uniques, pa.ChunkedArray) else uniques
        parsed = ipaddrs.parse(texts)
        keys, valid = parsed.keys, parsed.family != 0
        asn_rows = np.where(valid, self._ranges["asn"].find(keys), -1)
        geo_rows = np.where(valid, self._ranges["geo"].find(keys), -1)
        cc_rows = np.where(valid, self._ranges["ascc"].find(keys), -1)
        asn, geo, ascc = self._ranges["asn"].values, self._ranges["geo"].values, self._ranges["ascc"].values
        return pa.Table.from_arrays(
            [
                texts.cast(pa.string()),
                _take(asn, "asn", asn_rows, pa.int64()),
                _take(asn, "org", asn_rows, pa.string()),
                _take(ascc, "country", cc_rows, pa.string()),
                _take(geo, "country", geo_rows, pa.string()),
            ],
            schema=LOOKUP_SCHEMA,
        )

    def sample_addresses(self, asn: int, geo_country: str | None, count: int) -> list[str]:
        """Deterministic real addresses announced by ``asn``, geolocated to ``geo_country`` if given."""
        ranges = self._ranges["asn"]
        rows = np.flatnonzero(pc.equal(ranges.values.column("asn"), asn).to_numpy(zero_copy_only=False))
        found: list[str] = []
        for row in rows:
            start = int.from_bytes(ranges.starts[row].ljust(16, b"\0"), "big")
            end = int.from_bytes(ranges.ends[row].ljust(16, b"\0"), "big")
            candidates = [_key_text(start + off) for off in range(10, min(end - start, 4000), 37)]
            if geo_country is not None and candidates:
                geo = self.lookup(pa.array(candidates)).to_pylist()
                located = {r["ip"]: r["geo_country"] for r in geo}
                candidates = [c for c in candidates if located.get(c) == geo_country]
            for text in candidates:
                found.append(text)
                if len(found) >= count:
                    return found
        if len(found) < count:
            where = f" geolocated to {geo_country}" if geo_country else ""
            raise DataError(f"the IP data has too few addresses of AS{asn}{where} for the demo")
        return found


def _key_text(value: int) -> str:
    if value < 2**32:
        return str(ipaddress.IPv4Address(value))
    return str(ipaddress.IPv6Address(value))


class MaxMindIpData:
    """GeoLite2-ASN and GeoLite2-Country (or compatible) databases supplied by the user."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        import maxminddb

        self.manifest = manifest
        try:
            self._asn = maxminddb.open_database(str(folder / "asn.mmdb"))
            country = folder / "country.mmdb"
            self._country = maxminddb.open_database(str(country)) if country.exists() else None
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise DataError(f"unreadable MaxMind database ({exc})", source=str(folder)) from None

    def lookup(self, ips: pa.Array) -> pa.Table:
        texts = [t for t in pc.unique(ips).to_pylist() if t is not None]
        cols: dict[str, list[Any]] = {n: [] for n in LOOKUP_SCHEMA.names}
        for text in texts:
            cols["ip"].append(text)
            key = ip_key(text)
            rec = self._get(self._asn, text) if key else None
            cols["asn"].append(rec.get("autonomous_system_number") if rec else None)
            cols["as_org"].append(rec.get("autonomous_system_organization") if rec else None)
            crec = (self._get(self._country, text) if key and self._country is not None else None) or {}
            # ``country`` is where the address is measured to be; ``registered_country`` is where its
            # block is registered: kept apart, as with ip-location-db (never one for the other).
            cols["as_country"].append(_iso(crec.get("registered_country")))
            cols["geo_country"].append(_iso(crec.get("country")))
        return pa.Table.from_pydict(cols, schema=LOOKUP_SCHEMA)

    @staticmethod
    def _get(reader: Any, text: str) -> dict[str, Any] | None:
        try:
            rec = reader.get(text.split("%", 1)[0])
        except ValueError:
            return None
        return rec if isinstance(rec, dict) else None

    def sample_addresses(self, asn: int, geo_country: str | None, count: int) -> list[str]:
        raise DataError("the demo needs the ip-location-db data (run `derisk data update` without --mmdb)")


def _iso(record: Any) -> str | None:
    code = record.get("iso_code") if isinstance(record, dict) else None
    return code if isinstance(code, str) else None


def load_ipdata(root: Path | None = None) -> IpData:
    """Open the installed IP data, or say how to install it."""
    base = data_dir(root)
    folder = current(base)
    manifest = read_manifest(base, folder)
    if manifest.ipdata_kind == "maxmind":
        return MaxMindIpData(folder, manifest)
    return RangeIpData(folder, manifest)
