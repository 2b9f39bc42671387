"""Starting Spark: Java and the master checked first, so their absence is one line, not a JVM trace.

Only this package imports pyspark (one adapter per foreign engine), and only when a Spark analysis
runs. One session per process: a second analysis in the same process (the tests) reuses it.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from derisk import scratch
from derisk.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_MASTER: Final = "local[*]"
#: Seconds to wait for a standalone master to accept a connection before giving up.
CONNECT_TIMEOUT: Final = 5.0
#: Settings every derisk session gets (docs/spark.md): UTC everywhere, Arrow between the JVM and the
#: Python workers, timestamps written as Parquet INT64 microseconds (what DuckDB and Trino read).
SETTINGS: Final[dict[str, str]] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "static",
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    # Memory (docs/spark.md, Memory sizing). In local mode the driver's JVM also runs the executors:
    # its heap holds the partitioned write's sort and the shuffle by system, never the flows (they
    # are not cached, and the driver collects only attribution keys and each partition's pass, one
    # partition at a time). The JVM's resident size is about 0.5 GB above its heap.
    "spark.driver.memory": "1200m",
    "spark.driver.maxResultSize": "512m",
    # Input splits of at most 64 MB of Parquet (about 1 M flows): the write's sort of one split
    # fits in memory instead of spilling many files and merging them back.
    "spark.sql.files.maxPartitionBytes": "64m",
    # Arrow batches to and from the Python workers: 100,000 rows (10,000 by default) make a tenth
    # of the transfers; one batch of the detections' columns is about 30 MB.
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
}
#: Environment variable with settings that replace or add to :data:`SETTINGS` for the sessions
#: derisk starts: ``key=value`` pairs separated by spaces, e.g. ``spark.driver.memory=4g``.
CONF_VARIABLE: Final = "DERISK_SPARK_CONF"


def settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """:data:`SETTINGS` with the overrides of ``$DERISK_SPARK_CONF``; ConfigError on a malformed pair."""
    environ = dict(os.environ) if environ is None else environ
    out = dict(SETTINGS)
    for pair in environ.get(CONF_VARIABLE, "").split():
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("spark.") or not value:
            raise ConfigError(
                f"{CONF_VARIABLE}: {pair!r} is not a Spark setting (expected spark.KEY=VALUE, "
                "separated by spaces)"
            )
        out[key] = value
    return out


def java_command() -> str:
    """The ``java`` Spark will start (``$JAVA_HOME/bin/java``, else the one on PATH); ConfigError if none runs."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        where = f"JAVA_HOME={home}" if home else "PATH"
        raise ConfigError(
            f"Spark needs Java 17 or newer, and none was found on {where} "
            "(install openjdk-17-jre-headless, or set JAVA_HOME)"
        )
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as exc:
        raise ConfigError(f"Java cannot be started ({exc.strerror})", source=java) from None
    if done.returncode != 0:
        raise ConfigError("Java cannot be started (java -version failed)", source=java)
    return java


def check_master(master: str) -> None:
    """A standalone master (``spark://host:port``) must accept a connection: ConfigError at once,
    instead of Spark's retries for a minute. Other masters (local, yarn, k8s) are left to Spark."""
    if not master.startswith("spark://"):
        return
    for part in master[len("spark://") :].split(","):
        url = urlsplit(f"spark://{part}")
        host, port = url.hostname, url.port or 7077
        if not host:
            raise ConfigError("not a Spark master URL (expected spark://HOST:PORT)", source=master)
        try:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
                return
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            last = f"{host}:{port}: {reason}"
    raise ConfigError(f"Spark master unreachable ({last})", source=master)


#: Spark's own log: errors only, on standard error (its INFO and WARN lines would bury derisk's).
LOG4J2: Final = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = spark: %p %c{1}: %m%n
"""


def _log_config() -> str:
    handle, name = scratch.make_file("log4j2", ".properties")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(LOG4J2)
    return name


def session(master: str | None = None, *, app: str = "derisk") -> Any:
    """The process's SparkSession on ``master``, started if needed (ConfigError without pyspark or Java)."""
    # Under spark-submit the launcher's --master (in the JVM's settings) applies unless one is given.
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ
    master = master or (None if submitted else DEFAULT_MASTER)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("the Spark engine needs PySpark: pip install 'derisk[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        running = active.sparkContext.master
        if master is not None and running != master:
            log.warning("a Spark session on %s is running already; using it instead of %s", running, master)
        return active
    chosen = settings()  # ConfigError before a JVM starts
    if not submitted:
        java_command()
    if master is not None:
        check_master(master)
    # The Python workers run the interpreter that runs derisk (its venv holds derisk and its libraries).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    if master is not None:
        builder = builder.master(master)
    log_config = _log_config()
    builder = builder.config("spark.driver.extraJavaOptions", f"-Dlog4j.configurationFile={log_config}")
    for key, value in chosen.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # the JVM did not start or the master refused: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"Spark did not start ({first[:300]})", source=master or "spark-submit") from None
    finally:
        Path(log_config).unlink(missing_ok=True)  # read once, when the JVM started
