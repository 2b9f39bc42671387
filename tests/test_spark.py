"""derisk analyze --engine spark: real Spark in local[2] on small data, one session for the whole run.

Equal answers: on the demo hub (its workspace exported to Parquet) and on a generated site (Zeek
logs), the document Spark's results give equals the DuckDB path's, once the run's own time and id
are left out and alerts are sorted by id. Numbers are compared exactly, except floating-point
values, which may differ by 1e-9 relative (:data:`REL_TOL`): a detection that sums per system on
Spark adds in another order than over the whole table. Bad input: one line, its exit code, and no
output folder.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from derisk.cli import main
from test_parquet import traffic, write_site

pytest.importorskip("pyspark", reason="the Spark tests need derisk[spark] (make test installs it)")

MASTER = "local[2]"
#: Relative tolerance for floating-point values between the two engines' documents.
REL_TOL = 1e-9


def same(a: Any, b: Any, path: str = "$") -> list[str]:
    """Where two documents differ (floats within :data:`REL_TOL`); empty when they are equal."""
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=REL_TOL):
            return []
        return [f"{path}: {a!r} != {b!r}"]
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only on one side" for k in sorted(set(a) ^ set(b))]
        for k in sorted(set(a) & set(b)):
            out += same(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in same(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    out = traffic(doc)
    out["alerts"] = sorted(doc["alerts"], key=lambda a: a["alert_id"])
    return out


def test_the_comparison_tolerates_rounding_only() -> None:
    assert same({"score": 0.1 + 0.2, "n": [1, 2]}, {"score": 0.3, "n": [1, 2]}) == []
    assert same({"score": 0.3}, {"score": 0.3 + 1e-6}) == ["$.score: 0.3 != 0.30000099999999996"]
    assert same({"n": 1}, {"n": 2}) == ["$.n: 1 != 2"]
    assert same({"a": [1]}, {"a": [1, 2]}) == ["$.a: 1 items != 2"]


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The one Spark session of the test run (derisk reuses a running session)."""
    from derisk.spark.session import session

    started = session(MASTER)
    yield started
    started.stop()


def _json(args: list[str], out: Path) -> dict[str, Any]:
    assert main([*args, "--json", str(out), "-q"]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spark-gen")
    zeek, site = write_site(root, ipdata_dir)
    return {"root": root, "zeek": zeek, "site": site, "data": ipdata_dir}


def test_spark_equals_duckdb_on_a_generated_site(generated: dict[str, Path], spark: Any) -> None:
    root = generated["root"]
    common = ["--site", str(generated["site"]), "--data-dir", str(generated["data"])]
    local = _json(["analyze", str(generated["zeek"]), "-w", str(root / "ws"), *common], root / "local.json")
    out = root / "spark-out"
    on_spark = _json(
        [
            "analyze",
            "--engine",
            "spark",
            "--master",
            MASTER,
            str(generated["zeek"]),
            "--out",
            str(out),
            *common,
        ],
        root / "spark.json",
    )
    assert on_spark["run"]["engine"] == "spark"
    assert local["alerts"], "the generated site should raise alerts (its beacon)"
    assert same(comparable(on_spark), comparable(local)) == []
    # the results are a dataset that derisk load and the DuckDB path read
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["engine"], manifest["rows"]["flows"]) == ("spark", local["totals"]["flows"])
    assert sorted(p.name for p in (out / "flows").iterdir()) == ["site=generated-hub"]
    assert main(["load", str(out), "-w", str(root / "loaded")]) == 0
    reread = _json(["analyze", str(out), *common], root / "reread.json")
    assert same(comparable(reread), comparable(local)) == []


