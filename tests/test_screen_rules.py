"""The rule language: type checks at load time, three-valued logic, decision lists that stay honest."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from derisk.screen.rules import (
    Env,
    Rule,
    RuleError,
    Schema,
    T,
    Term,
    Value,
    compile_expr,
    compile_template,
    run,
)

SCHEMA = Schema(
    variables={
        "stake.before": T.NUMBER,
        "stake.after": T.NUMBER,
        "turnover": T.NUMBER,
        "country": T.STR,
        "countries": T.SET,
        "signed": T.DATE,
        "control": T.BOOL,
    },
    facts={"ten": T.NUMBER, "start": T.DATE, "name": T.STR},
    lists=frozenset({"l1", "l2"}),
    groups={"eu": frozenset({"BE", "FR"})},
    terms=frozenset({"foreign"}),
)
FACTS: dict[str, Value] = {"ten": 10.0, "start": date(2023, 7, 1), "name": "x"}


def env(lists: set[str] = frozenset(), maybe: set[str] = frozenset(), **variables: Value) -> Env:  # type: ignore[assignment]
    base: dict[str, Value] = {
        "stake.before": 0.0,
        "stake.after": 10.0,
        "turnover": 5.0,
        "country": "CN",
        "countries": frozenset({"CN"}),
        "signed": date(2024, 1, 1),
        "control": False,
    }
    base.update(variables)
    term = Term(
        "foreign",
        compile_expr({"outside": ["$country", "eu"]}, SCHEMA, "t"),
        compile_template("foreign", SCHEMA, "t"),
        compile_template("not foreign", SCHEMA, "t"),
    )
    return Env(
        base,
        FACTS,
        frozenset(lists),
        frozenset(maybe),
        SCHEMA.groups,
        {"turnover": "the turnover"},
        {"foreign": term},
    )


def ev(raw: Any, e: Env | None = None) -> Value:
    from derisk.screen.rules import Trace

    return compile_expr(raw, SCHEMA, "test").eval(e or env(), Trace())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"crossed": "@ten"}, True),
        ({"crossed": 10.01}, False),
        ({"gt": ["$turnover", 5]}, False),
        ({"ge": ["$turnover", 5]}, True),
        ({"lt": ["$signed", "@start"]}, False),
        ({"outside": ["$country", "eu"]}, True),
        ({"inside": ["$country", ["cn"]]}, True),
        ({"any_outside": ["$countries", "eu"]}, True),
        ({"any_inside": ["$countries", "eu"]}, False),
        ({"is": "foreign"}, True),
        ({"in_list": "l1"}, False),
        ({"given": "$turnover"}, True),
        ({"not": {"eq": ["$control", True]}}, True),
    ],
)
def test_operators(raw: Any, expected: Value) -> None:
    assert ev(raw) is expected


def test_three_valued_logic() -> None:
    unknown = env(turnover=None)
    cond = {"gt": ["$turnover", 1]}
    assert ev(cond, unknown) is None
    assert ev({"all": [cond, False]}, unknown) is False
    assert ev({"all": [cond, True]}, unknown) is None
    assert ev({"any": [cond, True]}, unknown) is True
    assert ev({"any": [cond, False]}, unknown) is None
    assert ev({"not": cond}, unknown) is None
    assert ev({"in_list": "l1"}, env(maybe={"l1"})) is None
    assert ev({"in_list": "l1"}, env(lists={"l1"}, maybe={"l1"})) is True


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"gt": ["$country", 5]}, "compares str with number"),
        ({"lt": ["$country", "$country"]}, "needs numbers or dates"),
        ({"crossed": "@name"}, "'crossed' takes a number"),
        ({"in_list": "nope"}, "unknown sector list 'nope'"),
        ({"outside": ["$countries", "eu"]}, "needs a str"),
        ({"any_outside": ["$country", "eu"]}, "needs a set of str"),
        ({"outside": ["$country", "asean"]}, "unknown country group"),
        ({"eq": ["$nope", 1]}, "unknown variable $nope"),
        ({"eq": ["@nope", 1]}, "unknown fact '@nope'"),
        ({"is": "domestic"}, "unknown term"),
        ({"frobnicate": 1}, "unknown operator"),
        ({"all": [{"eq": ["$country", "CN"]}, "$turnover"]}, "a mapping with exactly one operator"),
        ({"all": []}, "non-empty list"),
        ({"gt": ["$turnover"]}, "takes two operands"),
        ("$control", "a mapping with exactly one operator"),
    ],
)
def test_type_errors_at_load_time(raw: Any, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("(", r"\(").replace("$", r"\$")):
        compile_expr(raw, SCHEMA, "rule x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("uses {$nope}", "unknown '\\$nope'"),
        ("uses {@nope}", "unknown '@nope'"),
        ("broken {$turnover", "malformed"),
    ],
)
def test_template_errors(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message):
        compile_template(text, SCHEMA, "rule x")


def rule(rid: str, kind: str, when: Any, say: str = "said") -> Rule:
    return Rule(rid, kind, compile_expr(when, SCHEMA, rid), compile_template(say, SCHEMA, rid), "src", "V")


def fmt(ref: str, value: Value) -> str:
    return "not given" if value is None else str(value)


def test_decision_list_first_true_rule_decides() -> None:
    rules = [
        rule("note", "note", True, "a note"),
        rule("a", "not-required", {"eq": ["$country", "BE"]}),
        rule("b", "required", {"crossed": "@ten"}, "crossed at {$stake.after}"),
        rule("c", "not-required", True),
    ]
    d = run(rules, env(), fmt)
    assert d.outcome == "required" and d.decisive is not None and d.decisive.rule.id == "b"
    assert [s.rule.id for s in d.steps] == ["note", "b"]
    assert d.decisive.sentence == "crossed at 10.0"


def test_unknown_rule_with_another_outcome_makes_the_answer_unclear() -> None:
    rules = [
        rule("t10", "required", {"gt": ["$turnover", 100]}),
        rule("none", "not-required", True, "nothing"),
    ]
    d = run(rules, env(turnover=None), fmt)
    assert d.outcome == "unclear" and d.decisive is None
    open_, fallback = d.steps
    assert open_.status == "unknown" and "the turnover" in open_.sentence
    assert fallback.status == "fallback" and fallback.sentence.startswith(
        "If the open questions are answered no"
    )


def test_unknown_rule_with_the_same_outcome_does_not_block() -> None:
    rules = [
        rule("t10", "required", {"gt": ["$turnover", 100]}),
        rule("ctl", "required", {"eq": ["$control", False]}),
        rule("none", "not-required", True),
    ]
    assert run(rules, env(turnover=None), fmt).outcome == "required"


def test_no_rule_decides_is_unclear() -> None:
    d = run([rule("t10", "required", {"gt": ["$turnover", 100]})], env(turnover=None), fmt)
    assert d.outcome == "unclear" and d.decisive is None
