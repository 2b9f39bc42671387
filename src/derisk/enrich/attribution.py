"""Attribution: who operates each destination, who ultimately controls it, whose law reaches it.

The control graph (:mod:`derisk.know`) is the one source of truth: a registrable domain or an AS
number names an entity of the graph, and controller resolution walks the graph to the ultimate
controller and the jurisdiction control is exercised from. A server name wins over the AS number
because it names the service the data goes to; the AS operator stays visible as ``dst_as_org``.

When the graph knows neither, the AS registration country stands in, marked ``as-registration``
so that nobody mistakes an inference for a finding; with no AS data at all the basis is ``unknown``.
Computed over the distinct (AS, domain, AS country) keys of the workspace, never per flow.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from derisk.flows import ATTRIBUTION_FIELDS
from derisk.know.attribution import AttributionIndex, Match

PATH_SEPARATOR = " → "


def _row(key: dict[str, Any], match: Match | None, basis_org: str | None, version: str) -> dict[str, Any]:
    row: dict[str, Any] = {f.name: None for f in ATTRIBUTION_FIELDS}
    row.update(dst_asn=key["dst_asn"], dst_domain=key["dst_domain"], dst_as_country=key["dst_as_country"])
    row["registry_version"] = version
    if match is not None:
        row.update(
            dst_org=match.org_name,
            dst_org_id=match.org_id,
            dst_org_basis=basis_org,
            dst_controller=match.controller_name,
            dst_controller_id=match.controller_id,
            dst_jurisdiction=match.jurisdiction,
            dst_jurisdiction_basis="registry" if match.jurisdiction else "unknown",
            attribution_path=PATH_SEPARATOR.join(match.path),
        )
        return row
    as_org = key.get("dst_as_org")
    country = key.get("dst_as_country")
    row["dst_org"] = as_org
    row["dst_org_basis"] = "as-org" if as_org else None
    if country:
        row["dst_jurisdiction"] = country
        row["dst_jurisdiction_basis"] = "as-registration"
        row["attribution_path"] = PATH_SEPARATOR.join(
            [p for p in (as_org or f"AS{key['dst_asn']}", f"AS registered in {country} (inferred)") if p]
        )
    else:
        row["dst_jurisdiction_basis"] = "unknown"
    return row


def attribute(keys: pa.Table, index: AttributionIndex) -> pa.Table:
    """One attribution row per distinct key (``dst_asn``, ``dst_domain``, ``dst_as_country``)."""
    rows = []
    for key in keys.to_pylist():
        match, basis = None, None
        if key.get("dst_domain"):
            match, basis = index.match_domain(key["dst_domain"]), "domain"
        if match is None and key.get("dst_asn") is not None:
            match, basis = index.match_asn(int(key["dst_asn"])), "asn"
        rows.append(_row(key, match, basis if match else None, index.version))
    schema = pa.schema(
        [
            pa.field("dst_asn", pa.int64()),
            pa.field("dst_domain", pa.string()),
            pa.field("dst_as_country", pa.string()),
            *ATTRIBUTION_FIELDS,
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)
