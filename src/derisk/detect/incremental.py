"""Detections kept up to date batch by batch, for ``derisk watch``.

:class:`DetectionState` is what ``watch`` holds between batches: it is loaded from the workspace,
updated inside each batch's transaction after the batch's flows were stored and attributed, and saved
in that same transaction, so a restart resumes with exactly the alerts of the committed flows.

This first version recomputes: :meth:`DetectionState.update` runs :func:`derisk.detect.detect` over
every flow of the workspace (O(history) per batch) and reports the alerts that are new or changed.
Its alerts are therefore those of a batch ``derisk analyze`` by construction. :meth:`retain` deletes
the old flows; in this version later alerts no longer count them (the incremental aggregates that
keep them are the next step).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import duckdb
import pyarrow as pa

from derisk.detect import COLUMNS, detect
from derisk.detect.alert import Alert, LawsFor
from derisk.detect.config import DetectionConfig
from derisk.errors import StoreError
from derisk.flows import FLOW_SCHEMA
from derisk.store import detect_state
from derisk.store.alerts import read_flows_compact_con

log = logging.getLogger(__name__)


def _order(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (-a.severity_rank, -a.score, a.kind, a.destination, a.src_ip or ""))


class DetectionState:
    """The current alerts of a workspace and what is needed to keep them current."""

    def __init__(self, alerts: list[Alert] | None = None) -> None:
        self._alerts: dict[str, Alert] = {a.alert_id: a for a in alerts or []}

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection) -> DetectionState:
        """The stored state, or an empty one when none was stored yet."""
        docs = detect_state.read_alert_docs(con)
        return cls([Alert.from_json(d) for d in docs])

    def update(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: pa.Table,
        config: DetectionConfig,
        *,
        laws_for: LawsFor | None = None,
    ) -> list[Alert]:
        """Take in one batch (already stored and attributed in ``con``'s transaction); returns the
        alerts that are new or changed by it, most severe first."""
        columns = [c for c in COLUMNS if c in FLOW_SCHEMA.names]
        flows = read_flows_compact_con(con, columns)
        result = detect(flows, config, laws_for=laws_for)
        changed = self._replace(result.alerts)
        log.debug("batch of %d flows: %d alerts new or changed", batch.num_rows, len(changed))
        return changed

    def _replace(self, alerts: list[Alert]) -> list[Alert]:
        fresh = {a.alert_id: a for a in alerts}
        changed = [
            a for k, a in fresh.items() if k not in self._alerts or self._alerts[k].to_json() != a.to_json()
        ]
        self._alerts = fresh
        return _order(changed)

    def current_alerts(self) -> list[Alert]:
        """Every current alert, most severe first (those of a batch ``derisk analyze``)."""
        return _order(list(self._alerts.values()))

    def save(self, con: duckdb.DuckDBPyConnection) -> None:
        """Store the state in the transaction ``con`` holds."""
        detect_state.write_alert_docs(con, [a.to_json() for a in self.current_alerts()])

    def retain(self, con: duckdb.DuckDBPyConnection, before: dt.datetime) -> None:
        """Delete the flows that started before ``before`` (in the caller's transaction)."""
        if before.tzinfo is None:
            raise ValueError("retain needs an aware datetime (UTC)")
        try:
            con.execute("DELETE FROM flows WHERE first_seen < ?", [before])
        except duckdb.Error as exc:
            raise StoreError(f"could not delete old flows: {exc}") from None

    def summary(self) -> dict[str, Any]:
        return {"alerts": len(self._alerts)}
