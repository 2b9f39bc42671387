"""Service domains of curated groups from v2fly's domain-list-community (issue 11).

The generated file (``derisk/data/groups/domain-lists.json``) through the real loader and the real
attribution, and the importer (``scripts/import_domain_lists.py``) on a small list tree in the
repository's own syntax, read from a git commit as the script reads the real one.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from derisk.cli import main
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.zeek import Session, build_logs, write_logs
from derisk.know.attribution import load_index
from derisk.know.curated import check_groups, read_group_files

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import_domain_lists.py"
NAME = "domain-lists.json"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_domain_lists", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _listed() -> dict[str, tuple[str, str]]:
    """Domain -> (entity id, source key) as the shipped generated file lists them."""
    doc = read_group_files()[NAME]
    return {d: (e, s) for e, per in doc["listed_domains"].items() for s, ds in per.items() for d in ds}


def _hand_written() -> dict[str, str]:
    """Domain -> entity id of every other shipped group file."""
    files = {k: v for k, v in read_group_files().items() if k != NAME}
    entities, _, problems = check_groups(files)
    assert not problems
    return {d: e.id for e in entities for d in e.domains}


def test_the_generated_file_loads_with_its_provenance() -> None:
    files = read_group_files()
    doc = files[NAME]
    entities, _, problems = check_groups(files)
    assert problems == []
    # every source is one list file at one commit, unverified (shown as [U])
    assert doc["sources"]
    for key, source in doc["sources"].items():
        assert key.startswith("v2fly-") and source["verified"] is False and source["accessed"]
        assert source["url"].startswith("https://github.com/v2fly/domain-list-community/blob/")
        commit, path = source["url"].split("/blob/")[1].split("/", 1)
        assert len(commit) == 40 and path == f"data/{key.removeprefix('v2fly-')}"
    microsoft = next(e for e in entities if e.id == "microsoft-corp")
    assert "xboxservices.com" in microsoft.domains
    assert any(s.id == f"{NAME}.v2fly-xbox" and not s.verified for s in microsoft.sources)
    assert doc["entities"] == []


def test_listed_domains_attach_to_their_groups_through_attribution() -> None:
    listed, curated = _listed(), _hand_written()
    index = load_index(None)
    cases = {
        "xboxservices.com": ("Microsoft Corporation", "US"),
        "main.vscode-cdn.net": ("Microsoft Corporation", "US"),
        "p16-sign.byteimg.com": ("ByteDance Ltd.", "CN"),
        "alipaydns.com": ("Ant Group Co., Ltd.", "CN"),
    }
    for name, expected in cases.items():
        domain = name.split(".", 1)[1] if name.count(".") > 1 else name
        assert domain in listed and domain not in curated, domain  # the generated file's own facts
        found = index.match_domain(domain)
        assert found is not None and (found.controller_name, found.jurisdiction) == expected, name
    # a v2fly list names Azure's China domains, which 21Vianet operates: left out, so unknown
    assert "chinacloudapi.cn" not in listed and index.match_domain("chinacloudapi.cn") is None
    assert index.conflicts == []


def test_a_listed_service_domain_names_the_service_on_a_cdn_end_to_end(
    tmp_path: Path, data_env: Path
) -> None:
    akamai = load_ipdata(data_env).sample_addresses(20940, None, 1)[0]
    logs, _ = build_logs(
        [
            Session(
                "10.1.0.5",
                akamai,
                1_793_000_000.0,
                5_000,
                20_000,
                name="xsts.xboxservices.com",
                name_via="sni",
                service="ssl",
            )
        ],
        seed=7,
    )
    write_logs(tmp_path / "zeek", logs, fmt="tsv")
    site = "site: test\ninternal_networks: [10.1.0.0/24]\nsystems:\n  - {name: hmi, hosts: [10.1.0.5/32]}\n"
    (tmp_path / "site.yaml").write_text(site, encoding="utf-8")
    out = tmp_path / "a.json"
    args = [
        "analyze",
        str(tmp_path / "zeek"),
        "-w",
        str(tmp_path / "ws"),
        "--site",
        str(tmp_path / "site.yaml"),
    ]
    assert main([*args, "--json", str(out), "-q"]) == 0
    (dest,) = [d for d in json.loads(out.read_text(encoding="utf-8"))["destinations"] if d["ip"] == akamai]
    assert (dest["service"]["controller"], dest["service"]["jurisdiction"]) == ("Microsoft Corporation", "US")
    assert dest["service"]["basis"] == "domain"
    assert dest["infrastructure"]["controller"] == "Akamai Technologies, Inc."


def test_a_curated_domain_is_never_overridden() -> None:
    listed, curated = _listed(), _hand_written()
    assert not set(listed) & set(curated)  # the shipped file adds only what nobody has
    source = {"url": "https://example.org/l", "says": "a list", "accessed": "2026-12-07", "verified": False}
    own = {
        "group": "A",
        "sources": {"s": source},
        "entities": [
            {
                "id": "a-corp",
                "schema": "Company",
                "name": "A Corp",
                "domains": ["a.example"],
                "sources": ["s"],
            },
            {
                "id": "b-corp",
                "schema": "Company",
                "name": "B Corp",
                "domains": ["b.example"],
                "sources": ["s"],
            },
        ],
    }
    generated = {
        "group": "Lists",
        "sources": {"l": source},
        "entities": [],
        "listed_domains": {"b-corp": {"l": ["a.example", "b2.example"]}, "nobody": {"l": ["n.example"]}},
    }
    entities, _, problems = check_groups({"a.yaml": own, "lists.json": generated})
    by_id = {e.id: e for e in entities}
    assert by_id["a-corp"].domains == ("a.example",)
    assert by_id["b-corp"].domains == ("b.example", "b2.example")
    assert [s.id for s in by_id["b-corp"].sources] == ["a.s", "lists.json.l"]
    assert [(p.where, p.what) for p in problems] == [
        ("lists.json: listed_domains.nobody", "entity 'nobody' is not defined in any group file")
    ]
    # and on the shipped data: a hand-written domain keeps its entity
    index = load_index(None)
    for domain in ("microsoft.com", "alipay.com", "yahoo.co.jp", "flickr.com"):
        found = index.match_domain(domain)
        assert found is not None and found.org_id == curated[domain], domain


TREE = {
    "acme": """# Acme's own services
