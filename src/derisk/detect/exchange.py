"""What an alert gives to an exchange format (MISP, STIX): its destinations as addresses and host names,
its evidence as bounded plain text, and the TLP level of the export.

Everything here comes from the network or from derisk's attribution and is attacker-controlled in part
(server names, DNS names): addresses are kept only when they parse, host names only when they are
syntactically host names, and free text is bounded and always passed on as data (a comment, a note's
content), never as markup or as part of a pattern.
"""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from derisk.detect.alert import Alert
from derisk.safetext import bound

if TYPE_CHECKING:
    from derisk.store.alert_flows import AlertFlows

#: TLP 2.0 levels offered by ``--tlp`` (FIRST, https://www.first.org/tlp/, version 2.0, August 2022).
TLP_LEVELS: Final = ("clear", "green", "amber", "amber+strict", "red")
DEFAULT_TLP: Final = "amber"
MAX_PER_ALERT: Final = 100  # addresses or names taken from one alert's evidence
MAX_TEXT: Final = 4000  # characters of an alert's evidence text
MAX_NAME: Final = 253  # a DNS name's maximum length

_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
_HOSTNAME: Final = re.compile(rf"^(?:{_LABEL}\.)+[A-Za-z][A-Za-z0-9-]{{0,62}}\.?$")


def ip_text(value: Any) -> str | None:
    """The canonical text of an IP address, or None when ``value`` is not one."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def host_name(value: Any) -> str | None:
    """``value`` lower-cased when it is a syntactically valid DNS host name (and not an address)."""
    if not isinstance(value, str) or not value or len(value) > MAX_NAME or ip_text(value):
        return None
    return value.lower().rstrip(".") if _HOSTNAME.match(value) else None


def _is_global(value: str) -> bool:
    try:
        return ipaddress.ip_address(value).is_global
    except ValueError:
        return False


def _unique(values: Iterable[str | None]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if v is not None and v not in seen:
            seen[v] = None
            if len(seen) >= MAX_PER_ALERT:
                break
    return list(seen)


def _listed(evidence: dict[str, Any], key: str) -> list[Any]:
    value = evidence.get(key)
    return list(value[:MAX_PER_ALERT]) if isinstance(value, list) else []


def destination_ips(alert: Alert, flows: AlertFlows | None = None) -> list[str]:
    """The alert's destination address, those its evidence names and the public ones of the flows
    behind it (``flows``, read back from the workspace), valid addresses only."""
    ev = alert.evidence or {}
    behind: list[str] = []
    if flows is not None and alert.kind != "dns-tunnel":  # a tunnel's flows go to the site's resolver
        behind = [ip for ip in flows.dst_ips[:MAX_PER_ALERT] if _is_global(ip)]
    return _unique(ip_text(v) for v in [alert.target.dst_ip, *_listed(ev, "destinations"), *behind])


def destination_names(alert: Alert, flows: AlertFlows | None = None) -> list[str]:
    """Server names of the alert and of the flows behind it (valid host names only)."""
    ev = alert.evidence or {}
    behind = list(flows.server_names[:MAX_PER_ALERT]) if flows else []
    return _unique(host_name(v) for v in [alert.target.server_name, *_listed(ev, "server_names"), *behind])


def destination_domains(alert: Alert, flows: AlertFlows | None = None) -> list[str]:
    """Registrable domains: a DNS tunnel's domain and those of the flows behind the alert (valid names)."""
    ev = alert.evidence or {}
    behind = list(flows.dst_domains[:MAX_PER_ALERT]) if flows else []
    return _unique(host_name(v) for v in [ev.get("domain"), *behind])


def evidence_text(alert: Alert) -> str:
    """The alert as plain text for a comment or note: its sentence, laws and evidence (as JSON)."""
    laws = "; ".join(law.label() for law in alert.laws)
    parts = [
        alert.sentence,
        f"Laws that can compel the controller: {laws}." if laws else "",
        "Evidence: " + json.dumps(alert.evidence, ensure_ascii=False, sort_keys=True, default=str),
    ]
    return bound("\n".join(p for p in parts if p), MAX_TEXT) or ""


def short(text: str | None, limit: int = 256) -> str | None:
    """A bounded copy of a name from data (controller, organisation, system)."""
    return bound(text, limit) if text else None


#: Namespace of derisk's stable identifiers: one alert exported twice keeps its ids, so a platform merges
#: the second export into the first instead of duplicating it.
_NAMESPACE: Final = uuid.UUID("5b0c7f32-6a47-5d6e-9a0e-2f8e1d3c4b5a")


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))
