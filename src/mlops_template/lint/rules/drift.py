"""MLO6xx: the project's record of its generation (`.mlops/`) and its drift from the template."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

from mlops_template import TEMPLATE_RELEASE, TEMPLATE_VERSION
from mlops_template.lint.model import Example, Finding, Replace, Rule, Severity, rule
from mlops_template.lint.project import STATE_FILE, Project

_VERSION_LINE = re.compile(r'"template_version"\s*:')


@rule(
    "MLO601",
    "state-invalid",
    Severity.error,
    summary="`.mlops/` (the record of how the project was generated) is missing or corrupt.",
    why="`.mlops/state.json` and `.mlops/pristine.json` are the merge base of `mlops update` and "
    "`mlops add-phase`: without them the tool cannot tell your edits from template changes.",
    fix="Restore `.mlops/` from version control (`git restore .mlops/`).",
    bad=Example({STATE_FILE: None}, file=STATE_FILE),
    good=Example({}, note="the generated project as it is"),
    needs_spec=False,
)
def state_invalid(project: Project, rule: Rule) -> Iterator[Finding]:
    for file, message, fix in project.state_load.problems:
        yield rule.finding(file, message, fix=fix)


def _version_tuple(version: str) -> tuple[int, ...] | None:
    """The release part of ``<release>+<content hash>`` as numbers (None if not numeric)."""
    parts = version.split("+", 1)[0].split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


@rule(
    "MLO602",
    "template-version",
    Severity.warning,
    summary="The project was generated from an older (or newer) template than the installed one.",
    why="Template fixes (security pins, bug fixes, new checks) reach a project only through "
    "`mlops update`; a project from a newer template may use features this tool does not know. "
    "The version is `<release>+<hash of the templates' content>`, so it changes with any "
    "template change, not only with a release.",
    fix="Run `mlops update` (it merges the new template with your edits), or upgrade "
    "mlops-template when the project is newer.",
    bad=Example(
        {
            STATE_FILE: Replace(
                f'"template_version": "{TEMPLATE_RELEASE}+', '"template_version": "2025.1.0+'
            )
        },
        file=STATE_FILE,
    ),
    good=Example({}, note="the generated project as it is"),
    needs_spec=False,
)
def template_version(project: Project, rule: Rule) -> Iterator[Finding]:
    state = project.state_load.state
    if state is None:
        return
    recorded = state["template_version"]
    if recorded == TEMPLATE_VERSION:
        return
    old, new = _version_tuple(recorded), _version_tuple(TEMPLATE_VERSION)
    line = next((n for n, text in enumerate((project.text(STATE_FILE) or "").splitlines(), 1)
                 if _VERSION_LINE.search(text)), None)  # fmt: skip
    if old is not None and new is not None and old > new:
        yield rule.finding(
            STATE_FILE,
            f"generated from template {recorded}, newer than the installed {TEMPLATE_VERSION}",
            line=line,
            fix="upgrade mlops-template (pip install -U mlops-template)",
        )
    else:
        yield rule.finding(
            STATE_FILE,
            f"generated from template {recorded}; the installed template is {TEMPLATE_VERSION}",
            line=line,
            fix="run `mlops update` to merge the template's changes with your edits",
        )


def _first_difference(old: bytes, new: bytes) -> int | None:
    try:
        old_lines = old.decode("utf-8").splitlines()
        new_lines = new.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    for number, (a, b) in enumerate(zip(old_lines, new_lines, strict=False), start=1):
        if a != b:
            return number
    return min(len(old_lines), len(new_lines)) + 1


@rule(
    "MLO603",
    "file-modified",
    Severity.info,
    summary="A file differs from what the template rendered (or was deleted).",
    why="Editing generated files is expected; listing them shows where `mlops update` will "
    "merge and where conflicts can appear.",
    fix="Nothing to do; review the list before `mlops update`.",
    bad=Example(
        {".editorconfig": Replace("charset = utf-8", "charset = latin1")},
        file=".editorconfig",
        line=4,
    ),
    good=Example({}, note="the generated project as it is"),
    needs_spec=False,
)
def modified_files(project: Project, rule: Rule) -> Iterator[Finding]:
    pristine = project.state_load.pristine
    if pristine is None:
        return
    state = project.state_load.state or {}
    recorded = state.get("user_owned")
    owned = {str(p) for p in recorded} if isinstance(recorded, list) else set()
    for rel in sorted(pristine.files):
        if rel.startswith(".mlops/"):
            continue
        original = pristine.files[rel]
        current = project.read_bytes(rel)
        if current is None:
            yield rule.finding(rel, f"{rel} was deleted since it was generated")
        elif hashlib.sha256(current).hexdigest() != original.sha256 and not (
            b"\r\n" in current
            and hashlib.sha256(current.replace(b"\r\n", b"\n")).hexdigest() == original.sha256
        ):  # (a CRLF checkout of the same content is not a change)
            spec = rel == "mlops.yaml"
            yield rule.finding(
                rel,
                "the spec changed since the project was rendered"
                if spec
                else f"{rel} (user-owned) differs from the template's render; `mlops update` "
                "keeps it as it is (MLO7xx check its interface)"
                if rel in owned
                else f"{rel} differs from the template's render",
                line=_first_difference(original.content, current),
                fix="run `mlops update` to render the project from the edited spec"
                if spec
                else None,
            )


@rule(
    "MLO604",
    "conflict-markers",
    Severity.error,
    summary="A file the template manages still holds unresolved conflict markers.",
    why="`mlops update` and `mlops add-phase` mark the regions they could not merge with "
    "`<<<<<<<`, `=======` and `>>>>>>>` lines; a file committed with them is broken (a Makefile "
    "or TOML file no longer parses, code no longer runs) and the next merge would bury them. "
    "`mlops update` refuses to merge into such a file.",
    fix="Resolve the conflict: keep the lines you want from both sides and delete the "
    "`<<<<<<<`, `=======` and `>>>>>>>` lines, then commit.",
    bad=Example(
        {
            ".editorconfig": "root = true\n\n[*]\n<<<<<<< yours\ncharset = latin1\n=======\n"
            "charset = utf-8\n>>>>>>> template\n"
        },
        note="a conflict from `mlops update`, committed unresolved.",
        file=".editorconfig",
        line=4,
    ),
    good=Example({}, note="the generated project as it is"),
    needs_spec=False,
)
def conflict_markers(project: Project, rule: Rule) -> Iterator[Finding]:
    from mlops_template.markers import conflict_regions

    pristine = project.state_load.pristine
    paths = {"mlops.yaml"} | (set(pristine.files) if pristine is not None else set())
    template_path = {rel: rel for rel in paths} | {new: old for old, new in project.renames.items()}
    for rel in sorted(template_path):
        if rel.startswith(".mlops/"):
            continue
        text = project.text(rel)
        if text is None:
            continue
        if pristine is not None and template_path[rel] in pristine.files:
            original = pristine.files[template_path[rel]]
            if original.is_text() and conflict_regions(original.content.decode("utf-8")):
                continue  # the template itself ships these lines (documentation of markers)
        for line in conflict_regions(text):
            yield rule.finding(rel, f"{rel} has an unresolved merge conflict", line=line)


@rule(
    "MLO605",
    "merge-leftover",
    Severity.warning,
    summary="The template's version of a file that could not be merged is still next to it "
    "(`<file>.mlops-new` or `<file>.rej`).",
    why="When `mlops update` or `mlops add-phase` cannot merge a file, it keeps yours and writes "
    "the template's version (`.mlops-new`) or its conflicting changes (`.rej`, with "
    "`--conflict rej`) next to it. Until you merge them by hand, the project lacks those "
    "template changes, and the next update will not offer them again.",
    fix="Merge the template's changes into the file (for a `.rej`: `git apply --unidiff-zero "
    "<file>.rej`, or by hand), then delete the side file.",
    bad=Example({".editorconfig.mlops-new": "root = true\n"}, file=".editorconfig.mlops-new"),
    good=Example({}, note="the generated project as it is"),
    needs_spec=False,
)
def merge_leftovers(project: Project, rule: Rule) -> Iterator[Finding]:
    from mlops_template.markers import REJ_SUFFIX, SIDE_SUFFIX

    pristine = project.state_load.pristine
    if pristine is None:
        return
    names = {rel: rel for rel in pristine.files} | {
        new: f"{new} (moved from {old})" for old, new in project.renames.items()
    }
    for rel in sorted(names):
        for suffix, what in ((SIDE_SUFFIX, "version"), (REJ_SUFFIX, "conflicting changes")):
            if project.is_file(rel + suffix):
                yield rule.finding(
                    rel + suffix,
                    f"the template's {what} of {names[rel]} "
                    f"{'is' if suffix == SIDE_SUFFIX else 'are'} still in {rel + suffix}, "
                    "not merged",
                )