@pytest.fixture(scope="module")
def demo_dataset(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("spark-demo")
    demo = root / "demo"
    assert main(["demo", "--out", str(demo), "--data-dir", str(ipdata_dir), "--hours", "3"]) == 0
    assert main(["export", "parquet", str(root / "ds"), "-w", str(demo / "workspace")]) == 0
    return {"root": root, "ds": root / "ds", "site": demo / "site.yaml", "data": ipdata_dir}


def test_spark_equals_duckdb_on_the_demo_hub(demo_dataset: dict[str, Path], spark: Any) -> None:
    root, ds = demo_dataset["root"], demo_dataset["ds"]
    common = ["--site", str(demo_dataset["site"]), "--data-dir", str(demo_dataset["data"])]
    duck = _json(["analyze", "--engine", "duckdb", str(ds), *common], root / "duck.json")
    on_spark = _json(
        ["analyze", "--engine", "spark", "--master", MASTER, str(ds), *common], root / "spark.json"
    )
    assert on_spark["run"]["dataset"] is None  # no --out: the results folder was temporary
    kinds = {a["kind"] for a in duck["alerts"]}
    assert {"beacon", "dns-tunnel", "compelled-transfer"} <= kinds
    assert duck["evidence"], "the demo's seed article travels with the dataset"
    assert same(comparable(on_spark), comparable(duck)) == []


# -- bad input ---------------------------------------------------------------------------------


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """derisk in a process of its own (no Spark session running there yet)."""
    return subprocess.run(
        [sys.executable, "-m", "derisk", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
        check=False,
    )


def test_missing_java_is_one_line_and_exit_4(generated: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _cli(
        [
            "analyze",
            "--engine",
            "spark",
            str(generated["zeek"]),
            "--out",
            str(out),
            "--data-dir",
            str(generated["data"]),
        ],
        {"JAVA_HOME": str(tmp_path / "no-java")},
    )
    assert done.returncode == 4
    assert done.stderr == (
        f"derisk: error: Spark needs Java 17 or newer, and none was found on JAVA_HOME={tmp_path / 'no-java'} "
        "(install openjdk-17-jre-headless, or set JAVA_HOME)\n"
    )
    assert not out.exists()


def test_an_unreachable_master_is_one_line_and_exit_4(generated: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _cli(
        [
            "analyze",
            "--engine",
            "spark",
            "--master",
            "spark://127.0.0.1:9",
            str(generated["zeek"]),
            "--out",
            str(out),
            "--data-dir",
            str(generated["data"]),
        ],
        {},
    )
    assert done.returncode == 4
    assert done.stderr.startswith(
        "derisk: error: spark://127.0.0.1:9: Spark master unreachable (127.0.0.1:9: "
    )
    assert done.stderr.count("\n") == 1
    assert not out.exists()


def test_bad_datasets_and_inputs_publish_nothing(
    demo_dataset: dict[str, Path], tmp_path: Path, spark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(demo_dataset["ds"], damaged)
    victim = next((damaged / "flows").rglob("*.parquet"))
    victim.write_bytes(b"PAR1" + b"\0" * 64)
    foreign = tmp_path / "foreign"
    shutil.copytree(demo_dataset["ds"], foreign)
    manifest = json.loads((foreign / "manifest.json").read_text(encoding="utf-8"))
    manifest["schema"] = "derisk.parquet/2"
    (foreign / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    capture = Path(__file__).parent / "fixtures" / "pcap" / "golden.pcap"
    out = tmp_path / "out"
    base = ["analyze", "--engine", "spark", "--master", MASTER, "--out", str(out), "-q"]
    capsys.readouterr()
    assert main([*base, str(damaged)]) == 3
    assert main([*base, str(foreign)]) == 3
    assert main([*base, str(capture)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"derisk: error: {victim}: damaged Parquet file")
    assert err[1].startswith(f"derisk: error: {foreign}: dataset schema 'derisk.parquet/2'")
    assert err[2] == (
        f"derisk: error: {capture}: is a pcap input; the Spark engine reads Zeek log directories and Parquet datasets"
    )
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
def test_the_range_join_finds_what_the_local_lookup_finds(
    spark: Any, ipdata_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bucketed and wide ranges alike (a span limit of 2 buckets makes many ranges wide)."""
    import numpy as np
    import pyarrow as pa

    from derisk.enrich.ipdata import load_ipdata
    from derisk.spark import enrich as spark_enrich

    monkeypatch.setattr(spark_enrich, "MAX_SPAN", 2)
    ipdata = load_ipdata(ipdata_dir)
    tables = spark_enrich.range_tables(ipdata)
    assert tables is not None
    assert all(narrow.num_rows and wide.num_rows for narrow, wide in tables.values())
    rng = np.random.default_rng(3)
    known = [a for asn in (45102, 20940, 35916) for a in ipdata.sample_addresses(asn, None, 4)]
    ips = [".".join(str(o) for o in octets) for octets in rng.integers(0, 256, (400, 4))]
    ips += [*known, "2001:db8::1", "::ffff:8.8.8.8", "fe80::1", "not an address", "10.1.0.5"]
    flows = spark.createDataFrame(
        pa.table(
            {
                "flow_id": [str(i) for i in range(len(ips))],
                "dst_ip": ips,
                "dst_asn": pa.nulls(len(ips), pa.int64()),
            }
        )
    )
    got = {r["dst_ip"]: r for r in spark_enrich.enrich(spark, flows, tables).toArrow().to_pylist()}
    expected = ipdata.lookup(pa.array(ips)).to_pylist()
    assert sum(1 for e in expected if e["asn"] is not None) >= len(known)
    for e in expected:
        row = got[e["ip"]]
        assert (row["dst_asn"], row["dst_as_org"], row["dst_as_country"], row["dst_geo_country"]) == (
            e["asn"],
            e["as_org"],
            e["as_country"],
            e["geo_country"],
        ), e["ip"]


def test_a_bad_line_found_by_an_executor_is_the_local_paths_error(
    generated: dict[str, Path], tmp_path: Path, spark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The driver only recognises a Zeek directory; its lines are read on the executors, which leave a
    bad line out as the local path does, and refuse it with ``--strict`` in the local path's words."""
    bad = tmp_path / "zeek"
    bad.mkdir()
    lines = (generated["zeek"] / "conn.log").read_text(encoding="utf-8").splitlines()
    first = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    lines[first] = "\t".join(["notatime", *lines[first].split("\t")[1:]])
    (bad / "conn.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    common = [str(bad), "--data-dir", str(generated["data"]), "-q"]
    capsys.readouterr()
    assert main(["analyze", *common, "-w", str(tmp_path / "lenient")]) == 0
    lenient = tmp_path / "lenient-spark"
    assert main(["analyze", "--engine", "spark", "--master", MASTER, "--out", str(lenient), *common]) == 0
    assert lenient.exists()
    capsys.readouterr()
    assert main(["analyze", *common, "--strict", "-w", str(tmp_path / "ws")]) == 3
    local = capsys.readouterr().err
    out = tmp_path / "out"
    spark_args = ["analyze", "--engine", "spark", "--master", MASTER, "--out", str(out), "--strict", *common]
    assert main(spark_args) == 3
    assert (
        capsys.readouterr().err
        == local
        == f"derisk: error: {bad / 'conn.log'}: line {first + 1}: ts is not a timestamp: 'notatime'\n"
    )
    assert not out.exists()


def test_spark_detections_equal_the_local_ones_on_labelled_traffic(spark: Any) -> None:
    """Every detection kind (new organisations and jurisdictions, read again on the driver, and the
    allow-list too) on Spark partitions gives what one pass over the whole table gives."""
    from derisk.detect import detect
    from derisk.detect.config import load_config
    from derisk.gen.labelled import generate
    from derisk.spark.detect import run_detections
    from derisk.spark.inputs import spark_schema
    from test_parquet_buckets import two_inputs

    data = generate(7)
    flows = two_inputs(data.flows)
    cfg = load_config(None, data.allowlist)
    whole = detect(flows, cfg)
    with warnings.catch_warnings():  # as derisk.spark.analyse: PySpark 4.3 on pandas 3
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        frame = spark.createDataFrame(flows, schema=spark_schema(flows.schema)).repartition(3)
        alerts, suppressed = run_detections(frame, cfg)
    scopes = {a.to_json()["evidence"].get("scope") for a in whole.alerts if a.kind == "new-destination"}
    assert {"organisation", "jurisdiction"} <= scopes
    assert {"beacon", "dns-tunnel", "upload", "long-connection", "compelled-transfer"} <= {
        a.kind for a in whole.alerts
    }

    def docs(found: list[Any]) -> list[str]:
        return sorted(json.dumps(a.to_json(), sort_keys=True) for a in found)

    assert docs(alerts) == docs(whole.alerts)
    assert [s.flows for s in suppressed] == [s.flows for s in whole.suppressed]
