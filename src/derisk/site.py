"""The site file: which networks are ours, which systems live there, and who made them.

A site file is YAML::

    site: Liège cargo hub
    internal_networks: [10.0.0.0/8, 192.168.0.0/16]   # optional; default: private and link-local
    systems:
      - name: wms
        description: Warehouse management system
        vendor: Cainiao Smart Logistics Network
        hosts: [10.10.1.10, 10.10.1.0/28]

Further top-level sections belong to the capability that reads them (``detection`` and
``allowlist`` to :mod:`derisk.detect`, ``functions`` to :mod:`derisk.reduce`); each is checked by its
owner when the site is loaded, so every problem in the file is reported at once, before any work.
"""

from __future__ import annotations

import hashlib
import importlib
import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk import ipaddrs, yamlguard
from derisk.errors import ConfigError, InputError, Problem, raise_problems
from derisk.flows import contiguous
from derisk.site_side import SideGuess

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Private, shared, loopback and link-local ranges: internal unless a site file says otherwise.
DEFAULT_INTERNAL: Final = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "127.0.0.0/8",
    "fc00::/7",
    "fe80::/10",
    "::1/128",
)

#: Sections owned by other capabilities: name -> "module:function" returning a list of Problems.
OWNED_SECTIONS: Final[dict[str, str]] = {
    "detection": "derisk.detect.config:check_section",
    "allowlist": "derisk.detect.config:check_allowlist",
    "functions": "derisk.reduce.register:check_section",
}
SITE_KEYS: Final = {"site", "internal_networks", "systems", *OWNED_SECTIONS}
SYSTEM_KEYS: Final = {"name", "description", "vendor", "hosts", "hardware", "hosting", "support", "tags"}


