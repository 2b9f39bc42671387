"""The feed's column-wise paths against its record walk, on every capture of some public repositories.

derisk's feed (``derisk.ingest.feed``) takes whole buffers of a classic pcap (``feed_block``) or a
run of pcapng packet blocks (``feed_pcapng``) column-wise with NumPy, and leaves every case those
paths decline to the record-by-record walk. The tests check both on generated captures; this
script checks them on real ones: for each capture, what the feed writes into the meter's pipe and
its report (records, conversions, wild timestamps, the cut) with the column-wise paths and without
them, as the meter reads it and as the DNS pass's rescan reads it (every frame as Ethernet).

    .venv/bin/python scripts/check_feed_paths.py MIRRORS/the-tcpdump-group+tcpdump ... \\
        [--per-repo 300] [--jsonl results.jsonl]

Each argument is a directory holding a bare clone (``repo``, as the ``fetch`` tool leaves it) or a
folder of capture files. Prints one line per capture that differs or fails, then the counts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from derisk.errors import InputError
from derisk.ingest import feed, feed_block, feed_pcapng
from derisk.ingest.feed import Feed, FeedReport
from derisk.ingest.probe import probe

ENDINGS = (".pcap", ".pcapng", ".cap", ".ntar", ".dmp", ".pcap.gz", ".pcapng.gz")
LFS = b"version https://git-lfs"


#: Buffers the column-wise paths took, by path: a check that they ran, not only the walk.
TAKEN = {"feed_block": 0, "feed_pcapng": 0}


def _counting(module: Any, name: str) -> None:
    real = module.convert

    def convert(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        if made is not None and made.records:
            TAKEN[name] += 1
        return made

    module.convert = convert


def _drink(fifo: Path, out: list[bytes]) -> None:
    with fifo.open("rb") as fh:
        while piece := fh.read(1 << 16):
            out.append(piece)


def fed(path: Path, *, block: bool, ethernet: bool, where: Path) -> tuple[bytes, FeedReport]:
    """What the feed writes into the meter's pipe for ``path``, with or without the column-wise paths."""
    running = Feed(path, probe(path), ethernet=ethernet)
    running.block = block
    fifo = where / f"pipe-{block}-{ethernet}"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=_drink, args=(fifo, got))
    reader.start()
    running.start(fifo)
    report = running.join()
    reader.join(timeout=120)
    running.stop()
    fifo.unlink(missing_ok=True)
    return b"".join(got), report


def captures(source: Path, per_repo: int, out: Path) -> list[tuple[str, Path]]:
    """The capture files of ``source`` (a bare clone under ``repo`` or a folder), copied under ``out``."""
    repo = source / "repo"
    if not repo.is_dir():
        return [(str(p), p) for p in sorted(source.rglob("*")) if p.is_file() and p.name.endswith(ENDINGS)]
    names = subprocess.run(
        ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    picked = [n for n in names if n.lower().endswith(ENDINGS)]
    if len(picked) > per_repo:  # a seeded pick, the same on every run
        picked = sorted(random.Random(7).sample(picked, per_repo))
    found = []
    for number, name in enumerate(picked):
        data = subprocess.run(
            ["git", "-C", str(repo), "show", f"HEAD:{name}"], capture_output=True, check=False
        ).stdout
        if not data or data.startswith(LFS):
            continue
        path = out / f"{source.name}-{number}-{Path(name).name}"
        path.write_bytes(data)
        found.append((f"{source.name}:{name}", path))
    return found


def _said(report: FeedReport) -> FeedReport:
    """The report with its error as text (exceptions compare by identity)."""
    return dataclasses.replace(report, error=str(report.error) if report.error else None)  # type: ignore[arg-type]


def _hung(_signum: int, _frame: object) -> None:
    raise TimeoutError("the feed did not end within 120 s")


def check(label: str, path: Path, where: Path) -> dict[str, object]:
    result: dict[str, object] = {"capture": label}
    signal.signal(signal.SIGALRM, _hung)
    signal.alarm(120)
    try:
        return _check(path, where, result)
    except TimeoutError:  # the feed's thread is left behind: the rest of the run is suspect, so stop
        result["verdict"] = "hung"
        print(json.dumps(result), flush=True)
        raise SystemExit(1) from None
    finally:
        signal.alarm(0)


def _check(path: Path, where: Path, result: dict[str, object]) -> dict[str, object]:
    try:
        found = probe(path)
    except InputError as exc:
        result["verdict"] = "not read"
        result["why"] = str(exc)[:160]
        return result
    result["format"], result["linktype"] = found.fmt, found.linktype
    for ethernet in (False, True):
        fast, fast_report = fed(path, block=True, ethernet=ethernet, where=where)
        walked, walked_report = fed(path, block=False, ethernet=ethernet, where=where)
        if fast != walked or _said(fast_report) != _said(walked_report):
            result["verdict"] = "differs"
            result["ethernet"] = ethernet
            result["reports"] = [repr(fast_report)[:300], repr(walked_report)[:300]]
            return result
        result["records"] = walked_report.records
    result["verdict"] = "same"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--per-repo", type=int, default=300)
    parser.add_argument("--jsonl", type=Path)
    parser.add_argument(
        "--chunk",
        type=int,
        default=3000,
        help="the feed's read size in bytes (default 3000, as the tests: small files then span many buffers, "
        "so that the column-wise paths take more than a file's first buffer)",
    )
    args = parser.parse_args()
    feed._CHUNK = args.chunk
    _counting(feed_block, "feed_block")
    _counting(feed_pcapng, "feed_pcapng")
    counts: dict[str, int] = {}
    by_format: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="derisk-feed-paths-") as tmp:
        work = Path(tmp)
        rows = []
        for source in args.sources:
            for label, path in captures(source, args.per_repo, work):
                row = check(label, path, work)
                rows.append(row)
                verdict = str(row["verdict"])
                counts[verdict] = counts.get(verdict, 0) + 1
                if verdict == "same":
                    key = f"{row['format']} link type {row['linktype']}"
                    by_format[key] = by_format.get(key, 0) + 1
                if verdict == "differs":
                    print(json.dumps(row), flush=True)
                path.unlink(missing_ok=True)
    if args.jsonl:
        args.jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(json.dumps(counts), json.dumps({"column-wise buffers taken": TAKEN}))
    print(json.dumps(dict(sorted(by_format.items(), key=lambda kv: -kv[1]))))


if __name__ == "__main__":
    main()
