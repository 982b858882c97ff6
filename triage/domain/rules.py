"""The catalogue's rule language: small, declarative, evaluated against a referral's facts.

A condition is one of:
  {all: [c, ...]}  {any: [c, ...]}  {not: c}  {ref: name}   (a named condition)
  {fact: NAME, equals: V}            text, number or true/false facts
  {fact: NAME, in: [V, ...]}         text facts
  {fact: NAME, contains_any: [V, ...]} / {fact: NAME, not_empty: true}   list facts
  {fact: NAME, at_least|at_most|below|above: N, if_unknown: false}     number facts

A number fact may be unknown (an age nobody gave); a comparison then does not match unless the
condition says `if_unknown: true`, so the choice is written where a reader can see it.
Conditions are compiled once at load; evaluation is a few attribute reads per leaf.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Facts = Mapping[str, Any]

TEXT, NUMBER, BOOL, SET = "text", "number", "bool", "set"

COMPARISONS: dict[str, tuple[Callable[[float, float], bool], str]] = {
    "at_least": (lambda a, b: a >= b, "{n} or more"),
    "at_most": (lambda a, b: a <= b, "{n} or under"),
    "below": (lambda a, b: a < b, "under {n}"),
    "above": (lambda a, b: a > b, "over {n}"),
}
LEAF_KEYS = {"fact", "equals", "in", "contains_any", "not_empty", "if_unknown", *COMPARISONS}


class RuleError(ValueError):
    """A condition that cannot be compiled; `path` says where it is in the catalogue."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class Condition:
    def test(self, facts: Facts) -> bool:
        raise NotImplementedError

    def reasons(self, facts: Facts) -> list[str]:
        """Why the condition holds for these facts: one phrase per fact that matched."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(slots=True)
class All(Condition):
    parts: tuple[Condition, ...]

    def test(self, facts: Facts) -> bool:
        # A plain loop: all() over a generator costs a frame per call on the hot path.
        for part in self.parts:
            if not part.test(facts):
                return False
        return True

    def reasons(self, facts: Facts) -> list[str]:
        return [reason for part in self.parts for reason in part.reasons(facts)]

    def describe(self) -> str:
        return "(" + " and ".join(part.describe() for part in self.parts) + ")"


@dataclass(slots=True)
class AnyOf(Condition):
    parts: tuple[Condition, ...]

    def test(self, facts: Facts) -> bool:
        for part in self.parts:
            if part.test(facts):
                return True
        return False

    def reasons(self, facts: Facts) -> list[str]:
        return [r for part in self.parts if part.test(facts) for r in part.reasons(facts)]

    def describe(self) -> str:
        return "(" + " or ".join(part.describe() for part in self.parts) + ")"


@dataclass(slots=True)
class Not(Condition):
    part: Condition

    def test(self, facts: Facts) -> bool:
        return not self.part.test(facts)

    def reasons(self, facts: Facts) -> list[str]:
        return [f"not {self.part.describe()}"]

    def describe(self) -> str:
        return f"not {self.part.describe()}"


@dataclass(slots=True)
class Named(Condition):
    name: str
    part: Condition

    def test(self, facts: Facts) -> bool:
        return self.part.test(facts)

    def reasons(self, facts: Facts) -> list[str]:
        return self.part.reasons(facts)

    def describe(self) -> str:
        return self.name.replace("_", " ")


@dataclass(slots=True)
class Equals(Condition):
    fact: str
    value: Any

    def test(self, facts: Facts) -> bool:
        return bool(facts.get(self.fact) == self.value)

    def reasons(self, facts: Facts) -> list[str]:
        return [self.describe()]

    def describe(self) -> str:
        return f"{self.fact} is {_show(self.value)}"


@dataclass(slots=True)
class In(Condition):
    fact: str
    values: frozenset[Any]

    def test(self, facts: Facts) -> bool:
        return facts.get(self.fact) in self.values

    def reasons(self, facts: Facts) -> list[str]:
        return [f"{self.fact} is {_show(facts.get(self.fact))}"]

    def describe(self) -> str:
        return f"{self.fact} is one of {', '.join(sorted(map(_show, self.values)))}"


@dataclass(slots=True)
class ContainsAny(Condition):
    fact: str
    values: frozenset[str]

    def test(self, facts: Facts) -> bool:
        present = facts.get(self.fact)
        return bool(present) and not self.values.isdisjoint(present)  # type: ignore[arg-type]

    def reasons(self, facts: Facts) -> list[str]:
        matched = sorted(self.values.intersection(facts.get(self.fact) or ()))
        return [f"{self.fact} include {', '.join(matched)}"]

    def describe(self) -> str:
        return f"{self.fact} include any of {', '.join(sorted(self.values))}"


@dataclass(slots=True)
class NotEmpty(Condition):
    fact: str

    def test(self, facts: Facts) -> bool:
        return bool(facts.get(self.fact))

    def reasons(self, facts: Facts) -> list[str]:
        return [f"{self.fact}: {', '.join(sorted(facts.get(self.fact) or ()))}"]

    def describe(self) -> str:
        return f"{self.fact} not empty"


@dataclass(slots=True)
class Compare(Condition):
    fact: str
    operator: str
    limit: float
    if_unknown: bool
    _op: Callable[[float, float], bool] = field(repr=False, default=lambda a, b: False)

    def test(self, facts: Facts) -> bool:
        value = facts.get(self.fact)
        if value is None:
            return self.if_unknown
        return self._op(value, self.limit)

    def reasons(self, facts: Facts) -> list[str]:
        value = facts.get(self.fact)
        if value is None:
            return [f"{self.fact} unknown"]
        return [f"{self.fact} {_show(value)} ({self._limit_text()})"]

    def _limit_text(self) -> str:
        return COMPARISONS[self.operator][1].format(n=_show(self.limit))

    def describe(self) -> str:
        unknown = " or unknown" if self.if_unknown else ""
        return f"{self.fact} {self._limit_text()}{unknown}"


def _show(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class RuleContext:
    """What a condition may name: fact names with their kinds and, where the set is closed,
    the values they can take (so a typo in the catalogue fails at load, not silently)."""

    facts: Mapping[str, str]
    values: Mapping[str, Sequence[Any]]
    named: dict[str, Condition] = field(default_factory=dict)


def compile_condition(raw: Any, path: str, context: RuleContext) -> Condition:
    if not isinstance(raw, Mapping):
        raise RuleError(path, "a condition must be a mapping (all, any, not, ref or fact)")
    keys = set(raw)
    for combinator, cls in (("all", All), ("any", AnyOf)):
        if combinator in raw:
            if keys != {combinator}:
                raise RuleError(path, f"'{combinator}' stands alone, found {sorted(keys)}")
            items = raw[combinator]
            if not isinstance(items, list) or not items:
                raise RuleError(path, f"'{combinator}' takes a non-empty list of conditions")
            parts = tuple(
                compile_condition(item, f"{path}.{combinator}[{i}]", context)
                for i, item in enumerate(items)
            )
            return cls(parts)
    if "not" in raw:
        if keys != {"not"}:
            raise RuleError(path, f"'not' stands alone, found {sorted(keys)}")
        return Not(compile_condition(raw["not"], f"{path}.not", context))
    if "ref" in raw:
        name = raw["ref"]
        if keys != {"ref"}:
            raise RuleError(path, f"'ref' stands alone, found {sorted(keys)}")
        if not isinstance(name, str) or name not in context.named:
            known = ", ".join(sorted(context.named)) or "none"
            raise RuleError(path, f"unknown named condition '{name}' (known: {known})")
        return context.named[name]
    if "fact" in raw:
        return _compile_leaf(raw, path, context)
    raise RuleError(path, f"unknown condition {sorted(keys)}: use all, any, not, ref or fact")


def _compile_leaf(raw: Mapping[str, Any], path: str, context: RuleContext) -> Condition:
    fact = raw["fact"]
    unknown_keys = set(raw) - LEAF_KEYS
    if unknown_keys:
        raise RuleError(path, f"unknown key(s) {sorted(unknown_keys)} in a fact condition")
    if not isinstance(fact, str) or fact not in context.facts:
        raise RuleError(path, f"unknown fact '{fact}' (known: {', '.join(sorted(context.facts))})")
    kind = context.facts[fact]
    operators = set(raw) - {"fact", "if_unknown"}
    if len(operators) != 1:
        raise RuleError(path, f"a fact condition takes exactly one test, found {sorted(operators)}")
    (operator,) = operators
    operand = raw[operator]
    if "if_unknown" in raw and operator not in COMPARISONS:
        raise RuleError(path, "'if_unknown' goes only with at_least, at_most, below or above")

    def check_values(values: Sequence[Any]) -> None:
        for value in values:
            if not isinstance(value, str | int | float | bool):
                raise RuleError(path, "values must be text, numbers or true/false")
        allowed = context.values.get(fact)
        if allowed is None:
            return
        for value in values:
            if value not in allowed:
                raise RuleError(
                    path,
                    f"'{value}' is not a value of {fact} (one of: {', '.join(map(str, allowed))})",
                )

    if operator == "equals":
        if kind == SET:
            raise RuleError(path, f"{fact} is a list: use contains_any or not_empty")
        if kind == BOOL and not isinstance(operand, bool):
            raise RuleError(path, f"{fact} is true or false")
        check_values([operand])
        return Equals(fact, operand)
    if operator == "in":
        if kind != TEXT or not isinstance(operand, list) or not operand:
            raise RuleError(path, f"'in' takes a non-empty list and a text fact ({fact} is {kind})")
        check_values(operand)
        return In(fact, frozenset(operand))
    if operator == "contains_any":
        if kind != SET or not isinstance(operand, list) or not operand:
            raise RuleError(
                path, f"'contains_any' takes a non-empty list and a list fact ({fact} is {kind})"
            )
        check_values(operand)
        return ContainsAny(fact, frozenset(operand))
    if operator == "not_empty":
        if kind != SET or operand is not True:
            raise RuleError(path, f"'not_empty: true' goes with a list fact ({fact} is {kind})")
        return NotEmpty(fact)
    if operator in COMPARISONS:
        if kind != NUMBER:
            raise RuleError(path, f"'{operator}' goes with a number fact ({fact} is {kind})")
        if isinstance(operand, bool) or not isinstance(operand, int | float):
            raise RuleError(path, f"'{operator}' takes a number")
        if_unknown = raw.get("if_unknown", False)
        if not isinstance(if_unknown, bool):
            raise RuleError(path, "'if_unknown' is true or false")
        op = COMPARISONS[operator][0]
        return Compare(fact, operator, float(operand), if_unknown, op)
    raise RuleError(path, f"unknown test '{operator}'")
