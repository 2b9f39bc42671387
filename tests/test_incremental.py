"""Incremental detections (``derisk watch``): the state fed batch by batch gives the alerts of one
batch analysis of the same flows, survives a save and load, and keeps old flows' aggregates when
the flows are aged out."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from derisk.detect import COLUMNS, detect
from derisk.detect.alert import Alert
from derisk.detect.config import DetectionConfig, load_config
from derisk.detect.incremental import DetectionState
from derisk.flows import ATTRIBUTION_FIELDS, FLOW_SCHEMA
from derisk.gen.labelled import generate, harness_laws
from derisk.store.flows import insert_flows, replace_attribution
from derisk.store.workspace import Workspace


def _attribution(flows: pa.Table) -> pa.Table:
    keys = ["dst_asn", "dst_domain", "dst_as_country"]
    cols = keys + [f.name for f in ATTRIBUTION_FIELDS]
    import duckdb

    con = duckdb.connect()
    con.register("f", flows.select(cols))
    table: pa.Table = con.sql("SELECT DISTINCT * FROM f").to_arrow_table()
    con.close()
    return table


def _docs(alerts: list[Alert]) -> list[dict[str, object]]:
    return sorted((a.to_json() for a in alerts), key=lambda d: str(d["alert_id"]))


def _feed(ws: Workspace, flows: pa.Table, cuts: list[int], cfg: DetectionConfig) -> DetectionState:
    """Store ``flows`` batch by batch (cut at ``cuts``), each batch one transaction with the state
    loaded from the workspace, updated and saved in it, as ``derisk watch`` does."""
    attribution = _attribution(flows)
    bounds = [0, *cuts, flows.num_rows]
    state = DetectionState()
    for lo, hi in itertools.pairwise(bounds):
        batch = flows.slice(lo, hi - lo)
        with ws.transaction() as con:
            insert_flows(con, batch)
            replace_attribution(con, attribution)
            state = DetectionState.load(con)
            state.update(
                con, batch.select([c for c in COLUMNS if c in FLOW_SCHEMA.names]), cfg, laws_for=harness_laws
            )
            state.save(con)
    return state


@pytest.fixture(scope="module")
def labelled() -> tuple[pa.Table, DetectionConfig]:
    data = generate(5)
    return data.flows, load_config(None, data.allowlist)


def test_batches_give_the_alerts_of_one_analysis(
    tmp_path: Path, labelled: tuple[pa.Table, DetectionConfig]
) -> None:
    flows, cfg = labelled
    rng = np.random.default_rng(11)
    cuts = sorted(rng.choice(np.arange(1, flows.num_rows), size=3, replace=False).tolist())
    with Workspace.open(tmp_path / "ws") as ws:
        state = _feed(ws, flows, cuts, cfg)
        with ws.transaction() as con:
            reloaded = DetectionState.load(con)
    expected = detect(flows, cfg, laws_for=harness_laws).alerts
    assert expected
    assert _docs(state.current_alerts()) == _docs(expected)
    assert _docs(reloaded.current_alerts()) == _docs(expected)
