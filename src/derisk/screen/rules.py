"""A small typed rule language for screening regimes: rules are data, each returns a result and a sentence.

A regime file (``data/regimes/*.yaml``) holds an ordered *decision list*. Each rule has a condition
(``when``), an outcome (``required``, ``not-required``, ``unclear`` or ``note``) and the sentence a
memo shows (``say``). Conditions are small expressions over typed variables computed from the deal
(``$stake.after``), cited facts of the regime (``@tier-25-pct``), sector lists (``in_list``),
country groups (``outside``) and named terms (``is``). Everything is type-checked when the regime
is loaded, so a typo in a regime file is a :class:`~derisk.errors.DataError`, never a wrong answer.

Logic is three-valued: a variable the deal leaves open (``None``) or a sector that only *possibly*
falls in a list makes a condition *unknown*. The decision list then answers only when every way the
unknowns could go leads to the same outcome; otherwise the answer is ``unclear`` and the sentence
says what is missing. That is how "we do not know" stays visible instead of becoming a guess.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import Enum
from typing import Any, Final, Literal

from derisk.i18n.data import T_, fill

Value = bool | float | date | str | frozenset[str] | None
Outcome = Literal["required", "not-required", "unclear"]
OUTCOMES: Final[tuple[str, ...]] = ("required", "not-required", "unclear")
RULE_KINDS: Final[tuple[str, ...]] = (*OUTCOMES, "note")


class T(Enum):
    """Types of the language."""

    BOOL = "bool"
    NUMBER = "number"
    DATE = "date"
    STR = "str"
    SET = "set of str"


class RuleError(Exception):
    """A rule does not compile; collected by the regime loader into one DataError."""


@dataclass
class Trace:
    """What an evaluation touched: the facts it rests on, lists matched, unknowns met, terms used."""

    facts: set[str] = field(default_factory=set)
    lists: set[str] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)
    terms: dict[str, bool | None] = field(default_factory=dict)
    nested: dict[str, bool | None] = field(default_factory=dict)

    def merge(self, other: Trace) -> None:
        """Take in what a term's condition touched; its own terms count as nested ones."""
        self.facts |= other.facts
        self.lists |= other.lists
        self.unknown.extend(u for u in other.unknown if u not in self.unknown)
        self.nested.update(other.nested)
        self.nested.update(other.terms)


@dataclass(frozen=True)
class Env:
    """What a program is evaluated against."""

    variables: Mapping[str, Value]
    facts: Mapping[str, Value]
    lists: frozenset[str]
    maybe_lists: frozenset[str]
    groups: Mapping[str, frozenset[str]]
    var_labels: Mapping[str, str]
    terms: Mapping[str, Term]
    term_cache: dict[str, tuple[bool | None, Trace]] = field(default_factory=dict)


class Expr(ABC):
    type: T

    @abstractmethod
    def eval(self, env: Env, trace: Trace) -> Value: ...


@dataclass(frozen=True)
class Const(Expr):
    value: Value
    type: T

    def eval(self, env: Env, trace: Trace) -> Value:
        return self.value


@dataclass(frozen=True)
class Var(Expr):
    name: str
    type: T

    def eval(self, env: Env, trace: Trace) -> Value:
        value = env.variables.get(self.name)
        if value is None:
            label = env.var_labels.get(self.name, self.name)
            if label not in trace.unknown:
                trace.unknown.append(label)
        return value


@dataclass(frozen=True)
class FactRef(Expr):
    name: str
    type: T

    def eval(self, env: Env, trace: Trace) -> Value:
        trace.facts.add(self.name)
        return env.facts[self.name]


@dataclass(frozen=True)
class Logic(Expr):
    op: str
    args: tuple[Expr, ...]
    type: T = T.BOOL

    def eval(self, env: Env, trace: Trace) -> Value:
        values = [a.eval(env, trace) for a in self.args]  # no short cut: the trace sees everything
        if self.op == "not":
            return None if values[0] is None else not values[0]
        if self.op == "all":
            if any(v is False for v in values):
                return False
            return None if any(v is None for v in values) else True
        if any(v is True for v in values):
            return True
        return None if any(v is None for v in values) else False


