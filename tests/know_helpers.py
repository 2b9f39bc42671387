"""Small hand-built control graphs for the Know tests."""

from __future__ import annotations

from derisk.know.graph import Entity, Graph, Link, Source, build_graph

SRC = Source(id="t.src", url="https://example.org/filing", says="test statement", accessed="2026-01-01")


def ent(
    ident: str,
    *,
    country: str | None = "XX",
    control: str | None = None,
    state: bool = False,
    asns: tuple[int, ...] = (),
    domains: tuple[str, ...] = (),
) -> Entity:
    return Entity(
        id=ident,
        schema="PublicBody" if state else "Company",
        name=f"{ident.upper()} Ltd",
        country=country,
        control_jurisdiction=control,
        is_state=state,
        sources=(SRC,),
        asns=asns,
        domains=domains,
    )


def own(owner: str, asset: str, share: float | None = None, **kw: object) -> Link:
    kind = str(kw.pop("kind", "ownership"))
    return Link(
        id=f"{kind}:{owner}>{asset}",
        kind=kind,
        owner_id=owner,
        asset_id=asset,
        share=share,
        source=SRC,
        confidence=str(kw.pop("confidence", "V")),
        **kw,
    )  # type: ignore[arg-type]


def graph(entities: list[Entity], links: list[Link]) -> Graph:
    return build_graph(entities, links)


def company(
    ident: str, name: str, *, country: str = "US", aliases: tuple[str, ...] = (), **kw: object
) -> Entity:
    """A company under its real-looking name (the attribution tests match names and aliases)."""
    return Entity(ident, "Company", name, aliases=aliases, country=country, sources=(SRC,), **kw)  # type: ignore[arg-type]
