"""Trade mode: the Commission's three indicators on small data with answers computed by hand.

Hand computation on the shipped illustrative sample (thousand USD, year 2023; M = extra-EU imports,
I = intra-EU imports, X = extra-EU exports; CN→US and the 2022 row are ignored):

| HS6    | suppliers (M_i)          | M    | HHI                              | I   | M/(M+I)      | X    | M/X  | dependent |
|--------|--------------------------|------|----------------------------------|-----|--------------|------|------|-----------|
| 850760 | CN 600+300, KR 100       | 1000 | .9²+.1² = .82                    | 300 | 1000/1300=.769 | 200 | 5    | yes |
| 294110 | CN 250+150, IN 100       | 500  | .8²+.2² = .68                    | 200 | 500/700=.714 | 100  | 5    | yes |
| 280530 | CN 180, JP 20            | 200  | .9²+.1² = .82                    | 30  | 200/230=.870 | 50   | 4    | yes |
| 282200 | CN 300, US 20            | 320  | .9375²+.0625² = .8828            | 10  | 320/330=.970 | 0    | ∞    | yes |
| 854231 | US 300, KR 300, JP 200, CN 200 | 1000 | .09+.09+.04+.04 = .26      | 100 | .909         | 100  | 10   | no (HHI) |
| 720839 | CN 50                    | 50   | 1                                | 950 | 50/1000=.05  | 10   | 5    | no (share) |
| 300490 | CH 800, US 100           | 900  | (8/9)²+(1/9)² = .8025            | 200 | .818         | 2000 | .45  | no (ratio) |
| 850440 | CN 500                   | 500  | 1                                | 500 | 500/1000=.5 (not > .5) | 100 | 5 | no (boundary) |

Dependent import value 1000+500+200+320 = 2020 of 4470; from CN 900+400+180+300 = 1780 (88.12%).
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from derisk.errors import InputError, UsageError
from derisk.reduce.baci import Country, load_countries, load_products
from derisk.reduce.trade import TradeParams, TradeResult, load_production, run_trade

SAMPLE = Path(str(resources.files("derisk.data").joinpath("trade-sample")))
COUNTRIES = load_countries(SAMPLE / "country_codes_sample.csv")
PRODUCTS = load_products(SAMPLE / "product_codes_sample.csv")


def run(
    path: Path = SAMPLE / "BACI_sample_Y2023.csv", production: dict[str, float] | None = None, **params: Any
) -> TradeResult:
    return run_trade(
        path, countries=COUNTRIES, params=TradeParams(**params), products=PRODUCTS, production=production
    )


def test_sample_flags_exactly_the_hand_computed_products() -> None:
    result = run()
    assert sorted(p.code for p in result.dependent) == ["280530", "282200", "294110", "850760"]
    by = {p.code: p for p in result.products}
    assert by["850760"].hhi == pytest.approx(0.82)
    assert by["850760"].demand_share == pytest.approx(1000 / 1300)
    assert by["850760"].import_export_ratio == pytest.approx(5.0)
    assert by["294110"].hhi == pytest.approx(0.68)
    assert by["282200"].hhi == pytest.approx((300 / 320) ** 2 + (20 / 320) ** 2)
    assert by["282200"].import_export_ratio is None and by["282200"].hard_to_substitute
    assert by["854231"].hhi == pytest.approx(0.26) and not by["854231"].concentrated
    assert by["720839"].demand_share == pytest.approx(0.05) and not by["720839"].import_dependent
    assert by["300490"].import_export_ratio == pytest.approx(0.45) and not by["300490"].hard_to_substitute
    # exactly at the threshold is not above it
    assert by["850440"].demand_share == 0.5 and not by["850440"].dependent
    assert [(s.iso2, s.share) for s in by["850760"].suppliers] == [
        ("CN", pytest.approx(0.9)),
        ("KR", pytest.approx(0.1)),
    ]
    summary = result.summary()
    assert summary["products_screened"] == 8
    assert summary["extra_eu_imports"] == 4470.0 and summary["dependent_imports"] == 2020.0
    assert summary["dependent_imports_by_supplier"]["CN"] == pytest.approx(1780 / 2020, abs=1e-6)


def test_thresholds_are_parameters() -> None:
    # HHI > 0.25 also catches 854231 (0.26); share > 0.49 catches the boundary product 850440.
    result = run(hhi_threshold=0.25, demand_share_threshold=0.49)
    assert sorted(p.code for p in result.dependent) == [
        "280530",
        "282200",
        "294110",
        "850440",
        "850760",
        "854231",
    ]


def test_apparent_consumption_denominator_by_hand() -> None:
    # demand = production + M - X: 850760 1000+1000-200 = 1800 -> 0.556 (yes); 294110 800+500-100 = 1200
    # -> 0.417 (no); 280530 10+200-50 = 160 -> 1.25 (yes); 282200 100+320-0 = 420 -> 0.762 (yes);
    # 850440 has no production figure -> not evaluable, a finding.
    result = run(
        denominator="apparent-consumption", production=load_production(SAMPLE / "production_sample.csv")
    )
    assert sorted(p.code for p in result.dependent) == ["280530", "282200", "850760"]
    by = {p.code: p for p in result.products}
    assert by["294110"].demand_share == pytest.approx(500 / 1200)
    assert by["850440"].demand_share is None
    assert [f.subject for f in result.findings if f.kind == "no-production-figure"] == ["850440"]
    with pytest.raises(UsageError, match="needs a production table"):
        run(denominator="apparent-consumption")
    with pytest.raises(UsageError, match="unknown denominator"):
        TradeParams(denominator="gdp")


def test_year_selection() -> None:
    # 2022 holds one row: CN -> DE 850760, 10: HHI 1, share 10/10 = 1, no exports -> dependent.
    result = run(year=2022)
    assert [p.code for p in result.dependent] == ["850760"]
    assert result.years_in_file == (2022, 2023)
    with pytest.raises(InputError, match="no EU trade for year 2019"):
        run(year=2019)


def write(tmp_path: Path, body: str, header: str = "t,i,j,k,v,q") -> Path:
    path = tmp_path / "trade.csv"
    path.write_text(header + "\n" + body, encoding="utf-8")
    return path


def test_bad_rows_are_listed_with_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "2023,156,276,850760,-5,1\n"  # line 2 negative
        "2023,156,276,850760,,1\n"  # line 3 missing
        "2023,156,276,85X760,3,1\n"  # line 4 bad code
        "2023,999,276,850760,3,1\n"  # line 5 unknown exporter
        "2023,156,276,850760,NA,1\n"  # line 6 missing
        "20x3,156,276,850760,3,1\n"  # line 7 bad year
        "2023,156,276,850760,abc,1\n",  # line 8 not a number
    )
    with pytest.raises(InputError) as err:
        run(path)
    text = str(err.value)
    assert err.value.exit_code == 3
    assert "1 row with a negative value v (line 2)" in text
    assert "2 rows with a missing value v (line 3, 6)" in text
    assert "1 row with a product code k that is not a six-digit HS code (line 4)" in text
    assert "1 row with a country code not in the country table (line 5)" in text
    assert "unknown country codes: 999" in text
    assert "1 row with year t that is not a whole number (line 7)" in text
    assert "1 row with a value v that is not a number (line 8)" in text


def test_unknown_hs_codes_are_findings_and_short_codes_regain_their_zero(tmp_path: Path) -> None:
    # 999999 is six digits but not in the product table; 10121 is BACI's 010121 without the zero.
    path = write(tmp_path, "2023,156,276,999999,10,\n2023,156,276,10121,10,\n")
    result = run(path)
    unknown = sorted(f.subject for f in result.findings if f.kind == "unknown-hs-code")
    assert unknown == ["010121", "999999"]
    assert {p.code for p in result.products} == {"010121", "999999"}


@pytest.mark.parametrize(
    ("header", "body", "message"),
    [
        (
            "year,exporter,importer,product,value",
            "2023,156,276,850760,1\n",
            "missing column(s) t, i, j, k, v",
        ),
        ("t,i,j,k,v,q", "", "no data rows"),
        ("t,i,j,k,v,q", "2023,156,842,850760,1,\n", "no EU trade in the file"),
    ],
)
def test_unusable_files(tmp_path: Path, header: str, body: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(write(tmp_path, body, header))


def test_missing_file_and_older_country_table_layout(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such trade file"):
        run(tmp_path / "nope.csv")
    old = tmp_path / "country_codes_V202001.csv"
    old.write_text(
        "country_code,country_name_abbreviation,country_name_full,iso_2digit_alpha,iso_3digit_alpha\n"
        "156,China,China,CN,CHN\n276,Germany,Germany,DE,DEU\n",
        encoding="utf-8",
    )
    countries = load_countries(old)
    assert countries[156] == Country(156, "China", "CN", "CHN")
    assert countries[276] == Country(276, "Germany", "DE", "DEU")
    bad = tmp_path / "countries.csv"
    bad.write_text("code,name\n1,x\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a BACI country table"):
        load_countries(bad)


def test_row_order_and_split_rows_do_not_change_the_result(tmp_path: Path) -> None:
    # BACI has one row per (t, i, j, k); a file with rows shuffled and each value split in two rows
    # (same totals) must give the same indicators.
    lines = (SAMPLE / "BACI_sample_Y2023.csv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], lines[1:]
    split = []
    for row in rows:
        t, i, j, k, v, q = row.split(",")
        half = float(v) / 2
        split += [f"{t},{i},{j},{k},{half},{q}", f"{t},{i},{j},{k},{float(v) - half},"]
    random.Random(5).shuffle(split)
    path = tmp_path / "shuffled.csv"
    path.write_text("\n".join([header, *split]) + "\n", encoding="utf-8")
    a, b = run(), run(path)
    assert [p.code for p in b.dependent] == [p.code for p in a.dependent]
    for pa_, pb in zip(a.products, b.products, strict=True):
        assert (pb.code, pb.dependent) == (pa_.code, pa_.dependent)
        assert pb.hhi == pytest.approx(pa_.hhi) and pb.extra_imports == pytest.approx(pa_.extra_imports)
