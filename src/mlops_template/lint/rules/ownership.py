"""MLO3xx: CODEOWNERS exists and gives every role-owned path to the spec's handle for that role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_template.lint.model import Append, Example, Finding, Rule, Severity, rule
from mlops_template.lint.project import Project, iter_phase_paths

#: where each provider reads CODEOWNERS from, after the location the template writes.
_OTHER_LOCATIONS = ("CODEOWNERS", "docs/CODEOWNERS")
_CATCH_ALL = frozenset({"*", "/*", "**", "/**", "/"})

_DS = "@your-org/data-scientists"


@dataclass(frozen=True)
class OwnerRule:
    line: int
    pattern: str
    owners: tuple[str, ...]
    #: a regex for wildcard patterns; a plain anchored path is compared as a string (faster).
    regex: re.Pattern[str] | None
    literal: str | None
    dir_only: bool

    def matches(self, candidate: str) -> bool:
        if self.literal is not None:
            return candidate == self.literal
        return self.regex is not None and self.regex.match(candidate) is not None


def _compile(pattern: str) -> tuple[re.Pattern[str], bool]:
    """A CODEOWNERS pattern (gitignore syntax) as a regex over root-relative paths."""
    dir_only = pattern.endswith("/")
    body = pattern.strip("/") if pattern != "/" else ""
    anchored = pattern.startswith("/") or "/" in body
    out = []
    i = 0
    while i < len(body):
        if body.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif body.startswith("**", i):
            out.append(".*")
            i += 2
        elif body[i] == "*":
            out.append("[^/]*")
            i += 1
        elif body[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(body[i]))
            i += 1
    prefix = "" if anchored else "(?:.*/)?"
    return re.compile(prefix + "".join(out) + r"\Z"), dir_only


def parse_codeowners(text: str) -> list[OwnerRule]:
    rules: list[OwnerRule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "[", "^[")):
            continue
        line = re.split(r"(?<!\\)\s#", line, maxsplit=1)[0]
        fields = line.split()
        pattern, owners = fields[0].replace("\\#", "#"), tuple(fields[1:])
        body = pattern.strip("/")
        if pattern.startswith("/") and body and not any(c in body for c in "*?[\\"):
            rules.append(OwnerRule(number, pattern, owners, None, body, pattern.endswith("/")))
        else:
            regex, dir_only = _compile(pattern)
            rules.append(OwnerRule(number, pattern, owners, regex, None, dir_only))
    return rules


def codeowners_rules(project: Project, rel: str) -> list[OwnerRule]:
    """The parsed CODEOWNERS at ``rel`` (once per run)."""
    cache: dict[str, list[OwnerRule]] = project.cache.setdefault("codeowners", {})
    if rel not in cache:
        cache[rel] = parse_codeowners(project.text(rel) or "")
    return cache[rel]


def last_match(rules: list[OwnerRule], path: str, is_dir: bool) -> OwnerRule | None:
    """The rule that decides ``path``'s owners: the last one matching it or one of its parents."""
    parts = path.split("/")
    candidates = [("/".join(parts[:n]), n < len(parts) or is_dir) for n in range(1, len(parts) + 1)]
    for owner_rule in reversed(rules):
        for candidate, candidate_is_dir in candidates:
            if owner_rule.dir_only and not candidate_is_dir:
                continue
            if owner_rule.matches(candidate):
                return owner_rule
    return None


def codeowners_file(project: Project) -> tuple[str, str | None]:
    """(expected location, the location actually found or None)."""
    from mlops_template.render import CODEOWNERS_DIR

    expected = f"{CODEOWNERS_DIR[project.require_spec().ci.provider]}/CODEOWNERS"
    for candidate in (expected, *_OTHER_LOCATIONS):
        if project.is_file(candidate):
            return expected, candidate
    return expected, None


