"""The words pages show for Screen's risk-factor findings; the memo document keeps the codes.

Kept apart from :mod:`derisk.screen.risk` so the page filters can read it without loading the
Know graph or Arrow. Each label is a data string (``derisk-data.po``), shown through the ``dt`` filter.
"""

from __future__ import annotations

from typing import Final

from derisk.i18n.data import T_

#: Finding code (as :mod:`derisk.screen.risk` writes it) → its English label.
FINDING_LABELS: Final = {
    "state-controlled": T_("controlled by a third-country state"),
    "state-stake": T_("state stake without control"),
    "no-state-control-found": T_("no state control found"),
    "laws-found": T_("laws found"),
    "none-recorded": T_("none recorded"),
    "touched": T_("sensitive activities touched"),
    "not-assessed": T_("not assessed"),
    "none-measured": T_("none measured"),
    "exposure-measured": T_("exposure measured"),
}
