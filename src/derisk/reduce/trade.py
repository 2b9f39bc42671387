"""Trade mode: the European Commission's three indicators of a strategic product dependency.

Method (SWD(2021) 352 of 5 May 2021, updated by SWD(2022) 41 of 22 February 2022): a product counts as *dependent*
when all three hold, computed for the EU-27 as one importer:

1. **Concentration** of extra-EU imports by supplier country: HHI = Σ_i (M_i / M)² over non-EU
   exporters i, where M_i are EU imports from i and M = Σ_i M_i; dependent when HHI > 0.4 [S].
2. **Importance of extra-EU imports in total demand**: M / denominator > 0.5 [U] — the Commission's
   denominator is unverified here, so it is a parameter:
   ``total-imports`` (default): M / (M + intra-EU imports), intra-EU trade standing in for demand
   met inside the EU; ``apparent-consumption``: M / (EU production + M − extra-EU exports), which
   needs a production table (``k,v`` in thousand USD).
3. **Substitutability**: M / X > 1, X being extra-EU exports [S]; with X = 0 the ratio is infinite
   and the indicator holds (reported as ``null`` with ``exports_zero: true``).

All thresholds are strict (">") and are parameters. Values are BACI's, in thousand USD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError, UsageError
from derisk.reduce.baci import Country, EuAggregates, aggregate_eu, read_small_csv
from derisk.reduce.findings import Finding
from derisk.reduce.jurisdictions import EuMembers, eu_members

DENOMINATORS: Final = {
    "total-imports": "extra-EU imports / (extra-EU imports + intra-EU imports)",
    "apparent-consumption": "extra-EU imports / (EU production + extra-EU imports - extra-EU exports)",
}
TOP_SUPPLIERS: Final = 3
DIGITS: Final = 6


@dataclass(frozen=True)
class TradeParams:
    hhi_threshold: float = 0.4
    demand_share_threshold: float = 0.5
    import_export_threshold: float = 1.0
    denominator: str = "total-imports"
    year: int | None = None

    def __post_init__(self) -> None:
        if self.denominator not in DENOMINATORS:
            raise UsageError(f"unknown denominator {self.denominator!r} (one of: {', '.join(DENOMINATORS)})")

    def to_json(self) -> dict[str, Any]:
        return {
            "hhi_threshold": self.hhi_threshold,
            "hhi_confidence": "S",
            "demand_share_threshold": self.demand_share_threshold,
            "demand_share_confidence": "U",
            "denominator": self.denominator,
            "denominator_definition": DENOMINATORS[self.denominator],
            "import_export_threshold": self.import_export_threshold,
            "import_export_confidence": "S",
            "strict": True,
        }


@dataclass(frozen=True)
class Supplier:
    code: int
    name: str
    iso2: str | None
    value: float
    share: float

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "country": self.name,
            "iso2": self.iso2,
            "value": round(self.value, 3),
            "share": round(self.share, DIGITS),
        }


@dataclass(frozen=True)
class ProductResult:
    code: str
    description: str | None
    extra_imports: float
    intra_imports: float
    extra_exports: float
    production: float | None
    hhi: float
    demand_share: float | None
    import_export_ratio: float | None
    concentrated: bool
    import_dependent: bool
    hard_to_substitute: bool
    suppliers: tuple[Supplier, ...]

    @property
    def dependent(self) -> bool:
        return self.concentrated and self.import_dependent and self.hard_to_substitute

    def sentence(self) -> str:
        main = ", ".join(f"{s.name} {s.share:.0%}" for s in self.suppliers)
        name = f"{self.code} ({self.description})" if self.description else self.code
        if self.dependent:
            return f"Product {name} is a dependency by the Commission's three indicators; main suppliers: {main}."
        failed = [
            label
            for label, ok in (
                ("concentration", self.concentrated),
                ("share in demand", self.import_dependent),
                ("imports over exports", self.hard_to_substitute),
            )
            if not ok
        ]
        return f"Product {name} is not a dependency: {', '.join(failed)} below threshold."

    def to_json(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, DIGITS)

        return {
            "code": self.code,
            "description": self.description,
            "extra_eu_imports": round(self.extra_imports, 3),
            "intra_eu_imports": round(self.intra_imports, 3),
            "extra_eu_exports": round(self.extra_exports, 3),
            "production": None if self.production is None else round(self.production, 3),
            "hhi": r(self.hhi),
            "demand_share": r(self.demand_share),
            "import_export_ratio": r(self.import_export_ratio),
            "exports_zero": self.extra_exports == 0,
            "concentrated": self.concentrated,
            "import_dependent": self.import_dependent,
            "hard_to_substitute": self.hard_to_substitute,
            "dependent": self.dependent,
            "main_suppliers": [s.to_json() for s in self.suppliers],
            "sentence": self.sentence(),
        }


@dataclass(frozen=True)
class TradeResult:
    source: str
    year: int
    years_in_file: tuple[int, ...]
    rows: int
    params: TradeParams
    products: tuple[ProductResult, ...]
    findings: tuple[Finding, ...] = ()
    illustrative: bool = False
    supplier_shares: dict[str, float] = field(default_factory=dict)

    @property
    def dependent(self) -> list[ProductResult]:
        return [p for p in self.products if p.dependent]

    def summary(self) -> dict[str, Any]:
        total = sum(p.extra_imports for p in self.products)
        dep = sum(p.extra_imports for p in self.dependent)
        return {
            "products_screened": len(self.products),
            "products_dependent": len(self.dependent),
            "extra_eu_imports": round(total, 3),
            "dependent_imports": round(dep, 3),
            "dependent_share_of_imports": round(dep / total, DIGITS) if total else None,
            "dependent_imports_by_supplier": {k: round(v, DIGITS) for k, v in self.supplier_shares.items()},
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "illustrative": self.illustrative,
            "year": self.year,
            "years_in_file": list(self.years_in_file),
            "rows": self.rows,
            "unit": "thousand USD",
            "parameters": self.params.to_json(),
            "summary": self.summary(),
            "dependent": [p.code for p in self.dependent],
            "products": [p.to_json() for p in self.products],
        }


def _as_dict(table: pa.Table) -> dict[str, float]:
    return dict(zip(table["k"].to_pylist(), table["v"].to_pylist(), strict=True))


def indicators(
    agg: EuAggregates,
    countries: dict[int, Country],
    params: TradeParams,
    *,
    products: dict[str, str] | None = None,
    production: dict[str, float] | None = None,
    source: str = "trade data",
    illustrative: bool = False,
) -> TradeResult:
    """The three indicators for every product the EU imports from outside the EU (vectorised HHI)."""
    if params.denominator == "apparent-consumption" and production is None:
        raise UsageError("the apparent-consumption denominator needs a production table (--production FILE)")
    extra = agg.extra_imports
    totals = extra.group_by("k", use_threads=False).aggregate([("v", "sum")]).rename_columns(["k", "m"])
    joined = extra.join(totals, "k")
    share = pc.divide(joined["v"], joined["m"])
    joined = joined.append_column("share", share).append_column("sq", pc.multiply(share, share))
    hhis = _as_dict(
        joined.group_by("k", use_threads=False).aggregate([("sq", "sum")]).rename_columns(["k", "v"])
    )
    totals_d = _as_dict(totals.rename_columns(["k", "v"]))
    intra = _as_dict(agg.intra_imports)
    exports = _as_dict(agg.extra_exports)
    findings: list[Finding] = []
    results: list[ProductResult] = []
    by_product: dict[str, list[tuple[int, float, float]]] = {}
    for k, i, v, s in zip(
        joined["k"].to_pylist(),
        joined["i"].to_pylist(),
        joined["v"].to_pylist(),
        joined["share"].to_pylist(),
        strict=True,
    ):
        by_product.setdefault(k, []).append((i, v, s))
    for k in sorted(totals_d):
        m = totals_d[k]
        if m <= 0:
            continue
        x = exports.get(k, 0.0)
        prod = production.get(k) if production is not None else None
        if params.denominator == "total-imports":
            demand: float | None = m + intra.get(k, 0.0)
        elif prod is None:
            demand = None
            findings.append(
                _finding(
                    "no-production-figure",
                    "low",
                    k,
                    f"Product {k} has no production figure, so "
                    "its share of extra-EU imports in demand cannot be computed.",
                )
            )
        else:
            demand = prod + m - x
            if demand <= 0:
                findings.append(
                    _finding(
                        "non-positive-demand",
                        "low",
                        k,
                        f"Product {k}: production + imports - "
                        f"exports = {demand:g}, so the share in demand is undefined.",
                    )
                )
                demand = None
        demand_share = m / demand if demand else None
        ratio = m / x if x > 0 else None
        top = sorted(by_product[k], key=lambda t: (-t[1], t[0]))[:TOP_SUPPLIERS]
        suppliers = tuple(Supplier(i, countries[i].name, countries[i].iso2, v, s) for i, v, s in top)
        results.append(
            ProductResult(
                code=k,
                description=(products or {}).get(k),
                extra_imports=m,
                intra_imports=intra.get(k, 0.0),
                extra_exports=x,
                production=prod,
                hhi=hhis[k],
                demand_share=demand_share,
                import_export_ratio=ratio,
                concentrated=hhis[k] > params.hhi_threshold,
                import_dependent=demand_share is not None and demand_share > params.demand_share_threshold,
                hard_to_substitute=ratio is None or ratio > params.import_export_threshold,
                suppliers=suppliers,
            )
        )
    if products is not None:
        unknown = [k for k in agg.product_codes if k not in products]
        for k in unknown:
            findings.append(
                _finding(
                    "unknown-hs-code",
                    "medium",
                    k,
                    f"HS code {k} is not in the product table; "
                    "check the code or the HS revision of the table.",
                )
            )
    dep_codes = {p.code for p in results if p.dependent}
    by_supplier: dict[str, float] = {}
    dep_total = 0.0
    for k in dep_codes:
        for i, v, _ in by_product[k]:
            label = countries[i].iso2 or countries[i].name
            by_supplier[label] = by_supplier.get(label, 0.0) + v
            dep_total += v
    supplier_shares = (
        {k: v / dep_total for k, v in sorted(by_supplier.items(), key=lambda kv: (-kv[1], kv[0]))}
        if dep_total
        else {}
    )
    for p in results:
        if p.dependent:
            findings.append(_finding("dependent-product", "high", p.code, p.sentence()))
    return TradeResult(
        source=source,
        year=agg.year,
        years_in_file=agg.years_in_file,
        rows=agg.rows,
        params=params,
        products=tuple(results),
        findings=tuple(findings),
        illustrative=illustrative,
        supplier_shares=supplier_shares,
    )


def _finding(kind: str, severity: str, subject: str, sentence: str) -> Finding:
    return Finding(
        kind=kind, severity=severity, subject=subject, sentence=sentence, evidence={"code": subject}
    )


def load_production(path: Path) -> dict[str, float]:
    """EU production by product (``k,v`` CSV, thousand USD), for the apparent-consumption denominator."""
    rows = read_small_csv(path, "production table")
    if not rows or not {"k", "v"} <= set(rows[0]):
        raise InputError("not a production table (expected columns k, v)", source=str(path))
    out: dict[str, float] = {}
    bad: list[str] = []
    for n, row in enumerate(rows, start=2):
        k, v = (row["k"] or "").strip(), (row["v"] or "").strip()
        try:
            value = float(v)
        except ValueError:
            bad.append(f"line {n}: value {v!r} is not a number")
            continue
        if len(k) != 6 or not k.isdigit():
            bad.append(f"line {n}: {k!r} is not a six-digit HS code")
        elif value < 0:
            bad.append(f"line {n}: negative value {value:g}")
        else:
            out[k] = value
    if bad:
        raise InputError("invalid production table", source=str(path), details=bad[:10])
    return out


def run_trade(
    path: Path,
    *,
    countries: dict[int, Country],
    params: TradeParams,
    products: dict[str, str] | None = None,
    production: dict[str, float] | None = None,
    eu: EuMembers | None = None,
    illustrative: bool = False,
) -> TradeResult:
    """Read a BACI file and compute the indicators."""
    agg = aggregate_eu(path, countries, eu or eu_members(), year=params.year)
    return indicators(
        agg,
        countries,
        params,
        products=products,
        production=production,
        source=str(path),
        illustrative=illustrative,
    )
