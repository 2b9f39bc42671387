"""One risk factor of a screening: its finding, sentence, evidence and source (written by every factor module)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

#: The EU regulation the risk factors cite (its EUR-Lex ELI; the Art. 4 outline is [V], wording [U]).
REGULATION: Final = "Regulation (EU) 2019/452 (en; https://eur-lex.europa.eu/eli/reg/2019/452/oj; not read by derisk's reviewers)"


@dataclass(frozen=True)
class RiskFactor:
    factor: str
    title: str
    finding: str
    sentence: str
    evidence: tuple[str, ...]
    source: str
    confidence: str
    #: The sentence as phrase templates and values (Know's supplier factors), for pages to translate.
    parts: tuple[tuple[str, dict[str, str]], ...] = ()

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "factor": self.factor,
            "title": self.title,
            "finding": self.finding,
            "sentence": self.sentence,
            "evidence": list(self.evidence),
            "source": self.source,
            "confidence": self.confidence,
        }
        if self.parts:
            doc["explanation"] = [{"template": t, "fields": dict(v)} for t, v in self.parts]
        return doc
