"""Declared dependencies against observed flows, on flow tables in the canonical schema."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from derisk.flows import FLOW_SCHEMA
from derisk.i18n.data import sentence
from derisk.reduce.register import Resolved, build_register, table_resolver
from derisk.reduce.traffic import compare
from derisk.site import parse_site
from test_reduce_measures import site_doc


def flows(rows: list[dict[str, Any]]) -> pa.Table:
    """A FLOW_SCHEMA table; unspecified columns are null (identifiers filled in)."""
    full = [
        {"flow_id": f"f{n}", "input_id": "test:0", "src_ip": "10.0.0.1", "dst_ip": "192.0.2.1", **row}
        for n, row in enumerate(rows)
    ]
    return pa.Table.from_pylist(full, schema=FLOW_SCHEMA)


def out(
    system: str,
    org_id: str | None,
    org: str | None,
    ctrl_id: str | None,
    ctrl: str | None,
    j: str | None,
    size: int,
    direction: str = "outbound",
) -> dict[str, Any]:
    return {
        "direction": direction,
        "system": system,
        "dst_org_id": org_id,
        "dst_org": org,
        "dst_controller_id": ctrl_id,
        "dst_controller": ctrl,
        "dst_jurisdiction": j,
        "bytes_out": size,
    }


RESOLVER = table_resolver(
    {
        "Cainiao": Resolved("Cainiao", "cainiao", "Cainiao", "alibaba", "Alibaba Group", "CN"),
        "Alibaba Cloud": Resolved(
            "Alibaba Cloud", "aliyun", "Alibaba Cloud", "alibaba", "Alibaba Group", "CN"
        ),
        "Hikvision": Resolved(
            "Hikvision",
            "hikvision",
            "Hikvision",
            "sasac",
            "SASAC",
            "CN",
            state_controlled=True,
            controller_is_state=True,
            chain_ids=("hikvision", "cetc"),
        ),
        "Dell": Resolved("Dell", "dell", "Dell", "dell", "Dell Technologies", "US"),
    }
)


def register() -> Any:
    doc = site_doc(
        [
            {"name": "wms", "vendor": "Cainiao", "hosting": "Alibaba Cloud", "hardware": "Dell"},
            {"name": "cctv", "vendor": "Hikvision"},
            {"name": "spare", "vendor": "Dell"},
        ],
        [{"name": "sorting", "systems": ["wms"]}, {"name": "video", "systems": ["cctv", "spare"]}],
    )
    return build_register(parse_site(doc, "t"), RESOLVER)


def test_confirmed_undeclared_declared_without_traffic_and_state_controllers() -> None:
    table = flows(
        [
            out("wms", "aliyun", "Alibaba Cloud", "alibaba", "Alibaba Group", "CN", 1000),
            out("wms", "aliyun", "Alibaba Cloud", "alibaba", "Alibaba Group", "CN", 500),
            out("wms", "tencent", "Tencent Cloud", "tencent-h", "Tencent Holdings", "CN", 300),
            out("wms", None, None, None, None, None, 40),
            out("wms", None, None, None, None, None, 99, direction="internal"),  # the site's resolver
            # cctv to China Telecom: same state controller as Hikvision, but not Hikvision's chain
            out("cctv", "chinatelecom", "China Telecom", "sasac", "SASAC", "CN", 700),
            out("cctv", "hikvision", "Hikvision", "sasac", "SASAC", "CN", 200),
            out("office", "ms", "Microsoft", "ms", "Microsoft", "US", 5000),  # not a register system
        ]
    )
    report = compare(register(), table)
    confirmed = {(c.system, c.role): c for c in report.confirmations}
    # 1000 + 500 bytes in 2 flows to the Alibaba controller confirm both the vendor and the cloud
    assert (confirmed[("wms", "hosting")].bytes_out, confirmed[("wms", "hosting")].flows) == (1500, 2)
    assert confirmed[("wms", "vendor")].bytes_out == 1500
    assert confirmed[("cctv", "vendor")].bytes_out == 200  # only the Hikvision organisation
    kinds = sorted((f.kind, f.subject, f.severity) for f in report.findings)
    assert kinds == [
        ("declared-without-traffic", "wms/hardware", "info"),
        ("system-without-traffic", "spare", "low"),
        ("unattributed-traffic", "wms", "low"),
        ("undeclared-traffic", "cctv->China Telecom", "medium"),
        ("undeclared-traffic", "wms->Tencent Cloud", "medium"),
    ]
    undeclared = next(f for f in report.findings if f.subject == "cctv->China Telecom")
    assert "China Telecom (controlled by SASAC, CN)" in undeclared.sentence
    # internal flows and systems outside the register are not counted
    assert report.bytes_out_by_jurisdiction == {"CN": 1000 + 500 + 300 + 700 + 200, "unknown": 40}


def test_empty_workspace_gives_only_system_findings() -> None:
    report = compare(register(), flows([]))
    assert report.confirmations == ()
    assert sorted(f.subject for f in report.findings) == ["cctv", "spare", "wms"]
    assert {f.kind for f in report.findings} == {"system-without-traffic"}


@pytest.mark.parametrize(
    ("lang", "words"), [("fr", "contrôlé par"), ("nl", "gecontroleerd door"), ("de", "kontrolliert von")]
)
def test_undeclared_traffic_reads_in_the_page_language_names_kept(lang: str, words: str) -> None:
    """The destination's control ("controlled by …") and the size are in the page's language, as the
    plan page shows the finding; the names stay as they are."""
    table = flows([out("cctv", "chinatelecom", "China Telecom", "sasac", "SASAC", "CN", 27_800)])
    finding = next(f for f in compare(register(), table).findings if f.kind == "undeclared-traffic")
    assert "China Telecom (controlled by SASAC, CN)" in finding.sentence
    assert "27.8 kB" in finding.sentence
    shown = sentence(lang, finding.sentence)
    assert f"China Telecom ({words} SASAC, CN)" in shown
    assert "27,8 kB" in shown
    assert "controlled by" not in shown and " sent " not in shown
