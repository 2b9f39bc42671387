"""The Parquet flow store: a workspace's flows and alerts as a dataset any engine reads.

Layout of a dataset folder (``derisk.parquet/1``)::

    manifest.json                  schema, derisk version, site, row counts, columns
    flows/site=S/day=D/*.parquet   every flow with its attribution (Hive partitions; D is the
                                   UTC day of first_seen, or "unknown")
    alerts/site=S/day=D/*.parquet  the alerts of the last analysis, each with its JSON document
    inputs.parquet, runs.parquet, suppressions.parquet
    knowledge/TABLE.parquet        the entities and evidence imported into the workspace, if any

A dataset is written into a temporary folder beside its destination and renamed into place when
complete, so a failed or interrupted export publishes nothing. Readers check the manifest and every
Parquet footer before using a dataset: another schema version or a damaged file is refused in one
line. DuckDB reads the dataset with ``read_parquet(..., hive_partitioning = true)``; so do Spark,
Trino and pandas.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from derisk import __version__, scratch
from derisk.errors import ConfigError, InputError, StoreError, UsageError
from derisk.flows import ATTRIBUTION_FIELDS, FLOW_SCHEMA, STORED_SCHEMA
from derisk.store import DB_FILE
from derisk.store.spill import spill_directory
from derisk.store.sqltext import ident, literal
from derisk.store.workspace import ENGINE_SETTINGS, SCHEMA_VERSION, Workspace, sql_columns

DATASET_SCHEMA: Final = "derisk.parquet/1"
MANIFEST: Final = "manifest.json"
PARTITIONS: Final = ("site", "day")
#: Folder names inside a dataset.
FLOWS: Final = "flows"
ALERTS: Final = "alerts"
KNOWLEDGE: Final = "knowledge"
#: Tables copied whole (not partitioned), when the workspace has them.
SIDE_TABLES: Final = ("inputs", "runs", "alert_suppressions")
#: Prefixes of the knowledge tables (imported entities, evidence) carried along.
KNOWLEDGE_PREFIXES: Final = ("kg_", "ftm_")

ALERT_COLUMNS: Final = (
    "alert_id",
    "kind",
    "severity",
    "severity_rank",
    "score",
    "src_ip",
    "system",
    "destination",
    "controller",
    "jurisdiction",
    "first_seen",
    "last_seen",
    "doc",
)
_ATTR_KEYS: Final = ("dst_asn", "dst_domain", "dst_as_country")
#: DuckDB's memory limit over a dataset, unless ``$DERISK_DATASET_MEMORY`` gives another. The
#: document's queries aggregate distinct values and spill beyond it (into the dataset's private
#: temporary folder); the detections' cut into buckets writes through it.
DATASET_MEMORY: Final = "2GB"
#: The same limit in the Spark driver's process, which shares the machine with the JVM (driver and,
#: in local mode, executors) and builds the document after the job: half, so that the driver stays
#: under 2 GB resident at any size (issue 16); ``$DERISK_DATASET_MEMORY`` overrides it too.
SPARK_DRIVER_MEMORY: Final = "1GB"
MEMORY_VARIABLE: Final = "DERISK_DATASET_MEMORY"
_MEMORY_SIZE: Final = re.compile(r"[0-9]+(\.[0-9]+)? ?([KMGT]i?B)", re.IGNORECASE)


def dataset_memory(environ: dict[str, str] | None = None, *, default: str = DATASET_MEMORY) -> str:
    """DuckDB's memory limit over a dataset: ``$DERISK_DATASET_MEMORY`` (``512MB``, ``4GB``, ``1.5GiB``)
    or ``default``; ConfigError on a value DuckDB would not take as a size."""
    environ = dict(os.environ) if environ is None else environ
    value = environ.get(MEMORY_VARIABLE, "").strip()
    if not value:
        return default
    if not _MEMORY_SIZE.fullmatch(value):
        raise ConfigError(
            f"{MEMORY_VARIABLE}: {value!r} is not a memory size (expected a number and a unit: "
            "512MB, 4GB, 1.5GiB)"
        )
    return value


def partition_value(text: str | None) -> str:
    """A site name as a partition folder name: letters, digits, ``.``, ``_`` and ``-`` only."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text or "").strip("-.")
    return slug[:80] or "site"


def _day_sql(column: str) -> str:
    return f"coalesce(strftime(timezone('UTC', {column}), '%Y-%m-%d'), 'unknown')"


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchall()
    return bool(rows[0][0])


def _knowledge_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT table_name FROM duckdb_tables() ORDER BY table_name").fetchall()
    return [str(r[0]) for r in rows if str(r[0]).startswith(KNOWLEDGE_PREFIXES)]


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.execute(sql).fetchall()[0][0])


