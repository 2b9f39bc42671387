"""The third-country service groups and high-risk vendor clouds of the curated registry.

The same rules as the global-infrastructure files (tests/test_know_registry.py), held for the files of
this scope, plus the facts the attribution of real traffic rests on: the controlling jurisdiction a
known AS or domain leads to, and the state links of the state-owned groups.
"""

from __future__ import annotations

import re

import pytest

from derisk.know.curated import load_curated, read_group_files
from derisk.know.names import comparable
from derisk.know.resolve import resolve_controller

THIRD_COUNTRY_FILES = sorted(
    f"{name}.yaml"
    for name in [
        "alibaba",
        "ant-group",
        "apsystems",
        "baidu",
        "beeline-vimpelcom",
        "bilibili",
        "byd",
        "bytedance",
        "catl",
        "china-mobile",
        "china-telecom",
        "china-unicom",
        "dahua",
        "deye",
        "didi",
        "dji",
        "fibocom",
        "foxess",
        "goodwe",
        "growatt",
        "h3c",
        "haier",
        "hgc",
        "hikvision",
        "hisense",
        "hoymiles",
        "huawei",
        "hytera",
        "inspur",
        "jd",
        "kakao",
        "kaspersky",
        "kddi",
        "kingsoft-cloud",
        "kuaishou",
        "lenovo",
        "ly-corporation",
        "megafon",
        "meituan",
        "mts",
        "naver",
        "netease",
        "nintendo",
        "nuctech",
        "pdd",
        "qihoo-360",
        "qrator",
        "quectel",
        "rakuten",
        "reolink",
        "rostelecom",
        "ruijie",
        "russian-federation",
        "selectel",
        "shein",
        "solarman",
        "solis-ginlong",
        "sungrow",
        "telegram",
        "tencent",
        "tp-link",
        "transtelecom",
        "trip-com",
        "tuya",
        "ucloud",
        "uniview",
        "vk",
        "wangsu",
        "weibo-sina",
        "xiaomi",
        "yandex",
        "zpmc",
        "zte",
    ]
)
FILES = read_group_files()
GRAPH = load_curated()


def _entities(name: str) -> list[str]:
    return [row["id"] for row in FILES[name].get("entities") or []]


def test_the_files_are_present() -> None:
    assert sorted(set(THIRD_COUNTRY_FILES) - set(FILES)) == []


@pytest.mark.parametrize("name", THIRD_COUNTRY_FILES)
def test_every_as_is_quoted_by_a_source_of_its_file(name: str) -> None:
    texts = [str(source.get("says", "")) for source in (FILES[name].get("sources") or {}).values()]
    for entity_id in _entities(name):
        for asn in GRAPH.entities[entity_id].asns:
            assert any(re.search(rf"\bAS{asn}\b", text) for text in texts), (name, entity_id, asn)


@pytest.mark.parametrize("name", THIRD_COUNTRY_FILES)
def test_names_are_safe_for_fuzzy_matching(name: str) -> None:
    """A name reducing to one or two letters ("VK", "LY", "A Holdings") would match unrelated AS names."""
    for entity_id in _entities(name):
        entity = GRAPH.entities[entity_id]
        if entity.asns or entity.domains:
            assert entity.aliases, entity_id
        for text in (entity.name, *entity.aliases):
            reduced = comparable(text)
            assert reduced and len(reduced.replace(" ", "")) >= 3, (entity_id, text, reduced)


@pytest.mark.parametrize("name", THIRD_COUNTRY_FILES)
def test_every_source_is_cited(name: str) -> None:
    used = {src.id for entity in GRAPH.entities.values() for src in entity.sources}
    used |= {link.source.id for link in GRAPH.links if link.source is not None}
    used |= {a.source.id for a in GRAPH.assessments}
    for key in FILES[name].get("sources") or {}:
        assert f"{name.removesuffix('.yaml')}.{key}" in used, (name, key)


@pytest.mark.parametrize(
    ("entity_id", "controller", "jurisdiction"),
    [
        # An AS registered abroad leads to the group's controller, not to the registration country.
        ("alibaba-us-technology", "alibaba-group-holding", "CN"),
        ("riot-games", "tencent-holdings", "CN"),
        ("china-telecom-americas", "cn-sasac", "CN"),
        ("hkbn", "cn-sasac", "CN"),
        ("kaspersky-switzerland", "kaspersky-lab-ao", "RU"),
        # Control through Gazprom, and through the state property agency.
        ("vk-llc", "ru-federation", "RU"),
        ("rostelecom-pjsc", "ru-federation", "RU"),
        ("transtelecom", "ru-federation", "RU"),
        # A minority stake is not control: TikTok's US joint venture, Yandex after its 2024 sale.
        ("tiktok-usds", "tiktok-usds", "US"),
        ("yandex-llc", "yandex-mkpao", "RU"),
        # A founder recorded as director, not controller, leaves the company its own controller.
        ("telegram-messenger", "telegram-messenger", "AE"),
    ],
)
def test_controller_and_jurisdiction(entity_id: str, controller: str, jurisdiction: str) -> None:
    result = resolve_controller(GRAPH, entity_id)
    assert result.controller is not None
    assert result.controller.id == controller
    assert result.jurisdiction == jurisdiction
