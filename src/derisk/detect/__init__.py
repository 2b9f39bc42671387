"""Detections: covert channels and data leaving for compelled jurisdictions.

Each detection is a pure function of the flow table (:data:`derisk.flows.FLOW_SCHEMA`) that returns
:class:`~derisk.detect.alert.Alert` objects with their evidence and sentence:

========================  ===================================  ==========================
kind                      module                               per
========================  ===================================  ==========================
beacon, strobe            :mod:`derisk.detect.beacon`          host × server name / IP
long-connection           :mod:`derisk.detect.longconn`        host × IP
dns-tunnel                :mod:`derisk.detect.dnstunnel`       registrable domain
upload                    :mod:`derisk.detect.upload`          system × destination / system
new-destination           :mod:`derisk.detect.newdest`         system × destination / site
compelled-transfer        :mod:`derisk.detect.compelled`       system × controller
========================  ===================================  ==========================

:func:`run_detections` reads the site's ``detection`` and ``allowlist`` sections, leaves out allowed
flows, runs every detection and returns the alerts, most severe first.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, Final

import numpy as np
import pyarrow as pa

from derisk.detect.alert import Alert, LawsFor
from derisk.detect.allowlist import Suppression, allow_masks
from derisk.detect.beacon import detect_beacons
from derisk.detect.compelled import detect_compelled
from derisk.detect.config import DetectionConfig, load_config
from derisk.detect.dnstunnel import detect_dns_tunnels
from derisk.detect.longconn import detect_long_connections
from derisk.detect.newdest import detect_new_destinations
from derisk.detect.segments import coalesce_codes, column, flow_times, outbound_frame
from derisk.detect.upload import detect_uploads

log = logging.getLogger(__name__)

__all__ = ["Alert", "DetectionConfig", "DetectionResult", "detect", "run_detections"]

#: (kinds, detector, partitionable). A partitionable detection looks at one system (or internal host)
#: at a time, so a large table can be cut by system/host and analysed part by part in bounded memory.
DETECTORS: Final[tuple[tuple[tuple[str, ...], Any, bool], ...]] = (
    (("beacon", "strobe"), detect_beacons, True),
    (("long-connection",), detect_long_connections, True),
    (("dns-tunnel",), detect_dns_tunnels, False),
    (("upload",), detect_uploads, True),
    (("new-destination",), partial(detect_new_destinations, scopes=("destination",)), True),
    (("new-destination",), partial(detect_new_destinations, scopes=("organisation", "jurisdiction")), False),
    (("compelled-transfer",), detect_compelled, True),
)

#: Rows per part when a table is analysed part by part.
PARTITION_ROWS: Final = 1_000_000

#: Columns the detections read; everything else is left unread.
COLUMNS: Final = (
    "flow_id",
    "direction",
    "system",
    "first_seen",
    "last_seen",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "protocol",
    "bytes_out",
    "bytes_in",
    "server_name",
    "dns_query",
    "dst_asn",
    "dst_as_org",
    "dst_domain",
    "dst_org",
    "dst_controller",
    "dst_jurisdiction",
    "dst_jurisdiction_basis",
)


@dataclass(frozen=True)
class DetectionResult:
    alerts: list[Alert]
    suppressed: list[Suppression] = field(default_factory=list)
    flows: int = 0
    skipped_missing_time: int = 0
    skipped_future_time: int = 0
    reversed_times: int = 0

    def summary_json(self) -> dict[str, Any]:
        return {
            "flows": self.flows,
            "alerts": len(self.alerts),
            "suppressed": [s.to_json() for s in self.suppressed],
            "skipped_missing_time": self.skipped_missing_time,
            "skipped_future_time": self.skipped_future_time,
            "reversed_times": self.reversed_times,
        }


MERGED_KINDS: Final = ("beacon", "strobe", "long-connection")


def merge_hosts(alerts: list[Alert]) -> list[Alert]:
    """One alert per (kind, system, destination) for the kinds in :data:`MERGED_KINDS`: twelve cameras
    beaconing to one cloud are one finding with twelve hosts, not twelve findings."""
    groups: dict[tuple[str, str, str], list[Alert]] = {}
    out: list[Alert] = []
    for a in alerts:
        if a.kind in MERGED_KINDS and a.system:
            groups.setdefault((a.kind, a.system, a.destination), []).append(a)
        else:
            out.append(a)
    for members in groups.values():
        members.sort(key=lambda a: (-a.score, a.src_ip or ""))
        top = members[0]
        if len(members) > 1:
            hosts = sorted({m.src_ip for m in members if m.src_ip})
            evidence = {
                **top.evidence,
                "host_count": len(hosts),
                "hosts": hosts[:50],
                "host_scores": [{"src_ip": m.src_ip, "score": m.score} for m in members[:50] if m.src_ip],
            }
            top = replace(
                top,
                evidence=evidence,
                flow_count=sum(m.flow_count for m in members),
                first_seen=min((m.first_seen for m in members if m.first_seen), default=None),
                last_seen=max((m.last_seen for m in members if m.last_seen), default=None),
            )
        out.append(top)
    return out


def _no_laws(_: str) -> list[Any]:
    return []


def default_laws_for() -> LawsFor:
    """:func:`derisk.know.laws.laws_for` when that capability is installed, else no laws."""
    try:
        from derisk.know.laws import laws_for
    except ImportError:
        log.warning("derisk.know.laws is not available: alerts will not name compelling laws")
        return _no_laws
    fn: LawsFor = laws_for
    return fn


def detect(
    flows: pa.Table,
    config: DetectionConfig,
    *,
    laws_for: LawsFor | None = None,
    now: datetime | None = None,
    kinds: tuple[str, ...] | None = None,
    partition_rows: int = PARTITION_ROWS,
) -> DetectionResult:
    """Run the detections on ``flows`` with ``config``; alerts sorted most severe first.

    Tables of more than ``partition_rows`` rows are analysed part by part (cut by system, else by
    internal host) for the detections that look at one system at a time; the others see every flow.
    Windows and baselines are cut from the whole table's clock in every part, so the result is the same.
    """
    laws = laws_for or default_laws_for()
    cache: dict[str, list[Any]] = {}

    def cached_laws(jurisdiction: str) -> list[Any]:
        if jurisdiction not in cache:
            cache[jurisdiction] = list(laws(jurisdiction))
        return cache[jurisdiction]

    table = flows.select([c for c in COLUMNS if c in flows.column_names])
    masks, suppressed = allow_masks(table, config.allowlist)
    frame = outbound_frame(table, now)
    parts = max(1, math.ceil(table.num_rows / max(partition_rows, 1)))
    part_of = None
    if parts > 1:
        part_of = (coalesce_codes(column(table, "system"), column(table, "src_ip")) % parts).astype(np.int32)
    alerts: list[Alert] = []
    for part in range(parts):  # loop over parts (few), each analysed vectorised
        views: dict[tuple[int, ...], pa.Table] = {}
        for kind_group, detector, partitionable in DETECTORS:
            if kinds is not None and not set(kind_group) & set(kinds):
                continue
            if not partitionable and part > 0:
                continue
            applying = tuple(
                i for i, e in enumerate(config.allowlist) if any(e.applies_to(k) for k in kind_group)
            )
            key = (*applying, -1 if partitionable else -2)
            if key not in views:
                keep = np.ones(table.num_rows, dtype=bool)
                for i in applying:
                    keep &= ~masks[i]
                if partitionable and part_of is not None:
                    keep &= part_of == part
                views[key] = table if keep.all() else table.filter(pa.array(keep))
            found = detector(views[key], config, cached_laws, now=now, frame=frame)
            alerts.extend(a for a in found if kinds is None or a.kind in kinds)
        views.clear()
    alerts = merge_hosts(alerts)
    alerts.sort(key=lambda a: (-a.severity_rank, -a.score, a.kind, a.destination, a.src_ip or ""))
    times = flow_times(table, now)
    if times.missing or times.future:
        log.warning(
            "%d flows without a start time and %d with a start time in the future were left out of time-based detections",
            times.missing,
            times.future,
        )
    return DetectionResult(
        alerts=alerts,
        suppressed=suppressed,
        flows=table.num_rows,
        skipped_missing_time=times.missing,
        skipped_future_time=times.future,
        reversed_times=times.reversed,
    )


def config_for_site(site: Any) -> DetectionConfig:
    """The detection settings of a :class:`derisk.site.Site` (ConfigError when they are invalid)."""
    sections = getattr(site, "sections", {}) or {}
    source = str(getattr(site, "path", None) or "site file")
    return load_config(sections.get("detection"), sections.get("allowlist"), source=source)


def run_detections(
    flows: pa.Table, site: Any, *, laws_for: LawsFor | None = None, now: datetime | None = None
) -> list[Alert]:
    """Every alert for ``flows`` under the site's detection settings and allow-list."""
    return detect(flows, config_for_site(site), laws_for=laws_for, now=now).alerts
