"""The configuration of ``derisk watch``: parsed, checked all at once (``--check``), turned into sources.

:func:`check` reports every problem of a configuration together (each names the option, what was
found and how to fix it) before anything runs; :func:`build_sources` makes the sources of a checked
configuration.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from derisk.errors import ConfigError, DeriskError, UsageError
from derisk.live.ringdir import PcapDirSource
from derisk.live.sources import EveSource, Source, ZeekSource

_DURATION: Final = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$")
_UNIT_S: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, option: str) -> dt.timedelta:
    """``90d``, ``24h``, ``30m``, ``45s`` or seconds; a UsageError naming the option otherwise."""
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise UsageError(f"{option} expects a duration such as 90d, 24h, 30m or 45s, got {text[:40]!r}")
    return dt.timedelta(seconds=float(match.group(1)) * _UNIT_S[match.group(2)])


_SIZE: Final = re.compile(r"^\s*([0-9]+)\s*([kKmMgG]?)\s*$")


def parse_size(text: str, option: str) -> int:
    """``64M``, ``512k``, ``1G`` or bytes; a UsageError naming the option otherwise."""
    match = _SIZE.match(text)
    if match is None or int(match.group(1)) <= 0:
        raise UsageError(f"{option} expects a size such as 64M, 512k or 1G, got {text[:40]!r}")
    return int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[match.group(2).lower()]


@dataclass
class WatchConfig:
    zeek_dirs: list[Path] = field(default_factory=list)
    eve_files: list[Path] = field(default_factory=list)
    pcap_dirs: list[Path] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    netflow: list[str] = field(default_factory=list)
    bpf: str | None = None
    from_end: bool = False
    pcap_settle: float = 60.0
    idle_timeout: int = 30
    active_timeout: int = 300
    batch_seconds: float = 5.0
    #: Seconds a conn.log record waits for its ssl/http/dns records (:mod:`derisk.live.zeekhold`).
    companion_wait: float = 2.0


def _readable_dir(path: Path, option: str, problems: list[str]) -> None:
    if not path.is_dir():
        problems.append(f"{option} {path}: not a directory (expected the folder the logs are written to)")
    elif not os.access(path, os.R_OK | os.X_OK):
        problems.append(
            f"{option} {path}: cannot be read (permission denied); give the service user read access"
        )


def check(config: WatchConfig, *, starting: bool = False) -> list[str]:
    """Every problem of ``config``, one line each (empty: it can run). When ``starting`` (not
    ``--check``), an interface that is not there yet is no problem: it is reported and tried again
    until it comes, so a service started before its interface does not fail in a loop."""
    from derisk.ingest.collector import parse_endpoint
    from derisk.live.capture import can_capture, interface_exists

    problems: list[str] = []
    if not (config.zeek_dirs or config.eve_files or config.pcap_dirs or config.interfaces or config.netflow):
        problems.append(
            "no source: give at least one of --zeek-dir, --eve, --pcap-dir, --interface, --netflow"
        )
    for path in config.zeek_dirs:
        _readable_dir(path, "--zeek-dir", problems)
    for path in config.pcap_dirs:
        _readable_dir(path, "--pcap-dir", problems)
    for path in config.eve_files:
        if path.is_dir():
            problems.append(f"--eve {path}: a directory; give the EVE file itself (e.g. {path}/eve.json)")
        elif not path.parent.is_dir():
            problems.append(f"--eve {path}: its folder does not exist")
        elif path.exists() and not os.access(path, os.R_OK):
            problems.append(f"--eve {path}: cannot be read (permission denied)")
    if config.interfaces:
        reason = can_capture()
        if reason is not None:
            problems.append(f"--interface: {reason}")
        for name in config.interfaces:
            if not interface_exists(name) and not starting:
                problems.append(f"--interface {name}: no such network interface (see `ip link`)")
    if config.bpf is not None and not config.interfaces:
        problems.append("--bpf: only used with --interface")
    if config.bpf is not None and config.interfaces:
        problem = _check_bpf(config.bpf)
        if problem:
            problems.append(f"--bpf {config.bpf!r}: {problem}")
    for text in config.netflow:
        try:
            endpoint = parse_endpoint(text)
        except DeriskError as exc:
            problems.append(exc.one_line())
            continue
        family = socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind((endpoint.host, endpoint.port))
            except OSError as exc:
                problems.append(f"--netflow {text}: cannot listen ({exc.strerror or exc})")
    if config.batch_seconds <= 0:
        problems.append("--batch-seconds: must be above 0")
    if config.idle_timeout < 1 or config.active_timeout < config.idle_timeout:
        problems.append("--idle-timeout/--active-timeout: at least 1 s, and active at least idle")
    return problems


def _check_bpf(expression: str) -> str | None:
    """Compile a BPF filter with libpcap (as the meter will); None when it compiles."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("pcap")
    if name is None:
        return None  # the meter will say it
    lib = ctypes.CDLL(name)
    lib.pcap_open_dead.restype = ctypes.c_void_p
    handle = lib.pcap_open_dead(1, 65535)
    program = ctypes.create_string_buffer(16)
    try:
        failed = lib.pcap_compile(ctypes.c_void_p(handle), program, expression.encode(), 1, 0xFFFFFFFF)
        if failed:
            lib.pcap_geterr.restype = ctypes.c_char_p
            return str(lib.pcap_geterr(ctypes.c_void_p(handle)).decode("utf-8", "replace"))
        lib.pcap_freecode(program)
        return None
    finally:
        lib.pcap_close(ctypes.c_void_p(handle))


def build_sources(config: WatchConfig) -> list[Source]:
    """The sources of a checked configuration; a ConfigError listing every problem otherwise."""
    problems = check(config, starting=True)
    if problems:
        raise ConfigError("derisk watch cannot start", details=problems)
    from derisk.live.capture import InterfaceSource, NetflowSource

    sources: list[Source] = []
    sources += [
        ZeekSource(path, from_end=config.from_end, wait_s=config.companion_wait) for path in config.zeek_dirs
    ]
    sources += [EveSource(path, from_end=config.from_end) for path in config.eve_files]
    sources += [PcapDirSource(path, settle_s=config.pcap_settle) for path in config.pcap_dirs]
    sources += [
        InterfaceSource(
            name, bpf=config.bpf, idle_timeout=config.idle_timeout, active_timeout=config.active_timeout
        )
        for name in config.interfaces
    ]
    sources += [NetflowSource(text, batch_seconds=config.batch_seconds) for text in config.netflow]
    return sources
