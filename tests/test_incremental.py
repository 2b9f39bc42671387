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
    ws: Workspace,
    flows: pa.Table,
    cuts: list[int],
    cfg: DetectionConfig,
    reload_at: frozenset[int] | set[int] = frozenset(),
    catching_up: frozenset[int] | set[int] = frozenset(),
) -> DetectionState:
    """Store ``flows`` batch by batch (cut at ``cuts``), each batch one transaction in which the state
    is updated and saved, as ``derisk watch`` does; at the batches in ``reload_at`` the state is loaded
    back from the workspace first (a restart); the batches in ``catching_up`` may put off scoring."""
    attribution = _attribution(flows)
    state = DetectionState()
    for i, (lo, hi) in enumerate(itertools.pairwise([0, *cuts, flows.num_rows])):
        batch = flows.slice(lo, hi - lo)
        with ws.transaction() as con:
            insert_flows(con, batch)
            replace_attribution(con, attribution)
            if i in reload_at:
                state = DetectionState.load(con, cached=False)
            state.update(con, batch.select(_COLS), cfg, laws_for=harness_laws, catching_up=i in catching_up)
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
    tmp_path: Path,
    labelled: tuple[pa.Table, DetectionConfig],
    expected: list[dict[str, object]],
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Random batch splits with a restart; with seed 2 the window's per-row records are read from
    their files at every use (no part cached in memory)."""
    import derisk.detect.incremental_arrays as arrays

    if seed == 2:
        monkeypatch.setattr(arrays, "CACHE_BYTES", 0)
    flows, cfg = labelled
    rng = np.random.default_rng(seed)
    parts = int(rng.integers(5, 40))
    cuts = sorted(rng.choice(np.arange(1, flows.num_rows), size=parts - 1, replace=False).tolist())
    reload_at = {int(rng.integers(1, parts))}
    with Workspace.open(tmp_path / "ws") as ws:
        state = _feed(ws, flows, cuts, cfg, reload_at)
        with ws.transaction() as con:
            reloaded = DetectionState.load(con, cached=False)
    assert _docs(state.current_alerts()) == expected
    assert _docs(reloaded.current_alerts()) == expected


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_scoring_put_off_while_catching_up_gives_the_same_alerts(
    tmp_path: Path,
    labelled: tuple[pa.Table, DetectionConfig],
    expected: list[dict[str, object]],
    seed: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches taken in while catching up (window scoring put off until enough rows wait), restarts
    while scoring waits, then one scoring at the end (``score``, after a last restart with nothing
    new to read), the window scored in groups of hosts: the alerts of one analysis. With seeds 4 and
    6 no part of the window's per-row records is cached in memory (each read from its file)."""
    import derisk.detect.incremental as incremental
    import derisk.detect.incremental_arrays as arrays
    import derisk.detect.incremental_rows as rows

    flows, cfg = labelled
    monkeypatch.setattr(incremental, "DEFER_ROWS", 2_000)
    monkeypatch.setattr(incremental, "DEFER_GROWTH", 1 if seed == 6 else 3)  # scored more or less often
    monkeypatch.setattr(incremental, "DEFER_WINDOWS", 0.0 if seed == 6 else 1.0)
    if seed != 5:
        monkeypatch.setattr(arrays, "CACHE_BYTES", 0)
    monkeypatch.setattr(rows, "SCORE_ROWS", 3_000)
    rng = np.random.default_rng(seed)
    parts = int(rng.integers(10, 40))
    cuts = sorted(rng.choice(np.arange(1, flows.num_rows), size=parts - 1, replace=False).tolist())
    catching = {i for i in range(parts) if rng.random() < 0.8}
    reload_at = {int(r) for r in rng.integers(1, parts, 3)}
    deferred = 0
    with Workspace.open(tmp_path / "ws") as ws:
        state = _feed(ws, flows, cuts, cfg, reload_at, catching | {parts - 1})
        assert state.pending  # the last batch was taken in while catching up: its scoring waits
        with ws.transaction() as con:
            state = DetectionState.load(con, cached=False)  # a restart with nothing new to read
            assert state.pending
            changed = state.score(con, cfg, laws_for=harness_laws)
            state.save(con)
            deferred = len(changed)
        with ws.transaction() as con:
            reloaded = DetectionState.load(con, cached=False)
    assert deferred and not state.pending
    assert _docs(state.current_alerts()) == expected
    assert _docs(reloaded.current_alerts()) == expected


