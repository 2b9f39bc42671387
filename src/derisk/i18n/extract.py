"""Which messages the interface and the reports use, and keeping the catalogues in step with them.

``messages()`` extracts every msgid with Babel's extractors: the ``_()`` calls in the dashboard's
and the reports' Jinja2 templates, ``_()``/``N_()`` marks in the dashboard's Python code, and the
fixed English texts of the analysis document (method, limits, disclaimer) that the report passes
through ``_()``. ``data_messages()`` does the same for the second domain, ``derisk-data``
(:mod:`derisk.i18n.data`): the data strings of the shipped YAML files (laws, mitigations, sectors)
and the sentence templates code marks with ``T_()``. ``python -m derisk.i18n.extract`` adds missing
msgids to each ``.po`` file of both domains (empty, to be translated) and reports how many are
untranslated.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import write_po

from derisk.i18n import DOMAIN, LANGUAGES, catalog
from derisk.i18n.data import DATA_DOMAIN, PHRASE_CONTEXT, data_catalog, worded_article
from derisk.i18n.filters import schema_label

_PACKAGES = ("derisk.web", "derisk.report", "derisk.screen", "derisk.reduce")
_METHOD_MAP = [("**/templates/**.j2", "jinja2"), ("**.py", "python")]
_OPTIONS = {"**/templates/**.j2": {"extensions": "jinja2.ext.i18n", "trimmed": "false"}}
_EXTRACTORS = {"jinja2": "jinja2.ext:babel_extract", "python": "babel.messages.extract:extract_python"}


def _static_texts() -> list[str]:
    from derisk.analysis import DISCLAIMER, LIMITS, METHOD

    return [METHOD, LIMITS, DISCLAIMER]


def messages() -> dict[str, list[str]]:
    """msgid → places it is used (file:line)."""
    found: dict[str, list[str]] = {}
    for package in _PACKAGES:
        root = Path(str(resources.files(package)))
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(root), _METHOD_MAP, _OPTIONS, keywords={"_": None, "N_": None, "gettext": None}
        ):
            if isinstance(message, tuple):
                message = message[0]
            if message:
                found.setdefault(message, []).append(f"{package}:{filename}:{lineno}")
    for text in _static_texts():
        found.setdefault(text, []).append("derisk.analysis")
    return found


#: Packages whose Python code marks data sentence templates with ``T_()`` and phrases with ``P_()``
#: (derisk.i18n: the units of a screening fact's value).
DATA_PACKAGES: Final = ("derisk.screen", "derisk.reduce", "derisk.detect", "derisk.know", "derisk.i18n")
#: The fields of the shipped data files that are sentences or labels a reader sees. Article numbers,
#: citations, sources, URLs and dates are not among them: they are never translated (an article
#: reference with words in it, "believed Arts. 8 and 41 [U]", is: see :func:`worded_article`).
LAW_FIELDS: Final = ("law", "obligation", "bound", "summary")
MITIGATION_FIELDS: Final = ("title", "reduces", "evidence")
SECTOR_FIELDS: Final = ("label", "note")
#: The screening regimes' rule sentences (templates with ``{$variable}`` and ``{@fact}``).
RULE_FIELDS: Final = ("ask", "say")
TERM_FIELDS: Final = ("if_true", "if_false")
#: A regime's deadline texts; its title, authority, instrument, standstill, advice, penalties and notes
#: are translated too (their sources and confidence tags are not).
DEADLINE_FIELDS: Final = ("phase", "note", "conditional")
#: A corporate group's links (``data/groups/*.yaml``): what the source says about a link (``summary``)
#: and how control is exercised (``control_type``), shown in the control chain of entity pages, reports
#: and memos; and the published assessments of a group (``says``), a supplier-risk factor's evidence.
#: Names, aliases, sources and their quotes are not among them.
GROUP_LINK_FIELDS: Final = ("summary", "control_type")
GROUP_ASSESSMENT_FIELDS: Final = ("says",)


def _yaml_strings() -> dict[str, list[str]]:
    from derisk.data import read_yaml, read_yaml_folder

    found: dict[str, list[str]] = {}

    def add(value: object, where: str) -> None:
        if isinstance(value, str) and value.strip():
            found.setdefault(value, []).append(where)

    for name, doc in sorted(read_yaml_folder("laws").items()):
        for index, law in enumerate((doc or {}).get("laws") or []):
            for key in LAW_FIELDS:
                add(law.get(key), f"data/laws/{name}:laws[{index}].{key}")
            if worded_article(law.get("article")):
                add(law.get("article"), f"data/laws/{name}:laws[{index}].article")
    for item in read_yaml("mitigations.yaml").get("mitigations") or []:
        for key in MITIGATION_FIELDS:
            add(item.get(key), f"data/mitigations.yaml:{item.get('id')}.{key}")
    for item in read_yaml("sectors.yaml").get("sectors") or []:
        for key in SECTOR_FIELDS:
            add(item.get(key), f"data/sectors.yaml:{item.get('id')}.{key}")
    for name, doc in sorted(read_yaml_folder("regimes").items()):
        doc = doc or {}
        add(doc.get("name"), f"data/regimes/{name}:name")
        add(doc.get("title"), f"data/regimes/{name}:title")
        for key in ("authority", "instrument", "standstill"):
            add((doc.get(key) or {}).get("text"), f"data/regimes/{name}:{key}.text")
        for outcome, advice in (doc.get("advice") or {}).items():
            add((advice or {}).get("text"), f"data/regimes/{name}:advice.{outcome}.text")
        for key in ("penalties", "notes"):
            for index, item in enumerate(doc.get(key) or []):
                add(item.get("text"), f"data/regimes/{name}:{key}[{index}].text")
        for item in doc.get("deadlines") or []:
            for key in DEADLINE_FIELDS:
                add(item.get(key), f"data/regimes/{name}:deadlines.{item.get('id')}.{key}")
        for list_id, item in (doc.get("lists") or {}).items():
            add((item or {}).get("label"), f"data/regimes/{name}:lists.{list_id}.label")
        terms = (doc or {}).get("terms") or {}
        for term_id, term in terms.items() if isinstance(terms, dict) else enumerate(terms):
            for key in TERM_FIELDS:
                add(term.get(key), f"data/regimes/{name}:terms.{term_id}.{key}")
        for rule in (doc or {}).get("rules") or []:
            for key in RULE_FIELDS:
                add(rule.get(key), f"data/regimes/{name}:rules.{rule.get('id')}.{key}")
    for name, doc in sorted(read_yaml_folder("groups").items()):
        for index, link in enumerate((doc or {}).get("links") or []):
            for key in GROUP_LINK_FIELDS:
                add(link.get(key), f"data/groups/{name}:links[{index}].{key}")
        for index, item in enumerate((doc or {}).get("assessments") or []):
            for key in GROUP_ASSESSMENT_FIELDS:
                add(item.get(key), f"data/groups/{name}:assessments[{index}].{key}")
    return found


def _know_texts() -> dict[str, list[str]]:
    """Know's supplier-risk factor titles (the EU 5G toolbox's factors), shown on entity pages and in
    the screening memo, and the kinds of entity (FtM schema labels); Know's sentences are phrase
    templates (:func:`phrase_messages`)."""
    from derisk.know.graph import NODE_SCHEMATA
    from derisk.know.risk import FACTORS

    found = {title: [f"derisk.know.risk:FACTORS.{key}"] for key, title in FACTORS.items()}
    # the kind of an entity (its FollowTheMoney schema, by FtM's English label), shown beside its name
    for schema in NODE_SCHEMATA:
        found.setdefault(schema_label(schema), []).append(f"followthemoney:schema.{schema}.label")
    # how an endpoint's organisation and jurisdiction were attributed (derisk.enrich), shown beside them
    for basis in ATTRIBUTION_BASES:
        found.setdefault(basis, []).append("derisk.enrich.attribution:basis")
    return found


#: The attribution bases pages show (``dst_*_basis`` values of :mod:`derisk.enrich.attribution`).
ATTRIBUTION_BASES: Final = (
    "registry",
    "as-registration",
    "as-org",
    "domain",
    "brand-domain",
    "operator-domain",
    "unknown",
)


def data_messages() -> dict[str, list[str]]:
    """msgid → places, for the ``derisk-data`` domain: YAML data strings, Know's factor titles and
    ``T_()`` templates."""
    found = _yaml_strings()
    for msgid, places in _know_texts().items():
        found.setdefault(msgid, []).extend(places)
    for package in DATA_PACKAGES:
        try:
            root = Path(str(resources.files(package)))
        except ModuleNotFoundError:  # pragma: no cover - a package that is not there yet
            continue
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(root), [("**.py", "python")], keywords={"T_": None}
        ):
            if isinstance(message, tuple):
                message = message[0]
            if message:
                found.setdefault(message, []).append(f"{package}:{filename}:{lineno}")
    return found


def phrase_messages() -> dict[str, list[str]]:
    """msgid → places of the phrase templates code marks with ``P_()`` (an alert's explanation parts),
    kept in the ``derisk-data`` catalogue under the context :data:`~derisk.i18n.data.PHRASE_CONTEXT`."""
    found: dict[str, list[str]] = {}
    for package in DATA_PACKAGES:
        root = Path(str(resources.files(package)))
        for filename, lineno, message, _comments, _context in extract_from_dir(
            str(root), [("**.py", "python")], keywords={"P_": None}
        ):
            if isinstance(message, tuple):
                message = message[0]
            if message:
                found.setdefault(message, []).append(f"{package}:{filename}:{lineno}")
    return found


def untranslated(cat: Catalog, wanted: Iterable[str], context: str | None = None) -> list[str]:
    """msgids of ``wanted`` (in ``context``) that ``cat`` lacks, leaves empty or marks fuzzy."""
    out = []
    for msgid in sorted(wanted):
        message = cat.get(msgid, context=context)
        if message is None or not message.string or message.fuzzy:
            out.append(msgid)
    return out


def obsolete(cat: Catalog, wanted: Iterable[str], phrases: Iterable[str] = ()) -> list[str]:
    """msgids in ``cat`` that no template or code uses any more (``phrases``: the phrase templates in use,
    for messages of the phrase context)."""
    keep, keep_phrases = set(wanted), set(phrases)
    return sorted(
        str(m.id) for m in cat if m.id and m.id not in (keep_phrases if m.context == PHRASE_CONTEXT else keep)
    )


def update(locale_dir: Path) -> dict[str, int]:
    """Add missing msgids to every catalogue under ``locale_dir``; returns untranslated counts."""
    counts = _update(locale_dir, DOMAIN, messages(), catalog)
    data = _update(locale_dir, DATA_DOMAIN, data_messages(), data_catalog, phrase_messages())
    for lang, missing in data.items():
        counts[f"{lang} ({DATA_DOMAIN})"] = missing
    return counts


def _update(
    locale_dir: Path,
    domain: str,
    wanted: dict[str, list[str]],
    read: Callable[[str], Catalog],
    phrases: dict[str, list[str]] | None = None,
) -> dict[str, int]:
    counts = {}
    for lang in LANGUAGES[1:]:
        path = locale_dir / lang / "LC_MESSAGES" / f"{domain}.po"
        old = read(lang) if path.exists() else Catalog(locale=lang, domain=domain)
        new = Catalog(
            locale=lang,
            domain=domain,
            project="derisk",
            version=old.version if old.version != "VERSION" else None,
            language_team=old.language_team,
            charset="utf-8",
        )
        for msgid in sorted(wanted):
            prev = old.get(msgid)
            new.add(msgid, prev.string if prev is not None else "", locations=[])
        for msgid in sorted(phrases or {}):
            prev = old.get(msgid, context=PHRASE_CONTEXT)
            new.add(msgid, prev.string if prev is not None else "", locations=[], context=PHRASE_CONTEXT)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, new, width=0, omit_header=False, sort_output=True)
        counts[lang] = sum(1 for m in new if m.id and not m.string)
    return counts


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    here = Path(__file__).parent / "locale"
    for lang, missing in update(here).items():
        sys.stderr.write(f"{lang}: {missing} untranslated\n")
