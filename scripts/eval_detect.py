"""Evaluation harness: precision and recall of every detection on labelled traffic, next to RITA v5.

    .venv/bin/python scripts/eval_detect.py [--seed 7] [--markdown FILE]

Generates two days of labelled flows (derisk.gen.labelled, seeded), runs derisk's detections and the
faithful RITA v5 beacon score (derisk.detect.rita) on the same flows, and prints precision and recall
per detection, with and without the site's allow-list of benign services.
"""

from __future__ import annotations

import argparse
from typing import Any

from derisk.detect.evaluate import run
from derisk.detect.rita import REPORT_AT


def fmt(name: str, s: dict[str, Any]) -> str:
    return (
        f"| {name} | {s['positives']} | {s['alerts']} | {s['tp']} | {s['fp']} | "
        f"{s['precision']:.3f} | {s['recall']:.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--markdown", default=None)
    args = ap.parse_args()
    out = []
    for allow in (True, False):
        r = run(args.seed, allow)
        title = "with the site allow-list" if allow else "without any allow-list"
        out.append(
            f"### Seed {args.seed}, {title} ({r['flows']:,} flows; derisk {r['seconds']:.1f} s, "
            f"RITA baseline {r['rita_seconds']:.1f} s)\n"
        )
        out.append("| detection | positives | alerts | true | false | precision | recall |")
        out.append("|---|---|---|---|---|---|---|")
        for kind, s in r["kinds"].items():
            out.append(fmt(kind, s))
        out.append(fmt(f"RITA v5 beacon score ≥ {REPORT_AT}", r["rita_default"]))
        if r["rita_equal_precision"]:
            thr, s = r["rita_equal_precision"]
            out.append(fmt(f"RITA v5 beacon score ≥ {thr:.2f} (best recall at ≥ derisk's precision)", s))
        else:
            out.append(
                f"| RITA v5 at derisk's precision ({r['kinds']['beacon']['precision']:.3f}) | – | – | – | – | "
                "not reached at any threshold | 0 |"
            )
        for thr, s in r["rita_curve"][1:]:
            out.append(fmt(f"RITA v5 beacon score ≥ {thr:.1f}", s))
        missed = {k: s["missed"] for k, s in r["kinds"].items() if s["missed"]}
        if missed:
            out.append("\nMissed by derisk: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in missed.items()))
        out.append(
            "\nMissed by RITA at its default threshold: " + ", ".join(r["rita_default"]["missed"]) + "\n"
        )
    text = "\n".join(out)
    print(text)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
