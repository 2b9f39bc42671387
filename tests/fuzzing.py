"""Fuzz targets: every reader of derisk, fed mutated real files through the command line.

A target writes the fuzzer's bytes to a file named as its format expects and runs the ``derisk``
command a user would run on it, in-process. Any exit code is fine except 1: the command line turns
every exception that is not a :class:`derisk.errors.DeriskError` into exit 1 ("unexpected error"),
so exit 1 means a reader met input it did not expect, which is a bug.

Used by ``tests/test_fuzz.py`` (a short property-based run in CI, through hypothesis) and by
``scripts/fuzz.py`` (long coverage-guided runs through atheris). Seeds are the project's own small
real-format fixtures (``tests/fixtures``).
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = FIXTURES.parent.parent


@dataclass(frozen=True)
class Target:
    """One reader: seed files, the name the fuzzed file gets, and the command that reads it."""

    seeds: tuple[Path, ...]
    filename: str
    argv: Callable[[Path, Path], list[str]]
    #: Examples per CI run: readers that start a meter or a subprocess get fewer.
    ci_examples: int = 25
    #: Files the reader expects beside the fuzzed one (copied unchanged).
    companions: tuple[Path, ...] = ()
    #: Commands run first, unfuzzed (e.g. the records a relationship file refers to).
    before: Callable[[Path], list[list[str]]] = lambda work: []


def _analyze(path: Path, work: Path) -> list[str]:
    return ["analyze", str(path), "-w", str(work / "ws"), "-q"]


def _import(path: Path, work: Path) -> list[str]:
    return ["entity", "import", str(path), "-w", str(work / "ws")]


def _files(*patterns: str) -> tuple[Path, ...]:
    return tuple(sorted(p for pattern in patterns for p in FIXTURES.glob(pattern) if p.is_file()))


TARGETS: dict[str, Target] = {
    "capture": Target(
        _files("pcap/*.pcap", "pcap/*.pcapng", "pcap/linktypes/*.pcap"), "capture.pcap", _analyze, 8
    ),
    "zeek": Target(_files("zeek/*/conn.log"), "conn.log", _analyze),
    "eve": Target(_files("eve/*.eve.json"), "eve.json", _analyze),
    "nfcapd": Target(_files("netflow/*/nfcapd.*"), "nfcapd.202601010000", _analyze, 10),
    "ipfix": Target(_files("netflow/ipfix/*.ipfix"), "export.ipfix", _analyze, 15),
    # flow exports recorded in a capture (tshark finds them, the collector's decoder reads them)
    "export-capture": Target(
        _files("netflow/sflow/tcpdump-sflow_expanded.pcap", "netflow/sflow/tcpdump-sflow-print-v6.pcap"),
        "exports.pcap",
        lambda path, work: ["collect", "--from-capture", str(path), "-w", str(work / "ws")],
        8,
    ),
    # other tools' formats: the wiretap conversion (captype, editcap) and ERF's link type
    "erf": Target(_files("pcap/wiretap/*.erf"), "capture.erf", _analyze, 8),
    "site": Target(
        _files("../../examples/sites/*.yaml"), "site.yaml", lambda path, work: ["reduce", str(path)]
    ),
    "deal": Target(
        _files("../../examples/deals/*.yaml"), "deal.yaml", lambda path, work: ["screen", str(path)]
    ),
    "ftm": Target(_files("know/*.ftm.json"), "entities.ftm.json", _import),
    "gleif-lei": Target(_files("know/gleif-lei2-*.csv"), "gleif-lei2.csv", _import),
    "gleif-rr": Target(
        _files("know/gleif-rr-*.csv"),
        "gleif-rr.csv",
        _import,
        before=lambda work: [
            ["entity", "import", str(FIXTURES / "know" / "gleif-lei2-sample.csv"), "-w", str(work / "ws")]
        ],
    ),
    "as2org": Target(_files("know/as-org2info-*"), "as-org2info.jsonl", _import),
    "peeringdb": Target(_files("know/peeringdb-*.json"), "peeringdb.json", _import),
    "wikidata": Target(_files("know/wikidata-*.json"), "wikidata.json", _import),
    "trade": Target(
        _files("../../src/derisk/data/trade-sample/BACI_*.csv"),
        "BACI_fuzz_Y2023.csv",
        lambda path, work: ["reduce", "--trade", str(path)],
        companions=_files("../../src/derisk/data/trade-sample/*_sample.csv"),
    ),
}


def run_target(name: str, data: bytes) -> int:
    """Run target ``name`` on ``data``; return the exit code (1 means a bug)."""
    from derisk.cli import main

    target = TARGETS[name]
    work = Path(tempfile.mkdtemp(prefix=f"derisk-fuzz-{name}-"))
    try:
        path = work / target.filename
        path.write_bytes(data)
        for companion in target.companions:
            shutil.copy(companion, work / companion.name)
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            for argv in target.before(work):
                if main(argv) != 0:
                    raise AssertionError(f"{name}: preparing failed: {sink.getvalue()[-600:]}")
            code = main(target.argv(path, work))
        if code == 1:
            raise AssertionError(f"{name}: exit 1 on {len(data)} bytes: {sink.getvalue()[-600:]}")
        return code
    finally:
        shutil.rmtree(work, ignore_errors=True)


def seed_bytes(name: str) -> list[bytes]:
    return [path.read_bytes() for path in TARGETS[name].seeds]
