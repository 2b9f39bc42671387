"""The ``measured-exposure`` factor: bytes the target's systems sent to organisations under the investor's control.

Read from a Watch workspace's flows; absence in one capture is stated as such, never as proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.i18n.data import T_, fill
from derisk.screen.factor import RiskFactor

EXPOSURE_COLUMNS: Final = [
    "system",
    "dst_org",
    "dst_org_id",
    "dst_controller",
    "dst_controller_id",
    "dst_jurisdiction",
    "bytes_out",
    "bytes_in",
    "first_seen",
    "last_seen",
]


def exposure_from_flows(
    flows: pa.Table, controller_ids: Sequence[str], names: Sequence[str], workspace: str
) -> RiskFactor:
    """Bytes the site sent to organisations whose controller is the investor's (by graph id or name)."""
    ids = pa.array(sorted(set(controller_ids)), type=pa.string())
    lowered = pa.array(sorted({n.casefold() for n in names}), type=pa.string())
    mask = pc.or_kleene(
        pc.or_kleene(
            pc.is_in(flows["dst_controller_id"], value_set=ids), pc.is_in(flows["dst_org_id"], value_set=ids)
        ),
        pc.or_kleene(
            pc.is_in(pc.utf8_lower(flows["dst_controller"]), value_set=lowered),
            pc.is_in(pc.utf8_lower(flows["dst_org"]), value_set=lowered),
        ),
    )
    hit = flows.filter(pc.fill_null(mask, False))
    title = T_("Measured exposure of the target to the investor's group")
    if hit.num_rows == 0:
        return RiskFactor(
            "measured-exposure",
            title,
            "none-measured",
            fill(
                T_(
                    "No flow in the workspace {workspace} goes to an organisation under the investor's "
                    "controller ({controllers}); absence in one capture is not proof."
                ),
                workspace=workspace,
                controllers=", ".join(names) or "unknown",
            ),
            (fill(T_("{count} flows examined"), count=f"{flows.num_rows}"),),
            f"Watch workspace {workspace}",
            "V",
        )
    grouped = (
        hit.group_by(["system", "dst_org", "dst_jurisdiction"], use_threads=False)
        .aggregate(
            [
                ("bytes_out", "sum"),
                ("bytes_in", "sum"),
                ("bytes_out", "count"),
                ("first_seen", "min"),
                ("last_seen", "max"),
            ]
        )
        .sort_by([("bytes_out_sum", "descending")])
    )
    evidence = []
    for row in grouped.to_pylist()[:10]:
        evidence.append(
            fill(
                T_(
                    "system {system} → {organisation} (control exercised from {jurisdiction}): {sent} bytes "
                    "sent, {received} received, {count} flow, {start} to {end}"
                )
                if row["bytes_out_count"] == 1
                else T_(
                    "system {system} → {organisation} (control exercised from {jurisdiction}): {sent} bytes "
                    "sent, {received} received, {count} flows, {start} to {end}"
                ),
                system=row["system"] or "unlabelled",
                organisation=row["dst_org"] or "unknown organisation",
                jurisdiction=row["dst_jurisdiction"] or "unknown",
                sent=f"{row['bytes_out_sum'] or 0:,}",
                received=f"{row['bytes_in_sum'] or 0:,}",
                count=f"{row['bytes_out_count']}",
                start=_ts(row["first_seen_min"]),
                end=_ts(row["last_seen_max"]),
            )
        )
    sent = pc.sum(hit["bytes_out"]).as_py() or 0
    received = pc.sum(hit["bytes_in"]).as_py() or 0
    controllers = ", ".join(sorted({c for c in hit["dst_controller"].to_pylist() if c})) or "the investor"
    return RiskFactor(
        "measured-exposure",
        title,
        "exposure-measured",
        fill(
            T_(
                "The target's systems already exchange data with organisations under {controllers}: {sent} bytes "
                "sent and {received} received in {flows} flows measured in the workspace {workspace}."
            ),
            controllers=controllers,
            sent=f"{sent:,}",
            received=f"{received:,}",
            flows=hit.num_rows,
            workspace=workspace,
        ),
        tuple(evidence),
        f"Watch workspace {workspace} (flows as of the last analyze)",
        "V",
    )


def _ts(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z") if value is not None else "?"


def measured_exposure(workspace: Path, controller_ids: Sequence[str], names: Sequence[str]) -> RiskFactor:
    from derisk.store.workspace import Workspace

    with Workspace.open(workspace, create=False, read_only=True) as ws:
        flows = ws.read_flows(EXPOSURE_COLUMNS)
    return exposure_from_flows(flows, controller_ids, names, str(workspace))