def test_catching_up_waits_for_the_log_to_move_on_a_window(
    tmp_path: Path, labelled: tuple[pa.Table, DetectionConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While catching up, the window is not scored before the newest start is a window length (24 h)
    past the first one, however many rows wait; past it, it is (the log spans two days)."""
    import derisk.detect.incremental as incremental

    flows, cfg = labelled
    monkeypatch.setattr(incremental, "DEFER_ROWS", 2_000)
    attribution = _attribution(flows)
    starts = pc.cast(flows["first_seen"], pa.int64()).to_numpy() / 1e6
    first = float(starts.min())
    state = DetectionState()
    seen: list[tuple[float, bool]] = []
    with Workspace.open(tmp_path / "ws") as ws:
        for lo in range(0, flows.num_rows, 10_000):
            batch = flows.slice(lo, 10_000)
            with ws.transaction() as con:
                insert_flows(con, batch)
                replace_attribution(con, attribution)
                state.update(con, batch.select(_COLS), cfg, laws_for=harness_laws, catching_up=True)
                state.save(con)
            seen.append((float(starts[: lo + batch.num_rows].max()) - first, state.pending))
    day = 24 * 3600.0
    assert all(pending for newest, pending in seen if newest < day)
    assert any(not pending for newest, pending in seen if newest >= day)


def test_window_files_cut_to_their_live_rows_give_the_same_alerts(
    tmp_path: Path, labelled: tuple[pa.Table, DetectionConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every part's file written again as soon as it holds a dropped row (a two-hour window, so rows
    leave it during the feed): the rows read back are still the buffer's, and the alerts those of one
    analysis."""
    import derisk.detect.incremental as incremental
    import derisk.detect.incremental_arrays as arrays

    flows, cfg = labelled
    cfg = cfg.with_values("beacon", window_hours=2.0)
    want = _docs(detect(flows, cfg, laws_for=harness_laws).alerts)
    monkeypatch.setattr(incremental, "REWRITE_ROWS", 0)
    monkeypatch.setattr(arrays, "CACHE_BYTES", 0)  # the per-row records too, from their files
    cuts = np.linspace(0, flows.num_rows, 30, dtype=np.int64)[1:-1].tolist()
    with Workspace.open(tmp_path / "ws") as ws:
        state = _feed(ws, flows, cuts, cfg)
    assert want and _docs(state.current_alerts()) == want
    assert int(state.rows.written.sum()) < state.seq  # dropped rows were cut from the files
    assert int(state.rows.written.sum()) <= 2 * state.buffer_rows


def test_host_groups_cut_between_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    import derisk.detect.incremental_rows as rows

    monkeypatch.setattr(rows, "SCORE_ROWS", 10)
    hosts = np.random.default_rng(3).integers(-1, 6, 40)
    hosts = np.r_[hosts, np.full(12, 7)]
    groups = rows.host_groups(hosts)
    joined = np.concatenate(groups)
    assert sorted(joined.tolist()) == list(range(len(hosts)))  # every row once
    for g in groups:
        assert (np.diff(g) > 0).all()  # in the original order
        assert len(g) <= 10 or len(set(hosts[g].tolist())) == 1
    owner = {int(h): i for i, g in enumerate(groups) for h in hosts[g].tolist()}
    assert all(owner[int(h)] == i for i, g in enumerate(groups) for h in hosts[g].tolist())
    assert len(groups) > 1
    assert [len(g) for g in rows.host_groups(hosts[:10])] == [10]


def _zeek_logs(folder: Path) -> None:
    """Two days of Zeek logs: a beacon every 5 minutes, a three-hour connection, a large upload on
    the second day, and background sessions to many servers."""
    from derisk.gen.zeek import Session, build_logs, write_logs

    t0 = 1_790_000_000.0
    rng = np.random.default_rng(4)
    sessions = [
        Session(
            "10.1.0.5",
            "203.0.113.7",
            t0 + i * 300.0 + float(rng.normal(0, 2)),
            900,
            400,
            name="c2.example.net",
        )
        for i in range(500)
    ]
    sessions.append(Session("10.1.0.6", "198.51.100.9", t0 + 3_600.0, 40_000, 9_000, duration=3 * 3_600.0))
    sessions.append(Session("10.1.0.7", "192.0.2.44", t0 + 40 * 3_600.0, 400_000_000, 20_000, duration=600.0))
    for _ in range(400):
        server = f"198.51.100.{int(rng.integers(10, 250))}"
        sessions.append(
            Session(
                f"10.1.0.{int(rng.integers(8, 40))}",
                server,
                t0 + float(rng.uniform(0, 48 * 3600)),
                5_000,
                80_000,
            )
        )
    logs, _ = build_logs(sessions, seed=9)
    write_logs(folder, logs, fmt="tsv")


@pytest.mark.parametrize("source", ["zeek", "pcap"])
def test_real_formats_in_random_batches(tmp_path: Path, data_env: Path, source: str) -> None:
    """Flows read from generated Zeek logs and from a real capture (the golden pcap) through
    ``derisk analyze``, then fed to a new workspace in random batches: the same alerts."""
    from derisk.cli import main

    if source == "zeek":
        path = tmp_path / "zeek"
        _zeek_logs(path)
    else:
        path = Path(__file__).parent / "fixtures" / "pcap" / "golden.pcap"
    assert main(["analyze", str(path), "-w", str(tmp_path / "a")]) == 0
    with Workspace.open(tmp_path / "a", create=False, read_only=True) as ws:
        flows = ws.read_flows(FLOW_SCHEMA.names)
    flows = flows.take(pc.sort_indices(flows, [("last_seen", "ascending")]))
    cfg = load_config(None, None)
    rng = np.random.default_rng(7)
    cuts = sorted(
        rng.choice(np.arange(1, flows.num_rows), size=min(12, flows.num_rows - 1), replace=False).tolist()
    )
    with Workspace.open(tmp_path / "b") as ws:
        state = _feed(ws, flows, cuts, cfg, {3})
        expected = detect(read_flows_compact(ws, _COLS), cfg, laws_for=harness_laws).alerts
    if source == "zeek":
        assert {a.kind for a in expected} >= {"beacon", "long-connection", "upload"}
    assert _docs(state.current_alerts()) == _docs(expected)


def test_retention_keeps_the_aggregates(tmp_path: Path, labelled: tuple[pa.Table, DetectionConfig]) -> None:
    """Flows aged out between batches: later alerts are those of one analysis of every flow."""
    import datetime as dt

    flows, cfg = labelled
    cfg = cfg.with_values("beacon", window_hours=6.0)
    expected = _docs(detect(flows, cfg, laws_for=harness_laws).alerts)
    split = int(flows.num_rows * 0.7)
    attribution = _attribution(flows)
    with Workspace.open(tmp_path / "ws") as ws:
        state = _feed(ws, flows.slice(0, split), [split // 3, 2 * split // 3], cfg)
        with ws.transaction() as con:
            state.retain(con, dt.datetime.now(dt.UTC))
        left = ws.flow_count()
        assert 0 < left < split  # old flows deleted; the buffer's kept
        for i, (lo, hi) in enumerate(
            itertools.pairwise([split, (split + flows.num_rows) // 2, flows.num_rows])
        ):
            batch = flows.slice(lo, hi - lo)
            with ws.transaction() as con:
                insert_flows(con, batch)
                replace_attribution(con, attribution)
                if i == 1:
                    state = DetectionState.load(con, cached=False)  # a restart after retention
                state.update(con, batch.select(_COLS), cfg, laws_for=harness_laws)
                state.save(con)
    assert _docs(state.current_alerts()) == expected


def test_load_reuses_the_saved_state_and_reads_again_after_a_rollback(
    tmp_path: Path, labelled: tuple[pa.Table, DetectionConfig]
) -> None:
    flows, cfg = labelled
    first, second = flows.slice(0, 30_000), flows.slice(30_000, 30_000)
    attribution = _attribution(flows)
    with Workspace.open(tmp_path / "ws") as ws:
        state = _feed(ws, first, [10_000], cfg)
        kept = _docs(state.current_alerts())
        with ws.transaction() as con:
            assert DetectionState.load(con) is state  # saved last by this process: no read
        with pytest.raises(RuntimeError), ws.transaction() as con:
            insert_flows(con, second)
            replace_attribution(con, attribution)
            state.update(con, second.select(_COLS), cfg, laws_for=harness_laws)
            state.save(con)
            raise RuntimeError("the batch fails before its commit")
        with ws.transaction() as con:
            again = DetectionState.load(con)
        assert again is not state
        assert _docs(again.current_alerts()) == kept
