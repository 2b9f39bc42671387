#!/usr/bin/env python3
"""Attribution on real captures: derisk's answers scored against a judged ground truth.

    .venv/bin/python scripts/eval_attribution.py CAPTURE_DIR [--truth FILE] [--data-dir DIR]
        [--json FILE] [--markdown FILE] [--keep DIR]

CAPTURE_DIR holds the public captures the truth file names (by file name; each is checked against
the git blob id recorded in the truth file, so a different file of the same name is refused). The
script never downloads: fetch the repository named in the truth file and copy the files out, e.g.
``git --git-dir=nDPI.git show HEAD:tests/cfgs/default/pcap/weibo.pcap > CAPTURE_DIR/weibo.pcap``.
Each capture is analysed on its own by the real command (``python -m derisk analyze``, a fresh
workspace per capture, the IP data of ``--data-dir`` or the default data directory; one retry when it fails), and the analysis
document is scored:

- *right*: the controller named is one of the judged names and the controlling jurisdiction matches;
- *wrong*: a confident answer (a controller from the control graph) that is not right;
- *unknown/guess*: no controller, or only the AS registration country (a guess);
- *bytes through the graph*: the share of all bytes to public destinations whose controlling
  jurisdiction comes from the control graph rather than the registration guess.

The headline scores derisk's combined answer (the one the terminal's Controller column shows); when
the analysis carries the two layers (``infrastructure`` and ``service`` per destination), the layer the
judgement names (the service when a name is carried, else the infrastructure) is scored as "expected
layer" (without layers it equals the combined answer), and each layer is also scored against the
judged infrastructure operator and service. Destinations the truth file marks
``judged: false`` are listed but not scored.
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRUTH = ROOT / "tests" / "fixtures" / "eval" / "attribution-truth.yaml"

#: Bases that are not an attribution through the control graph.
GUESS_BASES = frozenset({None, "", "as-registration", "unknown", "guess", "none"})
OUTCOMES = ("right", "wrong", "unknown")


class EvalError(Exception):
    """A capture or the truth file cannot be used (the message says which and why)."""


def git_blob_id(data: bytes) -> str:
    """The id git gives a file's content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", " ", text.casefold()).strip()


def controller_matches(answer: str | None, accepted: list[str] | None, also: tuple[str, ...] = ()) -> bool:
    """True when the answered controller is one of the accepted names (case and punctuation aside).

    ``also`` are the other names the registry gives the answered entity (its name and aliases): a
    judge who wrote "CERIST" and an answer "Centre de Recherche sur l'Information Scientifique et
    Technique" name one organisation when the registry lists the one as the other's alias.
    """
    if not answer or not accepted:
        return False
    said = [f" {_norm(name)} " for name in (answer, *also) if _norm(name)]
    return any(f" {_norm(name)} " in text for name in accepted if _norm(name) for text in said)


@dataclass
class Answer:
    controller: str | None
    jurisdiction: str | None
    basis: str | None
    #: The registry's names of the answered controller entity (its name and aliases), if known.
    names: tuple[str, ...] = ()


def classify(answer: Answer | None, expected: dict[str, Any]) -> str:
    """right, wrong or unknown for one answer against one judged layer."""
    if answer is None or not answer.controller or answer.basis in GUESS_BASES:
        return "unknown"
    if answer.jurisdiction == expected.get("jurisdiction") and controller_matches(
        answer.controller, expected.get("controller"), answer.names
    ):
        return "right"
    return "wrong"


#: Entity id -> the registry's names for it (name and aliases); see :func:`registry_names`.
Names = dict[str, tuple[str, ...]]


def registry_names() -> Names:
    """The curated registry's names per entity id, from the derisk being evaluated (PYTHONPATH)."""
    from derisk.know.curated import load_curated

    return {e.id: (e.name, *e.aliases) for e in load_curated().entities.values()}


def _layer(dest: dict[str, Any], name: str, names: Names | None = None) -> Answer | None:
    part = dest.get(name)
    if not isinstance(part, dict):
        return None
    known = (names or {}).get(str(part.get("controller_id")), ())
    return Answer(part.get("controller"), part.get("jurisdiction"), part.get("basis"), known)


def _combined(dest: dict[str, Any], names: Names | None = None) -> Answer:
    """The Controller column's answer; its entity is the layer's whose controller it shows."""
    known: tuple[str, ...] = ()
    for layer in ("service", "infrastructure"):
        part = dest.get(layer)
        if (
            isinstance(part, dict)
            and part.get("controller")
            and part.get("controller") == dest.get("controller")
        ):
            known = (names or {}).get(str(part.get("controller_id")), ())
            break
    return Answer(dest.get("controller"), dest.get("jurisdiction"), dest.get("jurisdiction_basis"), known)


