"""The labelled harness: deterministic, and every detection at target on it (the numbers in
docs/evaluation.md come from scripts/eval_detect.py over the same generator)."""

from __future__ import annotations

from typing import Any

import pytest

from derisk.detect.evaluate import KINDS, run
from derisk.gen.labelled import generate


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return run(7, allow=True)


def test_same_seed_same_flows() -> None:
    a, b = generate(3), generate(3)
    assert a.flows.equals(b.flows) and a.truth == b.truth


@pytest.mark.parametrize("kind", KINDS)
def test_detection_at_target(report: dict[str, Any], kind: str) -> None:
    s = report["kinds"][kind]
    assert s["positives"] > 0
    assert s["precision"] >= 0.95 and s["recall"] >= 0.95, s


def test_beacon_recall_above_rita(report: dict[str, Any]) -> None:
    ours = report["kinds"]["beacon"]
    assert ours["recall"] > report["rita_default"]["recall"]
    assert ours["precision"] > report["rita_default"]["precision"]
    best = report["rita_equal_precision"]
    assert best is None or best[1]["recall"] < ours["recall"]


def test_dictionary_encoded_flows_give_the_same_alerts() -> None:
    """The compact form used for large tables (string columns dictionary-encoded) changes nothing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from derisk.detect import detect
    from derisk.detect.config import load_config
    from derisk.gen.labelled import harness_laws

    data = generate(5)
    cfg = load_config(None, data.allowlist)
    plain = detect(data.flows, cfg, laws_for=harness_laws)
    encoded = data.flows
    for i, field in enumerate(encoded.schema):
        if pa.types.is_string(field.type) and field.name != "flow_id":
            encoded = encoded.set_column(i, field.name, pc.dictionary_encode(encoded.column(i)))
    compact = detect(encoded, cfg, laws_for=harness_laws)
    assert [a.to_json() for a in compact.alerts] == [a.to_json() for a in plain.alerts]
    assert [s.flows for s in compact.suppressed] == [s.flows for s in plain.suppressed]


def test_analysing_part_by_part_gives_the_same_alerts() -> None:
    from derisk.detect import detect
    from derisk.detect.config import load_config
    from derisk.gen.labelled import harness_laws

    data = generate(6)
    cfg = load_config(None, data.allowlist)
    whole = detect(data.flows, cfg, laws_for=harness_laws)
    parts = detect(data.flows, cfg, laws_for=harness_laws, partition_rows=40_000)
    assert [a.to_json() for a in parts.alerts] == [a.to_json() for a in whole.alerts]
    assert len(whole.alerts) > 50
