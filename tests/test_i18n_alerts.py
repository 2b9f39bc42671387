"""Alert explanations in four languages: every detection writes its sentence as phrase templates with
named values (``explanation`` beside the English ``sentence``); pages fill the translated templates
with the values, which stay untranslated names and escaped; the English sentence is unchanged."""

from __future__ import annotations

import json
from typing import Any

import pytest
from markupsafe import escape

from derisk.detect.alert import Alert, Target, make_alert
from derisk.detect.compelled import compelled_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.dnstunnel import TunnelStats, tunnel_alert
from derisk.detect.newdest import NewSeen, new_alert
from derisk.i18n import data, filters
from derisk.know.laws import laws_for
from derisk.web.render import environment as web_environment

LANGS = ("fr", "nl", "de")
HOSTILE = "<script>alert(1)</script>{score}.evil.example"


def _laws(jurisdiction: str | None) -> list[Any]:
    return list(laws_for(jurisdiction))


def _tunnel(domain: str = "telemetry-sync.net", connected: bool = False) -> Alert:
    stats = TunnelStats(
        unique=1320, median_len=55.0, mean_h=4.61, connected=connected, queries=1400,
        hosts=[("10.0.0.5", 1000), ("10.0.0.6", 400)], system="Office", first=1.7e9, last=1.7e9 + 3600,
    )  # fmt: skip
    return tunnel_alert(domain, 0.93, stats, ["f1"], _laws)


def _compelled(name: str = "link.cainiao.com") -> Alert:
    info = {
        "src_ip": "10.40.10.11", "system": "Warehouse management", "dst_ip": "8.209.122.10",
        "server_name": name, "dst_org": "Cainiao Smart Logistics Network Limited",
        "dst_controller": "Alibaba Group Holding Limited", "dst_jurisdiction": "CN",
        "dst_jurisdiction_basis": "registry",
    }  # fmt: skip
    return compelled_alert(
        info, 7.0e6, 1.7e9, 1.7e9 + 6 * 3600, ["8.209.122.10", "8.209.122.11"], [name], ["f1"], 40,
        DetectionConfig(), _laws,
    )  # fmt: skip


def _new_destinations() -> Alert:
    info = {"src_ip": "10.0.0.9", "system": "Customs gateway", "dst_domain": "example.org"}
    seen = NewSeen(flows=1, bytes=3000, hosts=1, first=1.7e9, last=1.7e9)
    return new_alert("destinations", info, 1.69e9, seen, ["f1"], ["a.example"], 12, _laws)


def test_english_sentence_is_the_parts_joined_and_survives_storage() -> None:
    for alert in (_tunnel(), _compelled(), _new_destinations()):
        doc = alert.to_json()
        parts = doc["explanation"]
        assert [p["part"] for p in parts][:4] == ["who", "summary", "score", "control"]
        joined = " ".join(
            data.fill(p["template"], **p["fields"]) for p in parts if p["part"] != "destination"
        )
        assert joined == doc["sentence"] == alert.sentence
        # stored as JSON and read back (as the workspace and the dashboard do): the same document
        again = Alert.from_json(json.loads(json.dumps(doc)))
        assert again.to_json() == doc
    assert _compelled().sentence.startswith(
        "System Warehouse management (10.40.10.11) sent 7.0 MB over 6.0 h to Alibaba Group Holding Limited "
        "(2 addresses, e.g. link.cainiao.com) (score "
    )
    assert _new_destinations().to_json()["destination"] == "12 new destinations"


@pytest.mark.parametrize("lang", LANGS)
def test_explanations_are_translated_and_values_are_not(lang: str) -> None:
    for alert in (_tunnel(), _tunnel(connected=True), _compelled(), _new_destinations()):
        doc = alert.to_json()
        shown = filters.explained(lang, doc)
        assert shown != doc["sentence"]
        for part in doc["explanation"]:
            if part["part"] == "destination":
                continue
            translated, english = data.phrase(lang, part), data.fill(part["template"], **part["fields"])
            assert translated is not None and translated in shown
            if translated != english:  # (German writes "System {system} ({src_ip})" as English does)
                assert english not in shown, (lang, part["template"])
        # names are never translated
        for name in (alert.target.system, alert.target.controller, alert.target.destination):
            if name and alert.kind != "new-destination":
                assert name in shown
    # numbers are written the way the language writes them
    assert "4,6" in filters.explained(lang, _tunnel().to_json())
    assert filters.destination(lang, _new_destinations().to_json()) != "12 new destinations"
    assert filters.destination(lang, _tunnel().to_json()) == "telemetry-sync.net"


def test_a_stored_alert_without_parts_or_with_a_broken_part_stays_english() -> None:
    doc = _compelled().to_json()
    old = {k: v for k, v in doc.items() if k != "explanation"}
    assert filters.explained("fr", old) == doc["sentence"]
    broken = {
        **doc,
        "explanation": [*doc["explanation"][:1], {"part": "summary", "template": "sent {x}", "fields": {}}],
    }
    assert filters.explained("fr", broken) == doc["sentence"]
    # read back without its parts, the alert writes the same English sentence, as a literal part
    again = Alert.from_json(old)
    assert again.sentence == doc["sentence"]
    assert filters.explained("de", again.to_json()).startswith(
        "System Warehouse management (10.40.10.11) sent 7.0 MB"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_hostile_names_stay_names_and_are_escaped_after_translation(lang: str) -> None:
    alert = _compelled(HOSTILE)
    doc = alert.to_json()
    shown = filters.explained(lang, doc)
    assert HOSTILE in shown  # inserted once, its "{score}" not filled
    html = web_environment(lang).from_string("<p>{{ a | dalert }}</p><h1>{{ a | ddest }}</h1>").render(a=doc)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;{score}.evil.example" in html
    # a value that looks like a template placeholder or a data string is left alone
    target = Target("10.0.0.1", "{system}", "{dest}", controller="National Intelligence Law")
    odd = make_alert("upload", 0.9, target, data.fill("sent {x}", x="{dest}"), {}, _laws).to_json()
    assert "National Intelligence Law" in filters.explained(lang, odd)


@pytest.mark.parametrize("lang", LANGS)
def test_alert_page_shows_the_translated_explanation_evidence_labels_and_words(lang: str) -> None:
    doc = {**_compelled().to_json(), "evidence": {**_tunnel().to_json()["evidence"], "scope": "system",
                                                  "jurisdiction_note": "controlling jurisdiction inferred from AS registration"}}  # fmt: skip
    env = web_environment(lang)
    html = env.from_string(
        '{% import "_charts.html.j2" as charts with context %}'
        "{% for k, v in a.evidence.items() %}<tr><th>{{ charts.evidence_key(k) }}</th>"
        "<td>{{ charts.evidence_value(v, k in evidence_words) }}</td></tr>{% endfor %}"
    ).render(a=doc)
    for english in (
        "unique_names</th>",
        ">median name length",
        "controlling jurisdiction inferred",
        ">False<",
    ):
        assert english not in html
    assert 'title="unique_names"' in html  # the JSON key stays visible
    assert str(escape(data.text(lang, "controlling jurisdiction inferred from AS registration"))) in html
    assert "telemetry-sync.net" in html
