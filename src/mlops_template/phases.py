"""The phase catalogue: ``templates/phases/<name>/phase.yaml`` manifests.

A phase is a folder with a manifest and a ``files/`` tree. The manifest says who owns the phase,
what it requires, which paths it owns (CODEOWNERS, lint), which make targets, dependencies and
README section it contributes to the composed files, and which of its files are *user-owned*
(``user_owned``: generated once as working examples, never re-merged by ``mlops update`` once the
user edited them; lint checks only their interface). Values may carry a ``when`` condition (a
Jinja expression over the spec, e.g. ``data.engine == 'duckdb'``) evaluated at render time.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_template.errors import TemplateError
from mlops_template.limits import InputTooLarge, read_capped
from mlops_template.yamlsource import Located, YamlSyntaxError, load_located

ROLES = ("data_engineer", "data_scientist", "ml_engineer")


def templates_dir() -> Path:
    """Where the templates live: inside the wheel, or at the repo root for an editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent.parent / "templates"):
        if (candidate / "base").is_dir():
            return candidate
    raise TemplateError(
        f"template folder not found next to {here}",
        hint="reinstall mlops-template; the wheel ships `mlops_template/templates`",
    )


@dataclass(frozen=True)
class Conditional:
    """A manifest value that applies only when ``when`` (a Jinja expression) is true."""

    value: Any
    when: str | None = None


@dataclass(frozen=True)
class MakeTarget:
    name: str
    help: str
    recipe: tuple[str, ...]
    deps: tuple[str, ...] = ()
    when: str | None = None
    #: ``phase.yaml:line:col make_targets[i]``: where the manifest defines it, for errors
    where: str = field(default="", compare=False)


#: a make target name: no whitespace, ':', '=', '$', '#' or control characters can reach the
#: Makefile, so a name cannot open a new rule or variable
TARGET_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
#: longest `help` text of a make target (one line in `make help`)
MAX_TARGET_HELP = 200
#: characters no single Makefile line may hold: line breaks and other control characters
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u0085\u2028\u2029]")


@dataclass(frozen=True)
class Phase:
    name: str
    description: str
    owner: str
    requires: tuple[str, ...]
    folder: Path
    order: int = 50
    default: bool = False
    owns: tuple[str, ...] = ()
    required_files: tuple[str, ...] = ()
    workflows: tuple[Conditional, ...] = ()
    make_targets: tuple[MakeTarget, ...] = ()
    dependencies: tuple[Conditional, ...] = ()
    dev_dependencies: tuple[Conditional, ...] = ()
    files_when: dict[str, str] = field(default_factory=dict)
    gitignore: tuple[str, ...] = ()
    readme: str = ""
    forbidden_imports: tuple[str, ...] = ()
    #: rendered paths of files the user owns once generated (``src/{{ package }}/ml/models.py``)
    user_owned: tuple[str, ...] = ()

    @property
    def files_dir(self) -> Path:
        return self.folder / "files"


def _fail(path: Path, message: str) -> TemplateError:
    return TemplateError(f"{path}: {message}", hint="fix the phase manifest (see docs/phases.md)")


def _str_list(raw: Any, key: str, path: Path) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _fail(path, f"`{key}` must be a list of strings")
    return tuple(raw)


