"""Run the selected rules over a project: select/ignore, skip what cannot run, dedupe, noqa, sort."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mlops_template.errors import UsageError
from mlops_template.lint.model import REGISTRY, Finding, Rule, Severity
from mlops_template.lint.project import Project

_NOQA = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)", re.IGNORECASE)


def all_rules() -> list[Rule]:
    import mlops_template.lint.rules  # noqa: F401  (registers the rules)

    return [REGISTRY[key] for key in sorted(REGISTRY)]


def _codes(values: Iterable[str] | None) -> list[str]:
    return [c.strip() for v in values or () for c in v.split(",") if c.strip()]


def _matching(code: str, rules: list[Rule], option: str) -> list[Rule]:
    upper = code.upper()
    if upper == "ALL":
        return list(rules)
    hits = [r for r in rules if r.id.startswith(upper) or r.name == code.lower()]
    if not hits:
        known = ", ".join(r.id for r in rules)
        raise UsageError(
            f"{option} {code}: no such rule or rule prefix",
            hint=f"known rules: {known} (prefixes such as MLO4 select a group; see docs/rules.md)",
        )
    return hits


def select_rules(
    select: Iterable[str] | None = None, ignore: Iterable[str] | None = None
) -> list[Rule]:
    """The rules to run: ``select`` (default all) minus ``ignore``; ids, prefixes or names."""
    rules = all_rules()
    selected_codes = _codes(select)
    chosen: dict[str, Rule] = {}
    for code in selected_codes or ["ALL"]:
        for found in _matching(code, rules, "--select"):
            chosen[found.id] = found
    for code in _codes(ignore):
        for found in _matching(code, rules, "--ignore"):
            chosen.pop(found.id, None)
    return [chosen[key] for key in sorted(chosen)]


@dataclass
class LintResult:
    root: Path
    findings: list[Finding]
    rules: list[Rule]
    #: rules that could not run because `mlops.yaml` is missing or invalid.
    skipped: list[Rule] = field(default_factory=list)
    suppressed: int = 0

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    def counts(self) -> dict[str, int]:
        return {s.value: self.count(s) for s in Severity}

    def exit_code(self, *, strict: bool = False) -> int:
        """0 clean; 1 when there are errors (or warnings with ``strict``). Info never fails."""
        if self.count(Severity.error) or (strict and self.count(Severity.warning)):
            return 1
        return 0


def _suppressed(project: Project, finding: Finding) -> bool:
    if finding.line is None:
        return False
    match = _NOQA.search(project.line_of(finding.file, finding.line))
    if not match:
        return False
    codes = {c.upper() for c in re.split(r"[\s,]+", match.group("codes")) if c}
    return finding.rule in codes


def run(root: Path, rules: list[Rule] | None = None) -> LintResult:
    """Lint the project at ``root`` (raises ``UsageError`` when it is not one)."""
    chosen = rules if rules is not None else all_rules()
    project = Project(root)
    findings: list[Finding] = []
    skipped: list[Rule] = []
    seen: set[tuple[str, int | None, str]] = set()
    suppressed = 0
    for current in chosen:
        if current.needs_spec and project.spec is None:
            skipped.append(current)
            continue
        for finding in current.check(project, current):
            if finding.key is not None:
                ident = (finding.file, finding.line, finding.key)
                if ident in seen:
                    continue
                seen.add(ident)
            if _suppressed(project, finding):
                suppressed += 1
                continue
            findings.append(finding)
    findings.sort(key=Finding.sort_key)
    return LintResult(root, findings, list(chosen), skipped, suppressed)