include:acme-cdn
include:acme-games @-ads
include:category-things
include:partner
acme.com
domain:acme.net @cn
full:acme-img.com
full:www.acme.org
keyword:acme
regexp:^acme[0-9]\\.com$
acmeads.com @ads
acme
shared.com
taken.com
alsotaken.com
foo.github.io
github.io
full:acme.akamaized.net
""",
    "acme-cdn": "acmecdn.com\nfull:static.acmecdn.com # a host of a kept domain\n",
    "acme-games": "acmegames.com\nacmegames-ads.com @ads\n",
    "category-things": "thing.com\n",
    "partner": "partnerco.com\n",
    "beta": "betaco.com\nshared.com\n",
    "other": "otherone.com &acme\n",
    "gh": "github.io\n",
}
ENTITIES = {
    "acme-corp": ("Acme Corp", "Acme", ()),
    "beta-corp": ("Beta Ltd", "Beta", ()),
    "github": ("GitHub, Inc.", "Microsoft", ()),
}
LISTS = {"acme": "acme-corp", "beta": "beta-corp", "gh": "github"}


def _repository(tmp_path: Path) -> tuple[Path, str]:
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "lists"
    (repo / "data").mkdir(parents=True)
    for name, text in TREE.items():
        (repo / "data" / name).write_text(text, encoding="utf-8")
    env = ["-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run([git, "init", "-q", str(repo)], check=True)
    subprocess.run([git, "-C", str(repo), "add", "data"], check=True)
    subprocess.run([git, "-C", str(repo), *env, "commit", "-q", "-m", "lists"], check=True)
    # a later commit the importer must not read when told the first one
    (repo / "data" / "beta").write_text("betaco.com\nshared.com\nlater.com\n", encoding="utf-8")
    subprocess.run([git, "-C", str(repo), *env, "commit", "-q", "-am", "later"], check=True)
    first = subprocess.run(
        [git, "-C", str(repo), "rev-parse", "HEAD~1"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return repo, first


def test_the_importer_keeps_exactly_the_plain_domains_of_each_company(tmp_path: Path) -> None:
    script = _script()
    repo, first = _repository(tmp_path)
    texts, commit = script.read_lists(repo / ".git", first)
    assert commit == first and "later.com" not in texts["beta"]
    claimed = {"taken.com": "beta-corp", "alsotaken.com": "acme-corp"}
    result = script.resolve(texts, LISTS, ENTITIES, claimed, excluded={})
    assert result.kept == {
        "acme-corp": {
            "acme": ["acme-img.com", "acme.com", "acme.net"],
            "acme-cdn": ["acmecdn.com"],
            "acme-games": ["acmegames.com"],
            "other": ["otherone.com"],
            "partner": ["partnerco.com"],
        },
        "beta-corp": {"beta": ["betaco.com"]},
        "github": {"gh": ["github.io"]},  # the shared suffix's own operator
    }
    assert result.conflicts == ["shared.com: acme-corp (acme), beta-corp (beta)"]
    assert result.curated_elsewhere == ["taken.com: curated beta-corp, lists say acme-corp"]
    assert result.unreviewed == [
        f"{name} (included by acme, counted as acme-corp)" for name in ("acme-cdn", "acme-games", "partner")
    ]
    counts = result.counts
    assert (counts["keyword rule"], counts["regexp rule"], counts["tagged @ads"]) == (
        1,
        1,
        1,
    )  # @-ads: never reached
    assert counts["a shared suffix (public suffix list, private section) of another operator"] == 1
    assert counts["a host under a registrable domain, not the domain itself"] == 4
    assert counts["already in the curated registry"] == 2

    # what it writes loads through the real loader onto entities defined elsewhere
    doc = script.document(result, commit, "2026-12-07")
    source = {"url": "https://example.org/a", "says": "Acme", "accessed": "2026-12-07"}
    own = {
        "group": "Acme",
        "sources": {"s": source},
        "entities": [
            {"id": i, "schema": "Company", "name": n, "sources": ["s"]} for i, (n, _, _) in ENTITIES.items()
        ],
    }
    entities, _, problems = check_groups({"acme.yaml": own, NAME: json.loads(json.dumps(doc))})
    assert problems == []
    acme = next(e for e in entities if e.id == "acme-corp")
    assert acme.domains == (
        "acme-img.com",
        "acme.com",
        "acme.net",
        "acmecdn.com",
        "acmegames.com",
        "otherone.com",
        "partnerco.com",
    )
    assert f"/blob/{first}/data/acme-cdn" in next(
        s.url for s in acme.sources if s.id.endswith("v2fly-acme-cdn")
    )


def test_a_list_the_script_maps_by_hand_names_a_defined_entity() -> None:
    script = _script()
    files = {k: v for k, v in read_group_files().items() if k != NAME}
    entities, _, _ = check_groups(files)
    ids = {e.id for e in entities}
    mapping: dict[str, Any] = script.LISTS
    assert not {e for e in [*mapping.values(), *script.REASSIGNED.values()] if e not in ids}
    assert not set(mapping) & set(script.SKIPPED)


def test_the_importer_refuses_a_source_that_is_no_list_repository(tmp_path: Path) -> None:
    script = _script()
    with pytest.raises(script.ImportError_, match="not a readable list repository"):
        script.read_lists(tmp_path, "HEAD")
    assert script.main([str(tmp_path), "--output", str(tmp_path / "out.json")]) == 2
    assert not (tmp_path / "out.json").exists()
