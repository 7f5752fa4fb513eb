"""Spec -> in-memory file tree. Pure: reads templates, never writes to disk.

* ``templates/base/`` is always rendered; each enabled phase adds ``templates/phases/<name>/files/``.
* Files ending in ``.jinja`` are rendered (suffix dropped); all others are copied byte for byte.
* Path segments may be templated (``src/{{ package }}/``); a segment that renders empty skips the
  file. A phase's ``files_when`` conditions skip files too.
* Shared files (Makefile, pyproject, CODEOWNERS, README) are composed from the enabled phases'
  manifests through the context built in :func:`build_context`.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_template import TEMPLATE_VERSION, __version__, cachestore, codecache, speccache
from mlops_template.errors import TemplateError
from mlops_template.phases import Conditional, MakeTarget, Phase, load_catalogue, templates_dir
from mlops_template.tree import Tree

if TYPE_CHECKING:  # pragma: no cover
    # not imported at run time: a spec from speccache renders without pydantic
    from mlops_template.spec import Spec

STATE_DIR = ".mlops"
STATE_FILE = f"{STATE_DIR}/state.json"
PRISTINE_FILE = f"{STATE_DIR}/pristine.json"
SPEC_FILE = "mlops.yaml"
#: files whose content is recorded in `.mlops/` but never merged by add-phase/update.
UNMERGED = frozenset({SPEC_FILE, STATE_FILE, PRISTINE_FILE})
CODEOWNERS_DIR = {"github": ".github", "gitlab": ".gitlab", "azure-devops": ".azuredevops"}
#: a path containing this is rendered once per environment of the spec, with `env` set.
PER_ENVIRONMENT = "{{ env }}"


# ------------------------------------------------------------------------------------------
# Jinja environment
# ------------------------------------------------------------------------------------------


def make_environment(search_path: list[Path], *, sandboxed: bool = False) -> Any:
    import jinja2

    from mlops_template.quoting import FILTERS

    cls: Any = jinja2.Environment
    if sandboxed:  # templates that do not ship with the tool: no attribute tricks, bounded growth
        from mlops_template.sandbox import BoundedSandbox

        cls = BoundedSandbox
    env = cls(
        loader=jinja2.FileSystemLoader([str(p) for p in search_path]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        # compiled templates are cached on disk (keyed by source checksum) for the tool's own
        # templates: compiling is most of the cost of a render
        bytecode_cache=None if sandboxed else _bytecode_cache(),
    )
    env.filters.update(FILTERS)
    if not sandboxed:
        # the compiled small strings and conditions, across runs
        codecache.attach(env, _code_stamp() if codecache.cache_folder() else None)
        # yaml_str's results too: PyYAML is then not even imported when nothing changed
        env.filters["yaml_str"] = codecache.memo_filter(env, "yaml_str", FILTERS["yaml_str"])
    return env


def _code_stamp() -> str | None:
    """The code key the compiled-code caches are stamped with (None: no such caches)."""
    return cachestore.code_key(templates_dir())


def _bytecode_cache() -> Any:
    folder = codecache.cache_folder()  # None for a read-only home: render without the cache
    stamp = _code_stamp() if folder is not None else None
    return None if folder is None or stamp is None else codecache.bytecode_cache(folder, stamp)


_SIMPLE_VARIABLE = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


def render_string(env: Any, text: str, context: Mapping[str, Any]) -> str:
    """Render a small template string, compiling each distinct string once per environment."""
    simple = _SIMPLE_VARIABLE.match(text)
    if simple and isinstance(context.get(simple.group(1)), str):
        return str(context[simple.group(1)])
    cache: dict[str, Any] = env.__dict__.setdefault("_mlops_strings", {})
    template = cache.get(text)
    if template is None:
        template = cache[text] = codecache.from_string(env, text)
    rendered: str = template.render(context)
    return rendered


def evaluate(env: Any, expression: str | None, context: Mapping[str, Any], where: str) -> bool:
    if expression is None:
        return True
    import jinja2

    try:
        cache: dict[str, Any] = env.__dict__.setdefault("_mlops_expressions", {})
        compiled = cache.get(expression)
        if compiled is None:
            compiled = cache[expression] = codecache.compile_expression(env, expression)
        return bool(compiled(**context))
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{where}: condition {expression!r} failed: {exc}") from None


# ------------------------------------------------------------------------------------------
# context: the spec plus everything composed from the enabled phases' manifests
# ------------------------------------------------------------------------------------------


def enabled_phases(spec: Spec, catalogue: Mapping[str, Phase]) -> list[Phase]:
    return [catalogue[name] for name in catalogue if name in spec.phases]


#: a rule in the base Makefile: ``name: ...`` (not ``NAME := value``)
_MAKE_RULE = re.compile(r"^([a-z][a-z0-9_-]*)\s*:(?!=)", re.MULTILINE)


@functools.lru_cache(maxsize=4)
def base_make_targets(root: Path | None = None) -> frozenset[str]:
    """The targets the base Makefile defines itself (``help``, ``setup``, ``test``, ...)."""
    makefile = (root or templates_dir()) / "base" / "Makefile.jinja"
    try:
        text = makefile.read_text(encoding="utf-8")
    except OSError:
        return frozenset()
    return frozenset(_MAKE_RULE.findall(text))


def _template_version(root: Path | None) -> str:
    """The version of the templates a render uses: the installed ones', or those at ``root``."""
    if root is None:
        return TEMPLATE_VERSION
    from mlops_template import template_version

    return template_version(root)


