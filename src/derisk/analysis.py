"""The analysis document (``derisk.analysis/1``): what a run found, as data every renderer shares.

The terminal summary, the HTML report and the JSON output are all views of this one document, so
they cannot disagree. Contract: ``docs/analysis-json.md``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from derisk import __version__, ipaddrs
from derisk.enrich.attribution import PATH_SEPARATOR
from derisk.enrich.datadir import data_dir, read_manifest
from derisk.errors import DataError
from derisk.know.laws import laws_for
from derisk.site import Site
from derisk.store import flows as store
from derisk.store import layers
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
    "jurisdiction control is exercised from. Two layers are attributed separately: the "
    "infrastructure operator (by AS number, else by a clear match of the AS organisation name) and "
    "the service (by server name); exposure counts the laws that reach either. Where the graph "
    "knows neither, the AS registration country is shown as a guess (basis 'as-registration'). "
    "Multicast, broadcast, link-local and unspecified addresses are counted apart, never as "
    "destinations. Where a server stands (geolocation) and who controls it are reported "
    "separately on purpose."
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


def _exposure_by_layer(ws: Workspace, input_ids: list[str] | None) -> list[dict[str, Any]]:
    out = []
    for row in layers.exposure_by_layer(ws, input_ids):
        service = (
            {
                "controllers": row["service_controllers"] or [],
                "flows": int(row["service_flows"]),
                "bytes_out": int(row["service_bytes_out"]),
                "destinations": int(row["service_destinations"]),
            }
            if row["service_flows"]
            else None
        )
        infrastructure = (
            {
                "controllers": row["infra_controllers"] or [],
                "bases": row["infra_bases"] or [],
                "flows": int(row["infra_flows"]),
                "bytes_out": int(row["infra_bytes_out"]),
                "destinations": int(row["infra_destinations"]),
            }
            if row["infra_flows"]
            else None
        )
        guess = (
            {
                "flows": int(row["guess_flows"]),
                "bytes_out": int(row["guess_bytes_out"]),
                "destinations": int(row["guess_destinations"]),
            }
            if row["guess_flows"]
            else None
        )
        parts = (("service", service), ("infrastructure", infrastructure), ("registration-guess", guess))
        out.append(
            {
                "jurisdiction": row["jurisdiction"],
                "layers": [name for name, part in parts if part],
                "flows": int(row["flows"]),
                "bytes_out": int(row["bytes_out"]),
                "bytes_in": int(row["bytes_in"]),
                "destinations": int(row["destinations"]),
                "service": service,
                "infrastructure": infrastructure,
                "registration_guess": guess,
                "laws": _laws(row["jurisdiction"]),
            }
        )
    return out


def _not_destinations(ws: Workspace, input_ids: list[str] | None, site: Site) -> dict[str, Any]:
    """Flows to multicast, broadcast, link-local or unspecified addresses: counted apart."""
    kinds: dict[str, dict[str, Any]] = {}
    for row in layers.local_scope(ws, input_ids):
        kind = ipaddrs.scope_kind(row["ip"], site.broadcasts) or ipaddrs.scope_kind(
            row["src_ip"], site.broadcasts
        )
        entry = kinds.setdefault(
            kind or "other",
            {"kind": kind or "other", "flows": 0, "bytes_out": 0, "bytes_in": 0, "addresses": 0},
        )
        entry["flows"] += int(row["flows"])
        entry["bytes_out"] += int(row["bytes_out"])
        entry["bytes_in"] += int(row["bytes_in"])
        entry["addresses"] += 1
    by_kind = sorted(kinds.values(), key=lambda k: (-k["bytes_out"], k["kind"]))
    return {
        "flows": sum(k["flows"] for k in by_kind),
        "bytes_out": sum(k["bytes_out"] for k in by_kind),
        "bytes_in": sum(k["bytes_in"] for k in by_kind),
        "addresses": sum(k["addresses"] for k in by_kind),
        "by_kind": by_kind,
    }


#: Share of all bytes between two non-internal addresses above which a run without a site file
#: says that ``internal_networks`` is needed.
PUBLIC_TRAFFIC_NOTICE: Final = 0.5


def _notices(ws: Workspace, input_ids: list[str] | None, site: Site) -> list[dict[str, Any]]:
    notices: list[dict[str, Any]] = []
    public, total = layers.public_share(ws, input_ids)
    if site.path is None and total and public / total > PUBLIC_TRAFFIC_NOTICE:
        notices.append(
            {
                "code": "internal-networks-needed",
                "text": (
                    f"{public / total:.0%} of the bytes were exchanged between two public addresses, "
                    "so derisk could not tell which side is the site: give a site file with "
                    "internal_networks (the site's public ranges too) and analyse again."
                ),
            }
        )
    guessed = _guessed_side(ws, input_ids, site)
    if guessed:
        notices.append(
            {
                "code": "site-side-guessed",
                "addresses": guessed,
                "text": (
                    f"No site file was given: derisk took {', '.join(guessed)} as the site's side of "
                    "the flows between two public addresses (the address, or IPv6 /64, taking part in "
                    "most of them: the capturing host). Give a site file with internal_networks to be sure."
                ),
            }
        )
    if len(store.list_inputs(ws)) == 1:
        notices.append(
            {
                "code": "no-baseline",
                "text": (
                    "This is the first input of this workspace: new-destination alerts need a "
                    "baseline of earlier data, so none were raised; the next analysis compares "
                    "against this one."
                ),
            }
        )
    return notices


def _guessed_side(ws: Workspace, input_ids: list[str] | None, site: Site) -> list[str]:
    """The public addresses (IPv6: their /64) that orientation took as the site's without a site
    file (:mod:`derisk.site_side`), up to three, most bytes first."""
    import ipaddress

    from derisk.site import default_site

    if site.path is not None:
        return []
    # the inputs oriented without a site file; ``site`` may be one rebuilt from a stored run
    default = default_site()
    rows = layers.site_addresses(ws, input_ids, default.digest())
    if not rows:
        return []
    private = default.internal([ip for ip, _ in rows])
    out: list[str] = []
    for (ip, _), inside in zip(rows, private, strict=True):
        if inside:
            continue
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            continue
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped  # as orientation counted it (derisk.ipaddrs)
        text = str(ipaddress.ip_network(f"{addr}/64", strict=False)) if addr.version == 6 else str(addr)
        if text not in out:
            out.append(text)
        if len(out) == 3:
            break
    return out


def _evidence(ws: Workspace, dests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Public reporting attached (``derisk evidence add``) to the organisations and controllers of
    the destinations: shown beside the answer, never changing it."""
    from derisk.know.evidence import load

    ids: set[str] = set()
    for dest in dests:
        for layer in (dest.get("service"), dest.get("infrastructure")):
            if layer:
                ids.update(i for i in (layer.get("organisation_id"), layer.get("controller_id")) if i)
    if not ids:
        return []
    return [ev.to_json() for ev in load(ws, sorted(ids))]


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
    per_layer = layers.destination_layers(ws, input_ids)
    for row in store.destinations(ws, input_ids):
        two = per_layer.get(row["ip"], {})
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
                "infrastructure": two.get("infrastructure"),
                "service": two.get("service"),
            }
        )
    exposure = []
    combined_layers = layers.combined_layers(ws, input_ids, UNKNOWN_JURISDICTION)
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
                "layers": combined_layers.get(code, []),
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
        "exposure_by_layer": _exposure_by_layer(ws, input_ids),
        "attribution_bases": layers.bases(ws, input_ids),
        "not_destinations": _not_destinations(ws, input_ids, site),
        "attempts": store.attempts(ws, input_ids),
        "evidence": _evidence(ws, dests),
        "notices": _notices(ws, input_ids, site),
        "data_sources": _data_sources(data_root),
        "method": METHOD,
        "limits": LIMITS,
        "disclaimer": DISCLAIMER,
    }
