"""Sentences from data in four languages: every data string (laws, mitigations, sectors) and every
sentence template code marks with ``T_()`` has a French, Dutch and German translation that keeps the
tags, placeholders, article numbers, citations and quotes; the report, the screening memo and the
dashboard's law table show them instead of the English."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from markupsafe import escape

from derisk.cli import main
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.zeek import Session, build_logs, write_logs
from derisk.i18n import data, filters
from derisk.i18n.extract import data_messages, obsolete, phrase_messages, untranslated
from derisk.know.laws import laws_for
from derisk.report.html import render_analysis_html
from derisk.screen.memo import render_html as render_memo
from derisk.screen.run import screen_file
from derisk.web.render import environment as web_environment

LANGS = ("fr", "nl", "de")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "deals"
#: Things a translation must carry over unchanged: confidence tags, placeholders, article numbers,
#: citations of statutes and regulations, URLs, quoted passages.
KEPT = (
    r"\[[VSU]\]",
    r"\{[$@]?[A-Za-z_][A-Za-z0-9_.\-]*\}",
    r"§\s?\d+[a-z]?(?:\(\d+\))?",
    r"\b[RL]\d{3}-\d+",
    r"Art\. \d+",
    r"\d+ U\.S\.C\. §\s?\d+",
    r"\((?:EU|UE)\) \d{4}/\d+",
    r"\d+-FZ",
    r"https?://\S+",
    r"(?<=\")[^\"]{12,}(?=\")|(?<=« )[^»]{12,}(?= »)|(?<=„)[^“]{12,}(?=“)",  # quoted passages
)


@pytest.fixture(scope="module")
def wanted() -> dict[str, list[str]]:
    return data_messages()


@pytest.fixture(scope="module")
def phrases() -> dict[str, list[str]]:
    return phrase_messages()


def _kept(text: str) -> list[str]:
    out: list[str] = []
    for pattern in KEPT:
        out.extend(m.replace("(UE)", "(EU)") for m in re.findall(pattern, text))
    return sorted(out)


def test_extraction_finds_laws_mitigations_sectors_and_templates(wanted: dict[str, list[str]]) -> None:
    assert "National Intelligence Law" in wanted  # a law title
    assert any(w.startswith("data/laws/cn.yaml") for w in wanted["National Intelligence Law"])
    assert "general cooperation duty" in wanted  # an obligation
    assert "Move hosting to an EU-controlled provider" in wanted  # a mitigation title
    assert "Sea and inland ports" in wanted  # a sector label
    assert "{mitigation_label} for {system} ({suppliers})." in wanted  # reduce/plan.py
    assert "Notification required" in wanted  # screen/engine.py
    assert any(text.startswith("Must the acquisition by {investor}") for text in wanted)  # screen/memo.py
    # every summary of the legal base is there
    for law in laws_for("CN") + laws_for("US") + laws_for("BE", include_safeguards=True):
        assert law.summary in wanted and law.law in wanted and law.bound in wanted


@pytest.mark.parametrize("lang", LANGS)
def test_data_catalogue_has_every_string_and_template_and_no_stale_ones(
    lang: str, wanted: dict[str, list[str]], phrases: dict[str, list[str]]
) -> None:
    cat = data.data_catalog(lang)
    missing = untranslated(cat, wanted)
    assert not missing, f"{lang}: untranslated data strings: {missing[:10]} (python -m derisk.i18n.extract)"
    # the alert explanations' phrase templates (P_() in derisk.detect), under their own context
    missing = untranslated(cat, phrases, context=data.PHRASE_CONTEXT)
    assert not missing, (
        f"{lang}: untranslated phrase templates: {missing[:10]} (python -m derisk.i18n.extract)"
    )
    assert not obsolete(cat, wanted, phrases), f"{lang}: data strings no longer used"


def _group_and_memo_texts() -> list[str]:
    """The data sentences of the curated groups as Know loads them (not as the extractor finds them):
    each link's summary and control type, each published assessment; the kinds of entity (FtM schema
    labels); and the templates the screening memo writes the investor chain with."""
    from derisk.know.curated import load_curated
    from derisk.know.graph import NODE_SCHEMATA
    from derisk.screen.variables import CHAIN_PARTY, CONTROLLED_BY

    graph = load_curated()
    texts = {t for link in graph.links for t in (link.summary, link.control_type) if t}
    texts |= {a.says for a in graph.assessments}
    texts |= {filters.schema_label(schema) for schema in NODE_SCHEMATA}
    texts |= {*CHAIN_PARTY.values(), CONTROLLED_BY}
    return sorted(texts)


@pytest.mark.parametrize("lang", LANGS)
def test_curated_groups_control_types_and_memo_parts_are_translated(
    lang: str, wanted: dict[str, list[str]]
) -> None:
    texts = _group_and_memo_texts()
    summaries = [t for t in texts if any(".summary" in w for w in wanted.get(t, ()))]
    assert len(summaries) > 80 and "VIE contractual arrangements" in texts and "Public body" in texts
    assert not [t for t in texts if t not in wanted], "curated texts the extractor does not find"
    missing = untranslated(data.data_catalog(lang), texts)
    assert not missing, f"{lang}: untranslated curated or memo sentences: {missing[:10]}"
    for english in texts:  # each is shown translated (an identical "translation" counts as none)
        if (lang, english) not in {("de", "Person"), ("nl", "operator")}:  # the same word there
            assert data.sentence(lang, english) != english, (lang, english)


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_tags_placeholders_articles_citations_and_quotes(
    lang: str, wanted: dict[str, list[str]], phrases: dict[str, list[str]]
) -> None:
    cat = data.data_catalog(lang)
    for msgid in wanted:
        text = str(cat.get(msgid).string)  # type: ignore[union-attr]
        assert _kept(msgid) == _kept(text), f"{lang}: {msgid!r} -> {text!r}"
        assert text != "" and "\n" not in text
    for msgid in phrases:
        text = str(cat.get(msgid, context=data.PHRASE_CONTEXT).string)  # type: ignore[union-attr]
        assert _kept(msgid) == _kept(text), f"{lang}: {msgid!r} -> {text!r}"
        assert text != "" and "\n" not in text


def test_an_untranslated_data_template_is_reported() -> None:
    cat = Catalog(locale="de")
    cat.add("Notification required", "Anmeldung erforderlich")
    cat.add("{system} sent {size}", "")
    assert untranslated(cat, ["Notification required", "{system} sent {size}"]) == ["{system} sent {size}"]


def test_an_untranslated_or_stale_phrase_template_is_reported(phrases: dict[str, list[str]]) -> None:
    # every detection's explanation is among the phrases extracted from derisk.detect
    for part in ("beacons to {dest} every", "held one connection to {dest}", "unique DNS names under {domain}",
                 "and received {received}", "talked for the first time to {dest}", "over {hours} h to {controller}",
                 "opened {connections} connections", "The endpoint is controlled by {controller}"):  # fmt: skip
        assert any(part in msgid for msgid in phrases), part
    cat = Catalog(locale="fr")
    cat.add("System {system}", "Le système {system}", context=data.PHRASE_CONTEXT)
    cat.add("Host {src_ip}", "", context=data.PHRASE_CONTEXT)
    cat.add("Old {thing}", "Vieux {thing}", context=data.PHRASE_CONTEXT)
    wanted = ["System {system}", "Host {src_ip}"]
    assert untranslated(cat, wanted, context=data.PHRASE_CONTEXT) == ["Host {src_ip}"]
    # the same msgid without the context is not the phrase
    assert untranslated(cat, ["System {system}"]) == ["System {system}"]
    assert obsolete(cat, [], wanted) == ["Old {thing}"]


def test_a_filled_template_is_translated_and_its_values_are_not() -> None:
    template = "{who_sentence} is the only {role_label} of {system}, which {functions} cannot do without."
    english = data.fill(
        template,
        who_sentence=data.fill(
            "{supplier} (controlled by {controller}, {jurisdiction})",
            supplier="<b>Hik</b>",
            controller="National Intelligence Law",  # a value that happens to be a data string
            jurisdiction="CN",
        ),
        role_label="hardware maker",
        system="cameras",
        functions="Security",
    )
    french = data.sentence("fr", english)
    assert french == (
        "<b>Hik</b> (contrôlé par National Intelligence Law, CN) est le seul fabricant de matériel de "
        "cameras, dont Security ne peut se passer."
    )
    assert (
        data.sentence("fr", "A sentence nobody wrote a template for.")
        == "A sentence nobody wrote a template for."
    )
    assert data.sentence("en", english) == english
    assert data.sentence("de", None) is None


def test_law_titles_keep_their_recorded_name_beside_the_translation() -> None:
    assert data.law_title("fr", "National Intelligence Law") == (
        "Loi sur le renseignement national (National Intelligence Law)"
    )
    assert data.law_title("de", "CLOUD Act") == "CLOUD Act"  # the official name is English
    assert data.law_title("en", "National Intelligence Law") == "National Intelligence Law"


# Known English data sentences and their translations, per language.
LAW_SUMMARY = (
    "All organisations and citizens shall support, assist and cooperate with national intelligence work "
    "and keep its secrets."
)
SUMMARY_IN = {
    "fr": "Toutes les organisations et tous les citoyens soutiennent",
    "nl": "Alle organisaties en burgers moeten het nationale inlichtingenwerk steunen",
    "de": "Alle Organisationen und Bürger unterstützen die nationale Nachrichtendienstarbeit",
}
TITLE_IN = {
    "fr": "Loi sur le renseignement national (National Intelligence Law)",
    "nl": "Wet op de nationale inlichtingen (National Intelligence Law)",
    "de": "Nationales Nachrichtendienstgesetz (National Intelligence Law)",
}


@pytest.mark.parametrize("lang", LANGS)
def test_dashboard_law_table_shows_translated_laws(lang: str) -> None:
    env = web_environment(lang)
    template = env.from_string('{% from "_macros.html.j2" import laws_table %}{{ laws_table(laws) }}')
    html = template.render(laws=[law.to_json() for law in laws_for("CN")])
    assert LAW_SUMMARY not in html and SUMMARY_IN[lang] in html
    assert TITLE_IN[lang] in html
    assert "Art. 7" in html and "[V]" in html and "China Law Translate" in html  # never translated


@pytest.mark.parametrize("lang", LANGS)
def test_dashboard_memo_shows_translated_question_and_answers(lang: str) -> None:
    from derisk.report.svg import deadline_timeline

    doc = screen_file(EXAMPLES / "liege-cargo.yaml", today=dt.date(2025, 3, 1))
    html = web_environment(lang).get_template("memo.html.j2").render(
        doc=doc, name="case.yaml", uploaded=True, timeline=deadline_timeline(doc["regimes"], doc["as_of"]),
        lang=lang, user=None, csrf="t", export=False, path="/screening/x", workspace="ws",
        here=lambda **changes: "?", inline_css=lambda: "",
    )  # fmt: skip
    assert doc["question"].startswith("Must the acquisition by")
    assert "Must the acquisition by" not in html
    assert doc["disclaimer"] not in html and escape(data.sentence(lang, doc["disclaimer"])) in html
    # every rule sentence, and the risk factors screen/ writes (Know's supplier factors are Know's)
    sentences = [x["sentence"] for r in doc["regimes"] for x in r["reasons"]]
    own = [f for f in doc["risk_factors"] if not f["factor"].startswith("supplier:")]
    sentences += [f["sentence"] for f in own] + [f["title"] for f in own]
    assert len(sentences) > 10
    for english in sentences:
        translated = data.sentence(lang, english)
        assert translated != english and escape(translated) in html, english
    headlines = {r["headline"] for r in doc["regimes"]}
    for headline in headlines:
        assert f">{headline}<" not in html and escape(data.sentence(lang, headline)) in html


@pytest.fixture(scope="module")
def report_doc(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> dict[str, Any]:
    mp = pytest.MonkeyPatch()
    mp.setenv("DERISK_DATA_DIR", str(ipdata_dir))
    try:
        tmp = tmp_path_factory.mktemp("report")
        akamai = load_ipdata(ipdata_dir).sample_addresses(20940, None, 1)[0]
        sessions = [
            Session(
                "10.1.0.5", akamai, 1_793_000_000.0, 40_000, 2_000, name="www.tiktok.com", name_via="sni"
            ),
        ]
        logs, _ = build_logs(sessions, seed=11)
        write_logs(tmp / "zeek", logs, fmt="tsv")
        site = tmp / "site.yaml"
        site.write_text(
            "site: test\ninternal_networks: [10.1.0.0/24]\nsystems:\n  - {name: hmi, hosts: [10.1.0.5/32]}\n",
            encoding="utf-8",
        )
        out = tmp / "a.json"
        args = ["analyze", str(tmp / "zeek"), "-w", str(tmp / "ws"), "--json", str(out), "-q"]
        assert main([*args, "--site", str(site)]) == 0
        doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return doc
    finally:
        mp.undo()


@pytest.mark.parametrize("lang", LANGS)
def test_report_shows_translated_laws(lang: str, report_doc: dict[str, Any]) -> None:
    english = render_analysis_html(report_doc)
    assert LAW_SUMMARY in english and "National Intelligence Law" in english  # the traffic reached CN
    html = render_analysis_html(report_doc, locale=lang)
    assert LAW_SUMMARY not in html and SUMMARY_IN[lang] in html and TITLE_IN[lang] in html
    assert "Art. 7" in html and "[V]" in html
    # the document itself stays English
    assert LAW_SUMMARY in json.dumps(report_doc, ensure_ascii=False)


#: The English words of the investor chain (:func:`derisk.screen.variables.chain_text`).
CHAIN_WORDS = ("← controlled by", "run from", "state body")


@pytest.mark.parametrize("lang", LANGS)
def test_investor_chain_is_translated_with_names_kept(lang: str) -> None:
    from derisk.screen.deal import Party
    from derisk.screen.variables import chain_text

    def party(name: str, country: str, kind: str = "company", **kw: Any) -> Party:
        base = {"where": "test", "name": name, "entity": None, "country": country, "kind": kind,
                "stake_pct": None, "controls": True, "main_activity_country": None, "owners": ()}  # fmt: skip
        return Party(**{**base, **kw})

    hostile = "<b>A ← controlled by B</b> {name} (run from X)"
    state = party("SASAC", "CN", "state", stake_pct=100.0)
    middle = party(hostile, "HK", stake_pct=60.0, main_activity_country="CN", owners=(state,))
    investor = party("Inv S.à r.l.", "KY", main_activity_country="CN", owners=(middle,))
    english = chain_text(investor)
    assert english == (
        f"Inv S.à r.l. (KY, run from CN) ← controlled by {hostile} (60%, HK, run from CN) "
        "← controlled by SASAC (100%, CN, state body)"
    )
    shown = data.sentence(lang, english)
    assert shown.startswith("Inv S.à r.l. (KY, ") and "SASAC (100%, CN, " in shown and "{name}" in shown
    outside = shown.replace("<b>A ", "").replace(" B</b> {name} (run from X)", "")  # the name aside
    assert not any(w in outside for w in CHAIN_WORDS), shown
    # inside a regime's rule sentence (the regime's template wins, the chain in it is translated too)
    said = data.sentence(lang, f"The investor chain reaches outside the EU: {english}.")
    assert said.endswith(f"{shown}.") and "The investor chain" not in said


@pytest.mark.parametrize("lang", LANGS)
def test_exported_memo_is_written_in_the_language(lang: str, tmp_path: Path) -> None:
    deal = EXAMPLES / "liege-cargo.yaml"
    out = tmp_path / "memo.html"
    args = ["screen", str(deal), "--today", "2025-03-01", "--html", str(out), "--lang", lang, "-q"]
    assert main(args) == 0
    html = out.read_text(encoding="utf-8")
    doc = screen_file(deal, today=dt.date(2025, 3, 1))
    english = render_memo(doc)
    assert '<html lang="en">' in english and "Foreign-investment screening memo" in english
    assert f'<html lang="{lang}">' in html and "Foreign-investment screening memo" not in html
    own = [f for f in doc["risk_factors"] if not f["factor"].startswith("supplier:")]
    sentences = [doc["question"], doc["disclaimer"], doc["conventions"], *(f["sentence"] for f in own)]
    sentences += [x["sentence"] for r in doc["regimes"] for x in r["reasons"]]
    for text in sentences:
        assert escape(text) not in html and escape(data.sentence(lang, text)) in html, text
    assert "[V]" in html and "[U]" in html
    # the investor chain (Alibaba Group Holding Limited, KY, run from CN) in the deal table and reasons
    assert "run from CN" in doc["investor_chain"] and "Alibaba Group Holding Limited" in html
    assert not any(escape(w) in html for w in CHAIN_WORDS), [w for w in CHAIN_WORDS if escape(w) in html]
    # the target's sector (a data label) inside the regimes' rule sentences ("The target (...) is active")
    assert "(Airport logistics and cargo handling)" not in html
    assert f"({escape(data.text(lang, 'Airport logistics and cargo handling'))})" in html


@pytest.mark.parametrize("lang", ("en", *LANGS))
def test_entity_kind_is_translated(lang: str) -> None:
    shown = (
        web_environment(lang).from_string("{{ 'PublicBody' | dschema }}|{{ 'Company' | dschema }}").render()
    )
    expected = {"en": "Public body|Company", "fr": "Organisme public|Société", "nl": "Overheidsinstantie|Bedrijf",
                "de": "Öffentliche Stelle|Unternehmen"}  # fmt: skip
    assert shown == expected[lang]


@pytest.fixture(scope="module")
def reduce_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("reduce") / "reduce.json"
    site = Path(__file__).resolve().parents[1] / "examples" / "sites" / "liege-hub.yaml"
    assert main(["reduce", str(site), "--json", str(out), "-q"]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize("lang", LANGS)
def test_dashboard_plan_shows_translated_findings_and_steps(lang: str, reduce_doc: dict[str, Any]) -> None:
    from derisk.report.svg import plan_bars

    html = web_environment(lang).get_template("plan.html.j2").render(
        doc=reduce_doc, site_file="site.yaml", error=None, bars=plan_bars(reduce_doc["plan"]["steps"]),
        lang=lang, user=None, csrf="t", export=False, path="/plan", workspace="ws", here=lambda **changes: "?",
    )  # fmt: skip
    steps = reduce_doc["plan"]["steps"]
    sentences = [f["sentence"] for f in reduce_doc["findings"]] + [s["sentence"] for s in steps]
    sentences += [s["reduces"] for s in steps] + [
        reduce_doc["plan"]["ranking_rule"],
        reduce_doc["disclaimer"],
    ]
    assert steps and len(sentences) > 5
    for english in sentences:
        translated = data.sentence(lang, english)
        assert translated != english and escape(translated) in html and escape(english) not in html, english


@pytest.mark.parametrize("lang", LANGS)
def test_reduce_report_is_written_in_the_language(
    lang: str, tmp_path: Path, reduce_doc: dict[str, Any]
) -> None:
    site = Path(__file__).resolve().parents[1] / "examples" / "sites" / "liege-hub.yaml"
    out = tmp_path / "reduce.html"
    assert main(["reduce", str(site), "--html", str(out), "--lang", lang, "-q"]) == 0
    html = out.read_text(encoding="utf-8")
    assert f'<html lang="{lang}">' in html
    assert "Suppliers and controllers" not in html and "De-risking plan" not in html
    steps = reduce_doc["plan"]["steps"]
    sentences = [f["sentence"] for f in reduce_doc["findings"]] + [s["sentence"] for s in steps]
    sentences += [s["reduces"] for s in steps] + [
        reduce_doc["plan"]["ranking_rule"],
        reduce_doc["disclaimer"],
    ]
    for english in sentences:
        assert escape(english) not in html and escape(data.sentence(lang, english)) in html, english


def test_a_data_string_cut_short_is_translated_and_cut_the_same_way() -> None:
    cut = "Comments or opinion on an investment that wa…[truncated]"  # as the timeline picture cuts it
    out = data.text_cut("de", cut)
    assert out.startswith("Kommentare oder Stellungnahme") and out.endswith("…[truncated]")
    assert len(out) == len(cut)
    ambiguous = "Ex officio review of a deal that was not not…[truncated]"  # two phases start so
    assert data.text_cut("de", ambiguous) == ambiguous
    assert data.text_cut("de", "Gas storage") == "Gasspeicherung"


def test_a_cited_data_string_is_translated_with_its_tag_and_source_kept() -> None:
    # a published assessment as a supplier-risk factor's evidence: the data string, its tag, its source
    says = (
        "Equipment of ZTE Corporation is on the US FCC Covered List (deemed an unacceptable risk to US "
        "national security)"
    )
    cite = " [S] (FCC, Covered List (2024), https://www.fcc.gov/supplychain/coveredlist)"
    shown = data.sentence("de", says + cite)
    assert shown == data.text("de", says) + cite and shown.startswith("Ausrüstung der ZTE Corporation")
    unknown = "Something nobody recorded [S] (a source)"
    assert data.sentence("de", unknown) == unknown


@pytest.mark.parametrize("lang", LANGS)
def test_worded_article_references_and_fact_units_are_translated(lang: str) -> None:
    cited = (
        "National Intelligence Law Art. 7 [V]; Cybersecurity Law Art. 28 (2017 numbering; number in the "
        "2026 text [U]) [V]; Counter-Espionage Law (revised) believed Arts. 8 and 41 [U] [V]"
    )
    shown = data.citations(lang, cited)
    assert "numbering" not in shown and "believed" not in shown and TITLE_IN[lang] in shown
    assert "Art. 7 [V]" in shown and "Art. 28 (" in shown and "Arts. 8 " in shown  # numbers kept
    assert data.citations("en", cited) == cited
    assert data.worded_article("believed Arts. 8 and 41 [U]") and not data.worded_article("Arts. 8 and 41")
    assert not data.worded_article("50 U.S.C. § 1881a") and not data.worded_article("Art. 7")
    # a fact's value inside a regime's rule sentence: "15 days [S]"
    rule = "The investor chain reaches outside the EU: A (CN)."
    assert data.sentence(lang, rule) != rule
    said = data.sentence(
        lang,
        "A mandatory screening applies in BE; the screening member state notifies the other member states "
        "and the Commission (Art. 6(1)), which opens the cooperation mechanism: requests for information "
        "within 15 days [S], comments by other member states and an opinion of the Commission within 35 days "
        "[S] of notification.",
    )
    assert "days" not in said and "15 " in said and "35 " in said and said.count("[S]") == 2, said


def test_percentages_and_decimals_on_pages_follow_the_page_language() -> None:
    from derisk.report.formatting import decimal, percent, share

    assert (share(874, 1000), percent(38.88), decimal(0.1234, 3)) == ("87.4%", "38.88%", "0.123")
    for lang in ("fr", "nl", "de"):
        shown = (share(874, 1000, lang), percent(38.88, lang), decimal(0.1234, 3, lang))
        assert not any("." in s for s in shown), (lang, shown)
        assert shown[0].startswith("87,4") and shown[1].startswith("38,88")


def test_a_label_placeholder_reads_only_data_strings() -> None:
    """A source citation with " of " and commas in brackets is not a supplier sentence; a plan step
    whose mitigation title itself holds " for " is still translated whole."""
    from derisk.i18n.data import sentence

    cite = (
        "United States Code, 18 U.S.C. § 2713 (Required preservation and disclosure of communications and "
        "records), Office of the Law Revision Counsel (not read by derisk's reviewers)"
    )
    assert sentence("fr", cite) == cite
    step = (
        "Egress controls and allow-lists for the supplier's software and devices for wms (software vendor "
        "Cainiao (CN))."
    )
    shown = sentence("fr", step)
    assert "Egress" not in shown and shown.endswith("pour wms (software vendor Cainiao (CN)).")
