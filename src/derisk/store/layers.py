"""Aggregates over the two attribution layers and the flows that are not destinations.

Read by :mod:`derisk.analysis` beside the aggregates of :mod:`derisk.store.flows`: exposure by
layer (the laws that reach the infrastructure operator, the service, or either), how much traffic
rests on each attribution basis, each destination's two layers, and the local-scope flows
(multicast, broadcast, link-local, unspecified) that are counted apart.
"""

from __future__ import annotations

from typing import Any, Final

from derisk.store.flows import EXPOSED
from derisk.store.workspace import Workspace

#: Exposure's flows (see :data:`derisk.store.flows.EXPOSED`): attempts without payload are apart.
_EXTERNAL: Final = EXPOSED

#: Which layer the combined attribution (``dst_jurisdiction``) of a flow comes from.
_COMBINED_LAYER: Final = """CASE
    WHEN dst_service_basis IS NOT NULL AND dst_service_basis <> 'unknown' THEN 'service'
    WHEN dst_infra_basis IN ('asn', 'as-org-name') THEN 'infrastructure'
    WHEN dst_infra_basis = 'as-registration' THEN 'registration-guess'
    ELSE 'unknown' END"""


_LAYER_PARTS: Final = ("org", "org_id", "controller", "controller_id", "jurisdiction", "basis", "confidence")


def _scope(input_ids: list[str] | None) -> tuple[str, list[Any]]:
    if not input_ids:
        return "TRUE", []
    return f"input_id IN ({', '.join('?' for _ in input_ids)})", list(input_ids)


