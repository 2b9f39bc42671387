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

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

DATA_DOMAIN: Final = "derisk-data"
#: ``{name}`` in code templates; ``{$variable.path}`` and ``{@fact-id}`` in the screening regimes' rule
#: sentences (``data/regimes/*.yaml``, filled by :mod:`derisk.screen.rules`).
PLACEHOLDER: Final = re.compile(r"\{([$@]?[A-Za-z_][A-Za-z0-9_.\-]*)\}")


def T_(template: str) -> str:
    """Marks a sentence template (``{name}`` placeholders) for extraction; returns it unchanged."""
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


@dataclass(frozen=True)
class _Table:
    exact: dict[str, str]
    templates: tuple[_Template, ...]


@lru_cache(maxsize=8)
def _table(lang: str) -> _Table:
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        return _Table({}, ())
    exact: dict[str, str] = {}
    found: list[tuple[int, _Template]] = []
    for message in data_catalog(lang):
        if not message.id or not message.string or message.fuzzy:
            continue
        msgid, text = str(message.id), str(message.string)
        exact[msgid] = text
        if PLACEHOLDER.search(msgid):
            literal = len(PLACEHOLDER.sub("", msgid))
            pattern, groups = _pattern(msgid)
            found.append((literal, _Template(pattern, text, groups)))
    # the most specific template (most literal text) wins when two match
    ordered = tuple(t for _, t in sorted(found, key=lambda item: -item[0]))
    return _Table(exact, ordered)


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


def sentence(lang: str, english: Any) -> Any:
    """A data sentence in ``lang``: exact translation, else a filled template, else ``english``."""
    if not isinstance(english, str) or not english:
        return english
    table = _table(lang)
    found = table.exact.get(english)
    if found is not None:
        return found
    for template in table.templates:
        m = template.pattern.fullmatch(english)
        if m is None:
            continue
        values = {
            template.groups[group]: _value(lang, template.groups[group], value)
            for group, value in m.groupdict().items()
        }
        return fill(template.target, **values)
    return english


def _value(lang: str, key: str, value: str) -> str:
    if key.endswith("_label"):
        return str(text(lang, value))
    if key.endswith("_sentence"):
        return str(sentence(lang, value))
    return value


def install(env: Any, lang: str) -> None:
    """Jinja2 filters: ``dt`` (data string, also one cut short), ``ds`` (data sentence), ``dlaw``
    (law title)."""
    env.filters["dt"] = lambda value: text_cut(lang, value)
    env.filters["ds"] = lambda value: sentence(lang, value)
    env.filters["dlaw"] = lambda value: law_title(lang, value)
