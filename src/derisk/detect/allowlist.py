"""Applying the site's allow-list: flows to allowed destinations are left out before detection, and
what each entry suppressed is counted with its reason.

Matching (all case-insensitive): ``domain: example.com`` matches a server name, DNS query or attributed
domain equal to it; ``domain: '*.example.com'`` also matches every name under it *and* ``example.com``
itself. ``ip`` takes an address or CIDR; ``asn`` the destination's AS number; ``organisation`` the
attributed organisation or the AS organisation; ``controller`` the ultimate controller.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.config import AllowEntry
from derisk.detect.segments import B, column, string_mask


@dataclass(frozen=True)
class Suppression:
    """What one allow-list entry removed from the analysis."""

    entry: AllowEntry
    flows: int

    def to_json(self) -> dict[str, object]:
        return {
            "matcher": self.entry.matcher,
            "value": self.entry.value,
            "reason": self.entry.reason,
            "kinds": list(self.entry.kinds),
            "flows": self.flows,
        }


def _text(table: pa.Table, name: str, test: Callable[[Any], Any]) -> B:
    """``test`` on the lower-cased, dot-trimmed text of a column (once per value when dictionary-encoded)."""
    col = column(table, name)
    if pa.types.is_null(col.type):
        return np.zeros(table.num_rows, dtype=bool)
    return string_mask(
        col, lambda a: test(pc.utf8_rtrim(pc.utf8_lower(pc.cast(a, pa.string())), characters="."))
    )


def entry_mask(table: pa.Table, entry: AllowEntry) -> B:
    """Rows of ``table`` that ``entry`` matches."""
    n = table.num_rows
    mask = np.zeros(n, dtype=bool)
    if entry.matcher == "domain":
        value = entry.value
        wildcard = value.startswith("*.")
        base = value[2:] if wildcard else value
        for name in ("server_name", "dns_query", "dst_domain"):
            if name not in table.column_names:
                continue
            mask |= _text(table, name, lambda a: pc.equal(a, base))
            if wildcard:
                mask |= _text(table, name, lambda a: pc.ends_with(a, "." + base))
    elif entry.matcher == "ip":
        net = ipaddress.ip_network(entry.value, strict=False)
        col = column(table, "dst_ip")
        uniques = list(pc.unique(col).drop_null().to_pylist())
        inside = []
        for u in uniques:  # over distinct addresses, not rows
            try:
                if ipaddress.ip_address(str(u).split("%", 1)[0]) in net:
                    inside.append(u)
            except ValueError:
                continue
        if inside:
            values = pa.array(inside, pa.string())
            mask |= string_mask(col, lambda a: pc.is_in(pc.cast(a, pa.string()), value_set=values))
    elif entry.matcher == "asn":
        col = column(table, "dst_asn")
        if pa.types.is_integer(col.type):
            mask |= np.asarray(
                pc.fill_null(pc.equal(col, int(entry.value)), False).to_numpy(zero_copy_only=False),
                dtype=bool,
            )
    elif entry.matcher == "organisation":
        for name in ("dst_org", "dst_as_org"):
            if name in table.column_names:
                mask |= _text(table, name, lambda a: pc.equal(a, entry.value))
    elif entry.matcher == "controller" and "dst_controller" in table.column_names:
        mask |= _text(table, "dst_controller", lambda a: pc.equal(a, entry.value))
    return mask


def allow_masks(table: pa.Table, entries: tuple[AllowEntry, ...]) -> tuple[list[B], list[Suppression]]:
    """One mask per entry, and what each suppressed (a flow counts for the first entry matching it)."""
    masks = [entry_mask(table, e) for e in entries]
    taken = np.zeros(table.num_rows, dtype=bool)
    suppressed = []
    for entry, mask in zip(entries, masks, strict=True):
        suppressed.append(Suppression(entry, int((mask & ~taken).sum())))
        taken |= mask
    return masks, suppressed
