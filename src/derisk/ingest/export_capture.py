"""NetFlow/IPFIX and sFlow exports recorded in a capture, replayed into the collector's decoder.

Sites and CERTs keep captures of a router's exports (``tcpdump udp port 2055``) rather than a
collector's files. ``derisk analyze`` would meter such a capture as what it is, UDP from a router
to a collector; ``derisk collect --from-capture FILE`` instead reads the exported records out of it,
as the collector would have received them on the wire. Wireshark's dissectors find the export
datagrams (``tshark -Y cflow``, with IP fragments reassembled, any link type or capture format
tshark reads); each datagram's UDP payload goes to the collector's decoder (:mod:`.netflow_decode`)
with the exporter's address from the capture, in capture order.

Wireshark's NetFlow/IPFIX dissector listens on UDP ports 2055, 9996, 4739 and 4740 by default, its
sFlow dissector on 6343; a NetFlow/IPFIX exporter on another port is named with ``--export-port``
(tshark's "decode as"). sFlow datagrams are dated by the time the capture recorded them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from derisk.errors import InputError
from derisk.ingest.collector import Batch, Batcher
from derisk.ingest.netflow_decode import Decoder, Stats

#: Records per batch when replaying (a batch is one stored input, as the collector's are).
_BATCH_RECORDS: Final = 50_000


def _tshark() -> str:
    found = shutil.which("tshark")
    if found is None:
        raise InputError(
            "reading exports out of a capture needs tshark (Debian package tshark)", source="tshark"
        )
    return found


def datagrams(path: Path, ports: tuple[int, ...] = ()) -> Iterator[tuple[bytes, str, int]]:
    """The NetFlow/IPFIX and sFlow datagrams Wireshark finds in ``path``, with their exporter's
    address and the time the capture recorded them (microseconds)."""
    command = [_tshark(), "-r", str(path.absolute()), "-n", "-Y", "cflow or sflow", "-T", "fields"]
    command += ["-E", "separator=/t"]
    for port in ports:
        command += ["-d", f"udp.port=={port},cflow"]
    command += ["-e", "frame.time_epoch", "-e", "ip.src", "-e", "ipv6.src", "-e", "udp.payload"]
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                when, src4, src6, payload = [*line.rstrip(b"\n").split(b"\t"), b"", b"", b""][:4]
                # the outer IP header carries the export (sFlow's sampled packets add inner ones)
                address = (src4 or src6).split(b",")[0].decode("ascii", "replace")
                seconds, _, fraction = when.decode("ascii").partition(".")
                time_us = int(seconds or 0) * 1_000_000 + int(fraction[:6].ljust(6, "0"))
                for hexed in payload.split(b","):  # a datagram carrying several exports: each one
                    if hexed:
                        yield bytes.fromhex(hexed.decode("ascii")), address, time_us
        finally:
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
            proc.stdout.close()
        if code != 0:
            errors.seek(0)
            said = [
                line
                for line in errors.read(4096).decode("utf-8", "replace").splitlines()
                if "Running as user" not in line
            ]
            text = " ".join(" ".join(said).replace(str(path.absolute()), "").split())
            raise InputError(
                f"tshark cannot read it: {text[:200] or f'exit status {code}'}", source=str(path)
            )


class CaptureExports:
    """The exports in a capture as the collector hands out its batches (same decoder, same pairing)."""

    def __init__(
        self, path: Path, *, ports: tuple[int, ...] = (), batch_records: int = _BATCH_RECORDS
    ) -> None:
        if not path.is_file():
            raise InputError("no such capture file", source=str(path))
        self.path = path
        self.endpoint = path  # where the batches came from, as the stored inputs name it
        self.ports = ports
        self.batch_records = batch_records
        self.decoder = Decoder()

    @property
    def stats(self) -> Stats:
        return self.decoder.stats

    def batches(self) -> Iterator[Batch]:
        batcher = Batcher(self.decoder)
        try:
            for data, address, time_us in datagrams(self.path, self.ports):
                batcher.add(data, address, time_us)
                if batcher.pending >= self.batch_records:
                    yield batcher.take()
            self.decoder.finish()
            if batcher.size:
                yield batcher.take()
        finally:
            batcher.close()
