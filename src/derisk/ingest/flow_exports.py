"""A capture of flow exports: a router's NetFlow/IPFIX/sFlow messages recorded on their way to a collector.

Such a capture holds UDP from the exporter to the collector, not the traffic the exports describe;
metering it is right, but a user who gave it to ``derisk analyze`` most likely wanted the exported
flows. nDPI labels the export protocols; when they carry most of a capture's bytes the reader warns
and names ``derisk collect --from-capture``, which reads the exported records
(:mod:`derisk.ingest.export_capture`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

log = logging.getLogger("derisk.ingest.pcap")


#: nDPI's labels of flow-export protocols: a capture of a router's exports, not of the site's traffic.
_EXPORT_LABELS: Final = ("NetFlow", "IPFIX", "sFlow")
#: The UDP ports Wireshark's NetFlow/IPFIX dissector takes without being told.
DISSECTOR_PORTS: Final = frozenset({2055, 9996, 4739, 4740})  # sFlow's dissector takes 6343


class ExportShare:
    """Flows of a capture that carry NetFlow/IPFIX/sFlow exports, by nDPI's label, against all flows."""

    def __init__(self) -> None:
        self.flows = self.bytes = self.all_bytes = 0
        self.ports: set[int] = set()

    def add(self, application: str | None, octets: int, port: int | None) -> None:
        self.all_bytes += octets
        label = (application or "").split(".")[0]
        if label in _EXPORT_LABELS:
            self.flows += 1
            self.bytes += octets
            if label != "sFlow" and port is not None and port not in DISSECTOR_PORTS and len(self.ports) < 8:
                self.ports.add(port)

    def conclude(self, path: Path, notes: dict[str, Any] | None) -> None:
        if not self.flows or self.bytes * 2 < self.all_bytes:
            return
        share = 100 * self.bytes / max(self.all_bytes, 1)
        hint = (
            f"`derisk collect --from-capture {path.name}"
            + "".join(f" --export-port {port}" for port in sorted(self.ports))
            + "` reads the flows they export"
        )
        warning = (
            f"{self.flows:,} flows ({share:.0f}% of the bytes) carry flow exports (nDPI: NetFlow/IPFIX/sFlow): "
            f"this capture records an exporter's messages, not the traffic they describe; {hint}"
        )
        log.warning("%s: %s", path, warning)
        if notes is not None:
            notes["export_flows"] = self.flows
            notes.setdefault("warnings", []).append(warning)
