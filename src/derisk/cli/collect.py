"""``derisk collect``: receive NetFlow v5/v9, IPFIX and sFlow v5 on UDP into a workspace."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from derisk.cli.options import data_dir_option, json_option, workspace_option
from derisk.cli.output import emit_json, status_console
from derisk.errors import EXIT_INTERRUPTED, DeriskError, InputError, UsageError
from derisk.safetext import visible


class CollectInterrupted(DeriskError):
    """Ctrl-C while collecting: unlike an analysis, the batches committed before stay."""

    exit_code = EXIT_INTERRUPTED


@click.command("collect")
@click.option(
    "--netflow",
    "endpoint",
    metavar="HOST:PORT",
    help="UDP address to receive NetFlow v5/v9, IPFIX and sFlow v5 on (e.g. 0.0.0.0:2055, [::]:6343).",
)
@click.option(
    "--from-capture",
    "capture",
    type=click.Path(path_type=Path),
    help="Instead of listening: read the NetFlow/IPFIX/sFlow exports recorded in this capture "
    "(e.g. tcpdump udp port 2055 on the collector's side), as the collector would have received them.",
)
@click.option(
    "--export-port",
    "export_ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    metavar="PORT",
    help="With --from-capture: a UDP port the exporters sent to, besides 2055, 9996, 4739 and 4740.",
)
@workspace_option
@click.option("--site", "site_file", type=click.Path(path_type=Path), help="Site file (YAML).")
@click.option(
    "--exit-when-idle",
    "idle",
    type=float,
    metavar="SECONDS",
    help="Stop after this many seconds without a datagram [default: run until Ctrl-C].",
)
@click.option("--max-records", type=int, metavar="N", help="Stop once N flow records were received.")
@click.option(
    "--batch-seconds",
    type=float,
    default=5.0,
    show_default=True,
    help="Store what arrived every this many seconds (one transaction per batch).",
)
@data_dir_option
@json_option
def collect_cmd(
    endpoint: str | None,
    capture: Path | None,
    export_ports: tuple[int, ...],
    workspace: Path,
    site_file: Path | None,
    idle: float | None,
    max_records: int | None,
    batch_seconds: float,
    data_dir: Path | None,
    json_dest: str | None,
) -> None:
    """Receive NetFlow/IPFIX exports and store them as flows, one batch at a time.

    Templates are kept per exporter; sampling announced by an exporter is applied to packets and
    bytes. Each batch is stored in its own transaction; attribution and detections run when the
    collector stops. Then `derisk analyze -w WS` shows the report.
    """
    from derisk.collect import collect
    from derisk.enrich.ipdata import load_ipdata
    from derisk.ingest.collector import Collector, parse_endpoint
    from derisk.site import load_site

    if (endpoint is None) == (capture is None):
        raise UsageError("give one of --netflow HOST:PORT (listen) or --from-capture FILE (replay)")
    if export_ports and capture is None:
        raise UsageError("--export-port goes with --from-capture")
    if capture is not None:
        _replay(capture, export_ports, workspace, site_file, data_dir, json_dest)
        return
    assert endpoint is not None

    if idle is not None and idle <= 0:
        raise UsageError("--exit-when-idle must be a positive number of seconds")
    if max_records is not None and max_records <= 0:
        raise UsageError("--max-records must be a positive number")
    if batch_seconds <= 0:
        raise UsageError("--batch-seconds must be positive")
    where = parse_endpoint(endpoint)
    site = load_site(site_file)
    load_ipdata(data_dir)  # missing IP data fails before listening
    console = status_console(json_dest)
    with Collector(
        where, idle_seconds=idle, max_records=max_records, batch_seconds=batch_seconds
    ) as collector:
        console.print(f"derisk: listening for NetFlow/IPFIX on {collector.endpoint}", style="dim")
        try:
            result = collect(
                collector,
                workspace,
                site,
                data_root=data_dir,
                on_batch=lambda r: console.print(f"stored batch {r.batches}: {r.flows:,} flows so far"),
            )
        except KeyboardInterrupt:
            raise CollectInterrupted(
                "interrupted; the batches stored before stay in the workspace, the batch being received "
                "was not stored",
                source=str(collector.endpoint),
            ) from None
        stats = collector.stats
    _report(console, stats, result, json_dest)
    if stats.datagrams and not stats.records:
        raise InputError(
            f"no usable NetFlow/IPFIX record in {stats.datagrams:,} datagrams ({stats.malformed:,} malformed, "
            f"{stats.unknown_version:,} of another version, {stats.lost_without_template:,} without their "
            "template); nothing was stored",
            source=str(collector.endpoint),
        )


def _replay(
    capture: Path,
    ports: tuple[int, ...],
    workspace: Path,
    site_file: Path | None,
    data_dir: Path | None,
    json_dest: str | None,
) -> None:
    """``--from-capture``: the exports recorded in a capture, stored as the collector stores them."""
    from derisk.collect import collect
    from derisk.enrich.ipdata import load_ipdata
    from derisk.ingest.export_capture import CaptureExports
    from derisk.site import load_site

    site = load_site(site_file)
    load_ipdata(data_dir)
    console = status_console(json_dest)
    exports = CaptureExports(capture, ports=ports)
    console.print(
        f"derisk: reading NetFlow/IPFIX/sFlow exports out of {visible(str(capture), 200)}", style="dim"
    )
    result = collect(exports, workspace, site, data_root=data_dir)
    stats = exports.stats
    _report(console, stats, result, json_dest)
    if not stats.records:
        raise InputError(
            f"no usable NetFlow/IPFIX record or sFlow sample in the capture ({stats.datagrams:,} export datagrams found by "
            f"Wireshark's dissector on its ports{', '.join(str(p) for p in ports) and ' and ' + ', '.join(str(p) for p in ports)}; "
            "--export-port names others); nothing was stored",
            source=str(capture),
        )


def _report(console: Any, stats: Any, result: Any, json_dest: str | None) -> None:
    kinds = [f"v{v}: {n:,}" for v, n in sorted(stats.by_version.items())]
    if stats.sflow_samples:
        kinds.append(f"sFlow samples: {stats.sflow_samples:,}")
    console.print(
        f"{stats.datagrams:,} datagrams, {stats.records:,} records ({', '.join(kinds) or 'none'}); "
        f"{result.flows:,} flows stored in {result.batches} batches"
    )
    warnings = []
    if stats.sflow_samples:
        warnings.append(
            f"{stats.sflow_samples:,} sFlow samples: each sampled packet counts its sampling rate of packets, "
            "so flows, packets and bytes are estimates, and connections no packet of which was sampled are missing"
        )
    if stats.malformed:
        warnings.append(f"{stats.malformed:,} malformed datagrams ignored")
    if stats.unknown_version:
        warnings.append(f"{stats.unknown_version:,} datagrams of another version ignored")
    if stats.lost_without_template:
        warnings.append(
            f"{stats.lost_without_template:,} v9/IPFIX datagrams arrived before their template and were "
            "never decoded"
        )
    for exporter, rate in sorted(stats.sampling.items()):
        warnings.append(
            f"exporter {exporter} samples 1 packet in {rate}: packets and bytes multiplied by {rate} "
            "(volumes are estimates)"
        )
    for warning in warnings:
        click.echo(f"derisk: warning: {visible(warning, 300)}", err=True)
    for example in stats.examples:
        click.echo(f"derisk:   e.g. {visible(example, 300)}", err=True)
    if json_dest:
        emit_json({"collect": asdict(result), "stats": asdict(stats)}, json_dest)


def register(group: click.Group) -> None:
    group.add_command(collect_cmd)
