"""The analysis document (``derisk.analysis/1``): what a run found, as data every renderer shares.

The terminal summary, the HTML report and the JSON output are all views of this one document, so
they cannot disagree. Contract: ``docs/analysis-json.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from derisk import __version__
from derisk.enrich.attribution import PATH_SEPARATOR
from derisk.enrich.datadir import data_dir, read_manifest
from derisk.errors import DataError
from derisk.know.laws import laws_for
from derisk.site import Site
from derisk.store import flows as store
from derisk.store.workspace import Workspace

SCHEMA: Final = "derisk.analysis/1"
#: ISO 3166-1 user-assigned code used for "no controlling jurisdiction known".
UNKNOWN_JURISDICTION: Final = "ZZ"
DISCLAIMER: Final = (
    "derisk is decision support, not legal advice. Attributions rest on the data sources listed; "
    "legal statements carry confidence tags ([V] seen in a source, [S] consistent across sources, "
    "[U] unverified) and must be checked against the primary texts before any decision."
)
METHOD: Final = (
    "Flows are metered from the captures or Zeek logs and oriented from the site's point of view "
    "(out = sent by the site). Each external address is located by its AS and geolocation data; "
    "its operator is identified by server name (TLS SNI, HTTP Host, DNS answers) or, failing that, "
    "by AS number, and traced through the control graph to its ultimate controller and the "
    "jurisdiction control is exercised from. Where the graph does not know the operator, the AS "
    "registration country is shown as an inference (basis 'as-registration'). Where a server "
    "stands (geolocation) and who controls it are reported separately on purpose."
)
LIMITS: Final = (
    "Encrypted traffic is attributed by metadata only (server names, addresses), never by content. "
    "Geolocation and AS data contain known errors. A shared CDN or cloud address may serve many "
    "customers: the operator then is the cloud, and the service owner is known only from the "
    "server name. Laws listed are those the curated legal base holds for the controlling "
    "jurisdiction; other laws may apply."
)


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return None


def _laws(jurisdiction: str) -> list[dict[str, Any]]:
    out = []
    for law in laws_for(jurisdiction):
        out.append(
            {
                "jurisdiction": law.jurisdiction,
                "law": law.law,
                "article": law.article,
                "obligation": law.obligation,
                "summary": law.summary,
                "confidence": law.confidence,
                "source": law.source,
            }
        )
    return out


def _data_sources(data_root: Any) -> dict[str, Any]:
    try:
        manifest = read_manifest(data_dir(data_root))
    except DataError:
        return {"ipdata": None}
    return {"ipdata": manifest.to_json()}


def build_document(
    ws: Workspace,
    site: Site,
    *,
    input_ids: list[str] | None,
    run: dict[str, Any],
    alerts: list[dict[str, Any]],
    data_root: Any = None,
) -> dict[str, Any]:
    """Assemble ``derisk.analysis/1`` for the given inputs (``None``: the whole workspace)."""
    dests = []
    for row in store.destinations(ws, input_ids):
        dests.append(
            {
                "ip": row["ip"],
                "asn": row["asn"],
                "as_org": row["as_org"],
                "as_country": row["as_country"],
                "geo_country": row["geo_country"],
                "server_names": row["server_names"] or [],
                "server_name_sources": row["server_name_sources"] or [],
                "domains": row["domains"] or [],
                "organisation": row["organisation"],
                "organisation_basis": row["organisation_basis"],
                "controller": row["controller"],
                "jurisdiction": row["jurisdiction"],
                "jurisdiction_basis": row["jurisdiction_basis"],
                "attribution_path": row["attribution_path"].split(PATH_SEPARATOR)
                if row["attribution_path"]
                else [],
                "applications": row["applications"] or [],
                "flows": int(row["flows"]),
                "bytes_out": int(row["bytes_out"]),
                "bytes_in": int(row["bytes_in"]),
                "systems": row["systems"] or [],
                "first_seen": _iso(row["first_seen"]),
                "last_seen": _iso(row["last_seen"]),
            }
        )
    exposure = []
    for row in store.exposure(ws, input_ids, UNKNOWN_JURISDICTION):
        code = row["jurisdiction"]
        exposure.append(
            {
                "jurisdiction": code,
                "controllers": row["controllers"] or [],
                "bases": row["bases"] or [],
                "flows": int(row["flows"]),
                "bytes_out": int(row["bytes_out"]),
                "bytes_in": int(row["bytes_in"]),
                "destinations": int(row["destinations"]),
                "systems": row["systems"] or [],
                "laws": _laws(code) if code != UNKNOWN_JURISDICTION else [],
            }
        )
    controllers = [
        {
            **row,
            "geo_countries": row["geo_countries"] or [],
            "systems": row["systems"] or [],
            "flows": int(row["flows"]),
            "bytes_out": int(row["bytes_out"]),
            "bytes_in": int(row["bytes_in"]),
        }
        for row in store.by_controller(ws, input_ids)
    ]
    systems = [
        {
            **row,
            "flows": int(row["flows"]),
            "bytes_out": int(row["bytes_out"]),
            "bytes_in": int(row["bytes_in"]),
        }
        for row in store.by_system(ws, input_ids)
    ]
    first, last = store.time_span(ws, input_ids)
    inputs = [i for i in store.list_inputs(ws) if input_ids is None or i["input_id"] in input_ids]
    return {
        "schema": SCHEMA,
        "site": site.name,
        "generated_at": _iso(dt.datetime.now(dt.UTC)),
        "derisk_version": __version__,
        "run": run,
        "period": {"first_seen": _iso(first), "last_seen": _iso(last)},
        "inputs": [
            {
                "input_id": i["input_id"],
                "path": i["path"],
                "format": i["format"],
                "flows": int(i["flows"]),
                "ipdata_version": i["ipdata_version"],
            }
            for i in inputs
        ],
        "totals": store.totals(ws, input_ids),
        "destinations": dests,
        "exposure": exposure,
        "controllers": controllers,
        "systems": systems,
        "alerts": alerts,
        "data_sources": _data_sources(data_root),
        "method": METHOD,
        "limits": LIMITS,
        "disclaimer": DISCLAIMER,
    }
