"""Detections bucket by bucket (derisk.detect.runner, for workspaces and datasets larger than memory)
give exactly what one pass over the whole table gives, on the labelled generator's traffic."""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from derisk.detect import detect
from derisk.detect.config import load_config
from derisk.detect.runner import detect_flows
from derisk.gen.labelled import generate, harness_laws


def two_inputs(flows: pa.Table) -> pa.Table:
    """The labelled flows as two inputs (a day each), so new organisations count."""
    day2 = pc.greater_equal(
        flows.column("first_seen"),
        pa.scalar(pc.min(flows.column("first_seen")).as_py().replace(hour=23, minute=59)),
    )
    ordinals = pa.array(range(flows.num_rows)).cast(pa.string())
    prefix = pc.if_else(day2, "day2", "day1")
    ids = pc.binary_join_element_wise(prefix, ordinals, "#")
    i = flows.schema.get_field_index("flow_id")
    return flows.set_column(i, "flow_id", ids).set_column(
        flows.schema.get_field_index("input_id"), "input_id", prefix
    )


@pytest.mark.parametrize("allow", [True, False])
def test_buckets_equal_one_pass(allow: bool) -> None:
    data = generate(7)
    flows = two_inputs(data.flows)
    cfg = load_config(None, data.allowlist if allow else None)
    whole = detect(flows, cfg, laws_for=harness_laws)
    con = duckdb.connect()
    con.register("arrow_flows", flows)
    con.execute("CREATE TABLE flows_attributed AS SELECT * FROM arrow_flows")
    parts = detect_flows(con, cfg, laws_for=harness_laws, bucket_rows=60_000)
    kinds = {a.kind for a in whole.alerts}
    assert {"beacon", "dns-tunnel", "new-destination", "upload"} <= kinds, kinds
    scopes = {a.to_json()["evidence"].get("scope") for a in whole.alerts if a.kind == "new-destination"}
    assert {"organisation", "jurisdiction"} <= scopes, scopes  # the scopes read in a second pass

    def key(a: object) -> str:
        import json

        return json.dumps(a.to_json(), sort_keys=True)  # type: ignore[attr-defined]

    assert sorted(map(key, parts.alerts)) == sorted(map(key, whole.alerts))
    assert [s.flows for s in parts.suppressed] == [s.flows for s in whole.suppressed]
    assert (parts.flows, parts.skipped_missing_time, parts.skipped_future_time, parts.reversed_times) == (
        whole.flows,
        whole.skipped_missing_time,
        whole.skipped_future_time,
        whole.reversed_times,
    )