@contextlib.contextmanager
def publishing(dest: Path) -> Iterator[Path]:
    """A temporary folder beside ``dest`` that becomes ``dest`` when the block ends without error."""
    if dest.exists():
        raise UsageError("exists already; give a new folder for the dataset", source=str(dest))
    parent = dest.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=parent))
    except OSError as exc:
        raise StoreError(f"cannot write here: {exc.strerror}", source=str(dest)) from None
    try:
        yield tmp
        tmp.chmod(0o700)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def new_manifest(
    site: str, rows: dict[str, int], *, engine: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "schema": DATASET_SCHEMA,
        "derisk_version": __version__,
        "workspace_schema_version": SCHEMA_VERSION,
        "engine": engine,
        "created_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "site": site,
        "partitioning": list(PARTITIONS),
        "flow_columns": FLOW_SCHEMA.names,
        "rows": rows,
        **(extra or {}),
    }


def copy_knowledge(ws: Workspace, folder: Path) -> list[str]:
    """Write the workspace's imported entities and evidence into ``folder/knowledge``; their tables."""
    knowledge = _knowledge_tables(ws.con)
    if knowledge:
        (folder / KNOWLEDGE).mkdir()
    for table in knowledge:
        ws.con.execute(
            f"COPY {ident(table)} TO {literal(str(folder / KNOWLEDGE / (table + '.parquet')))} (FORMAT parquet)"
        )
    return knowledge


def export_workspace(workspace: Path, dest: Path) -> dict[str, Any]:
    """Write the workspace's flows, alerts and side tables as a dataset at ``dest``; its manifest."""
    with Workspace.open(workspace, create=False, read_only=True) as ws, publishing(dest) as tmp:
        con = ws.con
        try:
            con.execute("SET preserve_insertion_order = false")
            runs = (
                con.execute("SELECT site FROM runs ORDER BY started_at DESC LIMIT 1").fetchall()
                if _has_table(con, "runs")
                else []
            )
            site = str(runs[0][0]) if runs and runs[0][0] else "site"
            part = literal(partition_value(site))
            cols = ", ".join(ident(n) for n in FLOW_SCHEMA.names)
            con.execute(
                f"COPY (SELECT {cols}, {part} AS site, {_day_sql('first_seen')} AS day "
                f"FROM flows_attributed) TO {literal(str(tmp / FLOWS))} "
                "(FORMAT parquet, PARTITION_BY (site, day), COMPRESSION zstd)"
            )
            rows = {"flows": _count(con, "SELECT count(*) FROM flows")}
            if _has_table(con, "alerts"):
                acols = ", ".join(ident(n) for n in ALERT_COLUMNS)
                con.execute(
                    f"COPY (SELECT {acols}, {part} AS site, {_day_sql('first_seen')} AS day FROM alerts) "
                    f"TO {literal(str(tmp / ALERTS))} (FORMAT parquet, PARTITION_BY (site, day))"
                )
                rows["alerts"] = _count(con, "SELECT count(*) FROM alerts")
            else:
                rows["alerts"] = 0
            for table in SIDE_TABLES:
                if _has_table(con, table):
                    con.execute(
                        f"COPY {ident(table)} TO {literal(str(tmp / (table + '.parquet')))} (FORMAT parquet)"
                    )
                    rows[table] = _count(con, f"SELECT count(*) FROM {ident(table)}")
            knowledge = copy_knowledge(ws, tmp)
        except duckdb.Error as exc:
            raise StoreError(f"export failed: {exc}", source=str(dest)) from None
        manifest = new_manifest(site, rows, engine="duckdb", extra={"knowledge": knowledge})
        write_manifest(tmp, manifest)
    return manifest


def flow_counts(folder: Path) -> dict[str, int]:
    """Flows per input id in the dataset being written at ``folder``."""
    # A private connection, not DuckDB's default one, which would spill into ``.tmp`` of the
    # current directory (see derisk.store.spill).
    config: dict[str, str | bool | int | float | list[str]] = {
        **ENGINE_SETTINGS,
        "temp_directory": spill_directory(),
    }
    try:
        with duckdb.connect(":memory:", config=config) as con:
            rows = con.execute(
                f"SELECT input_id, count(*) FROM {_scan(folder, FLOWS)} GROUP BY ALL"
            ).fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"cannot count the flows written ({exc})", source=str(folder)) from None
    return {str(k): int(n) for k, n in rows}


# -- reading -------------------------------------------------------------------------------------


