"""Compare a Spark document with the DuckDB path's whole document over the same Parquet dataset.

`derisk analyze --engine duckdb DATASET` shows a dataset's stored alerts; a dataset written by
`scripts/gen_parquet_flows.py` has none, so this runs the DuckDB path's detections over it first
(as `scripts/bench_spark.py --child duckdb-parquet` does), builds the document and compares it with
the Spark document the way `tests/test_spark.py` does: the run's time and id left out, alerts sorted
by id, floating-point values within a relative 1e-9.

    scripts/gen_parquet_flows.py --flows 1000000 --save-seed W/seed W/ds
    derisk analyze --engine spark W/ds --data-dir DATA --json W/spark.json -q
    DERISK_DATA_DIR=DATA python scripts/compare_engines.py W/ds W/spark.json

Prints the differences (none: exit 0; some: exit 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main(argv: list[str]) -> int:
    from derisk.analysis import build_document
    from derisk.detect import config_for_site
    from derisk.detect.runner import detect_flows
    from derisk.site import default_site
    from derisk.store.parquet import open_dataset
    from test_spark import comparable, same

    dataset, spark_json = Path(argv[0]), Path(argv[1])
    site = default_site()
    with open_dataset(dataset) as (ws, _):
        found = detect_flows(ws.con, config_for_site(site), source=str(dataset))
        unique = {a.alert_id: a for a in reversed(found.alerts)}  # one per id, the first, as stored
        alerts = [a.to_json() for a in found.alerts if unique.get(a.alert_id) is a]
        doc = json.loads(
            json.dumps(build_document(ws, site, input_ids=None, run={}, alerts=alerts), default=str)
        )
    spark = json.loads(spark_json.read_text(encoding="utf-8"))
    differences = same(comparable(spark), comparable(doc))
    print(
        f"flows {doc['totals']['flows']:,}, alerts: Spark {len(spark['alerts'])}, DuckDB {len(doc['alerts'])}"
    )
    print(f"{len(differences)} differences")
    print("\n".join(differences[:50]))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
