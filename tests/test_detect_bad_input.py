"""Bad input never crashes a detection: empty tables, one flow, clock jumps, missing times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derisk.detect import DETECTORS, detect
from derisk.detect.config import DetectionConfig
from derisk.flows import FLOW_SCHEMA
from derisk.gen.labelled import flows_from

T0 = 1_790_000_000.0
NOW = datetime.fromtimestamp(T0 + 86_400, tz=UTC)
CFG = DetectionConfig()


def no_laws(_: str) -> list[Any]:
    return []


def every_detector(flows: pa.Table) -> list[Any]:
    found = []
    for _, detector, _ in DETECTORS:
        found.extend(detector(flows, CFG, no_laws, now=NOW))
    return found


def test_empty_table() -> None:
    assert every_detector(FLOW_SCHEMA.empty_table()) == []
    result = detect(FLOW_SCHEMA.empty_table(), CFG, laws_for=no_laws, now=NOW)
    assert result.alerts == [] and result.flows == 0


def test_table_with_only_some_columns() -> None:
    table = pa.table({"src_ip": ["10.0.0.1"], "dst_ip": ["203.0.113.1"]})
    assert every_detector(table) == []


def test_single_flow() -> None:
    flows = flows_from(
        {
            "first_seen": [T0],
            "last_seen": [T0 + 1],
            "src_ip": ["10.0.0.1"],
            "dst_ip": ["203.0.113.1"],
            "bytes_out": [10],
            "bytes_in": [10],
            "dns_query": ["a.example.com"],
        }
    )
    assert every_detector(flows) == []


def beacon(times: np.ndarray, ends: np.ndarray | None = None) -> dict[str, Any]:
    return {
        "first_seen": list(times),
        "last_seen": list(times + 0.1 if ends is None else ends),
        "src_ip": "10.0.0.7",
        "dst_ip": "203.0.113.5",
        "src_port": list(40000 + np.arange(len(times))),
        "bytes_out": 600,
        "bytes_in": 900,
    }


def test_missing_times_are_left_out_not_fatal() -> None:
    t = (T0 + np.arange(0, 6 * 3600, 60.0)).astype(object)
    t[::7] = None
    cols = beacon(np.where(t == None, 0.0, t).astype(float))  # noqa: E711
    cols["first_seen"] = list(t)
    cols["last_seen"] = [None if v is None else v + 0.1 for v in t]
    result = detect(flows_from(cols), CFG, laws_for=no_laws, now=NOW)
    assert result.skipped_missing_time == len(t[::7])
    assert [a.kind for a in result.alerts] == ["beacon"]  # the rest still beacons


def test_clock_jumps() -> None:
    t = T0 + np.arange(0, 6 * 3600, 60.0)
    ends = t + 0.1
    ends[5] = t[5] - 3600  # clock stepped back: ends before it starts
    cols = beacon(t, ends)
    cols["first_seen"][10] = T0 + 50 * 365 * 86_400.0  # far in the future
    result = detect(flows_from(cols), CFG, laws_for=no_laws, now=NOW)
    assert result.skipped_future_time == 1 and result.reversed_times == 1
    assert [a.kind for a in result.alerts] == ["beacon"]
    assert result.alerts[0].last_seen is not None and result.alerts[0].last_seen.year < 2040


def test_reversed_flow_is_not_a_long_connection() -> None:
    flows = flows_from(
        {
            "first_seen": [T0],
            "last_seen": [T0 - 10 * 3600],
            "src_ip": ["10.0.0.1"],
            "dst_ip": ["203.0.113.1"],
            "src_port": [1],
            "dst_port": [2],
            "protocol": [6],
        }
    )
    assert every_detector(flows) == []


def test_all_times_missing() -> None:
    flows = flows_from(
        {
            "first_seen": [None] * 10,
            "last_seen": [None] * 10,
            "src_ip": ["10.0.0.1"] * 10,
            "dst_ip": ["203.0.113.1"] * 10,
            "bytes_out": [1e9] * 10,
        }
    )
    assert every_detector(flows) == []


def test_hostile_names_stay_bounded_in_sentences() -> None:
    name = "a" * 300 + "\x1b[2J.example.com"
    t = T0 + np.arange(0, 6 * 3600, 60.0)
    cols = beacon(t)
    cols["server_name"] = name
    [alert] = detect(flows_from(cols, len(t)), CFG, laws_for=no_laws, now=NOW).alerts
    assert len(alert.destination) <= 253


@pytest.mark.parametrize("rows", [1, 2, 3])
def test_tiny_tables_for_every_detector(rows: int) -> None:
    t = T0 + np.arange(rows) * 60.0
    flows = flows_from(
        {
            **beacon(t),
            "system": "wms",
            "dst_jurisdiction": "CN",
            "dst_controller": "X",
            "dns_query": [f"{i}.example.com" for i in range(rows)],
        },
        rows,
    )
    assert every_detector(flows) == []


def test_codes_of_chunked_dictionaries_with_repeats_and_nulls() -> None:
    from derisk.detect.segments import codes_of, mask_eq

    c1 = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, None], pa.int32()), pa.array(["a", "b", "a"]))
    c2 = pa.DictionaryArray.from_arrays(pa.array([0, 1, 1], pa.int32()), pa.array(["b", None]))
    arr = pa.chunked_array([c1, c2])
    codes = codes_of(arr)
    plain = codes_of(pa.chunked_array([pa.array(["a", "b", "a", None]), pa.array(["b", None, None])]))
    assert list(codes == codes[0]) == [True, False, True, False, False, False, False]
    assert list(codes >= 0) == list(plain >= 0) == [True, True, True, False, True, False, False]
    assert codes[1] == codes[4]
    assert list(mask_eq(arr, "b")) == [False, True, False, False, True, False, False]


_times = st.one_of(st.none(), st.floats(min_value=-1e10, max_value=4e10, allow_nan=False))
_row = st.fixed_dictionaries(
    {
        "first_seen": _times,
        "last_seen": _times,
        "src_ip": st.sampled_from(["10.0.0.1", "10.0.0.2", "fe80::1"]),
        "dst_ip": st.sampled_from(["203.0.113.1", "203.0.113.2", "not-an-ip"]),
        "bytes_out": st.one_of(st.none(), st.integers(min_value=-5, max_value=10**12)),
        "bytes_in": st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
        "server_name": st.one_of(st.none(), st.sampled_from(["a.example.com", "", ".", "x" * 300])),
        "dns_query": st.one_of(st.none(), st.text(max_size=40)),
        "direction": st.sampled_from(["outbound", "inbound", "internal", "external"]),
        "system": st.one_of(st.none(), st.just("wms")),
        "dst_jurisdiction": st.one_of(st.none(), st.sampled_from(["CN", "", "ZZ"])),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_row, max_size=40))
def test_any_small_table_gives_alerts_or_nothing_never_a_crash(rows: list[dict[str, Any]]) -> None:
    keys = [
        "first_seen",
        "last_seen",
        "src_ip",
        "dst_ip",
        "bytes_out",
        "bytes_in",
        "server_name",
        "dns_query",
        "direction",
        "system",
        "dst_jurisdiction",
    ]
    cols = {k: [r[k] for r in rows] for k in keys}
    flows = flows_from(cols, len(rows))
    result = detect(flows, CFG, laws_for=lambda j: [] if j != "CN" else [object()], now=NOW)
    for alert in result.alerts:
        assert alert.sentence and 0.0 <= alert.score <= 1.0
