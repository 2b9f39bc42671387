"""EU membership: which controlling jurisdictions and trade partners are "third countries".

The member list is data (``derisk/data/eu-members.yaml``, with its source). ``EU`` is the
placeholder jurisdiction of a simulated "EU-controlled provider, to be chosen" in a de-risking plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

import yaml

from derisk.errors import DataError

#: Placeholder jurisdiction for an EU-controlled provider that a plan proposes but does not name.
EU_PLACEHOLDER: Final = "EU"
_KEYS: Final = {"schema", "as_of", "source", "members"}


@dataclass(frozen=True)
class EuMembers:
    codes: frozenset[str]
    names: dict[str, str]
    source: str
    as_of: str

    def is_eu(self, jurisdiction: str | None) -> bool:
        """True for a member state or the EU placeholder; unknown (None) is not EU."""
        return jurisdiction is not None and (jurisdiction == EU_PLACEHOLDER or jurisdiction in self.codes)

    def is_third_country(self, jurisdiction: str | None) -> bool:
        """True for a known jurisdiction outside the EU; unknown (None) is neither."""
        return jurisdiction is not None and not self.is_eu(jurisdiction)


def parse_members(doc: object, source: str) -> EuMembers:
    if not isinstance(doc, dict) or set(doc) != _KEYS:
        raise DataError(f"expected exactly the keys {sorted(_KEYS)}", source=source)
    members = doc["members"]
    if not isinstance(members, dict) or not members:
        raise DataError("members must be a mapping of ISO codes to names", source=source)
    if not isinstance(doc["source"], str) or not doc["source"].strip():
        raise DataError("missing source", source=source)
    bad = [str(k) for k in members if not (isinstance(k, str) and len(k) == 2 and k.isupper())]
    if bad:
        raise DataError("not ISO 3166-1 alpha-2 codes", source=source, details=bad)
    return EuMembers(
        codes=frozenset(members),
        names={str(k): str(v) for k, v in members.items()},
        source=str(doc["source"]),
        as_of=str(doc["as_of"]),
    )


@cache
def eu_members() -> EuMembers:
    """The shipped EU member list (read once)."""
    ref = resources.files("derisk.data").joinpath("eu-members.yaml")
    return parse_members(yaml.safe_load(ref.read_text(encoding="utf-8")), "derisk/data/eu-members.yaml")