def build_context(
    spec: Spec, phases: list[Phase], env: Any, *, templates_root: Path | None = None
) -> dict[str, Any]:
    data = spec.model_dump(mode="json")
    context: dict[str, Any] = dict(data)
    package = spec.package
    context.update(
        spec=data,
        package=package,
        phases=[p.name for p in phases],
        tool_version=__version__,
        template_version=_template_version(templates_root),
        lower_is_better=speccache.lower_is_better(spec),
        owners={role: handle for role, handle in data["roles"].items() if handle},
        environments=list(spec.infra.environments),
        codeowners_dir=CODEOWNERS_DIR[spec.ci.provider],
        codeowners_path=f"{CODEOWNERS_DIR[spec.ci.provider]}/CODEOWNERS",
    )

    def conditionals(items: tuple[Conditional, ...], where: str) -> list[Any]:
        return [c.value for c in items if evaluate(env, c.when, context, where)]

    def render_str(text: str, where: str) -> str:
        try:
            rendered = render_string(env, text, context)
        except Exception as exc:
            raise TemplateError(f"{where}: cannot render {text!r}: {exc}") from None
        return rendered

    dependencies: list[str] = []
    dev_dependencies: list[str] = []
    #: each enabled phase's own runtime dependencies (e.g. what the data pipeline alone needs)
    phase_dependencies: dict[str, list[str]] = {}
    targets: list[dict[str, Any]] = []
    codeowners: list[tuple[str, str]] = []
    workflows: list[str] = []
    readme: list[dict[str, str]] = []
    gitignore: list[str] = []
    user_owned: list[str] = []
    for phase in phases:
        where = f"phases/{phase.name}/phase.yaml"
        for owned_path in phase.user_owned:
            rendered_path = render_str(owned_path, where).strip()
            if rendered_path and rendered_path not in user_owned:
                user_owned.append(rendered_path)
        phase_dependencies[phase.name] = conditionals(phase.dependencies, where)
        for dep in phase_dependencies[phase.name]:
            if dep not in dependencies:
                dependencies.append(dep)
        for dep in conditionals(phase.dev_dependencies, where):
            if dep not in dev_dependencies:
                dev_dependencies.append(dep)
        for target in phase.make_targets:
            if evaluate(env, target.when, context, where):
                targets.append(_target_dict(target, phase, render_str, where))
                _check_target_name(target, phase, targets[:-1], templates_root)
        handle = " ".join(h for h in [data["roles"].get(phase.owner)] if h)
        for owned in phase.owns:
            codeowners.append((render_str(owned, where), handle))
        workflows.extend(conditionals(phase.workflows, where))
        if phase.readme.strip():
            readme.append({"phase": phase.name, "owner": phase.owner,
                           "text": render_str(phase.readme, where).strip()})  # fmt: skip
        gitignore.extend(g for g in phase.gitignore if g not in gitignore)
    context.update(
        dependencies=dependencies,
        dev_dependencies=dev_dependencies,
        phase_dependencies=phase_dependencies,
        make_targets=targets,
        codeowners=codeowners,
        workflows=workflows,
        readme_sections=readme,
        phase_gitignore=gitignore,
        user_owned=user_owned,
        phase_manifests=[
            {
                "name": p.name,
                "owner": p.owner,
                "description": p.description,
                "requires": list(p.requires),
            }
            for p in phases
        ],
    )
    return context