_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "eq": lambda a, b: bool(a == b),
    "ne": lambda a, b: bool(a != b),
    "lt": lambda a, b: bool(a < b),
    "le": lambda a, b: bool(a <= b),
    "gt": lambda a, b: bool(a > b),
    "ge": lambda a, b: bool(a >= b),
}


@dataclass(frozen=True)
class Compare(Expr):
    op: str
    left: Expr
    right: Expr
    type: T = T.BOOL

    def eval(self, env: Env, trace: Trace) -> Value:
        a, b = self.left.eval(env, trace), self.right.eval(env, trace)
        if a is None or b is None:
            return None
        return _COMPARE[self.op](a, b)


@dataclass(frozen=True)
class Crossed(Expr):
    """``before < threshold <= after``: the deal reaches a level the investor did not hold before."""

    threshold: Expr
    before: Var
    after: Var
    type: T = T.BOOL

    def eval(self, env: Env, trace: Trace) -> Value:
        t, b, a = self.threshold.eval(env, trace), self.before.eval(env, trace), self.after.eval(env, trace)
        if t is None or b is None or a is None:
            return None
        assert isinstance(t, float) and isinstance(b, float) and isinstance(a, float)
        return b < t <= a


@dataclass(frozen=True)
class InList(Expr):
    list_id: str
    type: T = T.BOOL

    def eval(self, env: Env, trace: Trace) -> Value:
        if self.list_id in env.lists:
            trace.lists.add(self.list_id)
            return True
        if self.list_id in env.maybe_lists:
            note = f"whether the target's sectors fall in list {self.list_id}"
            if note not in trace.unknown:
                trace.unknown.append(note)
            return None
        return False


@dataclass(frozen=True)
class Group(Expr):
    """``inside``/``outside``: a country in or out of a group; ``any_outside``/``any_inside`` on a set."""

    op: str
    subject: Expr
    members: frozenset[str]
    type: T = T.BOOL

    def eval(self, env: Env, trace: Trace) -> Value:
        value = self.subject.eval(env, trace)
        if value is None:
            return None
        if isinstance(value, frozenset):
            if self.op == "any_outside":
                return any(v not in self.members for v in value)
            return any(v in self.members for v in value)
        assert isinstance(value, str)
        return (value in self.members) == (self.op == "inside")


@dataclass(frozen=True)
class Given(Expr):
    var: Var
    type: T = T.BOOL

    def eval(self, env: Env, trace: Trace) -> Value:
        return env.variables.get(self.var.name) is not None


@dataclass(frozen=True)
class TermRef(Expr):
    name: str
    type: T = T.BOOL

    def eval(self, env: Env, trace: Trace) -> Value:
        if self.name not in env.term_cache:
            inner = Trace()
            value = env.terms[self.name].when.eval(env, inner)
            assert value is None or isinstance(value, bool)
            env.term_cache[self.name] = (value, inner)
        value, inner = env.term_cache[self.name]
        trace.merge(inner)
        trace.terms[self.name] = value
        return value


@dataclass(frozen=True)
class Template:
    """A sentence with ``{$var}`` and ``{@fact}`` placeholders, checked at load time."""

    text: str
    refs: tuple[str, ...]

    def render(self, env: Env, fmt: Callable[[str, Value], str]) -> str:
        def sub(match: re.Match[str]) -> str:
            ref = match.group(1)
            value = env.variables.get(ref[1:]) if ref.startswith("$") else env.facts.get(ref[1:])
            return fmt(ref, value)

        return _PLACEHOLDER.sub(sub, self.text)


_PLACEHOLDER: Final = re.compile(r"\{([$@][A-Za-z0-9_.\-]+)\}")


