"""The loop of ``derisk watch``: every few seconds, one transaction per batch, with its checkpoint.

A batch asks every source for what is new (:mod:`derisk.live.sources`, :mod:`derisk.live.capture`),
then, in one DuckDB transaction, stores the flows (oriented, enriched and numbered by
:func:`derisk.pipeline.prepare_flows`), attributes the keys the workspace had not seen
(:func:`derisk.pipeline.attribute_new`), updates the detections
(:class:`derisk.detect.incremental.DetectionState`), and stores each source's read positions.
Either all of that is committed or none of it: a restart after SIGTERM or ``kill -9`` resumes from
the positions of the last committed batch, so no flow is lost and none is counted twice.

A failed transaction (a full disk, a workspace that cannot be written) is rolled back, the sources
forget what they read for it, and the batch is tried again after a growing pause (1 s doubling to
60 s): reported and counted, never a crash loop. Alerts new or changed by a committed batch go to
the deliverer (:mod:`derisk.deliver`), after the commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from derisk.enrich.ipdata import IpData
from derisk.errors import DeriskError, StoreError
from derisk.flows import ATTRIBUTION_FIELDS
from derisk.live.sources import Chunk, Context, Source
from derisk.pipeline import attribute_new, prepare_flows
from derisk.site import Site
from derisk.store import checkpoints
from derisk.store import flows as store
from derisk.store.workspace import Workspace, registered

log = logging.getLogger(__name__)

STATUS_SCHEMA: Final = "derisk.watch-status/1"
#: Pause after a failed batch: doubles from the first to the last value.
BACKOFF_S: Final = (1.0, 60.0)
#: A workspace another command holds is tried again every LOCK_PAUSE_S, LOCK_WAITS times in a row,
#: before it counts as a failed batch.
LOCK_PAUSE_S: Final = 0.5
LOCK_WAITS: Final = 120
#: DuckDB's buffer pool while watching (the workspace's default is 512 MB): it keeps the flows table's
#: written pages up to its limit, about 36 MB per million flows, which a replay's hours of history
#: would fill; a batch's own work (a 16 MB batch of log: about 35 MB) needs far less, and DuckDB
#: spills beyond the limit.
DUCKDB_MEMORY: Final = "128MB"


@dataclass
class WatchOptions:
    workspace: Path
    batch_seconds: float = 5.0
    exit_when_idle: float | None = None
    #: Bytes of logs read per batch at most (a replay of a large archive goes in many batches).
    batch_bytes: int = 64 << 20
    #: How long companion records (Zeek ssl/http/dns, EVE application events) wait for their flows.
    window: dt.timedelta = dt.timedelta(hours=24)
    retain: dt.timedelta | None = None
    status_file: Path | None = None
    #: Keep the workspace open between batches (faster); otherwise it is closed after every batch so
    #: the dashboard and other commands can read it in between.
    hold_workspace: bool = False


@dataclass
class Totals:
    started_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    batches: int = 0
    flows: int = 0
    bytes_out: int = 0
    bytes_in: int = 0
    alerts: int = 0
    alerts_delivered: int = 0
    failed_batches: int = 0
    locked_waits: int = 0
    last_batch_at: str | None = None
    last_error: str | None = None
    data_lag_seconds: float | None = None
    pending_bytes: int = 0


class Watcher:
    """Runs the batches until told to stop, or idle for ``exit_when_idle`` seconds."""

    def __init__(
        self,
        sources: list[Source],
        site: Site,
        ipdata: IpData,
        options: WatchOptions,
        *,
        deliverer: Any = None,
        on_batch: Callable[[Totals, dict[str, Any]], None] | None = None,
    ) -> None:
        from derisk.detect import config_for_site

        self.sources = sources
        self.site = site
        self.ipdata = ipdata
        self.options = options
        self.deliverer = deliverer
        self.on_batch = on_batch
        self.config = config_for_site(site)
        self.totals = Totals()
        self._ws: Workspace | None = None
        self._state: Any = None
        self._index: Any = None
        self._retained_at: float | None = None
        self._started = 0.0

    # -- the loop -----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> Totals:
        idle_since: float | None = None
        backoff = BACKOFF_S[0]
        lock_waits = 0
        try:
            while True:
                stopping = stop.is_set()
                started = time.monotonic()
                try:
                    stored = self._batch(stopping)
                    backoff, lock_waits = BACKOFF_S[0], 0
                except (StoreError, duckdb.Error, OSError) as exc:
                    if self._in_use(exc) and lock_waits < LOCK_WAITS:
                        # another command (the dashboard, derisk alerts) reads the workspace for a
                        # moment: try again shortly, without the growing pause of a failure
                        lock_waits += 1
                        self.totals.locked_waits += 1
                        log.info("workspace in use by another command; the batch waits")
                        time.sleep(LOCK_PAUSE_S)
                        continue
                    lock_waits = 0
                    self._failed(exc)
                    if stopping:
                        raise StoreError(f"the last batch could not be committed ({exc})") from None
                    stop.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_S[1])
                    continue
                busy = any(source.busy() for source in self.sources)
                if stored or busy or idle_since is None:  # idleness counts from the first batch on
                    idle_since = time.monotonic()
                if stopping:
                    break
                idle_for = self.options.exit_when_idle
                if idle_for is not None and time.monotonic() - idle_since >= idle_for:
                    if any(source.waiting() for source in self.sources):
                        # records held for companions that did not come: the logs are complete
                        for source in self.sources:
                            source.flush()
                        continue
                    log.info("no new data for %.1f s; stopping", idle_for)
                    break
                if not busy:
                    stop.wait(max(0.0, self.options.batch_seconds - (time.monotonic() - started)))
        finally:
            self._close()
        return self.totals

    def _in_use(self, exc: BaseException) -> bool:
        """The workspace could not be opened because another process holds it (nothing was read)."""
        return isinstance(exc, StoreError) and self._ws is None and "locked" in exc.message

    def _failed(self, exc: BaseException) -> None:
        for source in self.sources:
            source.abort()
        self.totals.failed_batches += 1
        self.totals.last_error = " ".join(str(exc).split())[:300] or type(exc).__name__
        log.error("batch not committed, tried again: %s", self.totals.last_error)
        self._state = None  # reloaded, with every source's positions, when the next try opens
        self._close()
        self._write_status()

    def _close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(duckdb.Error):
                self._ws.close()
            self._ws = None

    def _open(self) -> Workspace:
        if self._ws is not None:
            return self._ws
        from derisk.detect.incremental import DetectionState
        from derisk.know.attribution import load_index

        ws = Workspace.open(self.options.workspace, create=True)
        try:
            ws.con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
            if self._state is None:  # first open, or after a failed batch: state as committed
                with ws.transaction() as con:
                    checkpoints.ensure(con)
                    for source in self.sources:
                        source.restore(con)
                    self._state = DetectionState.load(con)
            if self._index is None:
                self._index = load_index(ws)
        except BaseException:
            ws.close()
            raise
        self._ws = ws
        return ws

    # -- one batch ----------------------------------------------------------------------------
    def _batch(self, stopping: bool = False) -> int:
        ws = self._open()
        self._started = time.monotonic()
        changed: list[Any] = []
        stored: dict[str, Any] = {}
        with ws.transaction() as con:
            ctx = Context(con, self.options.batch_bytes, self.options.window)
            chunks: list[Chunk] = []
            for source in self.sources:
                chunks.extend(source.collect(ctx))
            sources = sorted({c.input_id for c in chunks if c.rows})
            # more to read at once (a replay, a backlog): the window detections may wait (see
            # DetectionState.update); never when stopping, so a stop leaves current alerts
            catching_up = not stopping and any(source.busy() for source in self.sources)
            tables = [self._store(con, chunk) for chunk in chunks]
            del chunks  # their flows are stored: only one copy of the batch stays in memory
            tables = [t for t in tables if t.num_rows]
            flows = pa.concat_tables(tables) if tables else None
            del tables
            if flows is not None:
                attribute_new(con, flows, self._index)
                # only the detection columns are kept while the window is scored (the flows in
                # full, about 100 MB a 16M batch, are let go first)
                attributed = self._attributed(con, flows)
                stored = self._count(flows, sources)
                del flows
                changed = self._state.update(con, attributed, self.config, catching_up=catching_up)
                del attributed
                self._save(ws, con)
                self._record(con, stored)
            elif self._state.pending and not catching_up:  # caught up: score what waited
                changed = self._state.score(con, self.config)
                self._save(ws, con)
            self._retain(con)
        for source in self.sources:
            source.commit()
        if changed and self.deliverer is not None:
            self.deliverer.submit(changed, self._flows_of(ws, changed))
            self.totals.alerts_delivered += len(changed)
        self.totals.pending_bytes = sum(int(s.status().get("pending_bytes", 0)) for s in self.sources)
        self._write_status()
        if self.on_batch is not None and (stored or changed):
            self.on_batch(self.totals, self.status())
        if not self.options.hold_workspace:
            self._close()
        return int(stored["flows"]) if stored else 0

    def _save(self, ws: Workspace, con: duckdb.DuckDBPyConnection) -> None:
        from derisk.store.alerts import replace_alerts

        self._state.save(con)
        replace_alerts(ws, self._state.current_alerts(), (), con=con)

    @staticmethod
    def _flows_of(ws: Workspace, alerts: list[Any]) -> Any:
        """The flow summaries that make the delivered ECS documents those of ``derisk alerts --ecs``;
        None (the alerts alone) if they cannot be read: delivery must not wait for them."""
        from derisk.store.alert_flows import alert_flows

        try:
            return alert_flows(ws, alerts)
        except (DeriskError, duckdb.Error) as exc:
            log.warning("alerts delivered without their flow summaries (%s)", exc)
            return None

    def _store(self, con: duckdb.DuckDBPyConnection, chunk: Chunk) -> pa.Table:
        """Store a chunk's flows; returns them as stored (without attribution)."""
        version = self.ipdata.manifest.version
        prepared = []
        ordinal = chunk.first_ordinal
        for batch in chunk.flows:
            if batch.num_rows:
                prepared.append(prepare_flows(batch, self.site, self.ipdata, ordinal))
                ordinal += batch.num_rows
        if prepared:
            store.insert_stream(con, iter(prepared), input_id=chunk.input_id, ipdata_version=version)
        checkpoints.upsert_input(
            con, input_id=chunk.input_id, path=chunk.path, fmt=chunk.fmt, digest=chunk.digest,
            size_bytes=chunk.size_bytes, site_digest=self.site.digest(), ipdata_version=version,
            flow_count=ordinal,
        )  # fmt: skip
        if not prepared:
            return pa.table({})
        table = pa.Table.from_batches(prepared)
        ids = pc.binary_join_element_wise(
            pa.scalar(chunk.input_id), pc.cast(table["ordinal"], pa.string()), "#"
        )
        table = table.drop_columns(["ordinal"])
        table = table.append_column("flow_id", ids).append_column(
            "input_id", pa.array([chunk.input_id] * table.num_rows, pa.string())
        )
        return table.append_column("ipdata_version", pa.array([version] * table.num_rows, pa.string()))

    def _attributed(self, con: duckdb.DuckDBPyConnection, flows: pa.Table) -> pa.Table:
        """The batch's flows with their attribution, as the detections take them
        (:func:`~derisk.detect.incremental_rows.compact`): only their columns are read and joined,
        not the flow's sixty."""
        from derisk.detect.incremental_rows import COLS, compact

        attribution = {f.name for f in ATTRIBUTION_FIELDS}
        cols = [f'a."{n}"' if n in attribution else f'b."{n}"' for n in COLS]
        cols = [c for c, n in zip(cols, COLS, strict=True) if n in attribution or n in flows.column_names]
        with registered(con, "_derisk_watch_batch", flows):
            table: pa.Table = con.sql(
                "SELECT " + ", ".join(cols) + " FROM _derisk_watch_batch b"
                " LEFT JOIN attribution a ON b.dst_asn IS NOT DISTINCT FROM a.dst_asn"
                " AND b.dst_domain IS NOT DISTINCT FROM a.dst_domain"
                " AND b.dst_as_country IS NOT DISTINCT FROM a.dst_as_country"
            ).to_arrow_table()
        return compact(table)

    def _count(self, flows: pa.Table, sources: list[str]) -> dict[str, Any]:
        """Count a batch's flows into the totals; returns its ``watch_batches`` row (without alerts)."""
        t = self.totals
        out = int(pc.sum(flows["bytes_out"]).as_py() or 0)
        into = int(pc.sum(flows["bytes_in"]).as_py() or 0)
        newest = pc.max(flows["last_seen"]).as_py() or pc.max(flows["first_seen"]).as_py()
        lag = (dt.datetime.now(dt.UTC) - newest).total_seconds() if newest is not None else None
        t.batches += 1
        t.flows += flows.num_rows
        t.bytes_out += out
        t.bytes_in += into
        t.data_lag_seconds = lag
        t.last_batch_at = dt.datetime.now(dt.UTC).isoformat()
        return {"flows": flows.num_rows, "bytes_out": out, "bytes_in": into, "lag_seconds": lag,
                "sources": ",".join(sources)}  # fmt: skip

    def _record(self, con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> None:
        """Log the batch in ``watch_batches``, with the alerts after its update."""
        self.totals.alerts = len(self._state.current_alerts())
        row = {**row, "alerts": self.totals.alerts, "seconds": time.monotonic() - self._started}
        checkpoints.record_batch(con, row)

    def _retain(self, con: duckdb.DuckDBPyConnection) -> None:
        """``--retain``: age out old flows at most once an hour (the detection state keeps aggregates)."""
        if self.options.retain is None or (
            self._retained_at is not None and time.monotonic() - self._retained_at < 3600
        ):
            return
        self._retained_at = time.monotonic()
        before = con.execute("SELECT count(*) FROM flows").fetchall()[0][0]
        cut = dt.datetime.now(dt.UTC) - self.options.retain
        self._state.retain(con, cut)
        after = con.execute("SELECT count(*) FROM flows").fetchall()[0][0]
        log.info("retention: %d flows that started before %s deleted", before - after, cut.isoformat())

    # -- status -------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"schema": STATUS_SCHEMA, "pid": os.getpid(), **asdict(self.totals)}
        doc["sources"] = {source.name: source.status() for source in self.sources}
        if self.deliverer is not None:
            try:
                doc["delivery"] = self.deliverer.status()
            except DeriskError as exc:  # the status must never stop the loop
                doc["delivery"] = {"error": exc.one_line()}
        return doc

    def _write_status(self) -> None:
        path = self.options.status_file
        if path is None:
            return
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_text(json.dumps(self.status(), default=str, indent=1) + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:  # a full disk must not stop the watch; the log says it
            log.warning("%s: status not written (%s)", path, exc.strerror)
