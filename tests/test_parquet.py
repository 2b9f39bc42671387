"""The Parquet flow store: export, read in place by DuckDB, load into a workspace; bad datasets refused.

The site is generated (:mod:`derisk.gen.zeek`): a few days of traffic from two systems to real
addresses of the IP data fixture, with a beacon, so the dataset has several day partitions and alerts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from derisk import __version__
from derisk.cli import main
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.zeek import Session, build_logs, write_logs
from derisk.store.parquet import SPARK_DRIVER_MEMORY, open_dataset

T0 = 1_780_012_800.0  # 2026-05-29 00:00 UTC
SITE = (
    "site: generated hub\ninternal_networks: [10.1.0.0/16]\nsystems:\n"
    "  - {name: scada, hosts: [10.1.0.0/24]}\n  - {name: office, hosts: [10.1.1.0/24]}\n"
)
#: Keys of the document that describe the run rather than the traffic.
RUN_KEYS = ("generated_at", "run")


def generated_sessions(ipdata_dir: Path, *, days: int = 3) -> list[Session]:
    """Traffic of a small site over ``days`` days: browsing, uploads and an hourly beacon."""
    data = load_ipdata(ipdata_dir)
    alibaba = data.sample_addresses(45102, None, 2)
    akamai = data.sample_addresses(20940, None, 2)
    multacom = data.sample_addresses(35916, None, 1)
    sessions: list[Session] = []
    for day in range(days):
        base = T0 + day * 86_400
        for i in range(24):  # an hourly beacon from the SCADA host, with a little jitter
            sessions.append(Session("10.1.0.5", multacom[0], base + i * 3_600 + (i % 3), 900, 300, port=8443))
        for i in range(12):
            sessions.append(
                Session(
                    "10.1.1.20",
                    akamai[i % 2],
                    base + 600 + i * 1_800,
                    4_000 + i * 10,
                    90_000,
                    name="www.tiktok.com",
                    name_via="sni",
                    service="ssl",
                )
            )
        sessions.append(
            Session(
                "10.1.0.7",
                alibaba[day % 2],
                base + 7_200,
                40_000_000 + day,
                20_000,
                name="cainiao.com",
                name_via="sni",
                service="ssl",
                duration=600.0,
            )
        )
    return sessions


def write_site(folder: Path, ipdata_dir: Path, *, days: int = 3) -> tuple[Path, Path]:
    """(Zeek log directory, site file) of the generated site."""
    logs, _ = build_logs(generated_sessions(ipdata_dir, days=days), seed=5)
    zeek = folder / "zeek"
    write_logs(zeek, logs, fmt="tsv")
    site = folder / "site.yaml"
    site.write_text(SITE, encoding="utf-8")
    return zeek, site


def traffic(doc: dict[str, Any]) -> dict[str, Any]:
    """The document without what describes the run (its time and id)."""
    return {k: v for k, v in doc.items() if k not in RUN_KEYS}


def analyse_json(args: list[str], out: Path) -> dict[str, Any]:
    assert main([*args, "--json", str(out), "-q"]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parquet")
    zeek, site = write_site(root, ipdata_dir)
    ws = root / "ws"
    common = ["--site", str(site), "--data-dir", str(ipdata_dir)]
    assert main(["analyze", str(zeek), "-w", str(ws), *common, "--json", str(root / "first.json"), "-q"]) == 0
    # The reference: the workspace analysed again as a whole (what a dataset of it describes).
    analyse_json(["analyze", "-w", str(ws), *common], root / "ws.json")
    assert main(["export", "parquet", str(root / "ds"), "-w", str(ws)]) == 0
    return {"root": root, "ws": ws, "site": site, "ds": root / "ds", "data": ipdata_dir}


def test_the_dataset_is_hive_partitioned_with_a_manifest(exported: dict[str, Path]) -> None:
    ds = exported["ds"]
    manifest = json.loads((ds / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["schema"] == "derisk.parquet/1"
    assert manifest["partitioning"] == ["site", "day"]
    days = sorted(p.name for p in (ds / "flows" / "site=generated-hub").iterdir())
    assert len(days) == 3 and all(d.startswith("day=2026-") for d in days)
    table = pq.read_table(ds / "flows", partitioning="hive")
    assert table.num_rows == manifest["rows"]["flows"] > 100
    assert {"dst_controller", "dst_jurisdiction", "site", "day"} <= set(table.column_names)
    assert manifest["rows"]["alerts"] >= 1
    # no temporary folder left beside it
    assert [p.name for p in ds.parent.iterdir() if p.name.startswith(".ds")] == []


def test_duckdb_reads_the_dataset_into_the_same_document(exported: dict[str, Path]) -> None:
    root = exported["root"]
    common = ["--site", str(exported["site"]), "--data-dir", str(exported["data"])]
    reference = json.loads((root / "ws.json").read_text(encoding="utf-8"))
    explicit = analyse_json(["analyze", "--engine", "duckdb", str(exported["ds"]), *common], root / "d1.json")
    plain = analyse_json(["analyze", str(exported["ds"]), *common], root / "d2.json")
    assert traffic(explicit) == traffic(reference)
    assert traffic(plain) == traffic(reference)
    assert explicit["alerts"] and explicit["run"]["engine"] == "duckdb"


def test_load_puts_the_dataset_in_a_workspace(exported: dict[str, Path]) -> None:
    root = exported["root"]
    common = ["--site", str(exported["site"]), "--data-dir", str(exported["data"])]
    target = root / "loaded"
    assert main(["load", str(exported["ds"]), "-w", str(target)]) == 0
    assert main(["alerts", "-w", str(target), "--json", str(root / "alerts.json")]) == 0
    doc = analyse_json(["analyze", "-w", str(target), *common], root / "loaded.json")
    reference = json.loads((root / "ws.json").read_text(encoding="utf-8"))
    assert traffic(doc) == traffic(reference)
    stored = json.loads((root / "alerts.json").read_text(encoding="utf-8"))
    assert len(stored["alerts"]) == len(reference["alerts"])
    # a second load would replace the flows: refused without --replace, and nothing changes
    assert main(["load", str(exported["ds"]), "-w", str(target)]) == 2
    assert main(["load", str(exported["ds"]), "-w", str(target), "--replace"]) == 0


def _copy(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def test_a_damaged_parquet_file_is_refused_in_one_line(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = _copy(exported["ds"], tmp_path / "ds")
    victim = next((ds / "flows").rglob("*.parquet"))
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    target = tmp_path / "ws"
    capsys.readouterr()
    assert main(["analyze", str(ds), "--data-dir", str(exported["data"]), "-q"]) == 3
    assert main(["load", str(ds), "-w", str(target)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(
        line.startswith(f"derisk: error: {victim}: damaged Parquet file") for line in err
    )
    assert not (target / "derisk.duckdb").exists()


def test_a_dataset_of_another_derisk_version_is_refused(
    exported: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = _copy(exported["ds"], tmp_path / "ds")
    manifest = json.loads((ds / "manifest.json").read_text(encoding="utf-8"))
    manifest["schema"], manifest["derisk_version"] = "derisk.parquet/2", "9.0.0"
    (ds / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    target = _copy(exported["ws"], tmp_path / "ws")
    before = (target / "derisk.duckdb").read_bytes()
    capsys.readouterr()
    assert main(["load", str(ds), "-w", str(target), "--replace"]) == 3
    err = capsys.readouterr().err
    assert err == (
        f"derisk: error: {ds}: dataset schema 'derisk.parquet/2' (written by derisk 9.0.0); "
        f"this derisk {__version__} reads derisk.parquet/1\n"
    )
    assert (target / "derisk.duckdb").read_bytes() == before


def test_a_file_missing_from_the_dataset_is_noticed(exported: dict[str, Path], tmp_path: Path) -> None:
    ds = _copy(exported["ds"], tmp_path / "ds")
    next((ds / "flows").rglob("*.parquet")).unlink()
    assert main(["analyze", str(ds), "--data-dir", str(exported["data"]), "-q"]) == 3


def test_export_never_overwrites_and_publishes_nothing_on_failure(
    exported: dict[str, Path], tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    assert main(["export", "parquet", str(dest), "-w", str(exported["ws"])]) == 2
    assert list(dest.iterdir()) == []
    # a workspace that is not there: nothing published, no temporary folder left behind
    assert main(["export", "parquet", str(tmp_path / "new"), "-w", str(tmp_path / "none")]) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_dataset_memory_limit_comes_from_the_environment(
    exported: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = exported["root"]
    common = ["--site", str(exported["site"]), "--data-dir", str(exported["data"])]
    reference = json.loads((root / "ws.json").read_text(encoding="utf-8"))
    with open_dataset(exported["ds"]) as (ws, _):
        assert ws.query("SELECT current_setting('memory_limit')")[0][0] == "1.8 GiB"  # 2 GB
    # the Spark driver's document: half, so the driver stays under 2 GB beside its JVM
    with open_dataset(exported["ds"], memory_default=SPARK_DRIVER_MEMORY) as (ws, _):
        assert ws.query("SELECT current_setting('memory_limit')")[0][0] == "953.6 MiB"  # 1 GB
    monkeypatch.setenv("DERISK_DATASET_MEMORY", "256MB")
    with open_dataset(exported["ds"]) as (ws, _):
        assert ws.query("SELECT current_setting('memory_limit')")[0][0] == "244.1 MiB"
    with open_dataset(exported["ds"], memory_default=SPARK_DRIVER_MEMORY) as (ws, _):
        assert ws.query("SELECT current_setting('memory_limit')")[0][0] == "244.1 MiB"  # the variable wins
    # the same document under a small limit: the document's queries aggregate distinct values
    small = analyse_json(["analyze", str(exported["ds"]), *common], tmp_path / "small.json")
    assert traffic(small) == traffic(reference)
    monkeypatch.setenv("DERISK_DATASET_MEMORY", "lots")
    capsys.readouterr()
    assert main(["analyze", str(exported["ds"]), *common, "-q"]) == 4
    assert capsys.readouterr().err == (
        "derisk: error: DERISK_DATASET_MEMORY: 'lots' is not a memory size "
        "(expected a number and a unit: 512MB, 4GB, 1.5GiB)\n"
    )
