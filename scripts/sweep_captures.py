#!/usr/bin/env python3
"""Read every capture under some folders with derisk's reader and say what could not be read, and why.

    .venv/bin/python scripts/sweep_captures.py DIR [DIR ...] [--jsonl OUT] [--tshark] [--timeout S]

For each file whose name ends like a capture (``.pcap``, ``.pcapng``, ``.cap``, ``.dmp``, ``.trace``,
other tools' ``.erf``, ``.snoop``, ``.enc``, ``.trc``, ``.ncf``, IPFIX files' ``.ipfix``, also compressed) it runs :func:`derisk.ingest.read_pcap` (through :func:`derisk.ingest.sniff`, as
``derisk analyze`` does) and records one outcome: ``flows`` (with the count and the reader's
warnings), ``refused`` (derisk's one-line error) or ``BUG`` (any other exception, with its traceback:
what this script is for) or ``TIMEOUT``. With ``--tshark``, a file that gives no flow, or is refused,
is also read by tshark, and the IP conversations tshark finds are reported beside it: a capture
derisk cannot read while Wireshark finds IP in it is a gap to look at.

The summary at the end counts outcomes and groups refusals by their message. This is a robustness
sweep, not an accuracy test: ``scripts/eval_formats.py`` compares flows with twins made by other
tools, ``tests/test_linktypes.py`` each link type.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import subprocess
import sys
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ENDINGS = (".pcap", ".pcapng", ".cap", ".dmp", ".trace", ".erf", ".snoop", ".enc", ".trc", ".ncf", ".ipfix")
COMPRESSED = ("", ".gz", ".zst", ".xz", ".bz2", ".lz4")


class _Timeout(Exception):
    pass


def _alarm(*_: object) -> None:
    raise _Timeout


def _is_capture(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and any(name.endswith(e + c) for e in ENDINGS for c in COMPRESSED)


def _tshark_conversations(path: Path) -> int | None:
    try:
        out = subprocess.run(
            ["tshark", "-r", str(path), "-q", "-z", "conv,ip", "-z", "conv,ipv6"],
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.count("<->")


def sweep_one(path: Path, timeout: int) -> dict[str, Any]:
    import pyarrow as pa  # noqa: F401  (loaded before the alarm starts)

    from derisk.errors import DeriskError
    from derisk.ingest import sniff, wiretap
    from derisk.ingest.ipfix_file import read_ipfix_file
    from derisk.ingest.pcap import read_pcap

    row: dict[str, Any] = {"file": str(path), "size": path.stat().st_size}
    signal.alarm(timeout)
    try:
        kind = sniff(path)
        notes: dict[str, Any] = {}
        if kind == "ipfix":
            flows = sum(batch.num_rows for batch in read_ipfix_file(path, notes=notes))
        elif kind in ("pcap", "pcapng") or kind in wiretap.FORMATS:
            flows = sum(batch.num_rows for batch in read_pcap(path, notes=notes))
        else:
            row.update(outcome="other-format", format=kind)
            return row
        row.update(
            outcome="flows",
            format=kind,
            flows=flows,
            warnings=[str(w)[:300] for w in notes.get("warnings", [])],
        )
    except DeriskError as exc:
        row.update(outcome="refused", message=str(exc)[:400])
    except _Timeout:
        row.update(outcome="TIMEOUT")
    except Exception as exc:  # the point of the sweep
        row.update(
            outcome="BUG", message=f"{type(exc).__name__}: {exc}"[:400], traceback=traceback.format_exc()
        )
    finally:
        signal.alarm(0)
    return row


def _kind_of_refusal(message: str, path: str) -> str:
    said = message[len(path) + 2 :] if message.startswith(path + ": ") else message
    return re.sub(r"\d+", "N", said)[:100]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--jsonl", type=Path, help="write one JSON line per file here")
    parser.add_argument("--tshark", action="store_true", help="read files without flows with tshark too")
    parser.add_argument("--timeout", type=int, default=120, help="seconds a file may take (default 120)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the reader's warnings are in each row
    signal.signal(signal.SIGALRM, _alarm)
    files = sorted({p for d in args.dirs for p in ([d] if d.is_file() else d.rglob("*")) if _is_capture(p)})
    rows = []
    out = args.jsonl.open("w") if args.jsonl else None
    for path in files:
        row = sweep_one(path, args.timeout)
        if args.tshark and (row["outcome"] == "refused" or row.get("flows") == 0):
            row["tshark_conversations"] = _tshark_conversations(path)
        rows.append(row)
        if out is not None:
            out.write(json.dumps(row) + "\n")
            out.flush()
    if out is not None:
        out.close()
    outcomes = Counter(r["outcome"] for r in rows)
    print(f"{len(rows)} files: " + ", ".join(f"{n} {k}" for k, n in outcomes.most_common()))
    refusals = Counter(_kind_of_refusal(r["message"], r["file"]) for r in rows if r["outcome"] == "refused")
    for said, n in refusals.most_common(20):
        print(f"  {n:5d} refused: {said}")
    for r in rows:
        if r["outcome"] in ("BUG", "TIMEOUT"):
            print(f"  {r['outcome']}: {r['file']}: {r.get('message', '')}")
        elif args.tshark and r.get("tshark_conversations"):
            got = r.get("flows", r.get("message", ""))
            print(f"  tshark finds {r['tshark_conversations']} IP conversations, derisk: {got}: {r['file']}")
    return 1 if outcomes.get("BUG") or outcomes.get("TIMEOUT") else 0


if __name__ == "__main__":
    sys.exit(main())
