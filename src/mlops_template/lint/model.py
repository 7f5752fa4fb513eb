"""The vocabulary of `mlops lint`: severities, findings, rules and the rule registry.

A rule is a small function ``check(project) -> Iterable[Finding]`` registered with its metadata:
an id (``MLO101``), a kebab-case name, a default severity, a summary, the rationale, how to fix it
and two examples (a failing and a passing one). The examples are data, not prose: each is a set of
file edits applied to a freshly generated project, and for the failing one the file and line the
finding must point at. ``docs/rules.md`` is generated from them and the test suite replays them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from mlops_template.lint.project import Project


class Severity(str, enum.Enum):
    """How bad a finding is. Errors fail `mlops lint`; warnings only with ``--strict``; info never."""

    error = "error"
    warning = "warning"
    info = "info"

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


@dataclass(frozen=True)
class Finding:
    """One problem at one place. ``file`` is relative to the project root (POSIX)."""

    rule: str
    severity: Severity
    file: str
    message: str
    fix: str
    line: int | None = None
    column: int | None = None
    #: findings of later rules with the same (file, line, key) are dropped as duplicates.
    key: str | None = None

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line or 0, self.column or 0, self.rule, self.message)


@dataclass(frozen=True)
class Replace:
    """Replace the first occurrence of ``old`` with ``new`` in a generated file."""

    old: str
    new: str


@dataclass(frozen=True)
class Append:
    """Append ``text`` to a generated file."""

    text: str


#: new content, ``None`` to delete the file, or an edit of the generated file.
Edit = str | Replace | Append | None


@dataclass(frozen=True)
class Example:
    """A change to a freshly generated project (``mlops new demo --name Demo --phases
    data,training``: package ``demo``, GitHub CI, the default role handles).

    ``files`` maps a path to its new content, to ``None`` to delete it, or to a ``Replace`` or
    ``Append`` edit of the generated file. For a failing example, ``file`` and ``line`` say where
    the finding must point (a negative line counts from the end of the file: -1 is the last).
    """

    files: dict[str, Edit]
    file: str | None = None
    line: int | None = None
    note: str = ""


CheckFn = Callable[["Project", "Rule"], Iterable[Finding]]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    group: str
    summary: str
    why: str
    fix: str
    bad: Example
    good: Example
    check: CheckFn = field(repr=False, compare=False)
    #: the rule needs a valid spec (it is skipped, and says so, when mlops.yaml is invalid).
    needs_spec: bool = True

    def finding(
        self,
        file: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        fix: str | None = None,
        severity: Severity | None = None,
        key: str | None = None,
    ) -> Finding:
        return Finding(
            rule=self.id,
            severity=severity or self.severity,
            file=file,
            message=message,
            fix=fix or self.fix,
            line=line,
            column=column,
            key=key,
        )


GROUPS = {
    "MLO1": "spec",
    "MLO2": "layout",
    "MLO3": "ownership",
    "MLO4": "layering",
    "MLO5": "workflows",
    "MLO6": "drift",
    "MLO7": "user-owned",
}

#: every rule, by id; filled by the ``rule`` decorator when ``mlops_template.lint.rules`` loads.
REGISTRY: dict[str, Rule] = {}


def rule(
    id: str,
    name: str,
    severity: Severity,
    *,
    summary: str,
    why: str,
    fix: str,
    bad: Example,
    good: Example,
    needs_spec: bool = True,
) -> Callable[[CheckFn], CheckFn]:
    """Register ``check`` as rule ``id``; it is called as ``check(project, rule)``."""

    def register(check: CheckFn) -> CheckFn:
        if id in REGISTRY:
            raise RuntimeError(f"lint rule {id} registered twice")
        group = GROUPS[id[:4]]
        REGISTRY[id] = Rule(id, name, severity, group, summary.strip(), why.strip(), fix.strip(),
                            bad, good, check, needs_spec)  # fmt: skip
        return check

    return register


def get_rule(rule_id: str) -> Rule:
    return REGISTRY[rule_id]
