"""Attribution: who operates each destination, who ultimately controls it, whose law reaches it.

Every destination is attributed on two layers, each through the control graph (:mod:`derisk.know`):

* the **infrastructure** operator, who runs the server: the graph entity of the AS number, else the
  entity the AS organisation name clearly names (:mod:`derisk.know.orgnames`), else the AS
  registration country, marked ``as-registration`` and ``guess`` so that nobody mistakes an
  inference for a finding;
* the **service**, whose name the traffic carries (SNI, HTTP Host, DNS answer): the graph entity of
  the registrable domain; for a name the graph does not list, the general rules of
  :mod:`derisk.enrich.service_rules` (a group's brand under another public suffix, or the
  operator's own name, each only when the same flow's infrastructure corroborates it), with their
  own basis (``brand-domain``, ``operator-domain``) and the confidence ``inferred``.

The combined columns (``dst_org`` … ``dst_jurisdiction_basis``) keep their meaning: the service when
the graph knows it, else the infrastructure operator; the AS operator stays visible as
``dst_as_org``. When the traffic carries a name the graph does not know, the combined columns keep
the operator and its jurisdiction (its laws reach the server) but name no controller: the operator
of a cloud does not control the services its customers run on it. A known name always wins over
the registration-country guess. Computed over the distinct (AS, domain, AS country) keys of the
workspace, each AS and domain matched once, never per flow.

Registration records (CAIDA AS2Org, PeeringDB: every AS of the Internet) are not resolved up front:
:func:`prefetch` looks up, in one DuckDB join, only the ASes, domains and AS organisation names of
the keys at hand, and resolves only the records that hold them (see
:func:`derisk.know.graph.load_graph`); the answers are those of reading every record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from derisk.enrich.service_rules import BRAND_BASIS, OPERATOR_BASIS, ServiceRules
from derisk.flows import ATTRIBUTION_FIELDS, GUESS_CONFIDENCE
from derisk.know.attribution import AttributionIndex, Match, match_from
from derisk.know.resolve import resolve_controller

PATH_SEPARATOR = " → "


def _layer(row: dict[str, Any], prefix: str, match: Match) -> None:
    row[f"{prefix}_org"] = match.org_name
    row[f"{prefix}_org_id"] = match.org_id
    row[f"{prefix}_controller"] = match.controller_name
    row[f"{prefix}_controller_id"] = match.controller_id
    row[f"{prefix}_jurisdiction"] = match.jurisdiction
    row[f"{prefix}_confidence"] = match.confidence


def _infra_path(key: dict[str, Any], match: Match, basis: str) -> list[str]:
    if basis == "as-org-name":
        head = f"AS{key['dst_asn']} registered to {key.get('dst_as_org')} (AS organisation name)"
        return [head, *match.path]
    return list(match.path)


def _row(
    key: dict[str, Any],
    infra: tuple[Match | None, str],
    service: tuple[Match | None, str | None],
    version: str,
) -> dict[str, Any]:
    row: dict[str, Any] = {f.name: None for f in ATTRIBUTION_FIELDS}
    row.update(dst_asn=key["dst_asn"], dst_domain=key["dst_domain"], dst_as_country=key["dst_as_country"])
    row["registry_version"] = version
    as_org, country = key.get("dst_as_org"), key.get("dst_as_country")
    infra_match, infra_basis = infra
    service_match, service_basis = service

    row["dst_infra_basis"] = infra_basis
    if infra_match is not None:
        _layer(row, "dst_infra", infra_match)
    else:
        row["dst_infra_org"] = as_org
        if infra_basis == "as-registration":
            row["dst_infra_jurisdiction"] = country
            row["dst_infra_confidence"] = GUESS_CONFIDENCE
    row["dst_service_basis"] = service_basis
    if service_match is not None:
        _layer(row, "dst_service", service_match)

    # The combined view: the service when the graph knows it, else the infrastructure operator.
    chosen, chosen_basis = (
        (service_match, service_basis or "domain")
        if service_match is not None
        else (infra_match, infra_basis)
    )
    if chosen is not None:
        # A name the graph does not know (nest.com on Amazon's servers): the operator's jurisdiction
        # reaches the server, but the operator is not who controls that service, so no controller
        # is named for the destination; the infrastructure layer keeps its own.
        unnamed = service_match is None and key.get("dst_domain") is not None
        path = chosen.path if service_match is not None else _infra_path(key, chosen, chosen_basis)
        if unnamed:
            path = [f"service {key['dst_domain']} not identified", *path]
        row.update(
            dst_org=chosen.org_name,
            dst_org_id=chosen.org_id,
            dst_org_basis=chosen_basis,
            dst_controller=None if unnamed else chosen.controller_name,
            dst_controller_id=None if unnamed else chosen.controller_id,
            dst_jurisdiction=chosen.jurisdiction,
            dst_jurisdiction_basis="registry" if chosen.jurisdiction else "unknown",
            attribution_path=PATH_SEPARATOR.join(path),
        )
        return row
    row["dst_org"] = as_org
    row["dst_org_basis"] = "as-org" if as_org else None
    if country:
        row["dst_jurisdiction"] = country
        row["dst_jurisdiction_basis"] = "as-registration"
        row["attribution_path"] = PATH_SEPARATOR.join(
            [as_org or f"AS{key['dst_asn']}", f"AS registered in {country} (inferred)"]
        )
    else:
        row["dst_jurisdiction_basis"] = "unknown"
    return row


def _infrastructure(
    index: AttributionIndex, asn: Any, as_org: str | None, country: str | None
) -> tuple[Match | None, str]:
    if asn is not None:
        found = index.match_asn(int(asn))
        if found is not None:
            return found, "asn"
    if as_org:
        found = index.match_as_org(as_org, country)
        if found is not None:
            return found, "as-org-name"
    if country:
        return None, "as-registration"
    return None, "unknown"


def _suffixes(domain: str) -> list[str]:
    """The names :meth:`AttributionIndex.match_domain` tries for ``domain``, most specific first."""
    name = domain.strip().lower().rstrip(".")
    out = []
    while name:
        out.append(name)
        _, _, name = name.partition(".")
        if "." not in name:
            break
    return out


def prefetch(
    index: AttributionIndex,
    asns: Iterable[int | None] = (),
    domains: Iterable[str | None] = (),
    as_orgs: Iterable[str | None] = (),
) -> None:
    """Put into ``index`` the registration records that hold ``asns`` and ``domains`` and those an AS
    organisation name of ``as_orgs`` could name, when its graph looks them up lazily (else nothing).

    The ASes and domains go to the registration record the eager load would give them to (values a
    curated or FtM entity claims stay with it; of several records the lowest id wins, also against
    another imported entity); each record is resolved once. Values already asked are not asked again.
    """
    graph = index.graph
    if graph is None or graph.registry is None:
        return
    from derisk.know.graphload import REGISTRY_PREFIXES, registry_owners, unclaimed

    db = graph.registry
    asked: set[str] = graph.__dict__.setdefault("_registry_asked", set())
    want_asns = sorted({int(a) for a in asns if a is not None and f"asn:{a}" not in asked})
    want_domains = sorted({s for d in set(domains) if d for s in _suffixes(d) if f"domain:{s}" not in asked})
    asked.update(f"asn:{a}" for a in want_asns)
    asked.update(f"domain:{d}" for d in want_domains)
    owner, records, links = registry_owners(db, graph.registry_claimed, want_asns, want_domains)
    if records:
        graph.add([e for e in records if e.id not in graph.entities], links)
        matches: dict[str, Match] = {}
        for key, ident in sorted(owner.items()):
            kind, _, value = key.partition(":")
            table: dict[Any, Match] = index.by_asn if kind == "asn" else index.by_domain
            slot: Any = int(value) if kind == "asn" else value
            current = table.get(slot)
            if current is not None and current.org_id < ident:
                continue  # another imported entity of a lower id holds it (as the eager index decides)
            if ident not in matches:
                matches[ident] = match_from(graph.entities[ident], resolve_controller(graph, ident))
            table[slot] = matches[ident]
    names = {n for n in as_orgs if n}
    if names:
        from derisk.know.graphdb import registry_sharing_words
        from derisk.know.graphload import materialise
        from derisk.know.orgnames import reduce_name

        words = sorted({reduced.split(" ", 1)[0] for n in names if (reduced := reduce_name(n))})
        words = [w for w in words if f"word:{w}" not in asked]
        asked.update(f"word:{w}" for w in words)
        ids = [
            i
            for i in registry_sharing_words(db, REGISTRY_PREFIXES, words)
            if i not in graph.entities and i not in graph.registry_joined
        ]
        if ids:
            entities, more_links = materialise(db, ids)
            graph.add(
                [unclaimed(e, graph.registry_claimed) for e in entities if e.id not in graph.entities],
                more_links,
            )
            index._names = None  # rebuilt over the graph with these names (first use)
            index._by_org_name.clear()


def _inferred_service(
    rules: ServiceRules, domain: str, infra: Match | None, as_org: str | None
) -> tuple[Match | None, str]:
    """A name the graph does not list: the rules of :mod:`derisk.enrich.service_rules`, else unknown."""
    found = rules.brand(domain, infra)
    if found is not None:
        return found, BRAND_BASIS
    found = rules.operator(domain, infra, as_org)
    if found is not None:
        return found, OPERATOR_BASIS
    return None, "unknown"


def attribute(keys: pa.Table, index: AttributionIndex) -> pa.Table:
    """One attribution row per distinct key (``dst_asn``, ``dst_domain``, ``dst_as_country``)."""
    if index.graph is not None and index.graph.registry is not None:
        prefetch(
            index,
            pc.unique(keys.column("dst_asn")).to_pylist(),
            pc.unique(keys.column("dst_domain")).to_pylist(),
        )
        if "dst_as_org" in keys.column_names:
            unmatched = {
                row["dst_as_org"]
                for row in keys.select(["dst_asn", "dst_as_org"]).to_pylist()
                if row["dst_as_org"] and (row["dst_asn"] is None or index.match_asn(row["dst_asn"]) is None)
            }
            prefetch(index, as_orgs=unmatched)
    infra_cache: dict[tuple[Any, Any, Any], tuple[Match | None, str]] = {}
    service_cache: dict[str, Match | None] = {}
    inferred_cache: dict[tuple[str, Any, Any], tuple[Match | None, str]] = {}
    rules = index.__dict__.get("_service_rules")
    if not isinstance(rules, ServiceRules):  # kept with the index: its caches serve later batches
        rules = index.__dict__["_service_rules"] = ServiceRules(index)
    rows = []
    for key in keys.to_pylist():
        ikey = (key.get("dst_asn"), key.get("dst_as_org"), key.get("dst_as_country"))
        infra = infra_cache.get(ikey)
        if infra is None:
            infra = infra_cache[ikey] = _infrastructure(index, *ikey)
        domain = key.get("dst_domain")
        service: tuple[Match | None, str | None] = (None, None)
        if domain:
            if domain not in service_cache:
                service_cache[domain] = index.match_domain(domain)
            found = service_cache[domain]
            if found is not None:
                service = (found, "domain")
            else:
                rkey = (domain, infra[0].org_id if infra[0] is not None else None, key.get("dst_as_org"))
                if rkey not in inferred_cache:
                    inferred_cache[rkey] = _inferred_service(rules, domain, infra[0], key.get("dst_as_org"))
                service = inferred_cache[rkey]
        rows.append(_row(key, infra, service, index.version))
    schema = pa.schema(
        [
            pa.field("dst_asn", pa.int64()),
            pa.field("dst_domain", pa.string()),
            pa.field("dst_as_country", pa.string()),
            *ATTRIBUTION_FIELDS,
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)
