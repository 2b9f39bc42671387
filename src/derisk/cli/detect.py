"""``derisk alerts``: list, filter and export the alerts of the last analysis."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from derisk.cli.options import json_option, workspace_option
from derisk.cli.output import emit_json, write_atomic
from derisk.kinds import KINDS, SEVERITIES
from derisk.safetext import visible

if TYPE_CHECKING:
    from derisk.detect.alert import Alert
    from derisk.store.alert_flows import AlertFlows

SCHEMA = "derisk.alerts/1"
#: TLP 2.0 levels of --tlp (the same as derisk.detect.exchange.TLP_LEVELS, kept here so --help stays light).
TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")


def _line(a: Alert) -> str:
    who = a.system or a.src_ip or "-"
    ctrl = f"{a.controller} ({a.jurisdiction})" if a.controller else (a.jurisdiction or "controller unknown")
    return (
        f"{a.severity:<8} {a.score:4.2f}  {a.kind:<18} {visible(who, 24):<24} "
        f"{visible(a.destination, 48):<48} {visible(ctrl, 60)}"
    )


@click.command("alerts")
@workspace_option
@click.option("--kind", type=click.Choice(KINDS), default=None, help="Only alerts of this kind.")
@click.option(
    "--min-severity", type=click.Choice(SEVERITIES), default=None, help="Only this severity or higher."
)
@click.option("--system", default=None, help="Only alerts about this system (name from the site file).")
@json_option
@click.option(
    "--misp",
    "misp_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the alerts as one MISP event (JSON), for a CERT or another authority.",
)
@click.option(
    "--stix",
    "stix_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the alerts as a STIX 2.1 bundle (JSON), for a CERT or another authority.",
)
@click.option(
    "--tlp",
    type=click.Choice(TLP_LEVELS),
    default="amber",
    show_default=True,
    help="Traffic Light Protocol (2.0) marking of the MISP and STIX exports.",
)
@click.option(
    "--ecs",
    "ecs_dest",
    default=None,
    metavar="FILE|-",
    help="Write Elastic Common Schema JSON lines (- for stdout), for a SIEM.",
)
@click.option(
    "--ocsf",
    "ocsf_dest",
    default=None,
    metavar="FILE|-",
    help="Write OCSF Detection Findings as JSON lines (- for stdout), for a SIEM or data lake.",
)
@click.option("--explain", is_flag=True, help="Print each alert's sentence under it.")
def alerts_command(
    workspace: Path,
    kind: str | None,
    min_severity: str | None,
    system: str | None,
    json_dest: str | None,
    misp_path: Path | None,
    stix_path: Path | None,
    tlp: str,
    ecs_dest: str | None,
    ocsf_dest: str | None,
    explain: bool,
) -> None:
    """List, filter and export the alerts of the last `derisk analyze`."""
    from derisk.detect.ecs import ecs_lines
    from derisk.store.alert_flows import alert_flows
    from derisk.store.alerts import load_alerts, load_suppressions
    from derisk.store.workspace import Workspace

    with Workspace.open(workspace, create=False, read_only=True) as ws:
        found = load_alerts(ws, kind=kind, min_severity=min_severity, system=system)
        suppressed = load_suppressions(ws)
        wanted = (ecs_dest, ocsf_dest, misp_path, stix_path) != (None, None, None, None)
        behind = alert_flows(ws, found) if wanted else None
    emit_json(
        {
            "schema": SCHEMA,
            "filters": {"kind": kind, "min_severity": min_severity, "system": system},
            "alerts": [a.to_json() for a in found],
            "suppressed": suppressed,
        },
        json_dest,
    )
    _exchange(found, behind, misp_path, stix_path, tlp)
    if ecs_dest is not None:
        text = "".join(line + "\n" for line in ecs_lines(found, flows=behind))
        if ecs_dest == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_atomic(Path(ecs_dest), text)
    if ocsf_dest is not None:
        from derisk.detect.ocsf import ocsf_lines

        text = "".join(line + "\n" for line in ocsf_lines(found, flows=behind))
        if ocsf_dest == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            write_atomic(Path(ocsf_dest), text)
    to_err = "-" in (json_dest, ecs_dest, ocsf_dest)
    if not found:
        click.echo(
            "No alerts" + (" match these filters." if kind or min_severity or system else "."), err=to_err
        )
        return
    click.echo(
        f"{'severity':<8} score  {'kind':<18} {'system/host':<24} {'destination':<48} controller", err=to_err
    )
    for a in found:
        click.echo(_line(a), err=to_err)
        if explain:
            click.echo("    " + visible(a.sentence, 2000), err=to_err)
    for s in suppressed:
        if s["flows"]:
            click.echo(
                f"allow-list {visible(s['matcher'])}={visible(s['value'])} suppressed {s['flows']:,} flows "
                f"({visible(s['reason'])})",
                err=to_err,
            )


def _exchange(
    found: list[Alert],
    behind: dict[str, AlertFlows] | None,
    misp_path: Path | None,
    stix_path: Path | None,
    tlp: str,
) -> None:
    """Write the MISP event and the STIX bundle that were asked for (libraries loaded only then)."""
    if misp_path is not None:
        from derisk.detect.misp import misp_event, misp_json

        write_atomic(misp_path, misp_json(misp_event(found, tlp=tlp, flows=behind)))
    if stix_path is not None:
        from derisk.detect.stix import stix_bundle, stix_json

        write_atomic(stix_path, stix_json(stix_bundle(found, tlp=tlp, flows=behind)))


def register(group: click.Group) -> None:
    group.add_command(alerts_command)
