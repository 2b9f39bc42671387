#!/usr/bin/env python3
"""Read every Zeek log folder and Suricata EVE file under some folders, and check the flows against the files.

    .venv/bin/python scripts/sweep_logs.py DIR [DIR ...] [--jsonl OUT] [--cli] [--timeout S]

The captures' sweep (``scripts/sweep_captures.py``) asks "does it read?"; logs say themselves what
they hold, so this one also asks "does it read right?". Inputs found under each DIR:

- **Zeek**: every folder holding a conn log (``conn.log``, ``conn.*.log.gz``, ``conn.json``, ...; a
  file named ``conn*.log`` elsewhere is an input of its own when its folder has no ``conn.log``);
- **EVE**: every file whose first line is a JSON object with an ``event_type`` (any name), and every
  file named ``eve*.json*`` (so that what a user would give as EVE and derisk refuses is seen);
- **nfdump**: files named ``nfcapd.*``.

Each is read with :func:`derisk.ingest.resolve_inputs` and :func:`derisk.ingest.read_input`, as
``derisk analyze`` does, and the outcome is one of ``flows``, ``refused`` (derisk's one-line
error), ``BUG`` (any other exception: what this script is for) or ``TIMEOUT``. Where flows come
out, the script reads the logs itself, line by line in plain Python and independently of derisk's
readers, and compares:

- Zeek: records in the conn logs; the sums of ``orig_ip_bytes`` and
  ``resp_ip_bytes``; the conn uids that an ``ssl.log`` record with ``server_name`` names;
- EVE: ``flow`` events; the sums of ``bytes_toserver`` and ``bytes_toclient`` less 14 bytes a
  packet (``docs/ingest-eve.md``); the flow ids that a ``tls`` or ``quic`` event with ``sni`` names;
  a file without ``flow`` events: the flow ids of its other events and the largest counters each
  flow's events carry (the connections derisk rebuilds, lower bounds);
- nfdump: the byte and packet totals ``nfdump -I`` states (when nfdump is installed).

A difference is printed as ``MISMATCH``. With ``--cli`` each input is also given to ``derisk
analyze`` in a fresh workspace, and its exit code and last line of standard error are recorded.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import signal
import subprocess
import sys
import tempfile
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ZEEK_CONN = re.compile(r"^conn(\.[^/]*)?\.(log|json)(\.gz)?$")
ZEEK_SSL = re.compile(r"^ssl(\.[^/]*)?\.(log|json)(\.gz)?$")
DERISK = Path(sys.executable).with_name("derisk")


class _Timeout(Exception):
    pass


def _alarm(*_: object) -> None:
    raise _Timeout


def _lines(path: Path) -> Iterator[str]:
    opener: Any = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        yield from fh


def _is_eve(path: Path) -> bool:
    try:
        first = next(_lines(path), "")
        obj = json.loads(first)
    except (OSError, ValueError, EOFError):
        return False
    return isinstance(obj, dict) and "event_type" in obj


def _named_eve(path: Path) -> bool:
    """Named like an EVE log (given as such by a user, whether or not it holds EVE lines)."""
    return path.name.startswith("eve") and ".json" in path.name


def _zeek_records(path: Path) -> Iterator[dict[str, str]]:
    """Records of a Zeek log, TSV or JSON, with dotted names (``id_orig_h`` read as ``id.orig_h``)."""
    fields: list[str] = []
    sep = "\t"
    for line in _lines(path):
        line = line.rstrip("\n")
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            yield {re.sub(r"^id_", "id.", k): ("" if v is None else str(v)) for k, v in obj.items()}
        elif line.startswith("#separator"):
            sep = line.split(" ", 1)[1].encode().decode("unicode_escape")
        elif line.startswith("#fields"):
            fields = [re.sub(r"^id_", "id.", f) for f in line.split(sep)[1:]]
        elif line and not line.startswith("#") and fields:
            yield dict(zip(fields, line.split(sep), strict=False))


def _int(value: str | None) -> int:
    try:
        return int(float(value)) if value not in (None, "", "-", "(empty)") else 0
    except ValueError:
        return 0


def expect_zeek(folder: Path) -> dict[str, Any]:
    conns = sorted(p for p in folder.iterdir() if ZEEK_CONN.match(p.name)) if folder.is_dir() else [folder]
    flows = bytes_out = bytes_in = 0
    uids: list[str] = []  # one per record (a uid written twice is two flows, both named)
    for conn in conns:
        for rec in _zeek_records(conn):
            if rec.get("uid") or rec.get("proto"):  # every record; unknown_transport gives a flow too
                flows += 1
                uids.append(rec.get("uid", ""))
                bytes_out += _int(rec.get("orig_ip_bytes"))
                bytes_in += _int(rec.get("resp_ip_bytes"))
    named: set[str] = set()
    if folder.is_dir():
        for ssl in sorted(p for p in folder.iterdir() if ZEEK_SSL.match(p.name)):
            for rec in _zeek_records(ssl):
                if rec.get("server_name") not in (None, "", "-", "(empty)"):
                    named.add(rec.get("uid", ""))
    return {
        "flows": flows,
        "bytes_out": bytes_out,
        "bytes_in": bytes_in,
        "sni_flows": sum(uid in named for uid in uids),
    }


def expect_eve(path: Path) -> dict[str, Any]:
    """What the file's ``flow`` events hold; without any, what its other events hold for the
    connections derisk rebuilds (one per ``flow_id`` of an event with both addresses; bytes the
    largest counters an event carries, less 14 bytes a packet)."""
    flows = bytes_out = bytes_in = 0
    sni: set[int] = set()
    ids: set[int] = set()
    counters: dict[int, list[int]] = {}  # flow id: the largest pkts/bytes toserver/toclient
    for line in _lines(path):
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        kind = obj.get("event_type")
        if kind == "flow":
            f = obj["flow"] if isinstance(obj.get("flow"), dict) else {}
            flows += 1
            ids.add(obj.get("flow_id", 0))
            bytes_out += max(
                _int(str(f.get("bytes_toserver", 0))) - 14 * _int(str(f.get("pkts_toserver", 0))), 0
            )
            bytes_in += max(
                _int(str(f.get("bytes_toclient", 0))) - 14 * _int(str(f.get("pkts_toclient", 0))), 0
            )
        elif kind in ("tls", "quic") and isinstance(obj.get(kind), dict) and obj[kind].get("sni"):
            sni.add(obj.get("flow_id", 0))
        connection = isinstance(obj.get("flow_id"), int) and obj.get("src_ip") and obj.get("dest_ip")
        if kind not in ("flow", "netflow", "stats", None) and connection:
            f = obj["flow"] if isinstance(obj.get("flow"), dict) else {}
            seen = [
                _int(str(f.get(k, 0)))
                for k in ("pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient")
            ]
            old = counters.setdefault(obj["flow_id"], [0, 0, 0, 0])
            counters[obj["flow_id"]] = [max(a, b) for a, b in zip(old, seen, strict=True)]
    if flows == 0 and counters:
        return {
            "flows": len(counters),
            "bytes_out": sum(max(c[2] - 14 * c[0], 0) for c in counters.values()),
            "bytes_in": sum(max(c[3] - 14 * c[1], 0) for c in counters.values()),
            "sni_flows": len(sni & set(counters)),
        }
    return {"flows": flows, "bytes_out": bytes_out, "bytes_in": bytes_in, "sni_flows": len(sni & ids)}


def expect_nfcapd(path: Path) -> dict[str, Any]:
    """Totals ``nfdump -I`` states for the file (records are paired into flows, so no flow count)."""
    try:
        out = subprocess.run(
            ["nfdump", "-r", str(path), "-I"], capture_output=True, text=True, timeout=120
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    stated = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    if "Bytes" not in stated:
        return {}
    return {"bytes": int(stated["Bytes"]), "packets": int(stated["Packets"])}


def find_inputs(dirs: list[Path]) -> list[tuple[str, Path]]:
    found: set[tuple[str, Path]] = set()
    for top in dirs:
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if not path.is_file() or path.stat().st_size == 0:
                continue
            if ZEEK_CONN.match(path.name):
                has_plain = any(
                    ZEEK_CONN.match(p.name) and p.name.startswith("conn.") for p in path.parent.iterdir()
                )
                if path.name.startswith("conn.") or not has_plain:
                    found.add(("zeek", path.parent if path.name.startswith("conn.") else path))
            elif path.name.startswith("nfcapd."):
                found.add(("nfcapd", path))
            elif _named_eve(path) or (
                path.suffix in (".json", ".log", ".gz", ".ndjson", ".jsonl") and _is_eve(path)
            ):
                found.add(("eve", path))
    return sorted(found, key=lambda kp: str(kp[1]))


def sweep_one(kind: str, path: Path, timeout: int) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    from derisk.errors import DeriskError
    from derisk.ingest import read_input, resolve_inputs

    row: dict[str, Any] = {"input": str(path), "kind": kind}
    table: pa.Table | None = None
    signal.alarm(timeout)
    try:
        specs = resolve_inputs([path])
        tables = [pa.Table.from_batches(list(read_input(spec))) for spec in specs]
        table = pa.concat_tables(tables) if tables else None
        row["format"] = ",".join(s.format for s in specs)
        row["warnings"] = [str(w)[:300] for s in specs for w in s.notes.get("warnings", [])]
        if table is None:
            row.update(outcome="flows", flows=0)
        else:
            sni = pc.equal(table["server_name_source"], "sni")
            row.update(
                outcome="flows",
                flows=table.num_rows,
                bytes_out=pc.sum(table["bytes_out"]).as_py() or 0,
                bytes_in=pc.sum(table["bytes_in"]).as_py() or 0,
                sni_flows=pc.sum(pc.fill_null(sni, False).cast(pa.int64())).as_py() or 0,
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
    if row["outcome"] == "flows" and kind == "nfcapd" and table is not None:
        row["bytes"] = (row["bytes_out"] or 0) + (row["bytes_in"] or 0)
        row["packets"] = sum(pc.sum(table[c]).as_py() or 0 for c in ("packets_out", "packets_in"))
        expected = expect_nfcapd(path)
        row["expected"] = expected
        row["mismatch"] = {k: (row.get(k), v) for k, v in expected.items() if row.get(k) != v}
    if row["outcome"] == "flows" and kind in ("zeek", "eve"):
        expected = expect_zeek(path) if kind == "zeek" else expect_eve(path)
        row["expected"] = expected
        row["mismatch"] = {k: (row.get(k), v) for k, v in expected.items() if row.get(k) != v}
    return row


def run_cli(path: Path, timeout: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sweep-ws-") as ws:
        try:
            done = subprocess.run(
                [str(DERISK), "analyze", str(path), "--workspace", ws, "-q"],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"cli_exit": "TIMEOUT"}
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    return {"cli_exit": done.returncode, "cli_stderr": lines[-1][:300] if lines else ""}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--jsonl", type=Path, help="write one JSON line per input here")
    parser.add_argument("--cli", action="store_true", help="also run `derisk analyze` on each input")
    parser.add_argument("--timeout", type=int, default=300, help="seconds an input may take (default 300)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    previous = signal.signal(signal.SIGALRM, _alarm)
    rows = []
    out = args.jsonl.open("w") if args.jsonl else None
    for kind, path in find_inputs(args.dirs):
        row = sweep_one(kind, path, args.timeout)
        if args.cli:
            row.update(run_cli(path, args.timeout))
        rows.append(row)
        if out is not None:
            out.write(json.dumps(row) + "\n")
            out.flush()
        said = row.get("message", row.get("flows"))
        print(f"{row['outcome']:8} {kind:6} {said} {row.get('cli_exit', '')} {path}", file=sys.stderr)
    if out is not None:
        out.close()
    outcomes = Counter((r["kind"], r["outcome"]) for r in rows)
    print(f"{len(rows)} inputs: " + ", ".join(f"{n} {k} {o}" for (k, o), n in sorted(outcomes.items())))
    for r in rows:
        if r["outcome"] in ("BUG", "TIMEOUT"):
            print(f"  {r['outcome']}: {r['input']}: {r.get('message', '')}")
        elif r["outcome"] == "refused":
            print(f"  refused: {r['message']}")
        elif r.get("mismatch"):
            print(
                f"  MISMATCH {r['input']}: "
                + ", ".join(f"{k} derisk {a} file {b}" for k, (a, b) in r["mismatch"].items())
            )
    signal.signal(signal.SIGALRM, previous)
    return 1 if any(r["outcome"] in ("BUG", "TIMEOUT") or r.get("mismatch") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