def _is_external(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return address.is_global and not address.is_multicast


@dataclass
class Score:
    """Counts over judged destinations and bytes over all public destinations."""

    outcomes: dict[str, Counter[str]] = field(default_factory=dict)
    bytes_total: int = 0
    bytes_graph: dict[str, int] = field(default_factory=Counter)
    bytes_named: int = 0
    cases: list[dict[str, Any]] = field(default_factory=list)
    not_judged: int = 0
    captures: int = 0

    def count(self, layer: str, outcome: str) -> None:
        self.outcomes.setdefault(layer, Counter())[outcome] += 1

    def shares(self, layer: str) -> dict[str, float]:
        counts = self.outcomes.get(layer, Counter())
        total = sum(counts.values())
        return {k: (100.0 * counts[k] / total if total else 0.0) for k in OUTCOMES} | {"n": total}

    def bytes_share(self, key: str) -> float:
        base = self.bytes_named if key == "service" else self.bytes_total
        return 100.0 * self.bytes_graph.get(key, 0) / base if base else 0.0


def score_analysis(
    doc: dict[str, Any], capture: dict[str, Any], score: Score, names: Names | None = None
) -> None:
    """Score one analysis document against one capture's judged destinations (``names``: the
    registry's names per entity id, so an answer is right under any of its entity's names)."""
    by_ip = {d["ip"]: d for d in doc.get("destinations") or []}
    for dest in by_ip.values():
        if not _is_external(str(dest.get("ip"))):
            continue
        size = int(dest.get("bytes_out") or 0) + int(dest.get("bytes_in") or 0)
        score.bytes_total += size
        if dest.get("jurisdiction_basis") not in GUESS_BASES:
            score.bytes_graph["combined"] += size
        infra, service = _layer(dest, "infrastructure"), _layer(dest, "service")
        if infra is not None and infra.basis not in GUESS_BASES:
            score.bytes_graph["infrastructure"] += size
        if dest.get("server_names"):
            score.bytes_named += size
            if service is not None and service.basis not in GUESS_BASES:
                score.bytes_graph["service"] += size
        either = (infra is not None and infra.basis not in GUESS_BASES) or (
            service is not None and service.basis not in GUESS_BASES
        )
        if either or dest.get("jurisdiction_basis") not in GUESS_BASES:
            score.bytes_graph["either"] += size
    for judged in capture["destinations"]:
        if not judged.get("judged"):
            score.not_judged += 1
            continue
        dest = by_ip.get(judged["ip"])
        answer = _combined(dest, names) if dest is not None else None
        outcome = classify(answer, judged["expected"])
        score.count("combined", outcome)
        score.count(f"group {capture.get('group') or '-'}", outcome)
        layers: dict[str, str] = {}
        wanted = judged["expected"].get("layer")
        if dest is not None and isinstance(dest.get(wanted), dict):
            score.count("expected layer", classify(_layer(dest, wanted, names), judged["expected"]))
        else:
            score.count("expected layer", outcome)
        for name in ("infrastructure", "service"):
            truth = judged.get(name)
            if dest is None or not isinstance(truth, dict) or not truth.get("controller"):
                continue
            if not isinstance(dest.get(name), dict):
                continue
            layers[name] = classify(_layer(dest, name, names), truth)
            score.count(name, layers[name])
        if outcome != "right":
            score.cases.append(
                {
                    "capture": capture["file"],
                    "ip": judged["ip"],
                    "server_names": judged.get("server_names") or [],
                    "as_org": judged.get("as_org"),
                    "outcome": outcome if dest is not None else "unknown (not in the analysis)",
                    "expected": f"{judged['expected']['controller'][0]} / {judged['expected']['jurisdiction']}",
                    "answer": (
                        f"{answer.controller} / {answer.jurisdiction} ({answer.basis})" if answer else "-"
                    ),
                    "layers": layers,
                }
            )


def load_truth(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EvalError(f"{path}: cannot read the truth file ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("captures"), list):
        raise EvalError(f"{path}: expected a mapping with a list of captures")
    return doc


def analyse(capture: Path, workdir: Path, data_dir: Path | None) -> dict[str, Any]:
    """Run ``derisk analyze`` on one capture in a fresh workspace and return its JSON document."""
    out = workdir / f"{capture.name}.json"
    cmd = [sys.executable, "-m", "derisk", "analyze", str(capture), "-w", str(workdir / f"ws-{capture.name}")]
    cmd += ["--json", str(out), "-q"]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=os.environ.copy())
    if done.returncode != 0:
        raise EvalError(f"{capture}: derisk analyze exited {done.returncode}: {done.stderr.strip()[-300:]}")
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return result


def evaluate(
    capture_dir: Path,
    truth: dict[str, Any],
    workdir: Path,
    data_dir: Path | None,
    analyses: Path | None = None,
    names: Names | None = None,
) -> tuple[Score, list[str]]:
    score, problems = Score(), []
    for capture in truth["captures"]:
        path = capture_dir / capture["file"]
        if not path.is_file():
            problems.append(f"{capture['file']}: missing from {capture_dir}")
            continue
        if git_blob_id(path.read_bytes()) != capture.get("blob"):
            problems.append(f"{capture['file']}: content differs from blob {capture.get('blob')}")
            continue
        try:
            if analyses is None:
                try:
                    doc = analyse(path, workdir, data_dir)
                except EvalError:  # one retry: a fresh workspace, the same input
                    shutil.rmtree(workdir / f"ws-{path.name}", ignore_errors=True)
                    doc = analyse(path, workdir, data_dir)
            else:
                doc = json.loads((analyses / f"{path.name}.json").read_text(encoding="utf-8"))
        except (EvalError, OSError, ValueError) as exc:
            problems.append(str(exc))
            continue
        score.captures += 1
        score_analysis(doc, capture, score, names)
    return score, problems


def render(score: Score, problems: list[str], command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    lines.append(
        f"{score.captures} captures; judged destinations scored: {score.shares('combined')['n']}; "
        f"not judged (listed, not scored): {score.not_judged}"
    )
    lines += ["", "| Layer | Judged | Right | Wrong | Unknown/guess |", "|---|---:|---:|---:|---:|"]
    for layer in ("combined", "expected layer", "infrastructure", "service"):
        s = score.shares(layer)
        if s["n"]:
            lines.append(
                f"| {layer} | {int(s['n'])} | {s['right']:.1f}% | {s['wrong']:.1f}% | {s['unknown']:.1f}% |"
            )
    lines += ["", "| External bytes attributed through the graph | Share |", "|---|---:|"]
    lines.append(f"| combined answer (basis registry) | {score.bytes_share('combined'):.1f}% |")
    if score.bytes_graph.get("infrastructure") is not None and "infrastructure" in score.outcomes:
        lines.append(
            f"| infrastructure layer (AS number or AS name) | {score.bytes_share('infrastructure'):.1f}% |"
        )
        lines.append(
            f"| service layer, of bytes carrying a name (domain) | {score.bytes_share('service'):.1f}% |"
        )
        lines.append(f"| either layer | {score.bytes_share('either'):.1f}% |")
    lines.append(f"\nTotal bytes to public destinations: {score.bytes_total:,}")
    groups = sorted(layer for layer in score.outcomes if layer.startswith("group "))
    if groups:
        lines += [
            "",
            "| Services of (combined answer) | Judged | Right | Wrong | Unknown/guess |",
            "|---|---:|---:|---:|---:|",
        ]
        for layer in groups:
            s = score.shares(layer)
            lines.append(
                f"| {layer.removeprefix('group ')} | {int(s['n'])} | {s['right']:.1f}% | {s['wrong']:.1f}% "
                f"| {s['unknown']:.1f}% |"
            )
    if score.cases:
        lines += ["", "| Capture | Address | Names | AS | Outcome | Expected | Answer | Layers |"]
        lines.append("|---|---|---|---|---|---|---|---|")
        for case in score.cases:
            layers = ", ".join(f"{k}: {v}" for k, v in case["layers"].items()) or "-"
            names = ", ".join(case["server_names"])[:60] or "-"
            lines.append(
                f"| {case['capture']} | {case['ip']} | {names} | {case['as_org'] or '-'} | {case['outcome']} "
                f"| {case['expected']} | {case['answer']} | {layers} |"
            )
    for problem in problems:
        lines.append(f"\nProblem: {problem}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("capture_dir", type=Path)
    parser.add_argument("--truth", type=Path, default=DEFAULT_TRUTH)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the scores and cases as JSON here")
    parser.add_argument("--markdown", type=Path, default=None, help="write the Markdown summary here")
    parser.add_argument("--keep", type=Path, default=None, help="keep workspaces and analyses here")
    parser.add_argument(
        "--analyses", type=Path, default=None, help="score the analyses kept by an earlier --keep run instead"
    )
    parser.add_argument(
        "--exact-names",
        action="store_true",
        help="accept only the answered controller's own display name, not the registry's aliases for it",
    )
    args = parser.parse_args(argv)
    try:
        truth = load_truth(args.truth)
        names = None if args.exact_names else registry_names()
        if not args.capture_dir.is_dir():
            raise EvalError(f"{args.capture_dir}: not a directory")
        with tempfile.TemporaryDirectory(prefix="derisk-eval-") as tmp:
            workdir = args.keep or Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            score, problems = evaluate(args.capture_dir, truth, workdir, args.data_dir, args.analyses, names)
    except EvalError as exc:
        print(f"eval_attribution: {exc}", file=sys.stderr)
        return 3
    command = "python scripts/eval_attribution.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(score, problems, command)
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    if args.json:
        doc = {
            "scores": {layer: score.shares(layer) for layer in score.outcomes},
            "bytes_through_graph": {k: score.bytes_share(k) for k in score.bytes_graph},
            "bytes_total": score.bytes_total,
            "not_judged": score.not_judged,
            "captures": score.captures,
            "cases": score.cases,
            "problems": problems,
        }
        args.json.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
