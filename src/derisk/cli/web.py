"""``derisk serve`` (the dashboard) and ``derisk users`` (its accounts)."""

from __future__ import annotations

import getpass
import logging
import os
from pathlib import Path

import click

from derisk.cli.options import json_option, lang_option, pdf_option, workspace_option
from derisk.cli.output import emit_json, write_pages
from derisk.errors import ConfigError, StoreError, UsageError
from derisk.safetext import visible

log = logging.getLogger(__name__)


def register(group: click.Group) -> None:
    group.add_command(serve_command)
    group.add_command(users_group)
    group.add_command(report_command)


@click.command("report")
@workspace_option
@lang_option
@click.option(
    "--html", "html_dest", type=click.Path(path_type=Path, dir_okay=False), help="Write the HTML report here."
)
@pdf_option
@json_option
@click.option("-q", "--quiet", is_flag=True, help="Do not name the files written.")
def report_command(
    workspace: Path,
    lang: str,
    html_dest: Path | None,
    pdf_dest: Path | None,
    json_dest: str | None,
    quiet: bool,
) -> None:
    """Write the analysis report of WORKSPACE in a language, as HTML and/or PDF (read-only).

    The same report as `derisk analyze --html`, for the whole workspace, in English, French, Dutch
    or German; the PDF is made with WeasyPrint. Decision support, not legal advice.
    """
    from derisk.report.html import render_analysis_html
    from derisk.web.readonly import WorkspaceReader

    if html_dest is None and pdf_dest is None and json_dest is None:
        raise UsageError("say where to write the report: --html FILE, --pdf FILE and/or --json FILE|-")
    reader = WorkspaceReader(workspace, idle=0)
    snap = reader.snapshot()
    doc = snap.doc
    emit_json(doc, json_dest)
    if html_dest is None and pdf_dest is None:
        return
    html = render_analysis_html(doc, locale=lang, hourly=snap.hourly, slot_minutes=snap.slot_minutes)
    for dest in write_pages(html, html_dest, pdf_dest):
        if not quiet:
            click.echo(f"report: {visible(str(dest), 300)}", err=True)


@click.command("serve")
@workspace_option
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default)."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="TCP port (0: any free port).",
)
@click.option(
    "--site",
    "site_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Site file for the dependency register and plan [default: site.yaml in or beside WORKSPACE].",
)
@click.option(
    "--cases",
    "cases_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of deal files for screening [default: WORKSPACE/cases].",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(0.1, 600),
    default=5.0,
    show_default=True,
    help="Seconds a page's queries may take before they are interrupted.",
)
@click.option(
    "--hold",
    type=click.FloatRange(0, 60),
    default=2.0,
    show_default=True,
    help="Seconds the workspace stays open after the last request (0: open per request).",
)
@click.option(
    "--tls-cert", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="TLS certificate (PEM)."
)
@click.option(
    "--tls-key", type=click.Path(path_type=Path, dir_okay=False, exists=True), help="TLS private key (PEM)."
)
@click.option(
    "--behind-tls",
    is_flag=True,
    help="Browsers reach the dashboard through a TLS proxy: Secure cookies and HSTS even on loopback.",
)
@click.option(
    "--trusted-proxies",
    metavar="ADDR[,ADDR...]",
    default="",
    help="Proxies whose X-Forwarded-For is believed (default: none; the audit log shows the peer).",
)
@click.option(
    "--head-timeout",
    type=click.FloatRange(0.5, 300),
    default=10.0,
    show_default=True,
    help="Seconds a client has to send a complete request head before its connection is closed.",
)
def serve_command(workspace: Path, host: str, port: int, site_file: Path | None, cases_dir: Path | None,
                  time_limit: float, hold: float, tls_cert: Path | None, tls_key: Path | None,
                  behind_tls: bool, trusted_proxies: str, head_timeout: float) -> None:  # fmt: skip
    """Serve the dashboard over WORKSPACE (read-only) until interrupted.

    Listens on 127.0.0.1 unless --host says otherwise, and refuses any other address until an
    account exists (derisk users add). Every page needs a login. derisk analyze and derisk serve
    take turns on one workspace: while an analysis writes, pages say the workspace is busy, and
    while pages are being read (and --hold seconds after), an analysis finds it locked.
    """
    import ipaddress

    from derisk.store import DB_FILE
    from derisk.web.app import create_app, is_loopback
    from derisk.web.auth import UserStore
    from derisk.web.serving import serve

    proxies = tuple(p.strip() for p in trusted_proxies.split(",") if p.strip())
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise UsageError(f"--trusted-proxies: {proxy!r} is not an IP address or network") from None

    if not (workspace / DB_FILE).is_file():
        raise StoreError(
            "no workspace here (run `derisk analyze` first, or pass --workspace)", source=str(workspace)
        )
    if site_file is not None and not site_file.is_file():
        raise ConfigError("no such site file", source=str(site_file))
    if bool(tls_cert) != bool(tls_key):
        raise UsageError("--tls-cert and --tls-key go together")
    users = UserStore(workspace).load()
    if not is_loopback(host) and not users:
        raise UsageError(
            f"refusing to listen on {host}, which is not a loopback address, before an account exists; "
            f"create one with: derisk users add NAME --role admin --workspace {workspace}"
        )
    app = create_app(
        workspace, host=host, site_file=site_file, cases_dir=cases_dir, time_limit=time_limit, hold=hold,
        tls=bool(tls_cert) or behind_tls,
    )  # fmt: skip
    scheme = "https" if tls_cert else "http"
    shown_host = f"[{host}]" if ":" in host else host
    click.echo(f"derisk dashboard for {workspace}", err=True)
    click.echo(f"  open {scheme}://{shown_host}:{port}/  (Ctrl-C stops it)", err=True)
    if not users:
        click.echo(
            f"  no account exists yet: create the first administrator with\n"
            f"    derisk users add NAME --role admin --workspace {workspace}",
            err=True,
        )
    if not is_loopback(host) and not tls_cert and not behind_tls:
        click.echo(
            "  note: cookies are Secure off loopback; put a TLS proxy in front or pass --tls-cert/--tls-key",
            err=True,
        )
    serve(app, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, trusted_proxies=proxies,
          head_timeout=head_timeout)  # fmt: skip


