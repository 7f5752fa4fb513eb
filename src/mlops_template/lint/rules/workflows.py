"""MLO5xx: CI/CD workflows exist per pipeline, declare permissions, hold no secrets, pin actions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlops_template.lint.model import Example, Finding, Rule, Severity, rule
from mlops_template.lint.project import Project
from mlops_template.yamlsource import safe_loader

_SHA = re.compile(r"^[0-9a-f]{40}$")
_SECRET_KEY = re.compile(
    r"(?:^|[_-])(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|"
    r"private[_-]?key|client[_-]?secret|connection[_-]?string|sas[_-]?token|credentials?)(?:$|[_-])",
    re.IGNORECASE,
)
#: value shapes that are secrets wherever they appear (keys, env, scripts).
_SECRET_VALUE = re.compile(
    r"AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}"  # GitHub tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|AccountKey=[A-Za-z0-9+/=]{20,}"  # Azure storage connection strings
    r"|sk-[A-Za-z0-9]{32,}"  # API keys of the sk- family
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@$]+@"  # a password inside a URL
)
#: `NAME=value` / `NAME: value` assignments of secret-looking names inside run scripts.
_SCRIPT_ASSIGN = re.compile(
    r"\b([A-Za-z_]*(?:PASSWORD|SECRET|TOKEN|API_KEY|APIKEY|ACCESS_KEY|PRIVATE_KEY)[A-Za-z_]*)"
    r"\s*[=:]\s*['\"]?([^\s'\"$]{8,})",
    re.IGNORECASE,
)
_PLACEHOLDER = re.compile(r"^(?:<.*>|x+|\*+|changeme|dummy|example|placeholder|none|null)$", re.I)
_BOOLISH = frozenset(
    {"true", "false", "yes", "no", "on", "off", "read", "write", "none", "inherit"}
)

_ML = ".github/workflows/ml-pipeline.yml"
_DATA = ".github/workflows/data-pipeline.yml"
_LINT = ".github/workflows/lint.yml"
_ML_PIPELINE = """\
name: ml-pipeline
on: workflow_dispatch
permissions: {contents: read}
jobs:
  train:
    runs-on: ubuntu-latest
    steps:
      - run: make pipeline
"""
_LINT_NO_PERMISSIONS = """\
name: lint
on: push
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: make lint
"""
_LINT_PERMISSIONS = _LINT_NO_PERMISSIONS.replace("jobs:", "permissions:\n  contents: read\njobs:")
_DATA_SECRET = """\
name: data
on: workflow_dispatch
permissions: {{contents: read}}
jobs:
  data:
    runs-on: ubuntu-latest
    env:
      DB_PASSWORD: {password}
    steps:
      - run: make data
