"""Read bilateral trade data in the CEPII BACI CSV layout, check it, and aggregate it for the EU.

BACI (https://www.cepii.fr/CEPII/en/bdd_modele/bdd_modele_item.asp?id=37) ships one CSV per year with
the columns ``t,i,j,k,v,q``: year, exporter, importer (BACI numeric country codes), HS6 product,
value in thousand US dollars, quantity in metric tons (often missing: it is not used here). Beside
it come ``country_codes_V*.csv`` (``country_code,country_name,country_iso2,country_iso3``) and
``product_codes_HS*_V*.csv`` (``code,description``). Unzip the release; this module reads the CSVs.

The file is streamed in blocks and checked with vectorised Arrow compute, so memory stays bounded
by the aggregates (products × supplier countries), not by the file. Every problem is collected and
reported at once, with the first line numbers of each kind.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from derisk.errors import InputError
from derisk.reduce.jurisdictions import EuMembers

TRADE_COLUMNS: Final = ("t", "i", "j", "k", "v")
_COUNTRY_ALIASES: Final = {
    "code": ("country_code",),
    "name": ("country_name", "country_name_full", "country_name_abbreviation"),
    "iso2": ("country_iso2", "iso_2digit_alpha"),
    "iso3": ("country_iso3", "iso_3digit_alpha"),
}
_SHOWN_LINES: Final = 5
_BLOCK: Final = 1 << 22
_NUMBER: Final = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


@dataclass(frozen=True)
class Country:
    code: int
    name: str
    iso2: str | None
    iso3: str | None


@dataclass(frozen=True)
class EuAggregates:
    """Aggregated EU trade for one year, values in thousand USD.

    ``extra_imports``: k, i, v (EU imports of product k from non-EU exporter i);
    ``intra_imports`` and ``extra_exports``: k, v.
    """

    year: int
    years_in_file: tuple[int, ...]
    rows: int
    extra_imports: pa.Table
    intra_imports: pa.Table
    extra_exports: pa.Table
    product_codes: tuple[str, ...]


@dataclass
class _Problems:
    kinds: dict[str, list[int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, lines: pa.Array) -> None:
        n = len(lines)
        if n == 0:
            return
        self.counts[kind] = self.counts.get(kind, 0) + n
        shown = self.kinds.setdefault(kind, [])
        if len(shown) < _SHOWN_LINES:
            shown.extend(lines.slice(0, _SHOWN_LINES - len(shown)).to_pylist())

    def details(self) -> list[str]:
        out = []
        for kind, count in self.counts.items():
            lines = ", ".join(str(n) for n in self.kinds[kind])
            more = ", …" if count > len(self.kinds[kind]) else ""
            out.append(f"{count} row{'s' if count != 1 else ''} {kind} (line {lines}{more})")
        return out


def read_small_csv(path: Path, what: str) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        raise InputError(f"no such {what} file", source=str(path)) from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"not a readable CSV {what} file ({exc})", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", source=str(path)) from None


def load_countries(path: Path) -> dict[int, Country]:
    """A BACI country table: numeric code → country (with ISO codes)."""
    rows = read_small_csv(path, "country table")
    header = set(rows[0]) if rows else set()
    cols: dict[str, str | None] = {}
    for key, names in _COUNTRY_ALIASES.items():
        cols[key] = next((n for n in names if n in header), None)
    if cols["code"] is None or cols["iso2"] is None:
        raise InputError(
            "not a BACI country table (expected columns country_code, country_name, country_iso2, country_iso3)",
            source=str(path),
        )
    out: dict[int, Country] = {}
    bad: list[str] = []
    for n, row in enumerate(rows, start=2):
        raw = (row.get(cols["code"] or "") or "").strip()
        if not raw.isdigit():
            bad.append(f"line {n}: country_code {raw!r} is not a number")
            continue
        iso2 = (row.get(cols["iso2"] or "") or "").strip().upper() or None
        iso3 = (row.get(cols["iso3"] or "") or "").strip().upper() or None if cols["iso3"] else None
        name = (row.get(cols["name"] or "") or "").strip() if cols["name"] else ""
        out[int(raw)] = Country(int(raw), name or raw, iso2 if iso2 not in ("N/A", "NA") else None, iso3)
    if bad:
        raise InputError("invalid country table", source=str(path), details=bad[:_SHOWN_LINES])
    if not out:
        raise InputError("country table has no rows", source=str(path))
    return out


def load_products(path: Path) -> dict[str, str]:
    """A BACI product table: HS6 code → description."""
    rows = read_small_csv(path, "product table")
    if not rows or not {"code", "description"} <= set(rows[0]):
        raise InputError("not a BACI product table (expected columns code, description)", source=str(path))
    out: dict[str, str] = {}
    for row in rows:
        code = (row["code"] or "").strip()
        if code.isdigit() and len(code) == 5:
            code = "0" + code
        out[code] = (row["description"] or "").strip()
    return out


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    source = str(path)
    try:
        stream = pa.input_stream(source, compression="detect")
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=_BLOCK),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in (*TRADE_COLUMNS, "q")},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except FileNotFoundError:
        raise InputError("no such trade file", source=source) from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            f"not a readable CSV trade file ({str(exc).splitlines()[0]})", source=source
        ) from None
    try:
        names = reader.schema.names
    except UnicodeDecodeError:
        raise InputError("not a readable CSV trade file (its header is not UTF-8)", source=source) from None
    missing = [c for c in TRADE_COLUMNS if c not in names]
    if missing:
        raise InputError(
            f"not in BACI layout: missing column(s) {', '.join(missing)} (expected header t,i,j,k,v,q)",
            source=source,
        )
    try:
        yield from reader
    except pa.ArrowInvalid as exc:
        raise InputError(f"malformed CSV ({str(exc).splitlines()[0]})", source=source) from None


def aggregate_eu(
    path: Path, countries: dict[int, Country], eu: EuMembers, *, year: int | None = None
) -> EuAggregates:
    """Check every row of a BACI file and aggregate EU trade by product (and supplier) per year.

    Raises :class:`InputError` listing every kind of bad row (non-integer year or country, HS code not
    of six digits, missing or negative value, country code not in the country table) with its first
    line numbers. A five-digit code is read as a six-digit code that lost its leading zero.
    """
    known = pa.array(sorted(countries), pa.int64())
    eu_codes = pa.array(sorted(c.code for c in countries.values() if c.iso2 in eu.codes), pa.int64())
    problems = _Problems()
    unknown_codes: set[int] = set()
    parts: dict[str, list[pa.Table]] = {"extra": [], "intra": [], "exports": []}
    product_codes: set[str] = set()
    offset = 0
    for batch in _batches(path):
        n = batch.num_rows
        lines = pa.array(range(offset + 2, offset + 2 + n), pa.int64())
        offset += n
        cols = {c: pc.utf8_trim_whitespace(batch.column(c)) for c in TRADE_COLUMNS}
        ok = pa.array([True] * n, pa.bool_())
        for c, label in (("t", "year t"), ("i", "exporter i"), ("j", "importer j")):
            good = pc.match_substring_regex(cols[c], r"^\d{1,9}$")
            problems.add(f"with {label} that is not a whole number", pc.filter(lines, pc.invert(good)))
            ok = pc.and_(ok, good)
        k = cols["k"]
        k = pc.if_else(pc.match_substring_regex(k, r"^\d{5}$"), pc.binary_join_element_wise("0", k, ""), k)
        good_k = pc.match_substring_regex(k, r"^\d{6}$")
        problems.add(
            "with a product code k that is not a six-digit HS code", pc.filter(lines, pc.invert(good_k))
        )
        v = cols["v"]
        missing_v = pc.or_(pc.equal(v, ""), pc.is_in(v, value_set=pa.array(["NA", "na", "NaN", "nan"])))
        problems.add("with a missing value v", pc.filter(lines, missing_v))
        numeric = pc.match_substring_regex(v, _NUMBER)
        problems.add(
            "with a value v that is not a number",
            pc.filter(lines, pc.and_(pc.invert(missing_v), pc.invert(numeric))),
        )
        ok = pc.and_(pc.and_(ok, good_k), numeric)
        table = pa.table(
            {"line": lines, "t": cols["t"], "i": cols["i"], "j": cols["j"], "k": k, "v": v}
        ).filter(ok)
        if table.num_rows == 0:
            continue
        value = pc.cast(table["v"], pa.float64())
        negative = pc.less(value, 0)
        problems.add("with a negative value v", pc.filter(table["line"], negative))
        t = pc.cast(table["t"], pa.int64())
        i = pc.cast(table["i"], pa.int64())
        j = pc.cast(table["j"], pa.int64())
        for col in (i, j):
            bad = pc.invert(pc.is_in(col, value_set=known))
            if pc.any(bad).as_py():
                problems.add("with a country code not in the country table", pc.filter(table["line"], bad))
                unknown_codes.update(pc.unique(pc.filter(col, bad)).to_pylist())
        rows = pa.table(
            {
                "t": t,
                "i": i,
                "k": table["k"],
                "v": value,
                "i_eu": pc.is_in(i, value_set=eu_codes),
                "j_eu": pc.is_in(j, value_set=eu_codes),
            }
        ).filter(pc.invert(negative))
        product_codes.update(pc.unique(rows["k"]).to_pylist())
        extra = rows.filter(pc.and_(rows["j_eu"], pc.invert(rows["i_eu"])))
        parts["extra"].append(extra.group_by(["t", "k", "i"], use_threads=False).aggregate([("v", "sum")]))
        intra = rows.filter(pc.and_(rows["j_eu"], rows["i_eu"]))
        parts["intra"].append(intra.group_by(["t", "k"], use_threads=False).aggregate([("v", "sum")]))
        exports = rows.filter(pc.and_(rows["i_eu"], pc.invert(rows["j_eu"])))
        parts["exports"].append(exports.group_by(["t", "k"], use_threads=False).aggregate([("v", "sum")]))
    details = problems.details()
    if unknown_codes:
        details.append("unknown country codes: " + ", ".join(str(c) for c in sorted(unknown_codes)[:20]))
    if details:
        raise InputError("invalid trade data", source=str(path), details=details)
    if offset == 0:
        raise InputError("no data rows", source=str(path))

    def combine(name: str, keys: list[str]) -> pa.Table:
        table = pa.concat_tables(parts[name]).rename_columns([*keys, "v"])
        return table.group_by(keys, use_threads=False).aggregate([("v", "sum")]).rename_columns([*keys, "v"])

    extra_all = combine("extra", ["t", "k", "i"])
    intra_all = combine("intra", ["t", "k"])
    exports_all = combine("exports", ["t", "k"])
    years = sorted(
        set(pc.unique(extra_all["t"]).to_pylist())
        | set(pc.unique(intra_all["t"]).to_pylist())
        | set(pc.unique(exports_all["t"]).to_pylist())
    )
    if not years:
        raise InputError("no EU trade in the file (no row has an EU exporter or importer)", source=str(path))
    chosen = years[-1] if year is None else year
    if chosen not in years:
        raise InputError(
            f"no EU trade for year {chosen} (years in the file: {', '.join(map(str, years))})",
            source=str(path),
        )

    def pick(table: pa.Table) -> pa.Table:
        return table.filter(pc.equal(table["t"], chosen)).drop_columns(["t"])

    return EuAggregates(
        year=chosen,
        years_in_file=tuple(years),
        rows=offset,
        extra_imports=pick(extra_all),
        intra_imports=pick(intra_all),
        extra_exports=pick(exports_all),
        product_codes=tuple(sorted(product_codes)),
    )


def find_beside(trade_file: Path, pattern: str) -> Path | None:
    """The one file matching ``pattern`` in the trade file's folder (BACI ships them together)."""
    hits = sorted(trade_file.parent.glob(pattern))
    return hits[0] if len(hits) == 1 else None
