"""Findings of the Reduce capability: each carries its result and the sentence a report shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

#: Severities, most severe first; reports sort by this order.
SEVERITIES: Final = ("high", "medium", "low", "info")


@dataclass(frozen=True)
class Finding:
    """One thing the register, the traffic or the trade data says that a reader should act on.

    ``kind`` is a stable machine name (documented in docs/reduce.md), ``subject`` names what the
    finding is about (a function, a system, a supplier, a product), ``sentence`` is what a report
    shows, and ``evidence`` holds the figures behind it.
    """

    kind: str
    severity: str
    subject: str
    sentence: str
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "subject": self.subject,
            "sentence": self.sentence,
            "evidence": self.evidence,
        }


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by kind and subject, so that output is deterministic."""
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.kind, f.subject, f.sentence))
