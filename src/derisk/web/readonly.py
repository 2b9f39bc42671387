"""What the dashboard reads from a workspace, cached until the CLI next writes it.

Each request opens the workspace read-only (:func:`derisk.store.readonly.open_readonly`) and closes
it at the end, so ``derisk analyze`` can take its turn. Whole-workspace aggregates (the analysis
document, alerts, the control graph, hourly traffic) are cached under the database's fingerprint
(:func:`derisk.store.readonly.fingerprint`): a write by the CLI changes it and the next request
recomputes them.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from derisk.analysis import UNKNOWN_JURISDICTION, build_document
from derisk.know.graph import Graph, load_graph
from derisk.site import Site
from derisk.store import readonly as store
from derisk.store.readonly import ReadOnlyWorkspace, SharedReader

T = TypeVar("T")


@dataclass
class Snapshot:
    """Whole-workspace aggregates as of one fingerprint."""

    doc: dict[str, Any]
    alerts: list[dict[str, Any]]
    entity_ids: dict[str, str]
    hourly: list[dict[str, Any]]
    run: dict[str, Any] | None
    #: Width of the traffic-over-time slots (rates are still shown per hour).
    slot_minutes: int = 60
    extra: dict[str, Any] = field(default_factory=dict)

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        return next((a for a in self.alerts if a.get("alert_id") == alert_id), None)

    def destination(self, ip: str) -> dict[str, Any] | None:
        return next((d for d in self.doc["destinations"] if d["ip"] == ip), None)


class WorkspaceReader:
    """Read-only, time-limited, cached access to one workspace for the dashboard."""

    def __init__(
        self,
        path: Path,
        *,
        time_limit: float = store.DEFAULT_TIME_LIMIT,
        warm_time_limit: float = 120.0,
        idle: float = 2.0,
    ) -> None:
        self.path = path
        self.shared = SharedReader(path, idle=idle)
        self.time_limit = time_limit
        self.warm_time_limit = warm_time_limit
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, ...], Any]] = {}

    @contextmanager
    def view(self, time_limit: float | None = None) -> Iterator[ReadOnlyWorkspace]:
        with self.shared.view(time_limit or self.time_limit) as v:
            yield v

    def cached(
        self, key: str, compute: Callable[[ReadOnlyWorkspace], T], view: ReadOnlyWorkspace | None = None
    ) -> T:
        """``compute(view)`` cached under the workspace's current fingerprint."""
        fp = store.fingerprint(self.path)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == fp:
            value: T = hit[1]
            return value
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == fp:
                return hit[1]  # type: ignore[no-any-return]
            if view is not None:
                value = compute(view)
            else:
                with self.view(self.warm_time_limit) as v:
                    value = compute(v)
            self._cache[key] = (fp, value)
            return value

    def snapshot(self) -> Snapshot:
        return self.cached("snapshot", _build_snapshot)

    def graph(self) -> Graph:
        return self.cached("graph", lambda v: load_graph(v.ws))

    def search_index(self) -> list[dict[str, Any]]:
        return self.cached("search", store.search_index)

    def search(self, text: str, limit: int = 50) -> list[dict[str, Any]]:
        """Destinations whose address, server name, DNS name, domain, organisation, controller or
        system contains ``text`` (case-insensitive), most flows first."""
        needle = text.casefold()
        hits: dict[str, dict[str, Any]] = {}
        for row in self.search_index():
            fields = (
                "ip",
                "server_name",
                "dns_query",
                "domain",
                "organisation",
                "as_org",
                "controller",
                "system",
            )
            if not any(needle in str(row[f] or "").casefold() for f in fields):
                continue
            hit = hits.get(row["ip"])
            if hit is None:
                hits[row["ip"]] = hit = {**row, "flows": 0}
            hit["flows"] += int(row["flows"])
            if not hit["server_name"] and row["server_name"]:
                hit["server_name"] = row["server_name"]
        return sorted(hits.values(), key=lambda h: (-h["flows"], h["ip"]))[:limit]

    def warm(self) -> None:
        """Compute the cached aggregates now (called in a thread when the server starts)."""
        self.snapshot()
        self.graph()
        self.search_index()


#: (longest period, slot width in minutes): at most a few hundred points on the trend chart.
_SLOTS = ((6 * 3600, 5), (24 * 3600, 15), (14 * 86400, 60), (90 * 86400, 360))


def slot_minutes(first: str | None, last: str | None) -> int:
    """A slot width for the trend chart that gives enough points for the capture's period."""
    if not first or not last:
        return 60
    span = (
        dt.datetime.fromisoformat(last.replace("Z", "+00:00"))
        - dt.datetime.fromisoformat(first.replace("Z", "+00:00"))
    ).total_seconds()
    return next((minutes for longest, minutes in _SLOTS if span <= longest), 1440)


def _build_snapshot(view: ReadOnlyWorkspace) -> Snapshot:
    run = store.latest_run(view)
    alerts = [json.loads(d) for d in store.stored_alerts(view)]
    # the whole workspace, not one run: what a run ingested is not part of this view (null)
    run_doc: dict[str, Any] = {
        "run_id": None,
        "started_at": None,
        "ingested": None,
        "already_present": None,
        "ipdata_version": None,
        "registry_version": None,
        "input_notes": None,
    }
    if run:
        run_doc |= {
            "run_id": run["run_id"],
            "started_at": run["started_at"].isoformat() if run.get("started_at") else None,
            "ipdata_version": run.get("ipdata_version"),
            "registry_version": run.get("registry_version"),
        }
    site = Site(name=run["site"] if run else None, internal_networks=(), systems=())
    doc = build_document(view.ws, site, input_ids=None, run=run_doc, alerts=alerts)
    slot = slot_minutes(doc["period"]["first_seen"], doc["period"]["last_seen"])
    return Snapshot(
        doc=doc,
        alerts=alerts,
        entity_ids=store.entity_ids(view),
        hourly=store.hourly(view, UNKNOWN_JURISDICTION, slot),
        slot_minutes=slot,
        run=run,
    )


def report_series(path: Path, doc: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The time chart's series for a report of ``doc`` written right after an analysis of the
    workspace at ``path``: bytes per slot and controlling jurisdiction, and the slot width."""
    slot = slot_minutes(doc["period"]["first_seen"], doc["period"]["last_seen"])
    with store.open_readonly(path) as view:
        return store.hourly(view, UNKNOWN_JURISDICTION, slot), slot
