"""A NetFlow v5/v9 and IPFIX collector on UDP: datagrams in, batches of flows out.

:class:`Collector` listens on one UDP address, decodes every datagram
(:mod:`.netflow_decode`: templates and sampling per exporter), and hands out a :class:`Batch` of
canonical flows every ``batch_seconds`` or ``batch_records`` records, with the SHA-256 of the
datagrams it came from (the batch's input id). It stops after ``idle_seconds`` without a datagram
or once ``max_records`` records were decoded. Storing is the caller's (:mod:`derisk.collect`).
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from derisk.errors import InputError, UsageError
from derisk.ingest import sflow
from derisk.ingest.netflow_decode import Chunk, Decoder, Stats, to_table
from derisk.ingest.netflow_pairs import Pairer

_MAX_DATAGRAM: Final = 65_535
_TICK: Final = 0.2


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"udp://{host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """``HOST:PORT`` or ``[IPv6]:PORT``; a UsageError otherwise."""
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--netflow expects HOST:PORT (e.g. 127.0.0.1:2055), got {text!r}")
    return Endpoint(host, int(port))


@dataclass
class Batch:
    flows: list[pa.RecordBatch]
    records: int
    digest: str
    size_bytes: int


class Batcher:
    """Datagrams in, :class:`Batch` out: decoded, their directions paired, and the SHA-256 of the
    datagrams (the batch's input id). Shared by the collector and the replay of exports out of a
    capture (:mod:`.export_capture`)."""

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self._pairer = Pairer()
        self._start()

    def _start(self) -> None:
        self.chunks: list[Chunk] = []
        self.pending = 0
        self.size = 0
        self._digest = hashlib.sha256()

    def add(self, data: bytes, address: str, received_us: int | None = None) -> None:
        self._digest.update(len(data).to_bytes(4, "big") + data)
        self.size += len(data)
        sampled = len(self.decoder.samples)
        for chunk in self.decoder.decode(data, address, received_us):
            self.chunks.append(chunk)
            self.pending += len(chunk)
        self.pending += len(self.decoder.samples) - sampled

    def take(self) -> Batch:
        """What was added since the last batch, as one batch (sFlow samples summed per connection
        direction first, :func:`derisk.ingest.sflow.to_table`)."""
        records = to_table(self.chunks)
        samples = self.decoder.take_samples()
        if samples:
            records = pa.concat_tables([records, sflow.to_table(samples)])
        batch = Batch(list(self._pairer.pair(records)), self.pending, self._digest.hexdigest(), self.size)
        self._start()
        return batch

    def close(self) -> None:
        self._pairer.close()


class Collector:
    """Listens on ``endpoint`` (bound at construction, so a busy port fails before anything runs)."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        idle_seconds: float | None = None,
        max_records: int | None = None,
        batch_seconds: float = 5.0,
        batch_records: int = 50_000,
    ) -> None:
        self.endpoint = endpoint
        self.idle_seconds = idle_seconds
        self.max_records = max_records
        self.batch_seconds = batch_seconds
        self.batch_records = batch_records
        self.decoder = Decoder()
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
            self._sock.bind((endpoint.host, endpoint.port))
        except OSError as exc:
            self._sock.close()
            raise InputError(f"cannot listen ({exc.strerror or exc})", source=str(endpoint)) from None
        self._sock.settimeout(_TICK)

    @property
    def stats(self) -> Stats:
        return self.decoder.stats

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def batches(self) -> Iterator[Batch]:
        """Batches of flows until idle or ``max_records``; the last one holds what was pending."""
        batcher = Batcher(self.decoder)
        last_datagram = time.monotonic()
        batch_started: float | None = None
        try:
            while True:
                now = time.monotonic()
                done = self.max_records is not None and self.stats.records >= self.max_records
                idle = self.idle_seconds is not None and now - last_datagram >= self.idle_seconds
                due = batch_started is not None and (
                    now - batch_started >= self.batch_seconds or batcher.pending >= self.batch_records
                )
                if (done or idle or due) and batcher.size:
                    if done or idle:
                        self.decoder.finish()
                    yield batcher.take()
                    batch_started = None
                if done or idle:
                    self.decoder.finish()
                    return
                try:
                    data, address = self._sock.recvfrom(_MAX_DATAGRAM)
                except TimeoutError:
                    continue
                last_datagram = time.monotonic()
                if batch_started is None:
                    batch_started = last_datagram
                batcher.add(data, address[0])
        finally:
            batcher.close()
