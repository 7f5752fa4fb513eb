"""`mlops lint`: check a generated project the way ruff checks code.

Every finding has a rule id (``MLO101``...), a severity, a file, a line where one applies, a
message and a fix. Rules are small functions registered with their metadata in
:mod:`mlops_template.lint.rules`; :func:`lint` runs them and the reporters in
:mod:`mlops_template.lint.reporters` print the result as text, JSON, SARIF or GitHub annotations.

    from mlops_template.lint import lint
    result = lint(Path("churn"), select=["MLO4"])
    result.exit_code(strict=False)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from mlops_template.lint.engine import LintResult, all_rules, run, select_rules
from mlops_template.lint.model import Example, Finding, Rule, Severity

__all__ = [
    "Example",
    "Finding",
    "LintResult",
    "Rule",
    "Severity",
    "all_rules",
    "lint",
    "select_rules",
]


def lint(
    root: Path, *, select: Iterable[str] | None = None, ignore: Iterable[str] | None = None
) -> LintResult:
    """Run the selected rules (default: all) on the project at ``root``."""
    return run(root, select_rules(select, ignore))
