#!/usr/bin/env python3
"""Long coverage-guided fuzzing of one reader with atheris (libFuzzer for Python).

    .venv/bin/python scripts/fuzz.py TARGET [--seconds 600] [--corpus DIR] [libFuzzer flags...]
    .venv/bin/python scripts/fuzz.py --list

TARGET is one of ``tests/fuzzing.py``'s targets (capture, zeek, eve, nfcapd, site, deal, ftm,
gleif-lei, gleif-rr, as2org, peeringdb, wikidata, trade). The corpus starts from the project's
fixtures of that format; derisk's modules are instrumented for coverage; a run that makes the
command line exit 1 is a crash, written by libFuzzer as ``crash-*`` in the working directory with
the input that caused it. CI runs the same targets briefly through hypothesis (tests/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from fuzzing import TARGETS, run_target  # noqa: E402

#: derisk's modules that read user files: instrumented for coverage before fuzzing starts.
READERS = (
    "derisk.cli",
    "derisk.ingest",
    "derisk.ingest.pcap",
    "derisk.ingest.zeek",
    "derisk.ingest.eve",
    "derisk.ingest.netflow",
    "derisk.site",
    "derisk.screen.run",
    "derisk.know.importing",
    "derisk.reduce.run",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", choices=sorted(TARGETS))
    parser.add_argument("--list", action="store_true", help="List the targets and their seeds.")
    parser.add_argument(
        "--seconds", type=int, default=600, help="How long to fuzz (libFuzzer's -max_total_time)."
    )
    parser.add_argument(
        "--corpus", type=Path, help="Corpus folder (kept between runs) [default: a temporary one]."
    )
    opts, libfuzzer = parser.parse_known_args()
    if opts.list or not opts.target:
        for name, target in sorted(TARGETS.items()):
            print(f"{name:10} {len(target.seeds)} seeds: {', '.join(p.name for p in target.seeds)}")
        return

    import atheris

    os.environ.setdefault("DERISK_DATA_DIR", str(_ipdata()))
    with atheris.instrument_imports(include=["derisk"]):
        for module in READERS:
            importlib.import_module(module)
    corpus = opts.corpus or Path(tempfile.mkdtemp(prefix=f"derisk-corpus-{opts.target}-"))
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in TARGETS[opts.target].seeds:
        shutil.copy(seed, corpus / f"seed-{seed.parent.name}-{seed.name}")

    def one(data: bytes) -> None:
        run_target(opts.target, data)

    atheris.Setup([sys.argv[0], f"-max_total_time={opts.seconds}", *libfuzzer, str(corpus)], one)
    atheris.Fuzz()


def _ipdata() -> Path:
    """The IP data fixture installed in a temporary data directory (readers need IP data)."""
    from derisk.enrich.update import update

    root = Path(tempfile.mkdtemp(prefix="derisk-fuzz-data-"))
    update(root, source=HERE.parent / "tests" / "fixtures" / "ip-location-db")
    return root


if __name__ == "__main__":
    main()
