"""Incremental detections (``derisk watch``): the state fed batch by batch gives the alerts of one
batch analysis of the same flows, survives a save and load, and keeps old flows' aggregates when
the flows are aged out."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from derisk.detect import COLUMNS, detect
from derisk.detect.alert import Alert
from derisk.detect.config import DetectionConfig, load_config
from derisk.detect.incremental import DetectionState
from derisk.flows import ATTRIBUTION_FIELDS, FLOW_SCHEMA
from derisk.gen.labelled import generate, harness_laws
from derisk.store.alerts import read_flows_compact
from derisk.store.flows import insert_flows, replace_attribution
from derisk.store.workspace import Workspace

_COLS = [c for c in COLUMNS if c in FLOW_SCHEMA.names]


def _attribution(flows: pa.Table) -> pa.Table:
    cols = ["dst_asn", "dst_domain", "dst_as_country"] + [f.name for f in ATTRIBUTION_FIELDS]
    con = duckdb.connect()
    con.register("f", flows.select(cols))
    table: pa.Table = con.sql("SELECT DISTINCT * FROM f").to_arrow_table()
    con.close()
    return table


def _docs(alerts: list[Alert]) -> list[dict[str, object]]:
    return sorted((a.to_json() for a in alerts), key=lambda d: str(d["alert_id"]))


def _feed(
    ws: Workspace, flows: pa.Table, cuts: list[int], cfg: DetectionConfig, reload_at: set[int] = frozenset()
) -> DetectionState:
    """Store ``flows`` batch by batch (cut at ``cuts``), each batch one transaction in which the state
    is updated and saved, as ``derisk watch`` does; at the batches in ``reload_at`` the state is loaded
    back from the workspace first (a restart)."""
    attribution = _attribution(flows)
    state = DetectionState()
    for i, (lo, hi) in enumerate(itertools.pairwise([0, *cuts, flows.num_rows])):
        batch = flows.slice(lo, hi - lo)
        with ws.transaction() as con:
            insert_flows(con, batch)
            replace_attribution(con, attribution)
            if i in reload_at:
                state = DetectionState.load(con)
            state.update(con, batch.select(_COLS), cfg, laws_for=harness_laws)
            state.save(con)
    return state


@pytest.fixture(scope="module")
def labelled() -> tuple[pa.Table, DetectionConfig]:
    data = generate(5)
    # arrival order: exporters write a flow when it ends
    flows = data.flows.take(pc.sort_indices(data.flows, [("last_seen", "ascending")]))
    return flows, load_config(None, data.allowlist)


@pytest.fixture(scope="module")
def expected(labelled: tuple[pa.Table, DetectionConfig]) -> list[dict[str, object]]:
    flows, cfg = labelled
    alerts = detect(flows, cfg, laws_for=harness_laws).alerts
    assert {a.kind for a in alerts} >= {
        "beacon",
        "long-connection",
        "dns-tunnel",
        "upload",
        "new-destination",
    }
    return _docs(alerts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_batches_give_the_alerts_of_one_analysis(
    tmp_path: Path, labelled: tuple[pa.Table, DetectionConfig], expected: list[dict[str, object]], seed: int
) -> None:
    flows, cfg = labelled
    rng = np.random.default_rng(seed)
    parts = int(rng.integers(5, 40))
    cuts = sorted(rng.choice(np.arange(1, flows.num_rows), size=parts - 1, replace=False).tolist())
    reload_at = {int(rng.integers(1, parts))}
    with Workspace.open(tmp_path / "ws") as ws:
        state = _feed(ws, flows, cuts, cfg, reload_at)
        with ws.transaction() as con:
            reloaded = DetectionState.load(con)
    assert _docs(state.current_alerts()) == expected
    assert _docs(reloaded.current_alerts()) == expected
