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
