"""The shipped curated registry and legal base: every statement sourced and tagged, keys checked."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from derisk.errors import DataError
from derisk.know.attribution import load_index
from derisk.know.curated import check_groups, load_curated, read_group_files
from derisk.know.laws import check_law_file, laws_for, load_legal_base, read_law_files, safeguards_for

GROUPS = read_group_files()


def test_curated_graph_loads_and_every_statement_has_a_source() -> None:
    graph = load_curated()
    assert len(graph.entities) > 50
    for entity in graph.entities.values():
        assert entity.sources, entity.id
        for src in entity.sources:
            assert src.url.startswith("http") and src.says
            assert src.date or src.accessed or not src.verified, src.id
    for link in graph.links:
        assert link.source is not None and link.source.url.startswith("http"), link.id
        assert link.confidence in ("V", "S", "U")
        assert link.owner_id in graph.entities and link.asset_id in graph.entities


def _broken(name: str, change: Any) -> list[str]:
    files = copy.deepcopy(GROUPS)
    change(files[name])
    return [str(p) for p in check_groups(files)[2]]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["entities"][0].update(colour="red"), "unknown key 'colour'"),
        (lambda d: d["entities"][0].update(sources=[]), "needs at least one source"),
        (lambda d: d["entities"][0].update(sources=["nope"]), "source 'nope' is not defined"),
        (lambda d: d["links"][0].pop("source"), "missing key 'source'"),
        (lambda d: d["links"][0].update(share=130), "must be a percentage"),
        (lambda d: d["links"][0].update(share="half"), "must be a percentage"),
        (lambda d: d["links"][0].update(confidence="X"), "confidence 'X'"),
        (lambda d: d["links"][0].update(owner="ghost"), "owner 'ghost' is not a defined entity"),
        (lambda d: d["sources"]["sec-20f-fy2023"].pop("says"), "missing key 'says'"),
        (
            lambda d: (
                d["sources"]["sec-20f-fy2023"].pop("date") and d["sources"]["sec-20f-fy2023"].pop("accessed")
            ),
            "needs a document date or an access date",
        ),
        (lambda d: d["entities"][0].update(country="Cayman"), "not an ISO 3166-1 alpha-2 code"),
        (lambda d: d["entities"][0].update(asns=["AS1"]), "AS number 'AS1'"),
    ],
)
def test_curated_problems_are_reported(change: Any, expected: str) -> None:
    problems = _broken("alibaba.yaml", change)
    assert any(expected in p for p in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    def two(d: dict[str, Any]) -> None:
        d["entities"][0]["colour"] = "red"
        d["links"][0]["confidence"] = "maybe"

    assert len(_broken("alibaba.yaml", two)) == 2


def test_groups_asked_for_are_present() -> None:
    groups = {entity.group for entity in load_curated().entities.values()}
    for name in (
        "Alibaba Group",
        "Tencent",
        "Huawei",
        "ByteDance",
        "Baidu",
        "China Telecom",
        "China Mobile",
        "China Unicom",
        "Hikvision",
        "Dahua",
        "Nuctech",
        "ZTE",
        "Amazon",
        "Microsoft",
        "Google",
        "Cloudflare",
        "OVHcloud",
        "Deutsche Telekom",
        "Proximus",
        "BELNET",
    ):
        assert name in groups


@pytest.mark.parametrize(
    ("asn", "operator", "jurisdiction", "state"),
    [
        (45102, "Alibaba (US) Technology Co., Ltd.", "CN", False),
        (134963, "Alibaba Cloud (Singapore) Private Limited", "CN", False),
        (37963, "Hangzhou Alibaba Advertising Co., Ltd.", "CN", False),
        (24429, "Zhejiang Taobao Network Co., Ltd.", "CN", False),
        (4134, "China Telecom Corporation Limited", "CN", True),
        (138699, "TIKTOK PTE. LTD.", "CN", False),
        (16509, "Amazon.com, Inc.", "US", False),
        (16276, "OVH SAS", "FR", False),
        (5432, "Proximus NV", "BE", True),
        (2611, "Belnet", "BE", True),
    ],
)
def test_attribution_by_asn(asn: int, operator: str, jurisdiction: str, state: bool) -> None:
    match = load_index().match_asn(asn)
    assert match is not None
    assert (match.org_name, match.jurisdiction, match.state_controlled) == (operator, jurisdiction, state)
    assert match.path[0] == operator and match.path[-1] == f"control exercised from {jurisdiction}"


def test_attribution_path_for_alibaba_cloud_singapore() -> None:
    match = load_index().match_asn(134963)
    assert match is not None
    assert match.path == (
        "Alibaba Cloud (Singapore) Private Limited",
        "Alibaba Group Holding Limited",
        "control exercised from CN",
    )
    assert match.controller_name == "Alibaba Group Holding Limited" and match.group == "Alibaba Group"


def test_attribution_by_domain_and_subdomain() -> None:
    index = load_index()
    assert index.match_domain("aliyuncs.com").controller_name == "Alibaba Group Holding Limited"  # type: ignore[union-attr]
    assert index.match_domain("img.alicdn.com").jurisdiction == "CN"  # type: ignore[union-attr]
    assert index.match_domain("example.org") is None
    assert index.version == load_curated().version
    table = index.domain_table()
    assert set(table.column("domain").to_pylist()) == set(index.by_domain)


def test_every_law_entry_has_source_and_tag() -> None:
    base = load_legal_base()
    assert {"CN", "US", "RU", "EU", "BE"} <= set(base.by_jurisdiction)
    for laws in base.by_jurisdiction.values():
        for law in laws:
            assert law.source and law.confidence in ("V", "S", "U") and law.summary and law.bound


def test_law_without_source_or_tag_fails() -> None:
    data = copy.deepcopy(read_law_files()["cn.yaml"])
    del data["laws"][0]["source"]
    data["laws"][1]["confidence"] = None
    data["laws"][2]["colour"] = "red"
    problems = [str(p) for p in check_law_file("cn.yaml", data)[3]]
    assert any("missing 'source'" in p for p in problems)
    assert any("confidence must be one of" in p for p in problems)
    assert any("unknown key 'colour'" in p for p in problems)


def test_chinese_laws_keep_their_unverified_marks() -> None:
    laws = laws_for("CN")
    cites = [law.citation() for law in laws]
    assert "National Intelligence Law Art. 7 [V]" in cites
    espionage = next(law for law in laws if law.law.startswith("Counter-Espionage"))
    assert "[U]" in (espionage.article or "")
    cyber = [law for law in laws if law.law == "Cybersecurity Law"]
    assert cyber and all(
        "2017 numbering" in (law.article or "") and "[U]" in (law.article or "") for law in cyber
    )


def test_safeguards_are_separate_from_compelling_laws() -> None:
    assert laws_for("BE") == []
    gdpr = [law for law in safeguards_for("BE") if "2016/679" in law.law]
    assert gdpr and "Chapter V" in (gdpr[0].article or "")
    assert laws_for("BE", include_safeguards=True)


def test_broken_group_file_is_a_data_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import derisk.know.curated as curated

    monkeypatch.setenv("DERISK_CACHE_DIR", "off")  # the compiled copy of the intact files is not read
    broken = copy.deepcopy(GROUPS)
    broken["alibaba.yaml"]["entities"][0]["colour"] = "red"
    monkeypatch.setattr(curated, "read_group_files", lambda: broken)
    curated.load_curated.cache_clear()
    try:
        with pytest.raises(DataError, match="colour"):
            curated.load_curated()
    finally:
        monkeypatch.undo()
        curated.load_curated.cache_clear()
