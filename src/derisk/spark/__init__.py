"""derisk on Apache Spark: the one adapter to Spark (``derisk analyze --engine spark``).

Nothing here is imported until a Spark analysis runs, and only this package imports pyspark. The
analysis reads Zeek log directories and Parquet datasets, parses and orients the flows with the
local path's functions on the executors, enriches them by a bucketed range join, attributes them through the control graph (resolved
once per distinct key, broadcast back), runs every detection as grouped Arrow functions calling the
local detectors, and writes a Parquet dataset (:mod:`derisk.store.parquet`) that ``derisk load``
and ``derisk analyze DATASET`` read. docs/spark.md has the deployment, settings and sizing.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

from derisk.errors import DeriskError, InputError, StoreError
from derisk.site import Site


def _first_line(exc: BaseException) -> str:
    """The line that says what went wrong: a Python worker's exception line, else the first line."""
    text = str(exc).strip()
    if "Traceback (most recent call last)" in text:
        raised = [
            ln.strip() for ln in text.splitlines() if re.match(r"^\s*[A-Za-z_.]+(Error|Exception): ", ln)
        ]
        if raised:
            return raised[-1][:300]
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return type(exc).__name__


def job_error(exc: BaseException, dest: Path) -> DeriskError:
    """A failed Spark job as one line: derisk's own error raised in a Python worker (a bad line in a
    Zeek log: the local path's message and exit code), a damaged input file, else the job's own line."""
    from derisk import errors

    text = str(exc)
    raised = re.findall(r"derisk\.errors\.(\w+): (.+)", text)
    if raised:
        name, message = raised[-1]
        kind = getattr(errors, name, None)
        if isinstance(kind, type) and issubclass(kind, DeriskError):
            return kind(message.strip()[:2000])
    lowered = text.lower()
    if any(word in lowered for word in ("parquet", "footer", "magic number", "corrupt")):
        return InputError(f"Spark could not read an input ({_first_line(exc)})")
    return StoreError(f"the Spark job failed ({_first_line(exc)}); nothing was published", source=str(dest))


def analyse(
    inputs: list[Path],
    site: Site,
    dest: Path,
    *,
    master: str | None = None,
    data_root: Path | None = None,
    graph_workspace: Path | None = None,
    strict: bool = False,
) -> dict[str, Any]:
    """Analyse ``inputs`` on Spark (``master``: local[*] by default) into the dataset ``dest``."""
    from derisk.spark.session import session

    with warnings.catch_warnings():
        # PySpark 4.3 warns that it does not fully support pandas 3 whenever an Arrow function is
        # declared; derisk's Arrow functions never go through pandas.
        warnings.filterwarnings(
            "ignore", message="PySpark does not yet fully support pandas", category=FutureWarning
        )
        spark = session(master)
        return _run(
            spark, inputs, site, dest, data_root=data_root, graph_workspace=graph_workspace, strict=strict
        )


def _run(
    spark: Any,
    inputs: list[Path],
    site: Site,
    dest: Path,
    *,
    data_root: Path | None,
    graph_workspace: Path | None,
    strict: bool,
) -> dict[str, Any]:
    from derisk.spark.job import analyse as run_job

    try:
        return run_job(
            spark, inputs, site, dest, data_root=data_root, graph_workspace=graph_workspace, strict=strict
        )
    except DeriskError:
        raise
    except Exception as exc:
        from py4j.protocol import Py4JError  # type: ignore[import-untyped]
        from pyspark.errors import PySparkException

        if isinstance(exc, PySparkException | Py4JError):
            raise job_error(exc, dest) from None
        raise