def _conditionals(raw: Any, key: str, path: Path) -> tuple[Conditional, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(path, f"`{key}` must be a list")
    out: list[Conditional] = []
    for item in raw:
        if isinstance(item, str):
            out.append(Conditional(item))
        elif isinstance(item, dict) and set(item) <= {"value", "when"} and "value" in item:
            out.append(Conditional(item["value"], item.get("when")))
        else:
            raise _fail(path, f"`{key}` items are strings or {{value: ..., when: ...}} mappings")
    return tuple(out)


def _single_line(text: str, limit: int | None = None) -> str | None:
    """What is wrong with ``text`` as one Makefile line, or None."""
    bad = _CONTROL.search(text)
    if bad:
        return f"holds a control character ({bad.group()!r} at offset {bad.start()})"
    if limit is not None and len(text) > limit:
        return f"is {len(text)} characters long, over the limit of {limit}"
    return None


def _targets(raw: Any, path: Path, located: Located | None) -> tuple[MakeTarget, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(path, "`make_targets` must be a list")

    def fail(where: tuple[str | int, ...], message: str, hint: str) -> TemplateError:
        at = located.where(where) if located else str(path)
        dotted = "make_targets" + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in where[1:]
        )
        return TemplateError(f"{at} {dotted}: {message}", hint=hint)

    out = []
    for index, item in enumerate(raw):
        here: tuple[str | int, ...] = ("make_targets", index)
        if not isinstance(item, dict) or not {"name", "help", "recipe"} <= set(item):
            raise fail(here, "each make target needs `name`, `help` and `recipe`",
                       "see docs/phases.md")  # fmt: skip
        name, help_text, recipe = item["name"], item["help"], item["recipe"]
        if not isinstance(name, str) or not TARGET_NAME.match(name):
            raise fail((*here, "name"), f"{name!r} is not a make target name",
                       "use lowercase letters, digits, '-' or '_', starting with a letter "
                       "(at most 40), e.g. 'features'")  # fmt: skip
        if not isinstance(help_text, str):
            raise fail((*here, "help"), "must be a string", "one line for `make help`")
        problem = _single_line(help_text, MAX_TARGET_HELP)
        if problem:
            raise fail((*here, "help"), f"the help text {problem}",
                       f"write one line of at most {MAX_TARGET_HELP} characters")  # fmt: skip
        lines = recipe if isinstance(recipe, list) else [recipe]
        for number, line in enumerate(lines):
            at = (*here, "recipe", number) if isinstance(recipe, list) else (*here, "recipe")
            if not isinstance(line, str):
                raise fail(at, "recipe lines must be strings", "quote the command")
            problem = _single_line(line.replace("\t", " "))
            if problem:
                raise fail(at, f"the recipe line {problem}",
                           "give each command its own list item")  # fmt: skip
        deps = _str_list(item.get("deps"), "deps", path)
        for number, dep in enumerate(deps):
            if not TARGET_NAME.match(dep):
                raise fail((*here, "deps", number), f"{dep!r} is not a make target name",
                           "list the names of other targets")  # fmt: skip
        when = item.get("when")
        if when is not None and not isinstance(when, str):
            raise fail((*here, "when"), "must be a Jinja expression string", "e.g. `when: ...`")
        where = f"{located.where(here) if located else path} make_targets[{index}]"
        out.append(MakeTarget(name=name, help=help_text, recipe=tuple(lines), deps=deps,
                              when=when, where=where))  # fmt: skip
    return tuple(out)


def _user_owned(raw: Any, path: Path, located: Located | None) -> tuple[str, ...]:
    """``user_owned``: file paths (relative, no glob, no folder), e.g. ``src/{{ package }}/ml/models.py``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _fail(path, "`user_owned` must be a list of file paths")
    out: list[str] = []
    for index, item in enumerate(raw):
        at = located.where(("user_owned", index)) if located else str(path)
        if not isinstance(item, str) or not item.strip():
            raise TemplateError(f"{at} user_owned[{index}]: must be a file path string",
                                hint="e.g. `- src/{{ package }}/ml/models.py`")  # fmt: skip
        text = item.strip()
        if (
            text.startswith("/")
            or text.endswith("/")
            or any(c in text for c in "*?[")
            or any(part in ("", ".", "..") for part in text.split("/"))
        ):
            raise TemplateError(
                f"{at} user_owned[{index}]: {item!r} is not a relative file path",
                hint="list single files relative to the project root, without a leading '/', "
                "a trailing '/', '..' or glob characters, e.g. `- src/{{ package }}/ml/models.py`",
            )
        out.append(text)
    return tuple(out)


_KNOWN_KEYS = {
    "name", "description", "owner", "requires", "order", "default", "owns", "required_files",
    "workflows", "make_targets", "dependencies", "dev_dependencies", "files_when", "gitignore",
    "readme", "forbidden_imports", "user_owned",
}  # fmt: skip


def load_phase(folder: Path) -> Phase:
    """Read and check one phase folder's manifest."""
    manifest = folder / "phase.yaml"
    try:
        text = read_capped(manifest, "phase manifest").decode("utf-8")
        located = load_located(text, str(manifest))
    except FileNotFoundError:
        raise _fail(manifest, "missing phase.yaml") from None
    except InputTooLarge as exc:
        raise TemplateError(exc.message, hint=exc.hint) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(manifest, f"unreadable ({exc})") from None
    except YamlSyntaxError as exc:
        raise TemplateError(f"{exc.where}: not valid YAML: {exc.message}",
                            hint="fix the phase manifest (see docs/phases.md)") from None  # fmt: skip
    raw = located.data
    if not isinstance(raw, dict):
        raise _fail(manifest, "must be a mapping")
    unknown = set(raw) - _KNOWN_KEYS
    if unknown:
        raise _fail(manifest, f"unknown keys {sorted(unknown)}; known: {sorted(_KNOWN_KEYS)}")
    for key in ("name", "description", "owner"):
        if not isinstance(raw.get(key), str):
            raise _fail(manifest, f"`{key}` is required and must be a string")
    if raw["owner"] not in ROLES:
        raise _fail(manifest, f"`owner` must be one of {', '.join(ROLES)}")
    files_when = raw.get("files_when") or {}
    if not isinstance(files_when, dict):
        raise _fail(manifest, "`files_when` maps glob patterns to conditions")
    return Phase(
        name=raw["name"],
        description=raw["description"].strip(),
        owner=raw["owner"],
        requires=_str_list(raw.get("requires"), "requires", manifest),
        folder=folder,
        order=int(raw.get("order", 50)),
        default=bool(raw.get("default", False)),
        owns=_str_list(raw.get("owns"), "owns", manifest),
        required_files=_str_list(raw.get("required_files"), "required_files", manifest),
        workflows=_conditionals(raw.get("workflows"), "workflows", manifest),
        make_targets=_targets(raw.get("make_targets"), manifest, located),
        dependencies=_conditionals(raw.get("dependencies"), "dependencies", manifest),
        dev_dependencies=_conditionals(raw.get("dev_dependencies"), "dev_dependencies", manifest),
        files_when={str(k): str(v) for k, v in files_when.items()},
        gitignore=_str_list(raw.get("gitignore"), "gitignore", manifest),
        readme=str(raw.get("readme") or ""),
        forbidden_imports=_str_list(raw.get("forbidden_imports"), "forbidden_imports", manifest),
        user_owned=_user_owned(raw.get("user_owned"), manifest, located),
    )


@functools.lru_cache(maxsize=4)
def load_catalogue(root: Path | None = None) -> dict[str, Phase]:
    """All built-in phases, by name, in their declared order (the installed templates' from
    :mod:`mlops_template.cachestore` when their manifests and the code are unchanged)."""
    if root is not None:
        return _load_catalogue(root)
    from mlops_template import cachestore

    installed = templates_dir()
    cached = cachestore.cached_catalogue(installed, globals())
    if cached is not None:
        return cached
    catalogue = _load_catalogue(installed)
    cachestore.store_catalogue(installed, catalogue, __name__)
    return catalogue


def _load_catalogue(root: Path) -> dict[str, Phase]:
    base = root / "phases"
    phases = [load_phase(p) for p in sorted(base.iterdir()) if (p / "phase.yaml").is_file()]
    for phase in phases:
        if phase.name != phase.folder.name:
            raise _fail(phase.folder / "phase.yaml", f"name {phase.name!r} != folder name")
    by_name = {p.name: p for p in sorted(phases, key=lambda p: (p.order, p.name))}
    for phase in by_name.values():
        for req in phase.requires:
            if req not in by_name:
                raise _fail(phase.folder / "phase.yaml", f"requires unknown phase {req!r}")
    return by_name


def default_phases(catalogue: dict[str, Phase]) -> list[str]:
    return [name for name, phase in catalogue.items() if phase.default]


def missing_requirements(selected: list[str], catalogue: dict[str, Phase]) -> dict[str, list[str]]:
    """For each selected phase, the required phases that are not selected."""
    chosen = set(selected)
    return {
        name: [r for r in catalogue[name].requires if r not in chosen]
        for name in selected
        if name in catalogue and any(r not in chosen for r in catalogue[name].requires)
    }


def with_requirements(selected: list[str], catalogue: dict[str, Phase]) -> list[str]:
    """``selected`` plus everything it transitively requires, in catalogue order."""
    wanted: set[str] = set()
    stack = list(selected)
    while stack:
        name = stack.pop()
        if name in wanted or name not in catalogue:
            continue
        wanted.add(name)
        stack.extend(catalogue[name].requires)
    return [n for n in catalogue if n in wanted]