@click.group("users")
def users_group() -> None:
    """Accounts of the dashboard (stored in WORKSPACE/web/users.json, passwords hashed with Argon2id)."""


def _password(from_env: str | None) -> str:
    if from_env:
        value = os.environ.get(from_env)
        if not value:
            raise UsageError(f"environment variable {from_env} is empty or not set")
        return value
    first = getpass.getpass("Password (at least 12 characters): ")
    if first != getpass.getpass("Repeat the password: "):
        raise UsageError("the two passwords differ")
    return first


@users_group.command("add")
@click.argument("name")
@workspace_option
@click.option(
    "--role", type=click.Choice(["viewer", "analyst", "admin"]), default="viewer", show_default=True
)
@click.option(
    "--password-env", metavar="VAR", help="Read the password from this environment variable (for scripts)."
)
@click.option("--replace", is_flag=True, help="Change the password or role of an existing account.")
def users_add(name: str, workspace: Path, role: str, password_env: str | None, replace: bool) -> None:
    """Create (or with --replace, change) the account NAME; asks for the password."""
    from derisk.web.auth import UserStore, check_name

    check_name(name)
    if not workspace.is_dir():
        raise StoreError(
            "no workspace here (run `derisk analyze` first, or pass --workspace)", source=str(workspace)
        )
    user = UserStore(workspace).add(name, _password(password_env), role, replace=replace)
    click.echo(f"account {user.name} ({user.role}) saved; existing sessions of it have ended", err=True)


@users_group.command("list")
@workspace_option
@json_option
def users_list(workspace: Path, json_dest: str | None) -> None:
    """List accounts and their roles (with --json: the derisk.users/1 document, no password hashes)."""
    from derisk.web.auth import UserStore

    if not workspace.is_dir():
        raise StoreError(
            "no workspace here (run `derisk analyze` first, or pass --workspace)", source=str(workspace)
        )
    users = sorted(UserStore(workspace).load().values(), key=lambda u: u.name)
    if json_dest is not None:
        rows = [{"name": u.name, "role": u.role, "created": u.created} for u in users]
        emit_json({"schema": "derisk.users/1", "workspace": str(workspace), "users": rows}, json_dest)
        if json_dest == "-":
            return
    for user in users:
        click.echo(f"{visible(user.name, 200)}\t{user.role}\t{visible(str(user.created), 60)}")


@users_group.command("remove")
@click.argument("name")
@workspace_option
def users_remove(name: str, workspace: Path) -> None:
    """Remove the account NAME (its sessions end at once)."""
    from derisk.web.auth import UserStore

    UserStore(workspace).remove(name)
    click.echo(f"account {name} removed", err=True)
