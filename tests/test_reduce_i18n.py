"""The plan's third-country dependency findings in French, Dutch and German: each supplier's role and
the words around the names translated, names kept; the document keeps the English sentence."""

from __future__ import annotations

import pytest

from derisk.i18n.data import T_, fill, sentence
from derisk.reduce.register import ROLE_LABELS
from derisk.reduce.report import _SUPPLIER

OUTER = T_("The function {function} cannot run without suppliers controlled from {where}: {suppliers}.")


def _finding() -> str:
    parts = [
        fill(
            _SUPPLIER[ctrl, state],
            name="Cainiao (Liège); Hub",
            role_label=ROLE_LABELS[role],
            system="Warehouse management",
            controller="Alibaba Group Holding Limited",
            jurisdiction="CN",
        )
        for (ctrl, state), role in zip(
            sorted(_SUPPLIER), ["vendor", "hardware", "hosting", "support"], strict=True
        )
    ]
    return fill(OUTER, function="'parcel sorting'", where="CN", suppliers="; ".join(parts))


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_supplier_lists_are_translated_names_kept(lang: str) -> None:
    english = _finding()
    shown = sentence(lang, english)
    assert "controller" not in shown and "state-controlled" not in shown
    for label in ROLE_LABELS.values():
        assert label not in shown
    assert shown.count("Alibaba Group Holding Limited") == 2
    assert "Warehouse management" in shown and "'parcel sorting'" in shown


def test_english_supplier_list_unchanged() -> None:
    assert sentence("en", _finding()) == _finding()
    assert _finding().endswith(
        "Cainiao (Liège); Hub (support/update channel of Warehouse management; controller Alibaba Group Holding "
        "Limited, CN, state-controlled)."
    )


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_unknown_supplier_lists_each_system_role_in_the_language(lang: str) -> None:
    """The unknown-supplier finding's systems keep their names; each role label is translated."""
    from derisk.reduce.register import build_register
    from derisk.site import parse_site
    from test_reduce_measures import site_doc

    doc = site_doc(
        [{"name": "cctv (old)", "hardware": "Nobody Knows Ltd", "vendor": "Nobody Knows Ltd"}],
        [{"name": "video", "systems": ["cctv (old)"]}],
    )
    register = build_register(parse_site(doc, "t"), lambda name: None)
    finding = next(f for f in register.findings if f.kind == "unknown-supplier")
    labels = [ROLE_LABELS["hardware"], ROLE_LABELS["vendor"]]
    assert all(f"cctv (old) ({label})" in finding.sentence for label in labels)
    shown = sentence(lang, finding.sentence)
    assert shown != finding.sentence and "cctv (old) (" in shown and "Nobody Knows Ltd" in shown
    assert not any(label in shown for label in labels)