def _rows(ws: Workspace, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = ws.query_arrow(sql, params).to_pylist()
    return rows


def combined_layers(ws: Workspace, input_ids: list[str] | None, unknown: str) -> dict[str, list[str]]:
    """Per combined jurisdiction (as in ``exposure``): the layers its attribution came from."""
    where, params = _scope(input_ids)
    sql = f"""
        SELECT coalesce(dst_jurisdiction, ?) AS jurisdiction,
               list_sort(list(DISTINCT {_COMBINED_LAYER})) AS layers
        FROM flows_attributed WHERE {_EXTERNAL} AND {where} GROUP BY ALL
    """
    return {r["jurisdiction"]: r["layers"] for r in _rows(ws, sql, [unknown, *params])}


def exposure_by_layer(ws: Workspace, input_ids: list[str] | None) -> list[dict[str, Any]]:
    """Per jurisdiction reaching a flow through its service, its infrastructure, or either.

    A flow whose service and operator are controlled from the same jurisdiction counts once under
    ``either``; the registration-country guess is kept apart from the known infrastructure
    operators (``registration-guess``).
    """
    where, params = _scope(input_ids)
    sql = f"""
        WITH base AS (
            SELECT dst_ip, coalesce(bytes_out, 0) AS bytes_out, coalesce(bytes_in, 0) AS bytes_in,
                   dst_service_jurisdiction, dst_service_controller, dst_service_basis, dst_infra_jurisdiction,
                   dst_infra_controller, dst_infra_basis
            FROM flows_attributed WHERE {_EXTERNAL} AND {where}
        ), reach AS (
            SELECT dst_ip, bytes_out, bytes_in, 'service' AS layer,
                   dst_service_jurisdiction AS jurisdiction, dst_service_controller AS controller,
                   dst_service_basis AS basis, FALSE AS counted
            FROM base WHERE dst_service_jurisdiction IS NOT NULL
            UNION ALL
            SELECT dst_ip, bytes_out, bytes_in,
                   CASE WHEN dst_infra_basis = 'as-registration' THEN 'registration-guess'
                        ELSE 'infrastructure' END,
                   dst_infra_jurisdiction, dst_infra_controller, dst_infra_basis,
                   dst_infra_jurisdiction = dst_service_jurisdiction IS TRUE
            FROM base WHERE dst_infra_jurisdiction IS NOT NULL
        ), either AS (
            -- each flow once per jurisdiction: its infrastructure row is left out where its service
            -- is reached from the same jurisdiction (no grouping by flow, which grows with the flows)
            SELECT jurisdiction, count(*) AS flows, sum(bytes_out) AS bytes_out, sum(bytes_in) AS bytes_in,
                   count(DISTINCT dst_ip) AS destinations
            FROM reach WHERE NOT counted GROUP BY jurisdiction
        ), layered AS (
            SELECT jurisdiction, layer,
                   list_sort(list(DISTINCT controller) FILTER (WHERE controller IS NOT NULL))
                       AS controllers,
                   list_sort(list(DISTINCT basis) FILTER (WHERE basis IS NOT NULL)) AS bases,
                   count(*) AS flows, sum(bytes_out) AS bytes_out, sum(bytes_in) AS bytes_in,
                   count(DISTINCT dst_ip) AS destinations
            FROM reach GROUP BY jurisdiction, layer
        )
        SELECT e.jurisdiction, e.flows, e.bytes_out, e.bytes_in, e.destinations,
               s.controllers AS service_controllers, s.flows AS service_flows,
               s.bytes_out AS service_bytes_out, s.destinations AS service_destinations,
               i.controllers AS infra_controllers, i.bases AS infra_bases, i.flows AS infra_flows,
               i.bytes_out AS infra_bytes_out, i.destinations AS infra_destinations,
               g.flows AS guess_flows, g.bytes_out AS guess_bytes_out, g.destinations AS guess_destinations
        FROM either e
        LEFT JOIN layered s ON s.jurisdiction = e.jurisdiction AND s.layer = 'service'
        LEFT JOIN layered i ON i.jurisdiction = e.jurisdiction AND i.layer = 'infrastructure'
        LEFT JOIN layered g ON g.jurisdiction = e.jurisdiction AND g.layer = 'registration-guess'
        ORDER BY e.bytes_out DESC, e.jurisdiction
    """
    return _rows(ws, sql, params)


def bases(ws: Workspace, input_ids: list[str] | None) -> dict[str, list[dict[str, Any]]]:
    """Flows, bytes and destinations by attribution basis: infrastructure, service and combined."""
    where, params = _scope(input_ids)
    out: dict[str, list[dict[str, Any]]] = {}
    for key, column in (
        ("infrastructure", "coalesce(dst_infra_basis, 'unknown')"),
        ("service", "coalesce(dst_service_basis, 'no-name')"),
        ("combined", "coalesce(dst_jurisdiction_basis, 'unknown')"),
    ):
        sql = f"""
            SELECT {column} AS basis, count(*) AS flows, sum(coalesce(bytes_out, 0)) AS bytes_out,
                   sum(coalesce(bytes_in, 0)) AS bytes_in, count(DISTINCT dst_ip) AS destinations
            FROM flows_attributed WHERE {_EXTERNAL} AND {where}
            GROUP BY ALL ORDER BY bytes_out DESC, basis
        """
        out[key] = [
            {
                "basis": r["basis"],
                "flows": int(r["flows"]),
                "bytes_out": int(r["bytes_out"]),
                "bytes_in": int(r["bytes_in"]),
                "destinations": int(r["destinations"]),
            }
            for r in _rows(ws, sql, params)
        ]
    return out


def destination_layers(ws: Workspace, input_ids: list[str] | None) -> dict[str, dict[str, Any]]:
    """Per external address: its infrastructure and service attribution.

    An address can carry several names (several services): the attribution of flows that carry a
    name comes first (a flow without one has no service to show: the reply half of a connection
    split in two carries none), then of most flows, then of most bytes, then the first in column
    order, so the choice never depends on the order flows are stored in.
    """
    where, params = _scope(input_ids)
    cols = [f"dst_{p}_{part}" for p in ("infra", "service") for part in _LAYER_PARTS]
    listed = ", ".join(cols)
    order = ", ".join(f"{c} NULLS LAST" for c in cols)
    sql = f"""
        WITH grouped AS (
            SELECT dst_ip, {listed}, count(*) AS n, sum(coalesce(bytes_out, 0)) AS b
            FROM flows_attributed WHERE {_EXTERNAL} AND {where} GROUP BY ALL
        )
        SELECT dst_ip AS ip, {listed} FROM grouped
        QUALIFY row_number() OVER (
            PARTITION BY dst_ip ORDER BY dst_service_basis IS NULL, n DESC, b DESC, {order}
        ) = 1
    """
    out: dict[str, dict[str, Any]] = {}
    for row in _rows(ws, sql, params):
        layers = {}
        for prefix, name in (("infra", "infrastructure"), ("service", "service")):
            layers[name] = {
                "organisation": row[f"dst_{prefix}_org"],
                "organisation_id": row[f"dst_{prefix}_org_id"],
                "controller": row[f"dst_{prefix}_controller"],
                "controller_id": row[f"dst_{prefix}_controller_id"],
                "jurisdiction": row[f"dst_{prefix}_jurisdiction"],
                "basis": row[f"dst_{prefix}_basis"],
                "confidence": row[f"dst_{prefix}_confidence"],
            }
        out[row["ip"]] = layers
    return out


def local_scope(ws: Workspace, input_ids: list[str] | None) -> list[dict[str, Any]]:
    """Per address that is not a destination (the non-internal endpoint of local-scope flows)."""
    where, params = _scope(input_ids)
    sql = f"""
        SELECT dst_ip AS ip, min(src_ip) AS src_ip, count(*) AS flows,
               sum(coalesce(bytes_out, 0)) AS bytes_out, sum(coalesce(bytes_in, 0)) AS bytes_in
        FROM flows WHERE direction = 'local-scope' AND {where}
        GROUP BY dst_ip ORDER BY bytes_out DESC, ip
    """
    return _rows(ws, sql, params)


def public_share(ws: Workspace, input_ids: list[str] | None) -> tuple[int, int]:
    """(bytes of flows between two non-internal addresses, bytes of all flows)."""
    where, params = _scope(input_ids)
    row = ws.query(
        "SELECT coalesce(sum(coalesce(bytes_out, 0) + coalesce(bytes_in, 0))"
        " FILTER (WHERE direction = 'external'), 0),"
        f" coalesce(sum(coalesce(bytes_out, 0) + coalesce(bytes_in, 0)), 0) FROM flows WHERE {where}",
        params,
    )[0]
    return int(row[0]), int(row[1])


def site_addresses(
    ws: Workspace, input_ids: list[str] | None, site_digest: str, limit: int = 2_000
) -> list[tuple[str, int]]:
    """(address, bytes) of the site's side of oriented flows (their ``src_ip``), most bytes first,
    of the inputs oriented with the site of ``site_digest``."""
    where, params = _scope(input_ids)
    rows = ws.query(
        "SELECT src_ip, sum(coalesce(bytes_out, 0) + coalesce(bytes_in, 0)) AS b FROM flows"
        f" WHERE {where} AND direction IN ('outbound', 'inbound') AND src_ip IS NOT NULL"
        " AND input_id IN (SELECT input_id FROM inputs WHERE site_digest = ?)"
        " GROUP BY src_ip ORDER BY b DESC, src_ip LIMIT ?",
        [*params, site_digest, limit],
    )
    return [(str(r[0]), int(r[1])) for r in rows]