def is_dataset(path: Path) -> bool:
    """Whether ``path`` is a folder with a derisk dataset manifest (of any version)."""
    return path.is_dir() and (path / MANIFEST).is_file()


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a dataset, checked: InputError for a missing, damaged or foreign one."""
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"not a derisk Parquet dataset (no {MANIFEST})", source=str(folder)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable {MANIFEST} ({type(exc).__name__})", source=str(folder)) from None
    if not isinstance(manifest, dict):
        raise InputError(f"{MANIFEST} is not an object", source=str(folder))
    found = manifest.get("schema")
    if found != DATASET_SCHEMA:
        made_by = manifest.get("derisk_version", "an unknown version")
        raise InputError(
            f"dataset schema {found!r} (written by derisk {made_by}); this derisk "
            f"{__version__} reads {DATASET_SCHEMA}",
            source=str(folder),
        )
    if not isinstance(manifest.get("rows"), dict):
        raise InputError(f"{MANIFEST} has no row counts", source=str(folder))
    return manifest


def _files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.parquet")) if folder.is_dir() else []


def _check_files(folder: Path, part: str, expected: int, columns: list[str]) -> int:
    """Read every footer of ``folder/part``: a damaged file, missing columns or a wrong count fail."""
    total = 0
    for path in _files(folder / part):
        try:
            meta = pq.read_metadata(path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"damaged Parquet file ({exc})", source=str(path)) from None
        names = set(meta.schema.names)
        missing = [c for c in columns if c not in names and c not in PARTITIONS]
        if missing:
            raise InputError(f"columns missing: {', '.join(missing[:5])}", source=str(path))
        total += meta.num_rows
    if total != expected:
        raise InputError(
            f"{part} hold {total:,} rows, the manifest says {expected:,} (files missing or added)",
            source=str(folder),
        )
    return total


def check_dataset(folder: Path) -> dict[str, Any]:
    """The manifest of a dataset whose files are all present and readable, else InputError."""
    manifest = read_manifest(folder)
    rows = manifest["rows"]
    _check_files(folder, FLOWS, int(rows.get("flows", 0)), FLOW_SCHEMA.names)
    _check_files(folder, ALERTS, int(rows.get("alerts", 0)), list(ALERT_COLUMNS))
    for table in [*SIDE_TABLES, *(f"{KNOWLEDGE}/{k}" for k in manifest.get("knowledge", []))]:
        path = folder / f"{table}.parquet"
        if path.exists():
            try:
                pq.read_metadata(path)
            except (OSError, pa.ArrowException) as exc:
                raise InputError(f"damaged Parquet file ({exc})", source=str(path)) from None
    return manifest


def _scan(folder: Path, part: str) -> str:
    return f"read_parquet({literal(str(folder.resolve() / part / '**' / '*.parquet'))}, hive_partitioning = true)"


def _flow_select(folder: Path, names: list[str]) -> str:
    return "SELECT " + ", ".join(ident(n) for n in names) + " FROM " + _scan(folder, FLOWS)


def _views(con: duckdb.DuckDBPyConnection, folder: Path, manifest: dict[str, Any]) -> None:
    rows = manifest["rows"]
    if rows.get("flows"):
        con.execute(f"CREATE VIEW flows_attributed AS {_flow_select(folder, FLOW_SCHEMA.names)}")
    else:
        con.execute(f"CREATE TABLE flows_attributed ({sql_columns(FLOW_SCHEMA)})")
    con.execute("CREATE VIEW flows AS SELECT * FROM flows_attributed")
    attr = ", ".join(ident(n) for n in [*_ATTR_KEYS, *(f.name for f in ATTRIBUTION_FIELDS)])
    con.execute(f"CREATE VIEW attribution AS SELECT DISTINCT {attr} FROM flows_attributed")
    for table in SIDE_TABLES:
        path = folder.resolve() / f"{table}.parquet"
        if path.exists():
            con.execute(f"CREATE VIEW {ident(table)} AS SELECT * FROM read_parquet({literal(str(path))})")
    if rows.get("alerts"):
        con.execute(f"CREATE VIEW alerts AS SELECT {', '.join(ALERT_COLUMNS)} FROM {_scan(folder, ALERTS)}")
    for table in manifest.get("knowledge", []):
        # Copied, not viewed: the knowledge graph is small, and its readers look for tables.
        path = folder.resolve() / KNOWLEDGE / f"{table}.parquet"
        con.execute(f"CREATE TABLE {ident(table)} AS SELECT * FROM read_parquet({literal(str(path))})")


@contextlib.contextmanager
def open_dataset(
    folder: Path, *, memory_default: str = DATASET_MEMORY
) -> Iterator[tuple[Workspace, dict[str, Any]]]:
    """The dataset as a read-only workspace whose tables are views over its Parquet files.

    Nothing is copied: the analysis queries run on the Parquet files through DuckDB, so a dataset
    larger than memory is read as it is. The views live in a temporary database removed afterwards.
    DuckDB's memory limit is ``$DERISK_DATASET_MEMORY`` or ``memory_default``.
    """
    manifest = check_dataset(folder)
    memory = dataset_memory(default=memory_default)
    with scratch.directory("dataset") as tmp:
        db = Path(tmp) / DB_FILE
        try:
            con = duckdb.connect(str(db), config=dict(ENGINE_SETTINGS))
            try:
                con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
                con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
                _views(con, folder, manifest)
            finally:
                con.close()
        except duckdb.Error as exc:
            raise InputError(f"cannot be read as a dataset ({exc})", source=str(folder)) from None
        with Workspace.open(Path(tmp), create=False, read_only=True) as ws:
            try:
                ws.con.execute(f"SET memory_limit = {literal(memory)}")
                yield ws, manifest
            except duckdb.Error as exc:
                raise InputError(
                    f"cannot be read ({type(exc).__name__}: {exc})", source=str(folder)
                ) from None


def stored_alerts(ws: Workspace) -> list[dict[str, Any]]:
    """The alerts' JSON documents, most severe first (the order ``derisk analyze`` gives them)."""
    if (
        not _has_table(ws.con, "alerts")
        and not ws.query("SELECT count(*) FROM duckdb_views() WHERE view_name = 'alerts'")[0][0]
    ):
        return []
    docs = ws.query(
        "SELECT doc FROM alerts ORDER BY severity_rank DESC, score DESC, kind, destination, src_ip"
    )
    return [json.loads(d[0]) for d in docs]