def _check_target_name(
    target: MakeTarget, phase: Phase, earlier: list[dict[str, Any]], root: Path | None
) -> None:
    """A phase's make target may neither redefine a base target nor another phase's."""
    where = target.where or f"{phase.folder / 'phase.yaml'}"
    if target.name in base_make_targets(root):
        raise TemplateError(
            f"{where}.name: {target.name!r} is a target of the base Makefile; a phase may not "
            "redefine it",
            hint="rename the target (e.g. prefix it with the phase name)",
        )
    other = next((t for t in earlier if t["name"] == target.name), None)
    if other is not None:
        raise TemplateError(
            f"{where}.name: {target.name!r} is already a make target of phase {other['phase']!r}",
            hint="rename the target (e.g. prefix it with the phase name)",
        )


def _target_dict(target: MakeTarget, phase: Phase, render_str: Any, where: str) -> dict[str, Any]:
    recipe = []
    for number, line in enumerate(target.recipe):
        rendered = render_str(line, where)
        if any(ch in rendered for ch in "\n\r\x00") or any(
            ord(ch) < 32 and ch != "\t" for ch in rendered
        ):
            raise TemplateError(
                f"{target.where or where}.recipe[{number}]: renders to more than one line "
                f"({rendered!r})",
                hint="give each command its own list item; a value may not add Makefile lines",
            )
        recipe.append(rendered)
    return {
        "name": target.name,
        "help": target.help,
        "deps": list(target.deps),
        "recipe": recipe,
        "phase": phase.name,
    }


# ------------------------------------------------------------------------------------------
# rendering
# ------------------------------------------------------------------------------------------


def _render_path(env: Any, rel: str, context: Mapping[str, Any]) -> str | None:
    parts = []
    for segment in rel.split("/"):
        if "{{" in segment or "{%" in segment:
            try:
                segment = render_string(env, segment, context).strip()
            except Exception as exc:
                raise TemplateError(f"{rel}: cannot render path segment: {exc}") from None
            if not segment:
                return None
            if segment in (".", "..") or "/" in segment or "\\" in segment:
                raise TemplateError(f"{rel}: path segment rendered to {segment!r}")
        parts.append(segment)
    out = "/".join(parts)
    return out[: -len(".jinja")] if out.endswith(".jinja") else out


#: characters macOS (HFS+) ignores in file names, so `.g\u200cit` is `.git` there (as git itself
#: checks: CVE-2014-9390)
_IGNORED_IN_NAMES = re.compile("[\u200b-\u200f\u202a-\u202e\u206a-\u206f\ufeff]")


def _same_name(segment: str, reserved: str) -> bool:
    """Whether ``segment`` names ``reserved`` on some file system: case-insensitively, with
    HFS+-ignored characters dropped, trailing dots and spaces dropped (Windows), and as its
    8.3 short name (``GIT~1``)."""
    name = _IGNORED_IN_NAMES.sub("", segment).rstrip(". ").casefold()
    return name == reserved or name == reserved.lstrip(".")[:6] + "~1"


def confinement_problem(path: str) -> str | None:
    """Why a template that does not ship with the tool may not write ``path``, or None.

    Nothing may leave the project (absolute paths, ``..``, empty segments), land in a git
    folder (``.git`` in any case, at any depth: its hooks would run on the next commit), or
    touch what mlops manages itself (``.mlops/``, ``mlops.yaml``)."""
    parts = path.split("/")
    if path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in parts):
        return "which is outside the project"
    if any(_same_name(p, ".git") for p in parts):
        return "which is inside a .git folder (git runs its hooks; a template may not write there)"
    if _same_name(parts[0], STATE_DIR) or (len(parts) == 1 and _same_name(parts[0], SPEC_FILE)):
        return "which mlops manages itself"
    return None


