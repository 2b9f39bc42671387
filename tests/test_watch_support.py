"""Shared pieces of the ``derisk watch`` tests: a Zeek log set written as Zeek writes it (in pieces,
rotated, archived), the watch process, and the summary two workspaces are compared by.

The logs come from the Zeek generator (:mod:`derisk.gen.zeek`): three hours of a beacon to an
Alibaba Cloud address named by SNI, lookups answered by DNS, HTTP uploads (one large), so that the
detections have something to find and attribution uses every companion log.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from derisk.enrich.ipdata import load_ipdata
from derisk.gen.zeek import Session, ZeekLogs, build_logs, write_logs
from derisk.store.workspace import Workspace

T0 = 1_793_000_000.0
KINDS = ("ssl", "http", "dns", "conn")


def sessions(data_dir: Path, hours: int) -> list[Session]:
    ali = load_ipdata(data_dir).sample_addresses(134963, "DE", 2)
    out = []
    for hour in range(hours):
        base = T0 + hour * 3600
        for k in range(60):
            out.append(
                Session("10.1.0.5", ali[0], base + k * 60, 1200, 400,
                        name="oss-eu-central-1.aliyuncs.com", name_via="sni", service="ssl")
            )  # fmt: skip
        for k in range(20):
            out.append(
                Session("10.9.0.7", "8.8.8.10", base + k * 170 + 5, 900 + k, 12_000,
                        name="www.google.com", name_via="dns-answer")
            )  # fmt: skip
            out.append(
                Session("10.9.0.8", ali[1], base + k * 170 + 9, 5_000_000 if k == 3 else 700 + hour, 300,
                        port=80, name="x.example", name_via="http-host", service="http")
            )  # fmt: skip
    return out


def hourly_logs(staging: Path, data_dir: Path, hours: int = 3) -> list[dict[str, bytes]]:
    """Per hour, the bytes of each log (ssl, http, dns, conn) as Zeek's writer produces them."""
    logs, _ = build_logs(sessions(data_dir, hours), seed=3)
    out = []
    for hour in range(hours):
        lo, hi = T0 + hour * 3600 - 1, T0 + (hour + 1) * 3600 - 1
        part = ZeekLogs(
            conn=[c for c in logs.conn if lo <= c.ts < hi],
            dns=[d for d in logs.dns if lo <= d.ts < hi],
            ssl=[s for s in logs.ssl if lo <= s.ts < hi],
            http=[h for h in logs.http if lo <= h.ts < hi],
        )
        folder = staging / f"hour{hour}"
        written = write_logs(folder, part)
        out.append({kind: written[kind].read_bytes() for kind in KINDS})
    return out


@dataclass
class ZeekWriter:
    """Writes hourly logs into ``target`` piece by piece (pieces cut anywhere, mid-line too), each
    companion a quarter of its bytes ahead of conn.log; rotates each hour's logs to
    ``KIND.STAMP.log`` and gzips every other rotated hour, as an archiver would. The generator's
    conn.log is in session order, not time order, so ahead in bytes is not ahead in time: up to 14
    conn records of an hour reach the disk before the ssl records that name their server, as
    separately buffered writers can do; the watcher must hold them (:mod:`derisk.live.zeekhold`)."""

    target: Path
    hours: list[dict[str, bytes]]
    hour: int = 0
    written: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.target.mkdir(parents=True, exist_ok=True)

    @property
    def done(self) -> bool:
        return self.hour >= len(self.hours)

    def advance(self, fraction: float) -> None:
        """Write about ``fraction`` of an hour more; rotate when the hour is complete."""
        if self.done:
            return
        logs = self.hours[self.hour]
        for kind in KINDS:
            data = logs[kind]
            have = self.written.get(kind, 0)
            ahead = 0.25 if kind != "conn" else 0.0
            share = min(1.0, have / len(data) + fraction + (ahead if have == 0 else 0.0))
            want = len(data) if share >= 1.0 else int(len(data) * share)
            if want > have:
                with (self.target / f"{kind}.log").open("ab") as fh:
                    fh.write(data[have:want])
                    fh.flush()
                    os.fsync(fh.fileno())
                self.written[kind] = want
        if all(self.written.get(kind, 0) == len(logs[kind]) for kind in KINDS):
            if self.hour < len(self.hours) - 1:
                self._rotate()
            else:  # the last hour stays the current log
                self.hour += 1

    def _rotate(self) -> None:
        stamp = f"2026-12-06-{self.hour:02d}-00-00"
        for kind in KINDS:
            rotated = self.target / f"{kind}.{stamp}.log"
            (self.target / f"{kind}.log").rename(rotated)
            if self.hour % 2 == 0:
                with gzip.open(rotated.with_name(rotated.name + ".gz"), "wb") as gz:
                    gz.write(rotated.read_bytes())
                rotated.unlink()
        self.hour += 1
        self.written = {}

    def finish(self) -> None:
        while not self.done:
            self.advance(1.0)


def watch_command(workspace: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "derisk", "watch", "--workspace", str(workspace), *args]


def run_watch(workspace: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        watch_command(workspace, *args), capture_output=True, text=True, timeout=timeout, check=False
    )


def summary(workspace: Path) -> dict[str, Any]:
    """What must be equal after a watch and one batch analyze: flows and bytes per controlling
    jurisdiction, the flows themselves (no flow twice), and the alerts."""
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        jurisdictions = ws.query(
            "SELECT coalesce(dst_jurisdiction, '?'), count(*), sum(bytes_out), sum(bytes_in)"
            " FROM flows_attributed GROUP BY ALL ORDER BY ALL"
        )
        flows = ws.query(
            "SELECT first_seen, src_ip, src_port, dst_ip, dst_port, bytes_out, bytes_in, server_name,"
            " dst_domain, dst_controller FROM flows_attributed ORDER BY ALL"
        )
        alerts = ws.query(
            "SELECT kind, severity, src_ip, destination, controller, jurisdiction, round(score, 6),"
            " first_seen, last_seen FROM alerts ORDER BY ALL"
        )
        ids = ws.query("SELECT count(*), count(DISTINCT flow_id) FROM flows")[0]
    return {"jurisdictions": jurisdictions, "flows": flows, "alerts": alerts, "ids": ids}


def test_writer_rotates_and_archives(tmp_path: Path, data_env: Path) -> None:
    hours = hourly_logs(tmp_path / "staging", data_env)
    writer = ZeekWriter(tmp_path / "logs", hours)
    writer.advance(0.3)
    assert (tmp_path / "logs" / "conn.log").stat().st_size < len(hours[0]["conn"])
    writer.finish()
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert "conn.2026-12-06-00-00-00.log.gz" in names
    assert "conn.2026-12-06-01-00-00.log" in names
    assert "conn.log" in names  # the last hour stays current
    assert (
        gzip.decompress((tmp_path / "logs" / "conn.2026-12-06-00-00-00.log.gz").read_bytes())
        == hours[0]["conn"]
    )