@dataclass(frozen=True)
class System:
    name: str
    vendor: str | None
    description: str | None
    networks: tuple[IPNetwork, ...]
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass
class Site:
    name: str | None
    internal_networks: tuple[IPNetwork, ...]
    systems: tuple[System, ...]
    sections: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    #: Whether :meth:`orient` takes the capturing host's side in flows between two public addresses
    #: (:mod:`derisk.site_side`): only without a site file.
    infer_side: bool = False
    #: Labels of the addresses seen by :meth:`orient` (an input's batches share most of them).
    _seen: _Labels | None = field(default=None, init=False, repr=False, compare=False)
    #: What :meth:`orient` counted and chose for ``infer_side``.
    side: SideGuess = field(default_factory=SideGuess, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (for Spark's workers) without the addresses seen, and without guessing the site's
        side: each worker would guess from its own partitions."""
        return {**self.__dict__, "_seen": None, "infer_side": False, "side": SideGuess()}

    def internal(self, addresses: list[str]) -> list[bool]:
        """Whether each address is in the internal networks or a system (unparsable: no)."""
        inside, _ = self._label(pa.array(addresses, pa.string()))
        return [bool(x) for x in inside.to_pylist()]

    def classify(self, ip: str) -> tuple[bool, str | None]:
        """(is internal, system name) for one address; unparsable addresses are external."""
        internal, systems = self._label(pa.array([ip], pa.string()))
        return bool(internal[0].as_py()), systems[0].as_py()

    def orient(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Orient a batch to the site's point of view and label systems (vectorised over the batch).

        Adds ``direction`` and ``system`` and swaps endpoints where the external side opened the
        flow, so that ``src`` is the internal endpoint whenever there is exactly one.
        """
        return self.orient_coded(batch).batch

    def orient_coded(self, batch: pa.RecordBatch) -> Oriented:
        """:meth:`orient`, with what it found per row for the enrichment of ``dst`` (which then
        needs no second hash pass over the addresses; see :class:`Oriented`)."""
        n = batch.num_rows
        # One hash pass over both endpoints: a code per endpoint into the distinct addresses.
        encoded = pa.concat_arrays(
            [contiguous(batch.column("src_ip")), contiguous(batch.column("dst_ip"))]
        ).dictionary_encode()
        distinct = len(encoded.dictionary)
        labels = self._labels(encoded.dictionary)
        # Per distinct address, with one more entry at the end for a missing address (code
        # ``distinct``): not internal, no system; a flow missing either address is not local-scope.
        codes = np.asarray(pc.fill_null(encoded.indices, distinct).to_numpy(zero_copy_only=False))
        src_code, dst_code = codes[:n], codes[n:]
        is_internal = np.append(labels.internal, False)
        src_int, dst_int = is_internal[src_code], is_internal[dst_code]
        swap = ~src_int & dst_int
        # Multicast, broadcast (incl. directed broadcast of internal networks), link-local and
        # unspecified addresses are not destinations: such flows are kept apart as "local-scope".
        scoped = np.append(labels.scoped, False)
        local = (scoped[src_code] | scoped[dst_code]) & (src_code < distinct) & (dst_code < distinct)
        kind = np.select(
            [local, src_int & ~dst_int, swap, src_int & dst_int], [0, 1, 2, 3], default=4
        ).astype(np.int8)
        if self.infer_side and (kind == 4).any():
            ext = (kind == 4) & (src_code < distinct) & (dst_code < distinct)
            side = np.append(self.side.site_side(encoded.dictionary, src_code[ext], dst_code[ext]), False)
            s_side, d_side = side[src_code] & ext, side[dst_code] & ext
            kind[s_side & ~d_side] = 1
            kind[d_side & ~s_side] = 2
            kind[s_side & d_side] = 3
            swap = swap | (d_side & ~s_side)
        direction = _DIRECTIONS.take(pa.array(kind))

        columns = {name: batch.column(name) for name in batch.schema.names}
        if swap.any():
            flip = pa.array(swap)
            for a, b in (
                ("src_ip", "dst_ip"),
                ("src_port", "dst_port"),
                ("bytes_out", "bytes_in"),
                ("packets_out", "packets_in"),
            ):
                columns[a], columns[b] = (
                    pc.if_else(flip, batch.column(b), batch.column(a)),
                    pc.if_else(flip, batch.column(a), batch.column(b)),
                )
        columns["direction"] = direction
        if self.systems:
            systems = pa.concat_arrays([labels.systems, pa.nulls(1, pa.string())])
            columns["system"] = systems.take(pa.array(np.where(swap, dst_code, src_code)))
        else:  # no system to label: a column of nulls, without a take
            columns["system"] = pa.nulls(n, pa.string())
        return Oriented(
            pa.RecordBatch.from_pydict(columns),
            encoded.dictionary,
            np.where(swap, src_code, dst_code),
            (kind == 1) | (kind == 4),
        )

    def _labels(self, distinct: pa.Array) -> _Labels:
        """The labels of distinct addresses; those of addresses seen in earlier batches are
        remembered (up to :data:`SEEN_LIMIT`), so only new ones are parsed and compared."""
        seen = self._seen
        if seen is None:
            found = self._compute_labels(distinct)
        else:
            where = pc.index_in(distinct, value_set=seen.addresses)
            if where.null_count == 0:
                return seen.take(where, distinct)
            missing = pc.indices_nonzero(pc.is_null(where))
            if len(seen.addresses) + len(missing) > SEEN_LIMIT:  # start afresh: bounded memory
                found = self._compute_labels(distinct)
            else:
                fresh = self._compute_labels(distinct.take(missing))
                known = len(seen.addresses)
                seen = seen.extended(fresh)
                self._seen = seen
                rows = np.asarray(pc.fill_null(where, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
                rows[missing.to_numpy()] = np.arange(known, known + len(fresh.addresses), dtype=np.int64)
                return seen.take(pa.array(rows), distinct)
        self._seen = found  # replaced whole, never changed in place: other threads may hold it
        return found

    def _compute_labels(self, distinct: pa.Array) -> _Labels:
        parsed = ipaddrs.parse(distinct)
        internal, systems = self._label(distinct, parsed)
        return _Labels(
            distinct,
            np.asarray(internal.to_numpy(zero_copy_only=False), dtype=bool),
            systems,
            ipaddrs.not_destination(parsed, self.broadcasts),
        )

    def _label(
        self, addresses: pa.Array, parsed: ipaddrs.ParsedAddresses | None = None
    ) -> tuple[pa.Array, pa.Array]:
        """(is internal, system) for distinct addresses, vectorised (see :mod:`derisk.ipaddrs`)."""
        parsed = parsed if parsed is not None else ipaddrs.parse(addresses)
        internal = np.zeros(len(addresses), dtype=bool)
        for net in self.internal_networks:
            internal |= ipaddrs.in_network(parsed, net)
        system = np.full(len(addresses), -1, dtype=np.int64)
        for index, sys_ in enumerate(self.systems):
            for net in sys_.networks:
                system = np.where((system < 0) & ipaddrs.in_network(parsed, net), index, system)
        names = pa.array([s.name for s in self.systems] or [""], pa.string())
        labelled = pc.take(names, pa.array(np.where(system < 0, 0, system)))
        systems = pc.if_else(pa.array(system >= 0), labelled, pa.scalar(None, pa.string()))
        return pa.array(internal | (system >= 0)), systems

    @property
    def broadcasts(self) -> tuple[ipaddress.IPv4Address, ...]:
        """Directed-broadcast addresses of the internal networks (never destinations)."""
        return ipaddrs.directed_broadcasts(self.internal_networks)

    def system_names(self) -> list[str]:
        return [s.name for s in self.systems]

    def digest(self) -> str:
        """Identifies what orientation and labelling depend on: internal networks and systems."""
        doc = {
            "internal": sorted(str(n) for n in self.internal_networks),
            "systems": sorted([s.name, sorted(str(n) for n in s.networks)] for s in self.systems),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


class Oriented(NamedTuple):
    """An oriented batch (:meth:`Site.orient_coded`) and, per row, what orientation found out."""

    batch: pa.RecordBatch
    #: The distinct addresses of the batch's two endpoints (no null).
    addresses: pa.Array
    #: Per row, the position of the oriented ``dst`` in ``addresses`` (``len(addresses)``: unset).
    dst_codes: np.ndarray[Any, np.dtype[np.integer[Any]]]
    #: Per row, whether ``direction`` is ``outbound`` or ``external`` (a server name then names dst).
    names_dst: np.ndarray[Any, np.dtype[np.bool_]]


#: Distinct addresses whose labels a :class:`Site` remembers across batches before it starts afresh.
SEEN_LIMIT: Final = 100_000


@dataclass(frozen=True)
class _Labels:
    """Per distinct address: whether it is internal, its system (null: none), whether it is not a
    destination (multicast, broadcast, link-local, unspecified)."""

    addresses: pa.Array
    internal: np.ndarray[Any, np.dtype[np.bool_]]
    systems: pa.Array
    scoped: np.ndarray[Any, np.dtype[np.bool_]]

    def take(self, rows: pa.Array, addresses: pa.Array) -> _Labels:
        """The labels of ``addresses``, which are these labels' addresses at ``rows`` (no nulls)."""
        index = rows.to_numpy(zero_copy_only=False)
        return _Labels(addresses, self.internal[index], self.systems.take(rows), self.scoped[index])

    def extended(self, more: _Labels) -> _Labels:
        return _Labels(
            pa.concat_arrays([self.addresses, more.addresses]),
            np.concatenate([self.internal, more.internal]),
            pa.concat_arrays([self.systems, more.systems]),
            np.concatenate([self.scoped, more.scoped]),
        )


#: The values of ``direction``, in the order :meth:`Site.orient` decides them.
_DIRECTIONS: Final = pa.array(["local-scope", "outbound", "inbound", "internal", "external"], pa.string())


def default_site() -> Site:
    """Private, shared and link-local ranges as the site; in flows between two public addresses,
    the capturing host's side guessed (:mod:`derisk.site_side`)."""
    return Site(name=None, internal_networks=_nets(DEFAULT_INTERNAL), systems=(), infer_side=True)


def _nets(values: Iterable[str]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _parse_network(value: object, where: str, problems: list[Problem]) -> IPNetwork | None:
    if not isinstance(value, str):
        problems.append(Problem(where, f"expected an address or CIDR as text, found {value!r}"))
        return None
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        problems.append(Problem(where, f"{value!r} is not a valid IP address or CIDR"))
        return None


def _check_owned(name: str, value: Any) -> list[Problem]:
    target = OWNED_SECTIONS[name]
    module_name, func_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
        checker: Callable[[Any], list[Problem]] = getattr(module, func_name)
    except (ImportError, AttributeError):
        return []  # that capability is not installed in this build; nothing to check against
    return checker(value)


def parse_site(doc: Any, source: str) -> Site:
    """Check a parsed site document and build a :class:`Site`, reporting every problem at once."""
    problems: list[Problem] = []
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(
            "a site file must be a YAML mapping (site, internal_networks, systems)", source=source
        )
    for key in sorted(set(doc) - SITE_KEYS, key=str):
        problems.append(Problem(str(key), f"unknown key (expected one of: {', '.join(sorted(SITE_KEYS))})"))

    name = doc.get("site")
    if name is not None and not isinstance(name, str):
        problems.append(Problem("site", "must be text"))
        name = None

    raw_internal = doc.get("internal_networks", list(DEFAULT_INTERNAL))
    internal: list[IPNetwork] = []
    if not isinstance(raw_internal, list) or not raw_internal:
        problems.append(Problem("internal_networks", "must be a non-empty list of CIDRs"))
    else:
        for i, value in enumerate(raw_internal):
            net = _parse_network(value, f"internal_networks[{i}]", problems)
            if net is not None:
                internal.append(net)

    systems: list[System] = []
    raw_systems = doc.get("systems", [])
    if not isinstance(raw_systems, list):
        problems.append(Problem("systems", "must be a list"))
        raw_systems = []
    seen_names: set[str] = set()
    claimed: list[tuple[IPNetwork, str, str]] = []
    for i, entry in enumerate(raw_systems):
        where = f"systems[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "must be a mapping with name, vendor and hosts"))
            continue
        for key in sorted(set(entry) - SYSTEM_KEYS, key=str):
            problems.append(
                Problem(f"{where}.{key}", f"unknown key (expected: {', '.join(sorted(SYSTEM_KEYS))})")
            )
        sname = entry.get("name")
        if not isinstance(sname, str) or not sname.strip():
            problems.append(Problem(f"{where}.name", "missing or not text"))
            sname = f"#{i}"
        elif sname in seen_names:
            problems.append(Problem(f"{where}.name", f"duplicate system name {sname!r}"))
        seen_names.add(sname)
        where = f"systems[{i}] ({sname})"
        hosts = entry.get("hosts")
        if not isinstance(hosts, list) or not hosts:
            problems.append(Problem(f"{where}.hosts", "must be a non-empty list of addresses or CIDRs"))
            hosts = []
        nets: list[IPNetwork] = []
        for j, value in enumerate(hosts):
            net = _parse_network(value, f"{where}.hosts[{j}]", problems)
            if net is None:
                continue
            for other, other_name, other_where in claimed:
                if other_name != sname and net.version == other.version and net.overlaps(other):
                    problems.append(
                        Problem(
                            f"{where}.hosts[{j}]",
                            f"{net} overlaps {other} of system {other_name!r} ({other_where}); "
                            "a host must belong to one system",
                        )
                    )
            claimed.append((net, sname, f"{where}.hosts[{j}]"))
            nets.append(net)
        for key in ("vendor", "description"):
            if entry.get(key) is not None and not isinstance(entry.get(key), str):
                problems.append(Problem(f"{where}.{key}", "must be text"))
        extra = {
            k: v for k, v in entry.items() if k in SYSTEM_KEYS - {"name", "description", "vendor", "hosts"}
        }
        systems.append(
            System(
                name=sname,
                vendor=entry.get("vendor") if isinstance(entry.get("vendor"), str) else None,
                description=entry.get("description") if isinstance(entry.get("description"), str) else None,
                networks=tuple(nets),
                extra=extra,
            )
        )

    sections = {k: doc[k] for k in OWNED_SECTIONS if k in doc}
    for key, value in sections.items():
        problems.extend(
            Problem(f"{key}.{p.where}" if p.where else key, p.what) for p in _check_owned(key, value)
        )

    raise_problems(problems, source=source, kind=ConfigError, summary="invalid site file")
    return Site(
        name=name,
        internal_networks=tuple(internal),
        systems=tuple(systems),
        sections=sections,
    )


def load_site(path: Path | None) -> Site:
    """Read and check a site file; ``None`` gives the default site (private ranges, no systems)."""
    if path is None:
        return default_site()
    source = str(path)
    if path.exists() and not path.is_file() and not path.is_dir():
        raise InputError(
            "not a regular file (a pipe, socket or device): a site file is a file", source=source
        )
    try:
        if path.stat().st_size > yamlguard.MAX_BYTES:
            raise ConfigError(f"larger than {yamlguard.MAX_BYTES:,} bytes: not a site file", source=source)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", source=source) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a YAML site file", source=source) from None
    except PermissionError:
        raise InputError("cannot read (permission denied)", source=source) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", source=source) from None
    doc = yamlguard.load(text, source, ConfigError, what="site file")
    site = parse_site(doc, source)
    site.path = path
    return site
