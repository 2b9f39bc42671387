"""Sentences that come from data, in the reader's language, while documents stay in English.

Two kinds of English text reach the pages from data rather than from templates:

* **data strings** in the shipped YAML files: law titles, obligations, who is bound and summaries
  (``data/laws/*.yaml``), mitigation titles and texts (``data/mitigations.yaml``), sector labels and
  notes (``data/sectors.yaml``);
* **sentence templates** that code fills with values: ``T_("{system} sent {size} in {flows} flows
  to {where}, ...")`` marks the template for extraction and returns it unchanged; :func:`fill` puts
  the values in (the English sentence the JSON document keeps).

Both go to a second gettext domain, ``derisk-data`` (``locale/<lang>/LC_MESSAGES/derisk-data.po``),
kept in step by ``python -m derisk.i18n.extract``. The ``derisk.*/1`` documents are unchanged: they
keep the English sentence. A renderer translates at render time (:func:`sentence`): an exact match
in the catalogue first, otherwise the sentence is matched against the English templates and the
translated template is filled with the values read back from it. Values are never translated
(they are names from traffic, sizes, counts, citations); the exceptions are a placeholder whose
name ends in ``_label``, which holds a data string itself (a mitigation title, a role label) and is
looked up exactly, and one ending in ``_sentence``, which holds a data sentence and is translated
the same way. Law titles keep the name they were recorded under beside the translation
(:func:`law_title`). Anything not found stays English: a missing translation never hides a fact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

from derisk.errors import DataError
from derisk.i18n import DEFAULT_LANGUAGE, LANGUAGES
from derisk.i18n.dates import day, is_date

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

DATA_DOMAIN: Final = "derisk-data"
#: The ``msgctxt`` of phrase templates (:func:`P_`): filled from stored values, never matched against text.
PHRASE_CONTEXT: Final = "phrase"
#: ``{name}`` in code templates; ``{$variable.path}`` and ``{@fact-id}`` in the screening regimes' rule
#: sentences (``data/regimes/*.yaml``, filled by :mod:`derisk.screen.rules`).
PLACEHOLDER: Final = re.compile(r"\{([$@]?[A-Za-z_][A-Za-z0-9_.\-]*)\}")


def T_(template: str) -> str:
    """Marks a sentence template (``{name}`` placeholders) for extraction; returns it unchanged."""
    return template


def P_(template: str) -> str:
    """Marks a phrase template for extraction (context :data:`PHRASE_CONTEXT`); returns it unchanged.

    Unlike a :func:`T_` template, whose translation is found by matching a finished sentence against
    it, a phrase is stored with its values (an alert's ``explanation``) and translated by
    :func:`phrase` alone: a short phrase such as ``"System {system}"`` would otherwise match any
    sentence that starts with "System "."""
    return template


def fill(template: str, **values: object) -> str:
    """``template`` with each ``{name}`` replaced by ``str(values[name])`` (no other formatting)."""
    return PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), template)


def names(template: str) -> list[str]:
    """The placeholders of ``template``, in order."""
    return PLACEHOLDER.findall(template)


def data_catalog(lang: str) -> Catalog:
    """The parsed ``derisk-data.po`` of ``lang`` (not English, which has none)."""
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        raise DataError(f"no data catalogue for language {lang!r}")
    from babel.messages.pofile import read_po

    ref = resources.files("derisk.i18n") / "locale" / lang / "LC_MESSAGES" / f"{DATA_DOMAIN}.po"
    try:
        with ref.open("rb") as fh:
            return read_po(fh, locale=lang, domain=DATA_DOMAIN)
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable data catalogue: {exc}", source=str(ref)) from None


@dataclass(frozen=True)
class _Template:
    pattern: re.Pattern[str]
    target: str
    groups: dict[str, str]


def _pattern(template: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """A regular expression matching ``template`` filled in, and its group names → placeholders."""
    parts: list[str] = []
    groups: dict[str, str] = {}
    pos = 0
    for m in PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[pos : m.start()]))
        name = m.group(1)
        group = next((g for g, n in groups.items() if n == name), None)
        if group is None:
            group = f"p{len(groups)}"
            groups[group] = name
            parts.append(f"(?P<{group}>.+?)")
        else:  # the same value again
            parts.append(f"(?P={group})")
        pos = m.end()
    parts.append(re.escape(template[pos:]))
    return re.compile("".join(parts), re.DOTALL), groups


def template_pattern(template: str) -> tuple[re.Pattern[str], dict[str, str]]:
    """The regular expression that reads ``template`` filled back into its values (group → name)."""
    return _pattern(template)


def phrase_templates(lang: str) -> tuple[str, ...]:
    """The phrase templates (``P_``) the catalogue of ``lang`` translates."""
    return tuple(_table(lang).phrases)


@dataclass(frozen=True)
class _Table:
    exact: dict[str, str]
    templates: tuple[_Template, ...]
    phrases: dict[str, str]
    #: The literal text of each *joiner*, a template that is two sentences and words between them
    #: (``{party_sentence} ← controlled by {chain_sentence}``): a plain value never spans one.
    joints: tuple[str, ...] = ()


_JOINER: Final = re.compile(r"\{[A-Za-z_]+_sentence\}(?P<joint>[^{}]+)\{[A-Za-z_]+_sentence\}")


@lru_cache(maxsize=8)
def _table(lang: str) -> _Table:
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        return _Table({}, (), {})
    exact: dict[str, str] = {}
    phrases: dict[str, str] = {}
    joints: list[str] = []
    found: list[tuple[int, _Template]] = []
    for message in data_catalog(lang):
        if not message.id or not message.string or message.fuzzy:
            continue
        msgid, text = str(message.id), str(message.string)
        if message.context == PHRASE_CONTEXT:
            phrases[msgid] = text
            continue
        exact[msgid] = text
        joiner = _JOINER.fullmatch(msgid)
        if joiner is not None:
            joints.append(joiner.group("joint"))
        if PLACEHOLDER.search(msgid):
            literal = len(PLACEHOLDER.sub("", msgid))
            pattern, groups = _pattern(msgid)
            found.append((literal, _Template(pattern, text, groups)))
    # the most specific template (most literal text) wins when two match
    ordered = tuple(t for _, t in sorted(found, key=lambda item: -item[0]))
    return _Table(exact, ordered, phrases, tuple(joints))


def text(lang: str, english: Any) -> Any:
    """The translation of a data string, or ``english`` unchanged (also for None and non-text)."""
    if not isinstance(english, str) or not english:
        return english
    return _table(lang).exact.get(english, english)


def text_cut(lang: str, english: Any) -> Any:
    """Like :func:`text`, also for a data string a renderer cut short (``…[truncated]``): the one
    data string it starts with is translated and cut to the same length, with the same mark."""
    from derisk.safetext import TRUNCATION_MARK

    if not isinstance(english, str) or not english.endswith(TRUNCATION_MARK):
        return text(lang, english)
    stem = english[: -len(TRUNCATION_MARK)]
    found = [msgid for msgid in _table(lang).exact if msgid.startswith(stem)] if stem else []
    if len(found) != 1:
        return english
    return _table(lang).exact[found[0]][: len(stem)] + TRUNCATION_MARK


def law_title(lang: str, title: Any) -> Any:
    """A law's title in ``lang`` with the recorded (official-language or English) name beside it."""
    translated = text(lang, title)
    return translated if translated == title else f"{translated} ({title})"


#: A data string cited as evidence: its confidence tag and its source after it ("Equipment of ... is on
#: the US FCC Covered List [S] (FCC, 2024)", as Know writes a published assessment).
_CITED_EVIDENCE: Final = re.compile(r"(?P<said>.+?)(?P<cite> \[[VSU]\] \(.+\))", re.DOTALL)


def sentence(lang: str, english: Any) -> Any:
    """A data sentence in ``lang``: exact translation, else a filled template, else ``english``. A data
    string followed by its confidence tag and source (:data:`_CITED_EVIDENCE`) is translated and the
    tag and source are kept."""
    if not isinstance(english, str) or not english:
        return english
    table = _table(lang)
    found = table.exact.get(english)
    if found is not None:
        return found
    cited = _CITED_EVIDENCE.fullmatch(english)
    if cited is not None and cited.group("said") in table.exact:
        return table.exact[cited.group("said")] + cited.group("cite")
    for template in table.templates:
        m = template.pattern.fullmatch(english)
        if m is not None and _stray_label(table, template, m):
            m = _labelled(lang, template.pattern.pattern, tuple(template.groups.items())).fullmatch(english)
        if m is None or _spans_joint(table, template, m):
            continue
        values = {
            template.groups[group]: _value(lang, template.groups[group], value)
            for group, value in m.groupdict().items()
        }
        return fill(template.target, **values)
    from derisk.i18n.joined import joined_sentence  # it reads this module's tables

    return joined_sentence(lang, english) or english


#: Placeholders whose value is itself a sentence built from ``T_`` templates, translated like
#: ``*_sentence``: the investor chain of :mod:`derisk.screen.variables`, as the screening regimes' rule
#: sentences (``$investor.chain_text``) and Screen's risk factors (``chain``) put it in.
SENTENCE_VALUES: Final = frozenset({"$investor.chain_text", "chain"})


#: Placeholders whose value is data labels joined by "; " (the target's sectors, as
#: :mod:`derisk.screen.variables` writes ``$target.sectors``), each label translated.
LABEL_LISTS: Final = frozenset({"$target.sectors"})


#: Placeholders whose value is sentences ending in ")" joined by "; " (the plan's supplier lists, as
#: :mod:`derisk.reduce.report` writes them), each translated.
SENTENCE_LISTS: Final = frozenset({"suppliers"})


#: Placeholders whose value is systems each with a role label in brackets, joined by "; " (the plan's
#: unknown-supplier finding: ``cctv (hardware maker); wms (software vendor)``), each label translated.
ROLE_LISTS: Final = frozenset({"where_roles"})
_WITH_ROLE: Final = re.compile(r"(?P<system>.+) \((?P<label>[^()]+)\)")


#: Placeholders of ``T_`` templates whose value is a number (Screen's byte and flow counts, the plan's
#: sizes such as ``27.8 kB``): written the way the page's language writes numbers.
NUMBER_VALUES: Final = frozenset({"count", "sent", "received", "flows", "size"})


def _sentence_value(key: str) -> bool:
    return key.endswith("_sentence") or key in SENTENCE_VALUES


def _spans_joint(table: _Table, template: _Template, m: re.Match[str]) -> bool:
    """Whether ``m`` read a joiner's words as part of a plain value: ``{name} ({country}, run from {run})``
    matching a whole investor chain, its name running over "← controlled by". The joiner is the
    sentence's structure, so that match is not the one meant (the joiner's own is, further down)."""
    return any(
        joint in value
        for group, value in m.groupdict().items()
        if not _sentence_value(template.groups[group])
        for joint in table.joints
    )


def _stray_label(table: _Table, template: _Template, m: re.Match[str]) -> bool:
    """Whether ``m`` read a ``*_label`` placeholder as text that is no data string: a label is a fixed
    word of the catalogue, so a template such as ``{name} ({role_label} of {system}, {jurisdiction})``
    does not match a citation that merely has " of " and commas in brackets."""
    return any(
        template.groups[group].endswith("_label") and value not in table.exact
        for group, value in m.groupdict().items()
    )


@lru_cache(maxsize=64)
def _labelled(lang: str, pattern: str, groups: tuple[tuple[str, str], ...]) -> re.Pattern[str]:
    """A template's ``pattern`` with each ``*_label`` placeholder matching only the catalogue's data
    strings (tried when the first match read a label that is no data string)."""
    table = _table(lang)
    words = sorted(table.exact, key=len, reverse=True)
    choice = "(?:" + "|".join(re.escape(w) for w in words) + ")"
    for group, key in groups:
        if key.endswith("_label"):
            pattern = pattern.replace(f"(?P<{group}>.+?)", f"(?P<{group}>{choice})")
    return re.compile(pattern, re.DOTALL)


#: How a screening regime's fact with a unit of time reads inside a rule sentence ("15 days [S]", as
#: :func:`derisk.screen.engine.fmt_fact` writes it): the number and tag kept, the unit translated.
_FACT_UNITS: Final = {
    "days": P_("{number} days"),
    "months": P_("{number} months"),
    "years": P_("{number} years"),
}
_FACT_VALUE: Final = re.compile(r"(?P<number>\d[\d,.]*) (?P<unit>days|months|years)(?P<tag> \[[VSU]\])?")


def _value(lang: str, key: str, value: str) -> str:
    if is_date(value):
        return str(day(lang, value))
    fact = _FACT_VALUE.fullmatch(value) if key.startswith("@") else None
    if fact is not None:
        part = {"template": _FACT_UNITS[fact.group("unit")], "fields": {"number": fact.group("number")}}
        return f"{phrase(lang, part)}{fact.group('tag') or ''}"
    if key.endswith("_label"):
        return str(text(lang, value))
    if key in LABEL_LISTS:
        return "; ".join(str(text(lang, label)) for label in value.split("; "))
    if key.endswith("_labels"):
        exact = text(lang, value)
        return str(exact) if exact != value else ", ".join(str(text(lang, x)) for x in value.split(", "))
    if key in ROLE_LISTS:
        return "; ".join(_role_item(lang, item) for item in value.split("; "))
    if key in SENTENCE_LISTS:
        return "; ".join(str(sentence(lang, part)) for part in re.split(r"(?<=\)); ", value))
    if key in NUMBER_VALUES:
        return localised_number(lang, value)
    if key == "laws":
        return str(citations(lang, value))
    if key == "reason_sentence":  # a path step's link: its phrases and its summary
        from derisk.i18n.joined import link_reason

        return link_reason(lang, value)
    if _sentence_value(key):
        return str(sentence(lang, value))
    return value


def _role_item(lang: str, item: str) -> str:
    m = _WITH_ROLE.fullmatch(item)
    return item if m is None else f"{m.group('system')} ({text(lang, m.group('label'))})"


def phrase(lang: str, part: Any) -> str | None:
    """One stored template with its values (``{"template": ..., "fields": {...}}``, as
    :class:`derisk.detect.explain.Phrase` writes it) in ``lang``: the template's translation filled
    with the values. Values are put in after translation and never scanned for placeholders (they are
    names from traffic; the page escapes them). A ``*_label`` value is a fixed word, translated by exact
    lookup. None when ``part`` is no valid phrase (a missing value, a template that is no text)."""
    if not isinstance(part, dict) or not isinstance(part.get("template"), str):
        return None
    template: str = part["template"]
    fields = part.get("fields")
    if fields is None:  # a literal sentence, no template
        return template
    if not isinstance(fields, dict):
        return None
    values = {str(k): str(v) for k, v in fields.items()}
    if any(name not in values for name in names(template)):
        return None
    target = _table(lang).phrases.get(template, template)
    if sorted(set(names(target))) != sorted(set(names(template))):
        target = template  # a translation that lost or invented a placeholder is not used
    return fill(target, **{k: _phrase_value(lang, k, v) for k, v in values.items()})


#: A number as explanations write it (``1,234``, ``5.0``, ``7%``), maybe with a unit of time or size.
_NUMBER: Final = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(%| (?:s|min|h|B|kB|MB|GB|TB|PB))?")


#: A law's title at the start of a citation in a list of them ("National Intelligence Law Art. 7 [V];
#: Cybersecurity Law Art. 28 ... [S]"): translated as :func:`law_title` does, the article kept.
_CITED: Final = re.compile(r"(?:^|(?<=; ))([^;\[\]]+?)(?= (?:Art\.|art\.|Arts\.|believed Arts?\.|§|\[))")


def worded_article(article: Any) -> bool:
    """Whether a law's article reference says more than numbers ("Art. 28 (2017 numbering; number in the
    2026 text [U])", "believed Arts. 8 and 41 [U]"): such a reference is a data string, translated; a
    bare "Art. 7" or "§ 2713" is not."""
    if not isinstance(article, str):
        return False
    return re.search(r"[A-Za-z]{3,}", re.sub(r"\b(?:Arts?|and|U\.S\.C)\b", "", article)) is not None


@lru_cache(maxsize=1)
def _worded_articles() -> tuple[str, ...]:
    """The shipped laws' worded article references (:func:`worded_article`), longest first."""
    from derisk.data import read_yaml_folder

    found = {
        str(law.get("article"))
        for doc in read_yaml_folder("laws").values()
        for law in (doc or {}).get("laws") or []
        if worded_article(law.get("article"))
    }
    return tuple(sorted(found, key=len, reverse=True))


def citations(lang: str, value: Any) -> Any:
    """A list of cited laws ("National Intelligence Law Art. 7 [V]; Cybersecurity Law Art. 28 (2017
    numbering; ...) [V]") in ``lang``: each law's title as :func:`law_title` writes it, and each worded
    article reference translated; numbers, tags and the rest as they are."""
    if lang == DEFAULT_LANGUAGE or not isinstance(value, str):
        return value
    shown = _CITED.sub(lambda c: str(law_title(lang, c.group(1))), value)
    for article in _worded_articles():
        if article in shown:
            shown = shown.replace(article, str(text(lang, article)))
    return shown


#: Values that are names (from traffic, the site file or the registry), never read as numbers.
_NAME_FIELDS: Final = frozenset(
    {"system", "src_ip", "dest", "domain", "controller", "organisation", "example", "largest", "listed",
     "laws", "jurisdiction", "name", "names", "owner", "asset", "chain", "loops", "state", "where",
     "country", "group", "cite", "reason", "oversight", "confidence"}
)  # fmt: skip


def _phrase_value(lang: str, key: str, value: str) -> str:
    """A phrase's value in ``lang``: a ``*_label`` translated, a number written the way ``lang``
    writes numbers (``5,0 min``, ``1 234``), anything else (names above all) as it is."""
    if key.endswith("_label"):
        return str(text(lang, value))
    if key.endswith("_sentence"):
        return str(sentence(lang, value))
    if key == "laws":
        return str(citations(lang, value))
    return value if key in _NAME_FIELDS else localised_number(lang, value)


def localised_number(lang: str, value: str) -> str:
    """A number as English text writes it (``1,234``, ``5.0``, ``87.4%``, ``5.0 min``) the way ``lang``
    writes it (``1 234``, ``5,0``, ``87,4 %``); anything else, and English, as it is."""
    m = _NUMBER.fullmatch(value)
    if m is None or lang == DEFAULT_LANGUAGE:
        return value
    from decimal import Decimal

    from babel.numbers import format_decimal, format_percent

    whole, decimals, unit = m.group(1).replace(",", ""), m.group(2) or "", m.group(3) or ""
    number = Decimal(f"{whole}.{decimals}" if decimals else whole)
    pattern = "#,##0" + ("." + "0" * len(decimals) if decimals else "")
    if unit == "%":
        return str(format_percent(number / 100, format=pattern + "%", locale=lang))
    return str(format_decimal(number, format=pattern, locale=lang)) + unit