@dataclass(frozen=True)
class Term:
    """A named condition (e.g. "foreign investor") with the sentences for true and false."""

    name: str
    when: Expr
    say_true: Template
    say_false: Template


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str  # one of RULE_KINDS
    when: Expr
    say: Template
    source: str
    confidence: str
    threshold: str | None = None
    ask: Template | None = None


@dataclass(frozen=True)
class Schema:
    """What a regime's expressions may refer to."""

    variables: Mapping[str, T]
    facts: Mapping[str, T]
    lists: frozenset[str]
    groups: Mapping[str, frozenset[str]]
    terms: frozenset[str]


_OPS_LOGIC: Final = ("all", "any", "not")
_OPS_GROUP: Final = ("inside", "outside", "any_outside", "any_inside")


def compile_expr(raw: Any, schema: Schema, where: str) -> Expr:
    """Compile and type-check one condition; raise :class:`RuleError` naming ``where``."""
    if raw is True or raw is False:
        return Const(raw, T.BOOL)
    if not isinstance(raw, dict) or len(raw) != 1:
        raise RuleError(f"{where}: a condition is a mapping with exactly one operator, found {raw!r}")
    ((op, arg),) = raw.items()
    if op in _OPS_LOGIC:
        args = [arg] if op == "not" else arg
        if not isinstance(args, list) or not args:
            raise RuleError(f"{where}: '{op}' takes a non-empty list of conditions")
        return Logic(op, tuple(_bool(compile_expr(a, schema, f"{where}.{op}"), where) for a in args))
    if op in _COMPARE:
        if not isinstance(arg, list) or len(arg) != 2:
            raise RuleError(f"{where}: '{op}' takes two operands")
        left, right = (compile_operand(a, schema, where) for a in arg)
        if left.type is not right.type:
            raise RuleError(f"{where}: '{op}' compares {left.type.value} with {right.type.value}")
        if op not in ("eq", "ne") and left.type not in (T.NUMBER, T.DATE):
            raise RuleError(f"{where}: '{op}' needs numbers or dates, found {left.type.value}")
        if left.type is T.SET:
            raise RuleError(f"{where}: '{op}' cannot compare sets")
        return Compare(op, left, right)
    if op == "crossed":
        threshold = compile_operand(arg, schema, where)
        if threshold.type is not T.NUMBER:
            raise RuleError(f"{where}: 'crossed' takes a number, found {threshold.type.value}")
        before, after = (_var(n, T.NUMBER, schema, where) for n in ("stake.before", "stake.after"))
        return Crossed(threshold, before, after)
    if op == "in_list":
        if not isinstance(arg, str) or arg not in schema.lists:
            raise RuleError(
                f"{where}: unknown sector list {arg!r} (known: {', '.join(sorted(schema.lists))})"
            )
        return InList(arg)
    if op in _OPS_GROUP:
        if not isinstance(arg, list) or len(arg) != 2:
            raise RuleError(f"{where}: '{op}' takes [operand, group]")
        subject = compile_operand(arg[0], schema, where)
        want = T.SET if op.startswith("any_") else T.STR
        if subject.type is not want:
            raise RuleError(f"{where}: '{op}' needs a {want.value}, found {subject.type.value}")
        return Group(op, subject, _group(arg[1], schema, where))
    if op == "given":
        if not isinstance(arg, str) or not arg.startswith("$"):
            raise RuleError(f"{where}: 'given' takes a $variable")
        var = _var(arg[1:], None, schema, where)
        return Given(var)
    if op == "is":
        if arg not in schema.terms:
            raise RuleError(f"{where}: unknown term {arg!r} (known: {', '.join(sorted(schema.terms))})")
        return TermRef(str(arg))
    raise RuleError(f"{where}: unknown operator {op!r}")


