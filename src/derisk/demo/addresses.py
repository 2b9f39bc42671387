"""Real addresses for the demo, taken from the installed IP data so that attribution is genuine."""

from __future__ import annotations

from derisk.enrich.ipdata import IpData


class IpDataAddressBook:
    """The demo's address book: the ``index``-th address of an AS, optionally in one country.

    Addresses come from the ranges the installed IP data attributes to that AS, so the demo's
    attributions are the data's own, not staged.
    """

    def __init__(self, ipdata: IpData) -> None:
        self._ipdata = ipdata
        self._cache: dict[tuple[int, str | None], list[str]] = {}

    def address(self, asn: int, geo_country: str | None, index: int) -> str:
        key = (asn, geo_country)
        known = self._cache.get(key, [])
        if len(known) <= index:
            known = self._ipdata.sample_addresses(asn, geo_country, index + 1)
            self._cache[key] = known
        return known[index]
