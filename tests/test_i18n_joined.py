"""Know's sentences read back phrase by phrase (derisk.i18n.joined): a resolution sentence and a path
step's link reason in French, Dutch and German, names kept; anything not made of the catalogue's
phrases stays English, never half translated."""

from __future__ import annotations

import pytest

from derisk.i18n.data import sentence
from derisk.i18n.joined import joined_sentence, link_reason
from derisk.know.curated import load_curated
from derisk.know.graph import Entity, Link, Source
from derisk.know.resolve import PathStep, resolve_controller


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_every_curated_resolution_sentence_reads_in_the_language(lang: str) -> None:
    graph = load_curated()
    ids = sorted(graph.entities)[:300]
    english_words = (
        "ultimately controlled by",
        "Control is exercised from",
        "weakest link",
        "its own ultimate",
    )
    checked = 0
    for ident in ids:
        res = resolve_controller(graph, ident)
        shown = joined_sentence(lang, res.sentence)
        assert shown is not None, res.sentence
        assert not any(words in shown for words in english_words), shown
        assert res.entity.name in shown
        checked += 1
    assert checked == len(ids)


def _step(**link: object) -> PathStep:
    owner = Entity(id="o", schema="Company", name="Owner; Holdings, Ltd")  # separators in a name
    asset = Entity(id="a", schema="Company", name="Asset (Liège)")
    source = Source(id="s", url="https://example.org/filing", says="", accessed="2026-11-26")
    made = Link(
        id="l", kind=str(link.pop("kind", "ownership")), owner_id="o", asset_id="a", source=source, **link
    )  # type: ignore[arg-type]
    return PathStep(asset=asset, owner=owner, link=made, reason="")


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_link_reason_phrases_disputed_mark_and_summary(lang: str) -> None:
    link = _step(share=60.0, voting=75.0, disputed=True).link
    english = link.describe()
    assert english == "60% of shares, 75% of voting rights (disputed)"
    shown = link_reason(lang, english)
    assert "of shares" not in shown and "voting rights" not in shown and "(disputed)" not in shown
    assert "60" in shown and "75" in shown
    with_summary = link_reason(lang, f"{english}; a summary nobody translated")
    assert with_summary.startswith(shown) and with_summary.endswith("; a summary nobody translated")


def test_english_and_unknown_sentences_are_left_as_they_are() -> None:
    assert joined_sentence("en", "Anything at all.") is None
    assert joined_sentence("fr", "A sentence no phrase of the catalogue makes.") is None
    assert link_reason("fr", "owns whatever; something") == sentence("fr", "owns whatever; something")
    english = "X is ultimately controlled by Y (X → Y). Control is exercised from CN (nowhere known)."
    assert joined_sentence("fr", english) is None  # a label outside the catalogue: not half translated
