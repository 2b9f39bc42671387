"""Know's own sentences (controller resolution, supplier-risk factors, link phrases) in French, Dutch and
German: stored as phrase templates with values beside the unchanged English sentence; pages fill the
translated template, keep names as they are and escape them."""

from __future__ import annotations

import pytest

from derisk.i18n import data, dates, filters
from derisk.know.curated import load_curated
from derisk.know.explain import resolution_parts, resolution_sentence, text
from derisk.know.graph import Graph, Link
from derisk.know.resolve import resolve_controller
from derisk.know.risk import supplier_risk
from know_helpers import SRC, ent, graph, own

HOSTILE = "<b>Evil & Co</b> {name}"


def _hostile_graph() -> Graph:
    vendor = ent("vendor", country="CN")
    vendor = type(vendor)(**{**vendor.__dict__, "name": HOSTILE})
    return graph(
        [vendor, ent("hold", country="KY", control="CN"), ent("sasac", country="CN", state=True)],
        [
            own("hold", "vendor", kind="control", control_type="VIE contractual arrangements"),
            own("sasac", "hold", 60.0, kind="state"),
        ],
    )


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_resolution_and_factors_are_translated_with_names_kept(lang: str) -> None:
    g = _hostile_graph()
    res = resolve_controller(g, "vendor")
    parts = resolution_parts(res)
    assert text(parts) == res.sentence  # the English sentence is the parts filled
    shown = filters.parts(lang, parts)
    assert shown is not None and shown != res.sentence
    assert HOSTILE in shown  # a name is never translated and never read as a placeholder
    for factor in supplier_risk(g, "vendor"):
        doc = factor.to_json()
        assert doc["sentence"] == factor.sentence  # documents keep the English sentence
        translated = filters.factor(lang, doc)
        assert translated == filters.factor(lang, factor)
        assert translated != factor.sentence, (lang, factor.sentence)
        english_words = ("is controlled by", "Ownership chain", "can exert pressure", "has no data on")
        assert not any(w in translated for w in english_words), translated


def test_english_sentences_are_unchanged() -> None:
    g = _hostile_graph()
    by = {f.factor: f for f in supplier_risk(g, "vendor")}
    assert by["government-link"].sentence == f"{HOSTILE} is controlled by the state of CN, a third country."
    assert by["pressure"].sentence.startswith(f"CN can exert pressure on {HOSTILE}: the state of CN controls")
    assert filters.factor("en", by["ownership"]) == by["ownership"].sentence
    res = resolve_controller(g, "vendor")
    assert resolution_sentence(res) == res.sentence


def test_curated_groups_translate_in_every_language() -> None:
    curated = load_curated()
    for entity_id in ("huawei-cloud", "alibaba-cloud", "tencent"):
        if entity_id not in curated.entities:
            continue
        res = resolve_controller(curated, entity_id)
        for lang in ("fr", "nl", "de"):
            assert filters.parts(lang, resolution_parts(res)) not in (None, res.sentence)
            for factor in supplier_risk(curated, entity_id):
                assert filters.factor(lang, factor) != factor.sentence


@pytest.mark.parametrize(
    ("link", "fr"),
    [
        (
            Link(id="a", kind="ownership", owner_id="o", asset_id="a", share=51.0, source=SRC),
            "51% des actions",
        ),
        (
            Link(id="b", kind="ownership", owner_id="o", asset_id="a", share=30.0, voting=55.5, source=SRC),
            "30% des actions, 55,5% des droits de vote",
        ),
        (Link(id="c", kind="directorship", owner_id="o", asset_id="a", source=SRC), "administrateur de"),
    ],
)
def test_link_phrases(link: Link, fr: str) -> None:
    shown = str(filters.parts("fr", link.describe_parts(), ", "))
    assert shown.replace("\u202f", " ").replace("\xa0", " ") == fr  # Babel's no-break spaces


def test_dates_in_the_page_language() -> None:
    assert data.day("fr", "2026-03-15") == "15 mars 2026"
    assert data.day("de", "15 March 2026") == "15. März 2026"
    assert data.day("nl", "2026-03-15") == "15 maart 2026"
    assert data.day("en", "2026-03-15") == "2026-03-15"
    assert data.day("fr", "2026-02-30") == "2026-02-30"  # not a date: as it is
    question = (
        "Must the acquisition by X of 30% of the voting rights of Y (Belgium), signed on 2 March 2026 with "
        "closing planned on 30 June 2026, be notified for foreign-investment screening, where, and by when?"
    )
    shown = data.sentence("de", question)
    assert "2. März 2026" in shown and "30. Juni 2026" in shown and "March" not in shown


def test_timestamps_in_the_page_language() -> None:
    shown = str(dates.moment("de", "2026-11-02T06:00:01.927000Z")).replace("\u202f", " ")
    assert shown == "02.11.2026, 06:00:01 UTC"
    assert dates.moment("en", "2026-11-02T06:00:01Z") == "2026-11-02T06:00:01Z"
    assert dates.moment("fr", "not a time") == "not a time"
