"""``derisk watch``: keep watch continuously over live capture, followed logs, capture rings and NetFlow.

The loop and its sources are :mod:`derisk.live`; this module parses the options, checks them
(``--check``), sets up logging (``--log-format json`` for a service), prints the status line and
maps SIGTERM and Ctrl-C to a clean stop: the batch under way is committed and the command exits 0.
Usage, the systemd unit and the checkpoint semantics: ``docs/watch.md``.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import click

from derisk.cli.options import data_dir_option, workspace_option
from derisk.safetext import visible


class _JsonFormatter(logging.Formatter):
    """One JSON object per log record (for journald, Filebeat, Vector ...)."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        return json.dumps(doc, ensure_ascii=True)


def _setup_logging(log_format: str) -> None:
    root = logging.getLogger()
    if root.level > logging.INFO:
        root.setLevel(logging.INFO)  # a service reports its batches, problems and retries
    logging.Formatter.converter = __import__("time").gmtime
    for handler in root.handlers or [logging.StreamHandler(sys.stderr)]:
        if log_format == "json":
            handler.setFormatter(_JsonFormatter())
        if handler not in root.handlers:
            root.addHandler(handler)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000:
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} PB"


def status_line(totals: Any, status: dict[str, Any]) -> str:
    lag = totals.data_lag_seconds
    lag_text = "-" if lag is None else f"{lag:,.1f} s"
    problems = totals.failed_batches + sum(
        int(v) for s in status.get("sources", {}).values() for k, v in s.items()
        if k in ("truncated", "disappeared", "read_errors", "failures", "failed") and isinstance(v, int)
    )  # fmt: skip
    return (
        f"batches {totals.batches:,} · flows {totals.flows:,} · out {_size(totals.bytes_out)}"
        f" · alerts {totals.alerts:,} · lag {lag_text} · pending {_size(totals.pending_bytes)}"
        f" · problems {problems:,}"
    )


@click.command("watch")
@click.option(
    "--zeek-dir",
    "zeek_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Follow the Zeek logs of DIR (current logs, rotated logs, zeekctl's dated archive).",
)
@click.option(
    "--eve",
    "eve_files",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Follow a Suricata EVE log (and its rotated siblings).",
)
@click.option(
    "--pcap-dir",
    "pcap_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Read each closed capture of a ring (tcpdump -G/-W/-C) once.",
)
@click.option(
    "--interface",
    "interfaces",
    multiple=True,
    metavar="IF",
    help="Meter IF live with NFStream (needs CAP_NET_RAW; see docs/watch.md).",
)
@click.option("--bpf", metavar="FILTER", help="BPF filter for --interface (e.g. 'not port 22').")
@click.option(
    "--netflow",
    "netflow",
    multiple=True,
    metavar="HOST:PORT",
    help="Receive NetFlow v5/v9 and IPFIX on this UDP address.",
)
@click.option("--site", "site_file", type=click.Path(path_type=Path), help="Site file (YAML).")
@workspace_option
@data_dir_option
@click.option(
    "--batch-seconds",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="One batch (one transaction) at most this often.",
)
@click.option(
    "--batch-size",
    default="64M",
    show_default=True,
    metavar="SIZE",
    help="Bytes of logs read per batch at most (suffix k, M or G).",
)
@click.option(
    "--exit-when-idle",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop after this long without new data (replays, tests) [default: run until stopped].",
)
@click.option(
    "--from-end",
    is_flag=True,
    help="On the first start, skip what the logs hold already (default: read them all).",
)
@click.option(
    "--window",
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How long Zeek companion records and EVE events wait for their flow.",
)
@click.option(
    "--companion-wait",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="How long a Zeek conn record waits for its ssl/http/dns records, which Zeek may write later.",
)
@click.option("--retain", metavar="DURATION", help="Delete flows older than this (e.g. 90d); alerts stay.")
@click.option(
    "--pcap-settle",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="A ring file unchanged this long counts as closed.",
)
@click.option(
    "--idle-timeout",
    default=30,
    show_default=True,
    type=click.IntRange(min=1),
    help="Live metering: a flow idle this many seconds is handed over.",
)
@click.option(
    "--active-timeout",
    default=300,
    show_default=True,
    type=click.IntRange(min=1),
    help="Live metering: a flow is handed over at least this often (seconds).",
)
@click.option(
    "--status-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the status (JSON: lag, batches, flows, problems) here after every batch.",
)
@click.option(
    "--hold-workspace",
    is_flag=True,
    help="Keep the workspace open between batches (faster; the dashboard cannot read it meanwhile).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on standard error as text or as JSON objects.",
)
@click.option("--ecs-file", metavar="PATH", help="Deliver alerts as ECS NDJSON to PATH (rotated).")
@click.option(
    "--syslog", metavar="URL", help="Deliver alerts by syslog: udp://, tcp:// or tls://HOST[:PORT]."
)
@click.option("--webhook", metavar="URL", help="POST each alert as JSON, signed with HMAC-SHA256.")
@click.option("--webhook-secret-env", metavar="NAME", help="Environment variable holding the webhook secret.")
@click.option(
    "--dead-letter",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help="Alerts that could not be delivered go here.",
)
@click.option("--check", is_flag=True, help="Check the configuration, report every problem, and exit.")
@click.option("-q", "--quiet", is_flag=True, help="No status line on the terminal.")
def watch_cmd(**opts: Any) -> None:
    """Watch continuously: live capture, followed Zeek/Suricata logs, capture rings, NetFlow.

    Every batch is one transaction holding its flows, their attribution, the detections and the
    read positions: stopped by SIGTERM (the batch under way is committed, exit 0) or killed, the
    next start resumes where the last committed batch ended, with no flow lost or counted twice.
    """
    from derisk.errors import ConfigError
    from derisk.live.setup import WatchConfig, build_sources, check, parse_duration

    _setup_logging(opts["log_format"])
    config = WatchConfig(
        zeek_dirs=list(opts["zeek_dirs"]),
        eve_files=list(opts["eve_files"]),
        pcap_dirs=list(opts["pcap_dirs"]),
        interfaces=list(opts["interfaces"]),
        netflow=list(opts["netflow"]),
        bpf=opts["bpf"],
        from_end=opts["from_end"],
        pcap_settle=opts["pcap_settle"],
        idle_timeout=opts["idle_timeout"],
        active_timeout=opts["active_timeout"],
        batch_seconds=opts["batch_seconds"],
        companion_wait=opts["companion_wait"],
    )
    window = parse_duration(opts["window"], "--window")
    retain = parse_duration(opts["retain"], "--retain") if opts["retain"] else None
    delivery = _delivery(opts)
    if opts["check"]:
        problems = check(config)
        problems += _check_rest(opts)
        if problems:
            raise ConfigError("derisk watch: configuration has problems", details=problems)
        click.echo("derisk watch: configuration OK")
        return
    problems = _check_rest(opts)
    if problems:
        raise ConfigError("derisk watch cannot start", details=problems)
    _run(opts, build_sources(config), window, retain, delivery)


