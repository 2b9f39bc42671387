"""Sources that arrive on their own: live metering of a network interface (NFStream) and NetFlow/IPFIX.

Both run in a daemon thread that queues what arrives; a batch takes the queue's contents
(:meth:`collect`), and gives them back if its transaction fails (:meth:`abort`), so nothing taken is
lost before it is committed. What was never handed to derisk cannot be checkpointed: a live meter's
flows are handed over when NFStream expires them (``idle_timeout`` / ``active_timeout``), and flows
still open in the meter, or datagrams not yet batched by the collector, are lost when the process
stops (documented in ``docs/watch.md``).

Live metering needs the capture capability (``CAP_NET_RAW``; ``setcap cap_net_raw,cap_net_admin+eip``
on the interpreter, or ``AmbientCapabilities=CAP_NET_RAW`` in the systemd unit). An interface that
is missing or goes away is reported, counted and tried again with a growing pause; it never stops
the watch. NFStream is reached through :mod:`derisk.ingest.nfstream_engine` (its adapter) and the meter
watchdog (:mod:`derisk.ingest.meterwatch`), which also stops a running streamer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import socket
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Final

import duckdb

from derisk.errors import InputError
from derisk.flows import batch_from_columns, input_id_for
from derisk.ingest import nfstream_engine, pcap
from derisk.ingest.meterwatch import MeterWatch
from derisk.live.sources import Chunk, Context, Source

log = logging.getLogger(__name__)

#: Pause before a live source is tried again: doubles from the first to the last value (seconds).
RETRY_S: Final = (1.0, 60.0)
_PORTED: Final = frozenset({6, 17, 132})


def can_capture() -> str | None:
    """None when this process may capture packets; else why not (for ``--check`` and the tests)."""
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)  # type: ignore[attr-defined,unused-ignore]
    except PermissionError:
        return "no capture capability (CAP_NET_RAW): run as root or setcap cap_net_raw,cap_net_admin+eip"
    except (OSError, AttributeError) as exc:
        return f"raw sockets unavailable ({exc})"
    sock.close()
    return None


def interface_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists() or name in {n for _, n in socket.if_nameindex()}


def _row(flow: Any) -> dict[str, Any]:
    server_name, source, dns_query = pcap._names(flow)
    ported = flow.protocol in _PORTED
    return {
        "first_seen": flow.bidirectional_first_seen_ms * 1000,
        "last_seen": flow.bidirectional_last_seen_ms * 1000,
        "src_ip": flow.src_ip,
        "src_port": flow.src_port if ported else None,
        "dst_ip": flow.dst_ip,
        "dst_port": flow.dst_port if ported else None,
        "protocol": flow.protocol,
        "bytes_out": flow.src2dst_bytes,
        "bytes_in": flow.dst2src_bytes,
        "packets_out": flow.src2dst_packets,
        "packets_in": flow.dst2src_packets,
        "server_name": server_name,
        "server_name_source": source,
        "application": pcap._text(flow.application_name),
        "ja4": pcap._text(flow.client_fingerprint),
        "user_agent": pcap._text(flow.user_agent),
        "dns_query": dns_query,
    }


class _Queued:
    """Items queued by a thread; taken per batch, given back if the batch fails."""

    def __init__(self) -> None:
        self.queue: deque[Any] = deque()
        self.taken: list[Any] = []

    def take(self) -> list[Any]:
        while self.queue:
            self.taken.append(self.queue.popleft())
        return list(self.taken)

    def commit(self) -> None:
        self.taken = []


class InterfaceSource(Source):
    """Live metering of one interface through NFStream, with an optional BPF filter."""

    def __init__(
        self, interface: str, *, bpf: str | None = None, idle_timeout: int = 30, active_timeout: int = 300
    ) -> None:
        self.interface = interface
        self.bpf = bpf
        self.idle_timeout = idle_timeout
        self.active_timeout = active_timeout
        self.name = f"interface:{interface}"
        started = dt.datetime.now(dt.UTC).isoformat()
        self.input_id = input_id_for(hashlib.sha256(f"{interface}|{started}".encode()).hexdigest(), "live")
        self.ordinal = 0
        self.items = _Queued()
        self.failures = 0
        self.flows = 0
        self.up = False
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._streamer: Any = None
        self._thread: threading.Thread | None = None

    def restore(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"derisk-live-{self.interface}", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        pause = RETRY_S[0]
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._meter()
            except Exception as exc:  # the interface, libpcap or the meter: report, count, try again
                if self._stop.is_set():
                    return
                self.failures += 1
                self.last_error = " ".join(str(exc).split())[:200] or type(exc).__name__
                log.warning("%s: live metering stopped (%s); trying again in %.0f s", self.interface,
                            self.last_error, pause)  # fmt: skip
            self.up = False
            if time.monotonic() - started > 60:
                pause = RETRY_S[0]
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, RETRY_S[1])

    def _meter(self) -> None:
        if not interface_exists(self.interface):
            raise InputError("no such network interface", source=self.interface)
        nfstream = nfstream_engine.load_nfstream()
        options = {
            **nfstream_engine.NFSTREAM_OPTIONS,
            "idle_timeout": self.idle_timeout,
            "active_timeout": self.active_timeout,
        }
        streamer = nfstream.NFStreamer(source=self.interface, bpf_filter=self.bpf, **options)
        flows = iter(streamer)
        self._streamer = flows
        watch = threading.Thread(target=self._watch_interface, args=(flows,), daemon=True)
        with MeterWatch(flows):
            self.up = True
            watch.start()
            for flow in flows:
                self.items.queue.append(_row(flow))
                if self._stop.is_set():
                    break

    def _watch_interface(self, flows: Any) -> None:
        """An interface that goes away leaves libpcap reading nothing for ever: stop the streamer."""
        while not self._stop.wait(1.0):
            if self._streamer is not flows:
                return
            if not interface_exists(self.interface):
                _interrupt(flows, f"interface {self.interface} went away")
                return

    def collect(self, ctx: Context) -> list[Chunk]:
        rows = self.items.take()
        if not rows:
            return []
        columns = {name: [row[name] for row in rows] for name in rows[0]}
        batch = batch_from_columns(columns)
        return [Chunk(self.input_id, "live", self.name, self.input_id, 0, self.ordinal, [batch])]

    def commit(self) -> None:
        self.ordinal += len(self.items.taken)
        self.flows += len(self.items.taken)
        self.items.commit()

    def abort(self) -> None:
        return None  # what was taken stays taken and goes into the next batch

    def status(self) -> dict[str, Any]:
        return {"up": self.up, "flows": self.flows, "queued": len(self.items.queue),
                "failures": self.failures, "last_error": self.last_error}  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        if self._streamer is not None:
            _interrupt(self._streamer, "derisk watch is stopping")
        if self._thread is not None:
            self._thread.join(timeout=5)


def _interrupt(flows: Any, message: str) -> None:
    """End a running NFStream streamer: its meters stop and its iteration raises ValueError."""
    frame = getattr(flows, "gi_frame", None)
    channel = None if frame is None else frame.f_locals.get("channel")
    if channel is not None:
        MeterWatch._stop(channel, message)


class NetflowSource(Source):
    """NetFlow v5/v9 and IPFIX on UDP through :class:`derisk.ingest.collector.Collector`; each batch of
    datagrams is one input (the SHA-256 of its datagrams, as ``derisk collect`` names it)."""

    def __init__(self, endpoint: str, *, batch_seconds: float = 5.0) -> None:
        from derisk.ingest.collector import Collector, parse_endpoint

        self.endpoint = parse_endpoint(endpoint)
        self.name = f"netflow:{self.endpoint}"
        self.collector = Collector(self.endpoint, batch_seconds=max(0.5, batch_seconds / 2))
        self.items = _Queued()
        self.batches = 0
        self.flows = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def restore(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="derisk-netflow", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        try:
            for batch in self.collector.batches():
                if batch.flows:
                    self.items.queue.append(batch)
        except OSError as exc:
            if not self._stop.is_set():
                self.failures += 1
                log.warning("%s: collector stopped (%s)", self.endpoint, exc)

    def collect(self, ctx: Context) -> list[Chunk]:
        chunks = []
        for batch in self.items.take():
            input_id = input_id_for(batch.digest, "netflow")
            if ctx.con.execute("SELECT 1 FROM inputs WHERE input_id = ?", [input_id]).fetchall():
                continue  # the same datagrams again (a replay): stored already
            chunks.append(Chunk(input_id, "netflow", str(self.endpoint), batch.digest, batch.size_bytes, 0,
                                list(batch.flows)))  # fmt: skip
        return chunks

    def commit(self) -> None:
        self.batches += len(self.items.taken)
        self.flows += sum(sum(f.num_rows for f in b.flows) for b in self.items.taken)
        self.items.commit()

    def abort(self) -> None:
        return None

    def status(self) -> dict[str, Any]:
        stats = self.collector.stats
        return {"batches": self.batches, "flows": self.flows, "queued": len(self.items.queue),
                "datagrams": getattr(stats, "datagrams", None), "failures": self.failures}  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self.collector.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
