"""MLO1xx: the spec, `mlops.yaml`, is valid and of a supported version."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_template.lint.model import Example, Finding, Rule, Severity, rule
from mlops_template.lint.project import SPEC_FILE, Project, split_where

_GOOD_SPEC = """\
spec_version: 1
project: {name: Demo, package: demo}
phases: [data, training]
ml: {task: classification, metric: roc_auc, tracking: none}
"""


@rule(
    "MLO101",
    "spec-invalid",
    Severity.error,
    summary="`mlops.yaml` is missing or does not validate.",
    why="Every other rule, `mlops update` and `mlops add-phase` read the spec. The messages are "
    "the ones `mlops new` prints: file, line, column, the dotted key and what to use instead.",
    fix="Edit `mlops.yaml` as the message says; `mlops schema` prints the JSON Schema for your "
    "editor.",
    bad=Example(
        {SPEC_FILE: _GOOD_SPEC.replace("metric: roc_auc", "metric: rmse")},
        file=SPEC_FILE,
        line=4,
        note="`rmse` is a regression metric; the task is classification.",
    ),
    good=Example({SPEC_FILE: _GOOD_SPEC}),
    needs_spec=False,
)
def spec_invalid(project: Project, rule: Rule) -> Iterator[Finding]:
    load = project.spec_load
    if load.missing:
        yield rule.finding(
            SPEC_FILE,
            "mlops.yaml is missing: the project's spec is gone",
            fix="restore it from version control (git restore mlops.yaml)",
        )
        return
    for issue in load.issues:
        file, line, column = split_where(issue.where, project.root)
        message = f"{issue.path}: {issue.message}" if issue.path else issue.message
        yield rule.finding(file, message, line=line, column=column)


@rule(
    "MLO102",
    "spec-version-unsupported",
    Severity.error,
    summary="`spec_version` is not one this mlops-template understands.",
    why="A spec written for another format version may mean something else; nothing else is "
    "checked against it until the versions agree.",
    fix="Upgrade mlops-template (`pip install -U mlops-template`) or set `spec_version: 1`.",
    bad=Example(
        {SPEC_FILE: _GOOD_SPEC.replace("spec_version: 1", "spec_version: 2")},
        file=SPEC_FILE,
        line=1,
    ),
    good=Example({SPEC_FILE: _GOOD_SPEC}),
    needs_spec=False,
)
def spec_version(project: Project, rule: Rule) -> Iterator[Finding]:
    bad = project.spec_load.bad_version
    if bad is None:
        return
    from mlops_template import __version__
    from mlops_template.spec import SPEC_VERSION

    value, where = bad
    file, line, column = split_where(where, project.root)
    yield rule.finding(
        file,
        f"spec_version: {value!r} is not supported by mlops-template {__version__} "
        f"(supported: {SPEC_VERSION})",
        line=line,
        column=column,
    )
