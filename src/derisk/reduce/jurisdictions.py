"""EU membership: which controlling jurisdictions and trade partners are "third countries".

The member list is data (``derisk/data/eu-members.yaml``, with its source), read by
:mod:`derisk.countries` for every capability. ``EU`` is the placeholder jurisdiction of a simulated
"EU-controlled provider, to be chosen" in a de-risking plan.
"""

from __future__ import annotations

from derisk.countries import EU_PLACEHOLDER, EuMembers, eu_members, parse_members

__all__ = ["EU_PLACEHOLDER", "EuMembers", "eu_members", "parse_members"]
