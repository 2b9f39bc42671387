"""The hook ``derisk analyze`` calls: detect over the workspace's flows and store the alerts."""

from __future__ import annotations

import logging
from typing import Any

from derisk.detect import COLUMNS, config_for_site, detect
from derisk.detect.alert import Alert, LawsFor, with_listings
from derisk.flows import FLOW_SCHEMA
from derisk.store.alerts import read_flows_compact, replace_alerts
from derisk.store.workspace import Workspace

log = logging.getLogger(__name__)


def detect_in_workspace(
    ws: Workspace, site: Any, input_ids: list[str] | None = None, *, laws_for: LawsFor | None = None
) -> list[Alert]:
    """Run every detection on the workspace's flows (only the columns they read) and replace the stored
    alerts, inside the transaction the caller holds. ``input_ids`` is informational: detections always
    look at every flow of the workspace, for beacons and baselines need the whole history."""
    config = config_for_site(site)
    columns = [c for c in COLUMNS if c in FLOW_SCHEMA.names]
    flows = read_flows_compact(ws, columns)
    result = detect(flows, config, laws_for=laws_for)
    alerts = _with_listings(ws, result.alerts)
    replace_alerts(ws, alerts, result.suppressed, con=ws.con)
    log.info("%d alerts from %d flows (inputs: %s)", len(alerts), result.flows, ", ".join(input_ids or []))
    return alerts


def _with_listings(ws: Workspace, alerts: list[Alert]) -> list[Alert]:
    """Name the sanctioned or listed entities (OpenSanctions/FtM imports) of the control chain of the
    organisations the alerts' flows were attributed to (combined, service and infrastructure)."""
    from derisk.know.risk import listing_lookup

    lookup = listing_lookup(ws) if alerts else None
    if lookup is None:
        return alerts
    ids = sorted({f for a in alerts for f in a.flow_ids})
    table = ws.query_arrow(
        "SELECT DISTINCT flow_id, dst_org_id, dst_service_org_id, dst_infra_org_id FROM flows_attributed"
        " WHERE flow_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    )
    orgs: dict[str, list[str]] = {}
    for row in table.to_pylist():
        found = (row["dst_org_id"], row["dst_service_org_id"], row["dst_infra_org_id"])
        orgs.setdefault(row["flow_id"], []).extend(v for v in found if v)

    def entities_of(alert: Alert) -> list[str]:
        return list(dict.fromkeys(o for f in alert.flow_ids for o in orgs.get(f, [])))

    return with_listings(alerts, entities_of, lookup)
