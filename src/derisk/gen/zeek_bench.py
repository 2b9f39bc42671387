"""A large Zeek conn.log written fast (vectorised chunks), for benchmarks and the scale tests.

Its ledger comes from the generator's own arrays, never from what derisk reads back.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from derisk.gen.zeek import CONN_FIELDS, tsv_header


@dataclass(frozen=True)
class BenchLedger:
    """Totals of a generated benchmark conn.log, from the generator's own arrays."""

    rows: int
    orig_ip_bytes: int
    resp_ip_bytes: int
    uids: tuple[str, ...]  # a sample of uids, for companion logs


def bench_uid(index: pa.Array) -> pa.Array:
    """Deterministic uids for benchmark rows: ``C`` and the zero-padded row number."""
    return pc.binary_join_element_wise("C", pc.utf8_lpad(index.cast(pa.string()), 17, "0"), "")


def write_bench_conn_log(
    path: Path, lines: int, *, seed: int = 1, chunk: int = 200_000, compress: bool = False
) -> BenchLedger:
    """Write a TSV conn.log of ``lines`` records quickly (vectorised chunks), for benchmarks."""
    rng = np.random.default_rng(seed)
    total_out = total_in = 0
    start_us = 1_700_000_000_000_000
    clients = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(500)]
    servers = [f"198.51.{i // 250}.{i % 250 + 1}" for i in range(2000)]
    sample: list[str] = []
    with ExitStack() as stack:
        raw = stack.enter_context(pa.OSFile(str(path), "wb"))
        sink = stack.enter_context(pa.CompressedOutputStream(raw, "gzip")) if compress else raw
        sink.write(tsv_header("conn", CONN_FIELDS, start_us / 1e6).encode())
        done = 0
        while done < lines:
            n = min(chunk, lines - done)
            index = pa.array(np.arange(done, done + n, dtype=np.int64))
            ts_us = start_us + (np.arange(done, done + n, dtype=np.int64) * 3_600) + rng.integers(0, 3_000, n)
            dur_us = rng.integers(1_000, 60_000_000, n)
            pkts_out, pkts_in = rng.integers(1, 400, n), rng.integers(0, 600, n)
            ip_out = pkts_out * 40 + rng.integers(0, 1_400, n) * pkts_out
            ip_in = pkts_in * 40 + rng.integers(0, 1_400, n) * pkts_in
            total_out += int(ip_out.sum())
            total_in += int(ip_in.sum())
            uids = bench_uid(index)
            if len(sample) < 20_000:
                sample.extend(uids.slice(0, min(n, 20_000 - len(sample))).to_pylist())
            proto = np.where(rng.random(n) < 0.85, "tcp", "udp")
            service = np.where(
                proto == "udp", "dns", np.array(["ssl", "ssl", "http", "-"])[rng.integers(0, 4, n)]
            )
            port = np.where(proto == "udp", 53, np.where(service == "http", 80, 443))

            def fixed(values: np.ndarray, scale: int = 1_000_000) -> pa.Array:
                whole = pa.array(values // scale).cast(pa.string())
                part = pc.utf8_lpad(pa.array(values % scale).cast(pa.string()), 6, "0")
                return pc.binary_join_element_wise(whole, part, ".")

            table = pa.table(
                {
                    "ts": fixed(ts_us),
                    "uid": uids,
                    "orig_h": pa.array(np.array(clients)[rng.integers(0, len(clients), n)]),
                    "orig_p": pa.array(rng.integers(1024, 65535, n)).cast(pa.string()),
                    "resp_h": pa.array(np.array(servers)[rng.integers(0, len(servers), n)]),
                    "resp_p": pa.array(port).cast(pa.string()),
                    "proto": pa.array(proto),
                    "service": pa.array(service),
                    "duration": fixed(dur_us),
                    "orig_bytes": pa.array(np.maximum(ip_out - 40 * pkts_out, 0)).cast(pa.string()),
                    "resp_bytes": pa.array(np.maximum(ip_in - 40 * pkts_in, 0)).cast(pa.string()),
                    "conn_state": pa.array(np.full(n, "SF")),
                    "local_orig": pa.array(np.full(n, "T")),
                    "local_resp": pa.array(np.full(n, "F")),
                    "missed_bytes": pa.array(np.full(n, "0")),
                    "history": pa.array(np.full(n, "ShADadFf")),
                    "orig_pkts": pa.array(pkts_out).cast(pa.string()),
                    "orig_ip_bytes": pa.array(ip_out).cast(pa.string()),
                    "resp_pkts": pa.array(pkts_in).cast(pa.string()),
                    "resp_ip_bytes": pa.array(ip_in).cast(pa.string()),
                    "tunnel_parents": pa.array(np.full(n, "(empty)")),
                }
            )
            pacsv.write_csv(
                table,
                sink,
                write_options=pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none"),
            )
            done += n
        sink.write(b"#close\t2023-11-15-00-00-00\n")
    return BenchLedger(lines, total_out, total_in, tuple(sample))