"""
_LINT_USES = """\
name: lint
on: push
permissions: {{contents: read}}
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - uses: {uses}
"""
# actions/checkout v4.2.2, as pinned in public workflows
_CHECKOUT_PINNED = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2"
_LINT_BROKEN = """\
name: lint
on: push
permissions: {contents: read
jobs: {}
"""


def workflow_files(project: Project) -> list[str]:
    """GitHub workflows, plus the GitLab and Azure DevOps pipeline files when present."""
    files = project.walk(".github/workflows", (".yml", ".yaml"))
    for single in (".gitlab-ci.yml", "azure-pipelines.yml"):
        if project.is_file(single):
            files.append(single)
    for folder in (".gitlab/ci", ".azuredevops"):
        files.extend(project.walk(folder, (".yml", ".yaml")))
    return files


@dataclass
class Loaded:
    node: Any  # yaml.Node | None
    error: tuple[str, int | None, int | None] | None = None


def _load(project: Project, rel: str) -> Loaded:
    import yaml

    cache: dict[str, Loaded] = project.cache.setdefault("workflow_nodes", {})
    if rel in cache:
        return cache[rel]
    text = project.text(rel)
    if text is None:
        loaded = Loaded(None, ("not readable as UTF-8 text", None, None))
    else:
        try:
            loaded = Loaded(yaml.compose(text, Loader=safe_loader()))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problem = exc.problem or exc.context or "invalid YAML"
            loaded = Loaded(None, (problem, mark.line + 1 if mark else None,
                                   mark.column + 1 if mark else None))  # fmt: skip
        except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
            loaded = Loaded(None, (str(exc), None, None))
    cache[rel] = loaded
    return loaded


def _mapping(node: Any) -> dict[str, tuple[Any, Any]]:
    """A mapping node's entries: key text -> (key node, value node)."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return {}
    return {str(k.value): (k, v) for k, v in node.value}


def _pos(node: Any) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _github(rel: str) -> bool:
    return rel.startswith(".github/workflows/")


@rule(
    "MLO501",
    "workflow-missing",
    Severity.error,
    summary="An enabled phase's pipeline has no workflow file.",
    why="The data, ML and infrastructure pipelines each run in their own workflow with their own "
    "owner; a phase listed in `phases` whose workflow is gone never runs in CI.",
    fix="Restore the workflow the template wrote, or run `mlops update` to re-create it.",
    bad=Example({_ML: None}, file=_ML),
    good=Example({_ML: _ML_PIPELINE}),
)
def workflow_missing(project: Project, rule: Rule) -> Iterator[Finding]:
    for phase in project.enabled:
        for conditional in phase.workflows:
            if not isinstance(conditional.value, str) or not project.condition(conditional.when):
                continue
            rel = project.expand(conditional.value).strip("/")
            if not project.is_file(rel):
                yield rule.finding(
                    rel,
                    f"{rel} is missing: the `{phase.name}` pipeline never runs in CI",
                    fix=project.missing_fix(rel, phase.name),
                )


@rule(
    "MLO502",
    "workflow-permissions",
    Severity.error,
    summary="A GitHub workflow does not declare `permissions`, or grants `write-all`.",
    why="Without `permissions` the workflow's GITHUB_TOKEN gets the repository default, which is "
    "often read-write on everything; a compromised step can then push code or releases. Declare "
    "least privilege at the top and widen it per job.",
    fix="Add `permissions: {contents: read}` at the top level and grant more per job only where "
    "needed (e.g. `id-token: write` for cloud login).",
    bad=Example({_LINT: _LINT_NO_PERMISSIONS}, file=_LINT, line=3),
    good=Example({_LINT: _LINT_PERMISSIONS}),
    needs_spec=False,
)
def workflow_permissions(project: Project, rule: Rule) -> Iterator[Finding]:
    for rel in workflow_files(project):
        if not _github(rel):
            continue
        loaded = _load(project, rel)
        top = _mapping(loaded.node)
        if not top:
            continue
        for key_node, value in _permission_nodes(top):
            if getattr(value, "value", None) == "write-all":
                line, column = _pos(value)
                yield rule.finding(rel, f"`{key_node.value}: write-all` grants every scope",
                                   line=line, column=column)  # fmt: skip
        if "permissions" in top:
            continue
        jobs = _mapping(top.get("jobs", (None, None))[1])
        if jobs and all("permissions" in _mapping(job) for _, job in jobs.values()):
            continue
        anchor = top.get("jobs", (None, None))[0] or loaded.node
        line, column = _pos(anchor)
        missing = [name for name, (_, job) in jobs.items() if "permissions" not in _mapping(job)]
        detail = f" (jobs without it: {', '.join(missing)})" if missing and len(jobs) > 1 else ""
        yield rule.finding(
            rel,
            f"no top-level `permissions`{detail}: the token gets the repository default",
            line=line,
            column=column,
        )


def _permission_nodes(top: dict[str, tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    if "permissions" in top:
        yield top["permissions"]
    for _, job in _mapping(top.get("jobs", (None, None))[1]).values():
        entry = _mapping(job).get("permissions")
        if entry:
            yield entry


def _scalars(node: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """Every scalar value with the mapping key it belongs to (skipping `permissions`)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            name = str(k.value)
            if name == "permissions":
                continue
            yield from _scalars(v, name)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _scalars(item, key)
    elif isinstance(node, yaml.ScalarNode):
        yield key, node


def _plain_secret(text: str) -> bool:
    """A literal that looks like a credential: long, no spaces, not a reference, path, URL,
    placeholder or keyword, and random-looking (letters and digits, or long)."""
    if len(text) < 8 or any(mark in text for mark in ("${{", "$(", "${", " ", "://")):
        return False
    if text.startswith(("/", "./", "~")) or text.lower() in _BOOLISH or _PLACEHOLDER.match(text):
        return False
    mixed = any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
    return mixed or len(text) >= 24


def _looks_secret(key: str | None, value: str) -> str | None:
    text = value.strip()
    if _SECRET_VALUE.search(text):
        return "a credential-shaped value"
    if key and _SECRET_KEY.search(key) and "\n" not in text and _plain_secret(text):
        return f"a literal value for `{key}`"
    if key == "run" or "\n" in text:
        for assign in _SCRIPT_ASSIGN.finditer(text):
            if _plain_secret(assign.group(2)):
                return f"a literal value assigned to {assign.group(1)}"
    return None


@rule(
    "MLO503",
    "workflow-plaintext-secret",
    Severity.error,
    summary="A workflow holds a secret-looking value in plain text.",
    why="Anything in a workflow file is readable by everyone with read access to the repository "
    "and stays in its history forever.",
    fix="Rotate the credential, store it as an encrypted CI secret and reference it "
    "(`${{ secrets.NAME }}`); prefer OIDC (`id-token: write`) to long-lived cloud keys.",
    bad=Example({_DATA: _DATA_SECRET.format(password="hunter2-prod-2026")}, file=_DATA, line=8),
    good=Example({_DATA: _DATA_SECRET.format(password="${{ secrets.DB_PASSWORD }}")}),
    needs_spec=False,
)
def plaintext_secrets(project: Project, rule: Rule) -> Iterator[Finding]:
    for rel in workflow_files(project):
        node = _load(project, rel).node
        if node is None:
            continue
        for key, scalar in _scalars(node):
            what = _looks_secret(key, str(scalar.value))
            if what:
                line, column = _pos(scalar)
                yield rule.finding(rel, f"plaintext secret: {what}", line=line, column=column)


def _uses(node: Any) -> Iterator[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if str(k.value) == "uses" and isinstance(v, yaml.ScalarNode):
                yield v
            else:
                yield from _uses(v)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _uses(item)


@rule(
    "MLO504",
    "action-unpinned",
    Severity.error,
    summary="A GitHub action or reusable workflow is referenced by a tag or branch, not a commit SHA.",
    why="Tags and branches can be moved to other code after review (the tj-actions/changed-files "
    "compromise of 2025 did exactly that); a full 40-character commit SHA cannot.",
    fix="Pin to the commit SHA the tag points to and keep the tag as a comment: "
    "`uses: actions/checkout@<40-hex sha>  # v4.2.2`.",
    bad=Example({_LINT: _LINT_USES.format(uses="actions/checkout@v4")}, file=_LINT, line=8),
    good=Example({_LINT: _LINT_USES.format(uses=_CHECKOUT_PINNED)}),
    needs_spec=False,
)
def unpinned_actions(project: Project, rule: Rule) -> Iterator[Finding]:
    for rel in workflow_files(project):
        if not _github(rel):
            continue
        node = _load(project, rel).node
        if node is None:
            continue
        for scalar in _uses(node):
            ref = str(scalar.value).strip()
            if ref.startswith("./"):
                continue
            line, column = _pos(scalar)
            if ref.startswith("docker://"):
                if "@sha256:" not in ref:
                    yield rule.finding(rel, f"`{ref}` is not pinned to an image digest",
                                       line=line, column=column,
                                       fix="pin the image by digest: docker://image@sha256:<digest>")  # fmt: skip
                continue
            _, at, version = ref.partition("@")
            if not at or not _SHA.match(version):
                shown = version if at else "no ref"
                yield rule.finding(rel, f"`{ref}` is pinned to {shown!s}, not a commit SHA",
                                   line=line, column=column)  # fmt: skip


@rule(
    "MLO505",
    "workflow-invalid-yaml",
    Severity.error,
    summary="A workflow file is not valid YAML.",
    why="CI rejects the file, so its pipeline never runs; the other workflow rules cannot check it.",
    fix="Fix the YAML syntax at the reported position (`yamllint` and `actionlint` show details).",
    bad=Example({_LINT: _LINT_BROKEN}, file=_LINT, line=4),
    good=Example({_LINT: _LINT_BROKEN.replace("read\n", "read}\n")}),
    needs_spec=False,
)
def invalid_yaml(project: Project, rule: Rule) -> Iterator[Finding]:
    for rel in workflow_files(project):
        error = _load(project, rel).error
        if error:
            message, line, column = error
            yield rule.finding(rel, f"invalid YAML: {message}", line=line, column=column)


#: a container build in a script: docker/podman build, docker buildx build (and its alias b)
_BUILD = re.compile(r"\b(?:docker(?:\s+buildx)?|podman)\s+(?:build|b)\b(?=\s|$)")
#: build options that take a value (the next word unless written `--opt=value`)
_BUILD_VALUE_OPTS = frozenset(
    {"-t", "--tag", "-f", "--file", "--build-arg", "--target", "--platform", "--label",
     "--cache-from", "--cache-to", "--network", "--secret", "--ssh", "--progress", "-o",
     "--output", "--iidfile", "--metadata-file", "--build-context", "--add-host", "--shm-size",
     "--ulimit", "--builder", "--attest", "--annotation", "--memory", "-m", "--cpu-shares",
     "--cgroup-parent", "--isolation", "--security-opt"}
)  # fmt: skip
_SHELL_STOP = frozenset({"|", "||", "&&", ";", "&", ">", ">>", "<", "2>", "2>&1", ")"})
_BUILD_PUSH_ACTION = "docker/build-push-action@"
_DEPLOY = ".github/workflows/deploy.yml"
_DEPLOY_BUILD = """\
name: deploy
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    permissions: {contents: read}
    steps:
      - run: docker build --pull -t "api:$SHA" .
"""


def _build_dockerfile(command: str) -> str | None:
    """The Dockerfile a `docker build ...` command line uses, relative to the repository root
    (``-f``/``--file`` as given, else ``<context>/Dockerfile``); None when it cannot be told
    statically (a context or file from a variable, stdin, a URL)."""
    import shlex

    try:
        words = shlex.split(command, comments=True)
    except ValueError:  # unbalanced quotes: not a command this rule can read
        return None
    dockerfile: str | None = None
    context: str | None = None
    index = 0
    while index < len(words):
        word = words[index]
        if word in _SHELL_STOP:
            break
        if word.startswith("-"):
            name, eq, value = word.partition("=")
            if name in ("-f", "--file"):
                dockerfile = value if eq else (words[index + 1] if index + 1 < len(words) else "")
            if name in _BUILD_VALUE_OPTS and not eq:
                index += 1
        elif context is None:
            context = word
        index += 1
    if context is None:
        return None
    for path in (dockerfile, context):
        if path is not None and (path in ("-", "") or "$" in path or "://" in path
                                 or path.startswith("git@")):  # fmt: skip
            return None
    if dockerfile is not None:
        return dockerfile
    return f"{context.rstrip('/')}/Dockerfile"


def _normalise(rel: str) -> str:
    import posixpath

    return posixpath.normpath(rel.lstrip("/")) if rel.strip("/") else "."


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """(index of its first line, text) of each shell line, continuations (``\\``) joined."""
    first, parts = 0, list[str]()
    for index, line in enumerate(text.split("\n")):
        if not parts:
            first = index
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        yield first, " ".join(parts)
        parts = []
    if parts:
        yield first, " ".join(parts)


#: keys whose values are shell scripts (GitHub `run`, GitLab `script`, Azure `script`/`bash`, ...)
_SCRIPT_KEYS = frozenset(
    {"run", "script", "before_script", "after_script", "bash", "sh", "pwsh", "powershell",
     "inlineScript"}
)  # fmt: skip


def _image_builds(node: Any, key: str | None = None) -> Iterator[tuple[Any, int, str]]:
    """(node, line offset inside it, Dockerfile) for every image build of a CI file."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        entries = _mapping(node)
        uses = entries.get("uses", (None, None))[1]
        if isinstance(uses, yaml.ScalarNode) and str(uses.value).startswith(_BUILD_PUSH_ACTION):
            inputs = {k: str(getattr(v, "value", "")) for k, (_, v) in
                      _mapping(entries.get("with", (None, None))[1]).items()}  # fmt: skip
            context = inputs.get("context", ".")
            dockerfile = inputs.get("file", f"{context.rstrip('/')}/Dockerfile")
            if "$" not in dockerfile + context and "://" not in context:
                yield uses, 0, dockerfile
        for name, (_, value) in entries.items():
            yield from _image_builds(value, name)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _image_builds(item, key)
    elif isinstance(node, yaml.ScalarNode) and key in _SCRIPT_KEYS:
        # a block scalar (`run: |`) starts on the line after its indicator
        offset = 1 if node.style in ("|", ">") else 0
        for index, line in _logical_lines(str(node.value)):
            for match in _BUILD.finditer(line):
                found = _build_dockerfile(line[match.end() :])
                if found is not None:
                    yield node, offset + index, found


@rule(
    "MLO506",
    "image-without-dockerfile",
    Severity.error,
    summary="A CI workflow builds a container image from a Dockerfile that does not exist.",
    why="The build (and every deploy after it) fails on the first run on the default branch, "
    "long after review: e.g. a deploy pipeline left in place when the image it built was "
    "dropped, or a Dockerfile moved without its `docker build -f`.",
    fix="Add the Dockerfile the build expects (`mlops update` restores the template's), point "
    "`-f`/`file:` at the right one, or remove the build and the deploy jobs that need its image.",
    bad=Example({_DEPLOY: _DEPLOY_BUILD}, file=_DEPLOY, line=9),
    good=Example({_DEPLOY: _DEPLOY_BUILD, "Dockerfile": "FROM python:3.11-slim\n"}),
    needs_spec=False,
)
def image_without_dockerfile(project: Project, rule: Rule) -> Iterator[Finding]:
    for rel in workflow_files(project):
        node = _load(project, rel).node
        if node is None:
            continue
        for scalar, offset, dockerfile in _image_builds(node):
            target = _normalise(dockerfile)
            if project.is_file(target):
                continue
            line, column = _pos(scalar)
            yield rule.finding(
                rel,
                f"builds an image from {target}, which does not exist",
                line=line + offset,
                column=column if offset == 0 else None,
            )