def _delivery(opts: dict[str, Any]) -> Any:
    names = ("ecs_file", "syslog", "webhook", "webhook_secret_env", "dead_letter")
    if not any(opts[name] is not None for name in names):
        return None
    from derisk.deliver import from_options

    return from_options(**{name: opts[name] for name in names})


def _check_rest(opts: dict[str, Any]) -> list[str]:
    """The site file, the reference data and the workspace, as a batch will need them."""
    from derisk.enrich.ipdata import load_ipdata
    from derisk.errors import DeriskError
    from derisk.site import load_site
    from derisk.store.workspace import Workspace

    problems = []
    for load in (lambda: load_site(opts["site_file"]), lambda: load_ipdata(opts["data_dir"])):
        try:
            load()
        except DeriskError as exc:
            problems.append(exc.one_line())
    workspace: Path = opts["workspace"]
    if Workspace.exists(workspace):
        try:
            Workspace.open(workspace, create=False).close()
        except DeriskError as exc:
            problems.append(exc.one_line())
    else:
        parent = next((p for p in [workspace, *workspace.parents] if p.exists()), Path())
        import os

        if not os.access(parent, os.W_OK | os.X_OK):
            problems.append(f"--workspace {workspace}: cannot be created ({parent} is not writable)")
    return problems


def _run(opts: dict[str, Any], sources: list[Any], window: Any, retain: Any, delivery: Any) -> None:
    from derisk.enrich.ipdata import load_ipdata
    from derisk.live.loop import Watcher, WatchOptions
    from derisk.live.setup import parse_size
    from derisk.site import load_site

    site = load_site(opts["site_file"])
    ipdata = load_ipdata(opts["data_dir"])
    options = WatchOptions(
        workspace=opts["workspace"],
        batch_seconds=opts["batch_seconds"],
        exit_when_idle=opts["exit_when_idle"],
        batch_bytes=parse_size(opts["batch_size"], "--batch-size"),
        window=window,
        retain=retain,
        status_file=opts["status_file"],
        hold_workspace=opts["hold_workspace"],
    )
    terminal = sys.stderr.isatty() and not opts["quiet"] and opts["log_format"] == "text"

    def show(totals: Any, status: dict[str, Any]) -> None:
        if terminal:
            click.echo("\r" + visible(status_line(totals, status), 300) + "\x1b[K", nl=False, err=True)
        logging.getLogger("derisk.watch").info("%s", status_line(totals, status))

    stop = threading.Event()
    asked: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and asked:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now (the batch under way is rolled back)
        asked.append(signum)
        stop.set()

    # NFStream's meters are forked: they must end on SIGTERM as before, not run this handler (which
    # would only run once libpcap returns to Python, and a quiet interface never returns).
    os.register_at_fork(after_in_child=_default_sigterm)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    deliverer = None
    try:
        if delivery is not None:
            from derisk.deliver import Deliverer

            deliverer = Deliverer(delivery, opts["workspace"] / "delivery")
        watcher = Watcher(sources, site, ipdata, options, deliverer=deliverer, on_batch=show)
        totals = watcher.run(stop)
    finally:
        for source in sources:
            source.close()
        if deliverer is not None:
            deliverer.close(10.0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if terminal:
        click.echo("", err=True)
    why = "stopped by signal" if asked else "idle"
    click.echo(
        f"derisk watch: {why}; {totals.batches:,} batches, {totals.flows:,} flows committed,"
        f" {totals.alerts:,} alerts, {totals.failed_batches:,} failed batches retried",
        err=True,
    )


def _default_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def register(group: click.Group) -> None:
    group.add_command(watch_cmd)