@rule(
    "MLO301",
    "codeowners-missing",
    Severity.error,
    summary="There is no CODEOWNERS file.",
    why="Each phase is owned by a role (data engineer, data scientist, ML engineer); CODEOWNERS "
    "makes that role's review mandatory for its paths.",
    fix="Restore the CODEOWNERS file the template wrote (`.github/CODEOWNERS` on GitHub).",
    bad=Example({".github/CODEOWNERS": None}, file=".github/CODEOWNERS"),
    good=Example({}, note="the CODEOWNERS the template composed from the phase manifests"),
)
def codeowners_missing(project: Project, rule: Rule) -> Iterator[Finding]:
    expected, found = codeowners_file(project)
    if found is None:
        yield rule.finding(
            expected,
            f"{expected} is missing: no role owns any path",
            fix=f"restore {expected} (git restore {expected}); the template composes it from the "
            "phase manifests and `roles` in mlops.yaml",
        )


def _owned(project: Project) -> Iterator[tuple[str, bool, str, str, str]]:
    """(path, is_dir, phase, role, handle) for every path an enabled phase owns."""
    roles = project.require_spec().roles
    for phase in project.enabled:
        handle = getattr(roles, phase.owner, None)
        if not handle:
            continue
        for path, is_dir in iter_phase_paths(project, phase):
            yield path, is_dir, phase.name, phase.owner, handle


@rule(
    "MLO302",
    "codeowners-path-uncovered",
    Severity.error,
    summary="A path an enabled phase owns has no CODEOWNERS rule of its own.",
    why="Without a rule for the path (or only the catch-all `*`), any owner can approve changes "
    "to it and the owning role's review is not required.",
    fix="Add a line `PATH HANDLE` for the path with the role's handle from `roles` in mlops.yaml.",
    bad=Example(
        {".github/CODEOWNERS": Append("*  @bob\n")},
        file=".github/CODEOWNERS",
        line=-1,
        note="a catch-all at the end overrides every role's rule above it.",
    ),
    good=Example({}, note="the CODEOWNERS the template composed from the phase manifests"),
)
def codeowners_uncovered(project: Project, rule: Rule) -> Iterator[Finding]:
    _, found = codeowners_file(project)
    if found is None:
        return
    rules = codeowners_rules(project, found)
    for path, is_dir, phase, role, handle in _owned(project):
        decided = last_match(rules, path, is_dir)
        shown = f"/{path}/" if is_dir else f"/{path}"
        if decided is None:
            yield rule.finding(
                found,
                f"{shown} (phase `{phase}`) matches no CODEOWNERS rule",
                fix=f"add `{shown} {handle}` (roles.{role} in mlops.yaml)",
            )
        elif decided.pattern in _CATCH_ALL:
            yield rule.finding(
                found,
                f"{shown} (phase `{phase}`) is only covered by the catch-all `{decided.pattern}` "
                f"on line {decided.line}",
                line=decided.line,
                fix=f"add `{shown} {handle}` after line {decided.line} (roles.{role} in mlops.yaml)",
            )


@rule(
    "MLO303",
    "codeowners-wrong-owner",
    Severity.error,
    summary="A role-owned path is given to someone other than the spec's handle for that role.",
    why="`roles` in mlops.yaml is the source of truth for who owns data, ML and platform code; "
    "a CODEOWNERS line that disagrees routes reviews to the wrong people.",
    fix="Make the last CODEOWNERS rule matching the path list the role's handle, or change "
    "`roles` in mlops.yaml.",
    bad=Example(
        {".github/CODEOWNERS": Append("/src/demo/ml/  @bob\n")}, file=".github/CODEOWNERS", line=-1
    ),
    good=Example({".github/CODEOWNERS": Append(f"/src/demo/ml/  {_DS} @bob\n")}),
)
def codeowners_wrong_owner(project: Project, rule: Rule) -> Iterator[Finding]:
    _, found = codeowners_file(project)
    if found is None:
        return
    rules = codeowners_rules(project, found)
    for path, is_dir, phase, role, handle in _owned(project):
        decided = last_match(rules, path, is_dir)
        if decided is None or decided.pattern in _CATCH_ALL or handle in decided.owners:
            continue
        shown = f"/{path}/" if is_dir else f"/{path}"
        owners = " ".join(decided.owners) or "nobody"
        yield rule.finding(
            found,
            f"{shown} (phase `{phase}`) is owned by {owners} (line {decided.line}), not by "
            f"roles.{role} = {handle}",
            line=decided.line,
            fix=f"change line {decided.line} to `{decided.pattern} {handle}`, or set "
            f"roles.{role} in mlops.yaml",
        )
