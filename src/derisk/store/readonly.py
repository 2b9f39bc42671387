"""Read-only access to a workspace for the dashboard, with a time limit on every request.

The dashboard never writes the database: it opens the workspace read-only for the length of one
request and closes it again, so that ``derisk analyze`` (the single writer) can take its turn
between requests. DuckDB refuses a read-only open while another process holds the file read-write;
that surfaces as :class:`derisk.errors.StoreError` with the reason ``locked``.

A :class:`threading.Timer` interrupts the connection when a request's queries take longer than the
limit; the interrupted query raises :class:`StoreError` ("took longer than ...").
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import duckdb
import pyarrow as pa

from derisk.errors import StoreError
from derisk.store import DB_FILE
from derisk.store.workspace import Workspace

DEFAULT_TIME_LIMIT: Final = 5.0
#: Columns of one flow as the dashboard shows it (evidence rows).
FLOW_COLUMNS: Final = (
    "flow_id", "first_seen", "last_seen", "system", "src_ip", "src_port", "dst_ip", "dst_port", "protocol",
    "bytes_out", "bytes_in", "server_name", "server_name_source", "application", "user_agent", "dns_query",
    "dst_org", "dst_controller", "dst_jurisdiction",
)  # fmt: skip


def fingerprint(path: Path) -> tuple[int, int, int, int]:
    """Changes whenever the CLI writes the workspace (database and write-ahead log sizes and times)."""
    out: list[int] = []
    for name in (DB_FILE, DB_FILE + ".wal"):
        try:
            st = (path / name).stat()
        except OSError:
            out += [0, 0]
        else:
            out += [st.st_mtime_ns, st.st_size]
    return (out[0], out[1], out[2], out[3])


class ReadOnlyWorkspace:
    """One request's read-only view of a workspace; use :func:`open_readonly`."""

    def __init__(self, ws: Workspace, time_limit: float) -> None:
        self.ws = ws
        self.path = ws.path
        self.time_limit = time_limit
        self._timer = threading.Timer(time_limit, self._interrupt)
        self._timer.daemon = True
        self._timer.start()
        self.timed_out = False

    def _interrupt(self) -> None:
        self.timed_out = True
        with contextlib.suppress(duckdb.Error):  # the connection may have closed meanwhile
            self.ws.con.interrupt()

    def close(self) -> None:
        self._timer.cancel()
        self.ws.close()

    def __enter__(self) -> ReadOnlyWorkspace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _fail(self, exc: duckdb.Error) -> StoreError:
        if self.timed_out or isinstance(exc, duckdb.InterruptException):
            return StoreError(f"a query took longer than {self.time_limit:g} s", source=str(self.path))
        return StoreError(f"query failed ({type(exc).__name__})", source=str(self.path))

    def rows(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        try:
            rel = self.ws.con.execute(sql, params or [])
            names = [d[0] for d in rel.description or []]
            return [dict(zip(names, r, strict=True)) for r in rel.fetchall()]
        except duckdb.Error as exc:
            raise self._fail(exc) from None

    def arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        try:
            return self.ws.query_arrow(sql, params)
        except duckdb.Error as exc:
            raise self._fail(exc) from None

    def has_table(self, name: str) -> bool:
        found = self.rows("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = ?", [name])
        return bool(found[0]["n"])


@contextmanager
def open_readonly(path: Path, time_limit: float = DEFAULT_TIME_LIMIT) -> Iterator[ReadOnlyWorkspace]:
    """Open ``path`` read-only for one request; raises StoreError if missing, locked or unusable."""
    ws = Workspace.open(path, create=False, read_only=True)
    view = ReadOnlyWorkspace(ws, time_limit)
    try:
        yield view
    except duckdb.Error as exc:
        raise view._fail(exc) from None
    finally:
        view.close()


class SharedReader:
    """One read-only handle on a workspace shared by concurrent requests, released when idle.

    Opening DuckDB costs tens of milliseconds, more than most pages' queries, so the handle stays
    open while requests keep coming and is closed ``idle`` seconds after the last one, letting
    ``derisk analyze`` take its turn. Each request gets its own cursor (DuckDB connections are not
    shared between threads) with its own time limit. ``idle=0`` opens and closes per request.
    """

    def __init__(self, path: Path, idle: float = 2.0) -> None:
        self.path = path
        self.idle = idle
        self._lock = threading.Lock()
        self._ws: Workspace | None = None
        self._users = 0
        self._last = 0.0
        self._timer: threading.Timer | None = None

    @contextmanager
    def view(self, time_limit: float = DEFAULT_TIME_LIMIT) -> Iterator[ReadOnlyWorkspace]:
        if self.idle <= 0:
            with open_readonly(self.path, time_limit) as v:
                yield v
            return
        with self._lock:
            if self._ws is None:
                self._ws = Workspace.open(self.path, create=False, read_only=True)
            self._users += 1
            base = self._ws
        try:
            cursor = base.con.cursor()
        except duckdb.Error as exc:
            self._release()
            raise StoreError(
                f"cannot read the workspace ({type(exc).__name__})", source=str(self.path)
            ) from None
        view = ReadOnlyWorkspace(Workspace(self.path, cursor, read_only=True, created=False), time_limit)
        try:
            yield view
        except duckdb.Error as exc:
            raise view._fail(exc) from None
        finally:
            view.close()
            self._release()

    def _release(self) -> None:
        with self._lock:
            self._users -= 1
            self._last = time.monotonic()
            if self._users == 0 and self._timer is None:
                self._schedule(self.idle)

    def _schedule(self, delay: float) -> None:
        """Start the one idle timer (called with the lock held)."""
        self._timer = threading.Timer(delay, self._close_if_idle)
        self._timer.daemon = True
        self._timer.start()

    def _close_if_idle(self) -> None:
        with self._lock:
            self._timer = None
            if self._ws is None or self._users:
                return
            left = self.idle - (time.monotonic() - self._last)
            if left > 0.01:
                self._schedule(left)  # a request came meanwhile: wait out its idle time
                return
            self._ws.close()
            self._ws = None

    def close(self) -> None:
        with self._lock:
            if self._ws is not None:
                self._ws.close()
                self._ws = None


# -- queries the dashboard needs beyond derisk.store.flows -----------------------------------------


def latest_run(view: ReadOnlyWorkspace) -> dict[str, Any] | None:
    rows = view.rows("SELECT * FROM runs ORDER BY started_at DESC LIMIT 1")
    return rows[0] if rows else None


def hourly(view: ReadOnlyWorkspace, unknown: str, slot_minutes: int = 60) -> list[dict[str, Any]]:
    """Bytes sent per time slot of ``slot_minutes`` and controlling jurisdiction (external traffic)."""
    return view.rows(
        "SELECT time_bucket(to_minutes(?::INTEGER), first_seen) AS hour, coalesce(dst_jurisdiction, ?) AS jurisdiction,"
        " sum(coalesce(bytes_out, 0)) AS bytes_out FROM flows_attributed"
        " WHERE direction IN ('outbound', 'inbound') AND first_seen IS NOT NULL"
        " GROUP BY ALL ORDER BY hour, jurisdiction",
        [int(slot_minutes), unknown],
    )


def _flow_select(limit: int) -> str:
    cols = ", ".join(f'"{c}"' for c in FLOW_COLUMNS)
    return (
        f"SELECT {cols} FROM flows_attributed WHERE {{where}} ORDER BY first_seen, flow_id LIMIT {int(limit)}"
    )


def flows_by_ids(
    view: ReadOnlyWorkspace,
    flow_ids: list[str],
    limit: int = 200,
    *,
    src_ip: str | None = None,
    between: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The flows with these ids (an alert's evidence, oldest first).

    ``src_ip`` and ``between`` (ISO times of the first and last flow), when known, narrow the scan
    first: on a large workspace they let DuckDB skip most row groups.
    """
    if not flow_ids:
        return []
    where = ["list_contains(?, flow_id)"]
    params: list[Any] = [flow_ids[:limit]]
    if src_ip:
        where.insert(0, "src_ip = ?")
        params.insert(0, src_ip)
    if between:
        where.insert(0, "first_seen BETWEEN ?::TIMESTAMPTZ AND ?::TIMESTAMPTZ")
        params[0:0] = list(between)
    return view.rows(_flow_select(limit).format(where=" AND ".join(where)), params)


def flows_to(view: ReadOnlyWorkspace, dst_ip: str, limit: int = 200) -> list[dict[str, Any]]:
    return view.rows(_flow_select(limit).format(where="dst_ip = ?"), [dst_ip])


def entity_ids(view: ReadOnlyWorkspace) -> dict[str, str]:
    """Names of organisations and controllers seen in the attribution, mapped to their entity ids."""
    rows = view.rows(
        "SELECT DISTINCT dst_org AS name, dst_org_id AS id FROM attribution WHERE dst_org_id IS NOT NULL"
        " UNION SELECT DISTINCT dst_controller, dst_controller_id FROM attribution"
        " WHERE dst_controller_id IS NOT NULL"
    )
    return {str(r["name"]): str(r["id"]) for r in rows if r["name"]}


def destinations_of(view: ReadOnlyWorkspace, entity_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """Destinations operated or controlled by an entity, most bytes sent first."""
    return view.rows(
        "SELECT dst_ip AS ip, any_value(server_name) AS server_name, count(*) AS flows,"
        " sum(coalesce(bytes_out, 0)) AS bytes_out, list_sort(list_distinct(list(system)"
        " FILTER (WHERE system IS NOT NULL))) AS systems FROM flows_attributed"
        " WHERE dst_controller_id = ? OR dst_org_id = ? GROUP BY dst_ip ORDER BY bytes_out DESC"
        f" LIMIT {int(limit)}",
        [entity_id, entity_id],
    )


def search_index(view: ReadOnlyWorkspace) -> list[dict[str, Any]]:
    """Distinct searchable texts of external traffic per destination (what the search page scans)."""
    return view.rows(
        "SELECT dst_ip AS ip, server_name, dns_query, dst_domain AS domain, dst_org AS organisation,"
        " dst_as_org AS as_org, dst_controller AS controller, dst_jurisdiction AS jurisdiction, system,"
        " count(*) AS flows FROM flows_attributed WHERE direction IN ('outbound', 'inbound') GROUP BY ALL"
    )


def stored_alerts(view: ReadOnlyWorkspace) -> list[str]:
    """The stored alert documents (JSON text), most severe first."""
    if not view.has_table("alerts"):
        return []
    rows = view.rows("SELECT doc FROM alerts ORDER BY severity_rank DESC, score DESC, kind, destination")
    return [str(r["doc"]) for r in rows]


def bare_count(path: Path) -> int:
    """The cheapest real query (for benchmarks: the baseline a page is measured against)."""
    with open_readonly(path) as view:
        return int(view.rows("SELECT count(*) AS n FROM flows")[0]["n"])
