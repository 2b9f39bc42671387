"""Languages: every message the templates and code use has a translation in French, Dutch and German;
Accept-Language negotiation; translated pages and reports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from derisk import i18n
from derisk.i18n.extract import messages, obsolete, untranslated
from derisk.report.html import environment as report_environment
from derisk.web.render import environment as web_environment

LANGS = ("fr", "nl", "de")


@pytest.fixture(scope="module")
def wanted() -> dict[str, list[str]]:
    return messages()


def test_extraction_finds_the_templates_and_code(wanted: dict[str, list[str]]) -> None:
    # One message from each kind of place: dashboard template, report template, Python N_() mark,
    # the analysis document's fixed texts.
    assert "Flows behind this alert" in wanted
    assert "Legal base per controlling jurisdiction" in wanted
    assert "Unknown user name or wrong password." in wanted
    assert "critical" in wanted
    assert any(text.startswith("Flows are metered") for text in wanted)
    assert len(wanted) > 150


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_has_every_message_and_no_stale_ones(lang: str, wanted: dict[str, list[str]]) -> None:
    cat = i18n.catalog(lang)
    missing = untranslated(cat, wanted)
    assert not missing, f"{lang}: untranslated: {missing[:10]} (run python -m derisk.i18n.extract)"
    assert not obsolete(cat, wanted), f"{lang}: messages no longer used"


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_tags_placeholders_and_commands(lang: str, wanted: dict[str, list[str]]) -> None:
    cat = i18n.catalog(lang)
    for msgid in wanted:
        text = str(cat.get(msgid).string)  # type: ignore[union-attr]
        for tag in ("[V]", "[S]", "[U]", "--site", "derisk analyze", "site.yaml"):
            assert (tag in msgid) == (tag in text), f"{lang}: {tag!r} in {msgid!r}"
        assert re.findall(r"%\(\w+\)s", msgid) == re.findall(r"%\(\w+\)s", text)
        assert "%" not in text.replace("%%", "")  # newstyle gettext formats every string


def test_a_missing_or_fuzzy_translation_is_reported() -> None:
    cat = Catalog(locale="fr")
    cat.add("Alerts", "Alertes")
    cat.add("Destinations", "Destinations", flags=["fuzzy"])
    cat.add("Old text", "Ancien texte")
    assert untranslated(cat, ["Alerts", "Destinations", "Sent"]) == ["Destinations", "Sent"]
    assert obsolete(cat, ["Alerts", "Destinations"]) == ["Old text"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("fr-BE,fr;q=0.9,en;q=0.8", "fr"),
        ("nl-BE", "nl"),
        ("de-CH, de;q=0.9", "de"),
        ("es, it;q=0.8, nl;q=0.5", "nl"),
        ("en;q=0.2, de;q=0.7", "de"),
        ("fr;q=0, de;q=0.1", "de"),
        ("*", "en"),
        ("", "en"),
        (None, "en"),
        ("xx;q=abc, ;;;,", "en"),
        ("fr" + ",x" * 10_000, "fr"),
    ],
)
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    assert i18n.negotiate(header) == expected


def test_unknown_languages_fall_back_to_english() -> None:
    assert i18n.pick("es") is None and i18n.pick("fr_BE") == "fr" and i18n.pick("../../etc") is None
    assert i18n.gettext_for("xx").gettext("Alerts") == "Alerts"
    assert i18n.gettext_for("de").gettext("Alerts") == "Warnungen"


def test_templates_render_in_each_language() -> None:
    for lang, word in {"en": "Log in", "fr": "Se connecter", "nl": "Aanmelden", "de": "Anmelden"}.items():
        html = web_environment(lang).get_template("login.html.j2").render(
            lang=lang, user=None, csrf="t", export=False, path="/login", error=None, next="/",
            no_accounts=True, workspace="ws", here=lambda **changes: "?lang=" + changes.get("lang", ""),
        )  # fmt: skip
        assert f'<html lang="{lang}">' in html and word in html
    assert report_environment("fr").get_template("analysis.html.j2") is not None


def test_catalogue_files_are_where_the_package_ships_them() -> None:
    root = Path(i18n.__file__).parent / "locale"
    assert sorted(p.parent.parent.name for p in root.glob("*/LC_MESSAGES/derisk.po")) == sorted(LANGS)