def _walk_files(root: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for filename in sorted(filenames):
            if filename.endswith((".pyc", ".pyo")):
                continue
            full = Path(dirpath) / filename
            yield full.relative_to(root).as_posix(), full


def render_folder(
    env: Any,
    root: Path,
    context: Mapping[str, Any],
    tree: Tree,
    *,
    files_when: Mapping[str, str] | None = None,
    origin: str,
    loader_prefix: str,
    confined: bool = False,
) -> None:
    """Render every file under ``root`` into ``tree``. ``confined`` (templates that do not ship
    with the tool): refuse any output path :func:`confinement_problem` refuses, naming the
    template file."""
    for rel, full in _walk_files(root):
        if full.is_symlink():
            raise TemplateError(f"{origin}/{rel}: symlinks are not allowed in templates")
        if PER_ENVIRONMENT in rel:
            for environment in context["environments"]:
                _render_file(env, rel, full, {**context, "env": environment}, tree,
                             files_when, origin, loader_prefix, confined)  # fmt: skip
        else:
            _render_file(env, rel, full, context, tree, files_when, origin, loader_prefix,
                         confined)  # fmt: skip
    codecache.save(env)  # written only when this render compiled something new


def _render_file(
    env: Any,
    rel: str,
    full: Path,
    context: Mapping[str, Any],
    tree: Tree,
    files_when: Mapping[str, str] | None,
    origin: str,
    loader_prefix: str,
    confined: bool = False,
) -> None:
    out = _render_path(env, rel, context)
    if out is None:
        return
    problem = confinement_problem(out) if confined else None
    if problem:
        raise TemplateError(
            f"{full}: renders to {out!r}, {problem}; refusing to write it (nothing was written)",
            hint="remove or rename this file in the template",
        )
    skip = False
    for pattern, condition in (files_when or {}).items():
        if fnmatch.fnmatchcase(out, pattern) and not evaluate(
            env, condition, context, f"{origin} files_when[{pattern!r}]"
        ):
            skip = True
    if skip:
        return
    if out in tree:
        raise TemplateError(f"{origin}/{rel}: {out} is already rendered by another phase")
    executable = os.access(full, os.X_OK)
    if rel.endswith(".jinja"):
        try:
            template = env.get_template(f"{loader_prefix}/{rel}")
            text = template.render(context)
        except Exception as exc:
            hint = getattr(exc, "hint", None)  # a sandbox GrowthError says how to fix it
            raise TemplateError(
                f"{origin}/{rel}: {type(exc).__name__}: {exc}",
                hint=hint if isinstance(hint, str) else None,
            ) from None
        if not text.strip():
            return  # a template that renders empty is skipped, like an empty path segment
        tree.add(out, text, executable)
    else:
        tree.add(out, full.read_bytes(), executable)


def render(spec: Spec, *, root: Path | None = None) -> Tree:
    """Render the whole project for ``spec`` into memory, including its ``.mlops/`` record."""
    base = root or templates_dir()
    # the same call as load_spec's, so the lru_cache entry is shared (f() and f(None) are two keys)
    catalogue = load_catalogue(root) if root is not None else load_catalogue()
    phases = enabled_phases(spec, catalogue)
    env = make_environment([base])
    context = build_context(spec, phases, env, templates_root=root)
    tree = Tree()
    render_folder(env, base / "base", context, tree, origin="base", loader_prefix="base")
    for phase in phases:
        if phase.files_dir.is_dir():
            render_folder(
                env,
                phase.files_dir,
                context,
                tree,
                files_when=phase.files_when,
                origin=f"phases/{phase.name}",
                loader_prefix=f"phases/{phase.name}/files",
            )
    tree.add(SPEC_FILE, speccache.spec_yaml(spec))
    record_state(tree, spec, templates_root=root, user_owned=context["user_owned"])
    return Tree(dict(sorted(tree.files.items())))


def record_state(
    tree: Tree, spec: Spec, *, templates_root: Path | None = None, user_owned: Sequence[str] = ()
) -> None:
    """Add `.mlops/state.json` and `.mlops/pristine.json` (the merge base for later updates);
    the template version recorded is that of ``templates_root`` (default: the installed one).

    ``user_owned`` (the enabled manifests' ``user_owned`` paths, rendered) is recorded as the
    state's ``user_owned`` list, for the files of this render: `mlops update` never re-merges
    them once edited, `mlops lint` checks their interface."""
    pristine: dict[str, dict[str, Any]] = {}
    for path in sorted(tree.files):
        if path in (STATE_FILE, PRISTINE_FILE):
            continue
        entry = tree.files[path]
        record: dict[str, Any] = {"sha256": entry.sha256}
        if entry.is_text():
            record["text"] = entry.content.decode("utf-8")
        else:
            record["base64"] = base64.b64encode(entry.content).decode("ascii")
        if entry.executable:
            record["executable"] = True
        pristine[path] = record
    state = {
        "tool_version": __version__,
        "template_version": _template_version(templates_root),
        "spec_hash": speccache.spec_digest(spec),
        "phases": list(spec.phases),
        "files": {p: r["sha256"] for p, r in pristine.items()},
    }
    owned = sorted({p for p in user_owned if p in pristine})
    if owned:
        state["user_owned"] = owned
    tree.add(STATE_FILE, json.dumps(state, indent=2, sort_keys=True) + "\n")
    tree.add(PRISTINE_FILE, json.dumps(pristine, indent=1, sort_keys=True) + "\n")


def read_pristine(text: str) -> Tree:
    """Inverse of the pristine record: the tree as it was rendered."""
    raw = json.loads(text)
    tree = Tree()
    for path, record in raw.items():
        if "text" in record:
            tree.add(path, record["text"], bool(record.get("executable")))
        else:
            tree.add(path, base64.b64decode(record["base64"]), bool(record.get("executable")))
    return tree