def compile_operand(raw: Any, schema: Schema, where: str) -> Expr:
    if isinstance(raw, str) and raw.startswith("$"):
        return _var(raw[1:], None, schema, where)
    if isinstance(raw, str) and raw.startswith("@"):
        name = raw[1:]
        if name not in schema.facts:
            raise RuleError(f"{where}: unknown fact {raw!r}")
        return FactRef(name, schema.facts[name])
    if isinstance(raw, bool):
        return Const(raw, T.BOOL)
    if isinstance(raw, int | float):
        return Const(float(raw), T.NUMBER)
    if isinstance(raw, date):
        return Const(raw, T.DATE)
    if isinstance(raw, str):
        return Const(raw, T.STR)
    raise RuleError(f"{where}: cannot use {raw!r} as an operand")


def compile_template(text: Any, schema: Schema, where: str) -> Template:
    if not isinstance(text, str) or not text.strip():
        raise RuleError(f"{where}: a sentence is required")
    refs = tuple(_PLACEHOLDER.findall(text))
    for ref in refs:
        known = schema.variables if ref.startswith("$") else schema.facts
        if ref[1:] not in known:
            raise RuleError(f"{where}: sentence refers to unknown {ref!r}")
    leftover = _PLACEHOLDER.sub("", text)
    if "{" in leftover or "}" in leftover:
        raise RuleError(f"{where}: malformed placeholder in sentence {text!r}")
    return Template(text, refs)


def _var(name: str, want: T | None, schema: Schema, where: str) -> Var:
    if name not in schema.variables:
        raise RuleError(f"{where}: unknown variable ${name}")
    found = schema.variables[name]
    if want is not None and found is not want:
        raise RuleError(f"{where}: ${name} is a {found.value}, a {want.value} is needed")
    return Var(name, found)


def _bool(expr: Expr, where: str) -> Expr:
    if expr.type is not T.BOOL:
        raise RuleError(f"{where}: a condition must be true/false, found {expr.type.value}")
    return expr


def _group(raw: Any, schema: Schema, where: str) -> frozenset[str]:
    if isinstance(raw, str):
        if raw not in schema.groups:
            raise RuleError(f"{where}: unknown country group {raw!r}")
        return schema.groups[raw]
    if isinstance(raw, list) and all(isinstance(c, str) for c in raw):
        return frozenset(c.upper() for c in raw)
    raise RuleError(f"{where}: a group is a name or a list of country codes")


@dataclass(frozen=True)
class Step:
    """One rule's contribution to an answer: its outcome, sentence and what it rests on."""

    rule: Rule
    status: Literal["fired", "unknown", "fallback"]
    sentence: str
    trace: Trace


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    steps: tuple[Step, ...]
    decisive: Step | None


def run(rules: Sequence[Rule], env: Env, fmt: Callable[[str, Value], str]) -> Decision:
    """Evaluate a decision list under three-valued logic (see the module docstring)."""
    steps: list[Step] = []
    pending: list[Step] = []
    for rule in rules:
        trace = Trace()
        value = rule.when.eval(env, trace)
        if value is False:
            continue
        if value is True:
            step = Step(rule, "fired", rule.say.render(env, fmt), trace)
            steps.append(step)
            if rule.kind == "note":
                continue
            if any(p.rule.kind != rule.kind for p in pending):
                # The open questions above could change the answer: this rule only says what happens if
                # they are all answered "no".
                said = fill(
                    T_("If the open questions are answered no: {said_sentence}"), said_sentence=step.sentence
                )
                steps[-1] = Step(rule, "fallback", said, trace)
                return Decision("unclear", tuple(steps), None)
            outcome: Outcome = rule.kind  # type: ignore[assignment]
            return Decision(outcome, tuple(steps), step)
        missing = "; ".join(trace.unknown) or "an input"
        question = rule.ask.render(env, fmt) if rule.ask else f"whether rule {rule.id} applies"
        sentence = fill(
            T_("Cannot tell {question_sentence}: not known: {missing}."),
            question_sentence=question.rstrip("."),
            missing=missing,
        )
        step = Step(rule, "unknown", sentence, trace)
        steps.append(step)
        if rule.kind != "note":
            pending.append(step)
    return Decision("unclear", tuple(steps), None)
