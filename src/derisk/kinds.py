"""The vocabulary of alerts: their kinds and severities.

Kept in a module of its own, free of heavy imports, because the command line offers these names as
choices before any detection code is loaded (``derisk alerts --kind``); the detections, the store and
the dashboard read them from here.
"""

from __future__ import annotations

from typing import Final

#: Severities, from the lowest to the highest.
SEVERITIES: Final = ("low", "medium", "high", "critical")

#: Every kind of alert a detection can raise.
KINDS: Final = (
    "beacon",
    "strobe",
    "long-connection",
    "dns-tunnel",
    "upload",
    "new-destination",
    "compelled-transfer",
)