def load_dataset(folder: Path, workspace: Path, *, replace: bool = False) -> dict[str, Any]:
    """Load a dataset into ``workspace`` (created if needed), all or nothing; its manifest.

    The workspace's flows, inputs, attribution and alerts become the dataset's. A workspace that holds
    flows already is refused unless ``replace``. Imported entities and evidence are copied only into
    a workspace that has none of its own.
    """
    manifest = check_dataset(folder)
    rows = manifest["rows"]
    with Workspace.open(workspace, create=True) as ws:
        if not replace and ws.flow_count():
            raise UsageError(
                f"holds {ws.flow_count():,} flows already; use --replace to replace them with the dataset's",
                source=str(workspace),
            )
        try:
            with ws.transaction() as con:
                for table in ("flows", "inputs", "attribution"):
                    con.execute(f"DELETE FROM {table}")
                if rows.get("flows"):
                    stored = ", ".join(ident(n) for n in STORED_SCHEMA.names)
                    con.execute(f"INSERT INTO flows ({stored}) {_flow_select(folder, STORED_SCHEMA.names)}")
                    attr = ", ".join(ident(n) for n in [*_ATTR_KEYS, *(f.name for f in ATTRIBUTION_FIELDS)])
                    con.execute(
                        f"INSERT INTO attribution ({attr}) SELECT DISTINCT {attr} FROM {_scan(folder, FLOWS)}"
                    )
                _load_side(con, folder, manifest)
        except duckdb.Error as exc:
            raise InputError(f"cannot be loaded ({type(exc).__name__}: {exc})", source=str(folder)) from None
    return manifest


def _load_side(con: duckdb.DuckDBPyConnection, folder: Path, manifest: dict[str, Any]) -> None:
    from derisk.store.alerts import _ensure

    _ensure(con)
    con.execute("DELETE FROM alerts")
    con.execute("DELETE FROM alert_suppressions")
    if manifest["rows"].get("alerts"):
        cols = ", ".join(ALERT_COLUMNS)
        con.execute(f"INSERT INTO alerts ({cols}) SELECT {cols} FROM {_scan(folder, ALERTS)}")
    for table in SIDE_TABLES:
        path = folder / f"{table}.parquet"
        if path.exists():
            if table == "runs":
                con.execute(
                    f"INSERT INTO runs SELECT * FROM read_parquet({literal(str(path))}) "
                    "ON CONFLICT (run_id) DO NOTHING"
                )
            else:
                con.execute(
                    f"INSERT INTO {ident(table)} BY NAME SELECT * FROM read_parquet({literal(str(path))})"
                )
    for table in manifest.get("knowledge", []):
        path = folder / KNOWLEDGE / f"{table}.parquet"
        if not _has_table(con, table):
            con.execute(f"CREATE TABLE {ident(table)} AS SELECT * FROM read_parquet({literal(str(path))})")
        elif not _count(con, f"SELECT count(*) FROM {ident(table)}"):
            con.execute(
                f"INSERT INTO {ident(table)} BY NAME SELECT * FROM read_parquet({literal(str(path))})"
            )
