"""Print a lint result: ``text`` (ruff-like), ``json``, ``sarif`` (2.1.0) or ``github`` annotations."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlops_template.lint.engine import LintResult
from mlops_template.lint.model import Finding, Rule, Severity

FORMATS = ("text", "json", "sarif", "github")
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {Severity.error: "error", Severity.warning: "warning", Severity.info: "note"}
_GITHUB_COMMAND = {Severity.error: "error", Severity.warning: "warning", Severity.info: "notice"}


def _location(finding: Finding) -> str:
    where = finding.file
    if finding.line is not None:
        where += f":{finding.line}"
        if finding.column is not None:
            where += f":{finding.column}"
    return where


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def text(result: LintResult, *, strict: bool = False) -> str:
    lines: list[str] = []
    for finding in result.findings:
        lines.append(f"{_location(finding)}: {finding.rule} [{finding.severity.value}] "
                     f"{finding.message}")  # fmt: skip
        lines.append(f"  fix: {finding.fix}")
    if result.skipped:
        ids = ", ".join(r.id for r in result.skipped)
        lines.append(f"skipped {len(result.skipped)} rules that need a valid mlops.yaml: {ids}")
    counts = result.counts()
    if result.findings:
        failing = "errors and warnings" if strict else "errors"
        lines.append(
            f"Found {_plural(len(result.findings), 'finding')} ({_plural(counts['error'], 'error')}, "
            f"{_plural(counts['warning'], 'warning')}, {counts['info']} info); "
            f"{failing} fail the check."
        )
    else:
        lines.append(f"All checks passed ({_plural(len(result.rules), 'rule')}).")
    if result.suppressed:
        lines.append(f"({_plural(result.suppressed, 'finding')} suppressed by `# noqa: MLO...`)")
    return "\n".join(lines) + "\n"


def _finding_json(finding: Finding, rules: dict[str, Rule]) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "name": rules[finding.rule].name,
        "severity": finding.severity.value,
        "file": finding.file,
        "line": finding.line,
        "column": finding.column,
        "message": finding.message,
        "fix": finding.fix,
    }


def to_json(result: LintResult, *, strict: bool = False) -> dict[str, Any]:
    from mlops_template import __version__

    rules = {r.id: r for r in result.rules}
    return {
        "tool": "mlops lint",
        "version": __version__,
        "root": str(result.root),
        "exit_code": result.exit_code(strict=strict),
        "counts": result.counts(),
        "rules": [r.id for r in result.rules],
        "skipped": [r.id for r in result.skipped],
        "suppressed": result.suppressed,
        "findings": [_finding_json(f, rules) for f in result.findings],
    }


def json_report(result: LintResult, *, strict: bool = False) -> str:
    return json.dumps(to_json(result, strict=strict), indent=2) + "\n"


def to_sarif(result: LintResult, *, strict: bool = False) -> dict[str, Any]:
    """A SARIF 2.1.0 log: one run, the rules that ran as the driver's rules, one result each."""
    from mlops_template import __version__

    index = {r.id: i for i, r in enumerate(result.rules)}
    descriptors = [
        {
            "id": r.id,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": r.why},
            "help": {"text": r.fix, "markdown": r.fix},
            "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
            "properties": {"tags": [r.group]},
        }
        for r in result.rules
    ]
    results = []
    for finding in result.findings:
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": finding.file, "uriBaseId": "%SRCROOT%"}
        }
        if finding.line is not None:
            region: dict[str, int] = {"startLine": finding.line}
            if finding.column is not None:
                region["startColumn"] = finding.column
            physical["region"] = region
        results.append(
            {
                "ruleId": finding.rule,
                "ruleIndex": index[finding.rule],
                "level": _SARIF_LEVEL[finding.severity],
                "message": {"text": f"{finding.message}. Fix: {finding.fix}"},
                "locations": [{"physicalLocation": physical}],
            }
        )
    root_uri = result.root.resolve().as_uri() + "/"
    return {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlops-lint",
                        "version": __version__,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root_uri}},
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "exitCode": result.exit_code(strict=strict),
                    }
                ],
                "results": results,
            }
        ],
    }


def sarif_report(result: LintResult, *, strict: bool = False) -> str:
    return json.dumps(to_sarif(result, strict=strict), indent=2) + "\n"


def _escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(value: str) -> str:
    return _escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github(result: LintResult, *, strict: bool = False) -> str:
    """GitHub Actions workflow commands: ``::error file=F,line=L,col=C,title=T::message``."""
    rules = {r.id: r for r in result.rules}
    lines = []
    for finding in result.findings:
        props = [f"file={_escape_property(finding.file)}"]
        if finding.line is not None:
            props.append(f"line={finding.line}")
            if finding.column is not None:
                props.append(f"col={finding.column}")
        props.append(f"title={_escape_property(f'{finding.rule} {rules[finding.rule].name}')}")
        message = _escape_data(f"{finding.message}\nfix: {finding.fix}")
        lines.append(f"::{_GITHUB_COMMAND[finding.severity]} {','.join(props)}::{message}")
    counts = result.counts()
    lines.append(f"mlops lint: {counts['error']} errors, {counts['warning']} warnings, "
                 f"{counts['info']} info")  # fmt: skip
    return "\n".join(lines) + "\n"


REPORTERS: dict[str, Callable[..., str]] = {
    "text": text,
    "json": json_report,
    "sarif": sarif_report,
    "github": github,
}


def report(result: LintResult, fmt: str, *, strict: bool = False) -> str:
    return REPORTERS[fmt](result, strict=strict)
