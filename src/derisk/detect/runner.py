"""The hook ``derisk analyze`` calls: detect over the workspace's flows and store the alerts."""

from __future__ import annotations

import logging
from typing import Any

from derisk.detect import COLUMNS, config_for_site, detect
from derisk.detect.alert import Alert, LawsFor
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
    replace_alerts(ws, result.alerts, result.suppressed, con=ws.con)
    log.info(
        "%d alerts from %d flows (inputs: %s)", len(result.alerts), result.flows, ", ".join(input_ids or [])
    )
    return result.alerts
