"""``derisk watch``: keep watch continuously over live capture, followed logs and NetFlow."""

from __future__ import annotations

import click


@click.command("watch")
def watch_cmd() -> None:
    """Watch continuously: live capture, followed Zeek/Suricata logs, capture rings, NetFlow."""
    from derisk.errors import UsageError

    raise UsageError("derisk watch is being built (issue 15); use derisk analyze for now")


def register(group: click.Group) -> None:
    group.add_command(watch_cmd)
