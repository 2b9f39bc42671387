"""The legal base: per jurisdiction, the laws that compel cooperation or data access, and the safeguards.

One YAML file per jurisdiction in ``derisk/data/laws/<cc>.yaml`` (``eu.yaml`` for EU law; a member
state's file lists ``includes: [EU]``). Every entry states its law, article (when known), obligation, who
is bound, summary, a confidence tag (V seen in a source, S consistent across secondary sources, U
unverified) and its source: the primary text where one is published (EUR-Lex, uscode.house.gov, the
official publication) or the named translation or secondary source, with ``url``, ``language`` and
``read`` (the date a reviewer read it, or null: not read). Decision support, not legal advice.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from derisk.data import content_digest, read_yaml_folder
from derisk.errors import DataError, Problem, raise_problems

DISCLAIMER: Final = "Decision support, not legal advice."
FILE_KEYS: Final = {"jurisdiction", "name", "facts", "includes", "laws"}
LAW_KEYS: Final = {
    "law",
    "article",
    "article_confidence",
    "in_force",
    "amended",
    "obligation",
    "kind",
    "bound",
    "extraterritorial",
    "judicial_oversight",
    "secrecy",
    "summary",
    "confidence",
    "source",
    "url",
    "applies_from",
    "language",
    "read",
}
REQUIRED: Final = {"law", "obligation", "kind", "bound", "summary", "confidence", "source"}
KINDS: Final = ("compulsion", "safeguard")
TAGS: Final = ("V", "S", "U")


@dataclass(frozen=True)
class Law:
    jurisdiction: str
    law: str
    article: str | None
    in_force: str | None
    obligation: str
    bound: str
    extraterritorial: str | None
    judicial_oversight: str | None
    summary: str
    confidence: str
    source: str
    kind: str = "compulsion"
    amended: str | None = None
    secrecy: str | None = None
    url: str | None = None
    article_confidence: str | None = None
    applies_from: str | None = None
    language: str | None = None
    read: str | None = None

    def citation(self) -> str:
        """Law and article with their tags, e.g. "Cybersecurity Law Art. 28 (2017 numbering) [U]"."""
        art = f" {self.article}" if self.article else ""
        art_tag = self.article_confidence
        show = art_tag and art_tag != self.confidence and f"[{art_tag}]" not in art
        mark = f" (article [{art_tag}])" if show else ""
        return f"{self.law}{art}{mark} [{self.confidence}]"

    def sentence(self) -> str:
        where = f" ({self.url})" if self.url else ""
        return f"{self.citation()}: {self.summary} Binds: {self.bound}. Source: {self.source}{where}."

    def to_json(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "law": self.law,
            "article": self.article,
            "article_confidence": self.article_confidence or self.confidence,
            "in_force": self.in_force,
            "amended": self.amended,
            "obligation": self.obligation,
            "kind": self.kind,
            "bound": self.bound,
            "extraterritorial": self.extraterritorial,
            "judicial_oversight": self.judicial_oversight,
            "summary": self.summary,
            "confidence": self.confidence,
            "source": self.source,
            "url": self.url,
            "applies_from": self.applies_from,
            "language": self.language,
            "read": self.read,
        }


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def check_law_file(name: str, data: Any) -> tuple[str, list[str], list[Law], list[Problem]]:
    """Parse one law file: (jurisdiction, includes, laws, problems)."""
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return "", [], [], [Problem(name, "expected a mapping with jurisdiction and laws")]
    for key in sorted(set(data) - FILE_KEYS):
        problems.append(Problem(name, f"unknown key {key!r}"))
    code = str(data.get("jurisdiction") or "")
    if not code or code.upper() != code or len(code) != 2:
        problems.append(Problem(name, f"jurisdiction must be a 2-letter upper-case code, found {code!r}"))
    laws: list[Law] = []
    for index, entry in enumerate(data.get("laws") or []):
        where = f"{name}: laws[{index}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "expected a mapping"))
            continue
        for key in sorted(set(entry) - LAW_KEYS):
            problems.append(Problem(where, f"unknown key {key!r}"))
        for key in sorted(REQUIRED - {k for k, v in entry.items() if v not in (None, "")}):
            problems.append(Problem(where, f"missing {key!r}"))
        if entry.get("confidence") not in TAGS:
            problems.append(
                Problem(where, f"confidence must be one of V, S, U, found {entry.get('confidence')!r}")
            )
        if entry.get("article_confidence") not in (None, *TAGS):
            problems.append(Problem(where, "article_confidence must be V, S or U"))
        source = str(entry.get("source") or "")
        if "LEGAL-FACTS" in source or "shared/reference" in source:
            problems.append(
                Problem(where, "cite the primary text or the named source, not a reviewers' file")
            )
        url = entry.get("url")
        if url is not None and not (isinstance(url, str) and url.startswith("https://")):
            problems.append(Problem(where, "url must be an https:// address"))
        if entry.get("kind") not in KINDS:
            problems.append(
                Problem(where, f"kind must be compulsion or safeguard, found {entry.get('kind')!r}")
            )
        laws.append(
            Law(
                jurisdiction=code,
                law=str(entry.get("law") or ""),
                article=_text(entry.get("article")),
                in_force=_text(entry.get("in_force")),
                obligation=str(entry.get("obligation") or ""),
                bound=str(entry.get("bound") or ""),
                extraterritorial=_text(entry.get("extraterritorial")),
                judicial_oversight=_text(entry.get("judicial_oversight")),
                summary=str(entry.get("summary") or ""),
                confidence=str(entry.get("confidence") or ""),
                source=str(entry.get("source") or ""),
                kind=str(entry.get("kind") or ""),
                amended=_text(entry.get("amended")),
                secrecy=_text(entry.get("secrecy")),
                url=entry.get("url"),
                article_confidence=entry.get("article_confidence"),
                applies_from=_text(entry.get("applies_from")),
                language=_text(entry.get("language")),
                read=_text(entry.get("read")),
            )
        )
    includes = [str(item) for item in data.get("includes") or []]
    return code, includes, laws, problems


def read_law_files() -> dict[str, Any]:
    """The shipped law files, parsed (file name -> YAML document)."""
    return read_yaml_folder("laws")


@dataclass(frozen=True)
class LegalBase:
    by_jurisdiction: dict[str, tuple[Law, ...]]
    includes: dict[str, tuple[str, ...]]
    version: str

    def laws_for(self, jurisdiction: str | None) -> list[Law]:
        if not jurisdiction:
            return []
        code = jurisdiction.upper()
        out = list(self.by_jurisdiction.get(code, ()))
        for other in self.includes.get(code, ()):
            out.extend(self.by_jurisdiction.get(other, ()))
        return out


@lru_cache(maxsize=1)
def load_legal_base() -> LegalBase:
    files = read_law_files()
    problems: list[Problem] = []
    by_code: dict[str, tuple[Law, ...]] = {}
    includes: dict[str, tuple[str, ...]] = {}
    for name, data in files.items():
        code, inc, laws, found = check_law_file(name, data)
        problems.extend(found)
        if code in by_code:
            problems.append(Problem(name, f"jurisdiction {code} defined twice"))
        by_code[code] = tuple(laws)
        includes[code] = tuple(inc)
    for code, included in includes.items():
        for other in included:
            if other not in by_code:
                problems.append(Problem(code, f"includes {other!r}, which has no law file"))
    raise_problems(problems, source="derisk/data/laws", kind=DataError, summary="legal base invalid")
    return LegalBase(by_code, includes, content_digest(files))


def laws_for(jurisdiction: str | None, *, include_safeguards: bool = False) -> list[Law]:
    """The laws that compel cooperation or data access in ``jurisdiction`` (ISO alpha-2).

    With ``include_safeguards`` the protective rules that apply there (e.g. GDPR Chapter V for an EU
    member state) come too; callers that label destinations as "compelled" must not ask for them.
    """
    found = load_legal_base().laws_for(jurisdiction)
    return found if include_safeguards else [law for law in found if law.kind == "compulsion"]


def safeguards_for(jurisdiction: str | None) -> list[Law]:
    """The safeguards recorded for ``jurisdiction`` (EU law for member states)."""
    return [law for law in load_legal_base().laws_for(jurisdiction) if law.kind == "safeguard"]
