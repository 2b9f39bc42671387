"""``derisk data``: install and inspect the reference data (the only command that downloads)."""

from __future__ import annotations

from pathlib import Path

import click

from derisk.cli.options import data_dir_option, json_option
from derisk.cli.output import emit_json, status_console
from derisk.errors import UsageError
from derisk.safetext import visible


@click.group("data")
def data_group() -> None:
    """Install and inspect reference data (IP → AS, geolocation)."""


@data_group.command("update")
@data_dir_option
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    help="Install offline from a folder holding the ip-location-db packages (unpacked or .tgz).",
)
@click.option(
    "--version",
    "version",
    help="Another ip-location-db version than the one derisk's data lock names (checked against the "
    "registry's SHA-512 only).",
)
@click.option(
    "--registry",
    metavar="URL",
    envvar="DERISK_NPM_REGISTRY",
    help="An npm registry mirror [default: https://registry.npmjs.org; $DERISK_NPM_REGISTRY].",
)
@click.option(
    "--lock",
    "lock_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A data lock of your own (same layout as derisk's) naming the versions you vetted.",
)
@click.option(
    "--unverified",
    is_flag=True,
    help="With --from: also install unpacked folders or versions the data lock does not name.",
)
@click.option(
    "--mmdb-asn",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Use a MaxMind GeoLite2-ASN .mmdb instead.",
)
@click.option(
    "--mmdb-country",
    type=click.Path(path_type=Path, dir_okay=False),
    help="MaxMind GeoLite2-Country .mmdb (with --mmdb-asn).",
)
@json_option
def update_cmd(
    data_dir: Path | None,
    source: Path | None,
    version: str | None,
    mmdb_asn: Path | None,
    mmdb_country: Path | None,
    json_dest: str | None,
    registry: str | None,
    lock_file: Path | None,
    unverified: bool,
) -> None:
    """Fetch, verify and install the IP data; the previous data stays if anything fails.

    Without --version, the versions named by the data lock shipped with this derisk are downloaded
    over HTTPS and refused unless their SHA-512 matches the lock. No Node.js is needed.
    """
    from derisk.enrich import update as updater

    console = status_console(json_dest)
    if mmdb_country is not None and mmdb_asn is None:
        raise UsageError("--mmdb-country needs --mmdb-asn")
    if mmdb_asn is not None and (source is not None or version is not None):
        raise UsageError("--mmdb-asn cannot be combined with --from or --version")
    if mmdb_asn is not None:
        manifest = updater.install_mmdb(data_dir, mmdb_asn, mmdb_country)
    else:
        with console.status("updating IP data") as status:
            manifest = updater.update(
                data_dir,
                source=source,
                version=version,
                progress=lambda m: status.update(visible(m, 100)),
                registry=registry,
                require_lock=not unverified,
                lock=lock_file,
            )
    doc = {"schema": "derisk.data/1", **updater.installed(data_dir)}
    emit_json(doc, json_dest)
    if json_dest != "-":
        console.print(f"IP data installed: {manifest.version} in {visible(doc['data_dir'], 200)}")
        for s in manifest.sources:
            console.print(
                f"  {visible(s.name)}@{visible(s.version)}  checked against: {visible(s.verified)}  "
                f"{visible(s.licence, 100)}"
            )


@data_group.command("status")
@data_dir_option
@json_option
def status_cmd(data_dir: Path | None, json_dest: str | None) -> None:
    """Show which reference data is installed, its sources and versions."""
    from derisk.enrich import update as updater

    doc = {"schema": "derisk.data/1", **updater.installed(data_dir)}
    emit_json(doc, json_dest)
    if json_dest != "-":
        console = status_console(json_dest)
        console.print(f"data directory: {visible(doc['data_dir'], 200)}")
        console.print(f"IP data: {doc['version']} ({doc['ipdata_kind']}), installed {doc['installed_at']}")
        for s in doc["sources"]:
            console.print(
                f"  {visible(s['name'])}@{visible(s['version'])}  {visible(s['origin'], 100)}  "
                f"checked against: {visible(s.get('verified', 'none'))}"
            )


def register(group: click.Group) -> None:
    group.add_command(data_group)
