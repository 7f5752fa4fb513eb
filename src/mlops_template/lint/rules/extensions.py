"""MLO7xx: the interface of the user-owned files, read from the Python AST (nothing is imported).

A user-owned file (a phase manifest's ``user_owned``) is the team's own code: `mlops update` never
merges into it once edited, so nothing but these rules keeps it compatible with the template-owned
code that calls it. Only the *interface* is checked, never the body:

* ``src/P/data/features.py`` defines ``aggregate_features(tables)``, ``derive_features(frame)`` and
  ``build_features(tables)`` at module level (the data pipeline and the served model call them),
  and imports nothing relative nor from the project's package: a copy of it travels inside the
  model package, where those imports do not resolve;
* ``src/P/ml/models.py`` keeps the registry shape the ML code reads: ``REGISTRY``, ``TASKS``,
  ``ModelFamily`` (its fields), ``RegistryError``, ``get(name)`` and
  ``select(task, framework, names=None)``, and every ``ModelFamily(...)`` entry passes the fields
  the class requires, by their names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_template.lint.model import Example, Finding, Rule, Severity, rule
from mlops_template.lint.project import Project

FEATURES = "data/features.py"
MODELS = "ml/models.py"

#: features.py's functions: name -> (its parameter, the signature to write, who calls it)
FEATURE_FUNCTIONS: dict[str, tuple[str, str, str]] = {
    "aggregate_features": (
        "tables",
        "def aggregate_features(tables: Mapping[str, nw.LazyFrame]) -> nw.LazyFrame | None:",
        "gold writes its result to data/gold/entity_features.parquet; serving looks rows up in it",
    ),
    "derive_features": (
        "frame",
        "def derive_features(frame: nw.LazyFrame) -> nw.LazyFrame:",
        "the served model applies it to every request",
    ),
    "build_features": (
        "tables",
        "def build_features(tables: Mapping[str, nw.LazyFrame]) -> nw.LazyFrame:",
        "the data pipeline builds gold with it",
    ),
}

#: models.py's module-level names the template code and generated tests use
MODEL_NAMES: dict[str, str] = {
    "REGISTRY": "REGISTRY: tuple[ModelFamily, ...] = (ModelFamily(...), ...)",
    "TASKS": 'TASKS = ("classification", "regression")',
    "ModelFamily": "@dataclass(frozen=True) class ModelFamily: ...",
    "RegistryError": "class RegistryError(ValueError): ...",
    "get": "def get(name: str) -> ModelFamily:",
    "select": "def select(task: str, framework: str, names: Sequence[str] | None = None) "
    "-> list[ModelFamily]:",
}
#: the ModelFamily fields and method the ML code reads (train.py, package.py, the tests)
FAMILY_FIELDS = ("name", "tasks", "framework", "make", "space", "scale", "requires",
                 "register_onnx")  # fmt: skip
FAMILY_METHODS = ("installed",)

_FEATURES_HEAD = '''"""Our features."""

from __future__ import annotations

from collections.abc import Mapping

import narwhals as nw

ID_COLUMN = "customer_id"


def aggregate_features(tables: Mapping[str, nw.LazyFrame]) -> nw.LazyFrame | None:
    return None


'''
_FEATURES_TAIL = """

def build_features(tables: Mapping[str, nw.LazyFrame]) -> nw.LazyFrame:
    return derive_features(tables["customers"])
"""
_DERIVE_BAD = """def derive_features(df: nw.LazyFrame) -> nw.LazyFrame:
    return df.with_columns((nw.col("a") / nw.col("b")).alias("a_per_b"))
"""
_DERIVE_GOOD = _DERIVE_BAD.replace("df", "frame")
_FEATURES_BAD = _FEATURES_HEAD + _DERIVE_BAD + _FEATURES_TAIL
_FEATURES_GOOD = _FEATURES_HEAD + _DERIVE_GOOD + _FEATURES_TAIL
_IMPORT_BAD = _FEATURES_GOOD.replace(
    "import narwhals as nw\n", "import narwhals as nw\n\nfrom .dates import expand_dates\n", 1
)
_IMPORT_GOOD = _FEATURES_GOOD.replace(
    "import narwhals as nw\n", "import narwhals as nw\nimport polars as pl  # noqa: F401\n", 1
)


@dataclass(frozen=True)
class Located:
    line: int
    column: int


def _path(project: Project, tail: str) -> str:
    return f"src/{project.package}/{tail}"


def _present(project: Project, tail: str, phase: str, rule: Rule) -> Iterator[Finding | str]:
    """The path to check (a str), or a finding when a generated user-owned file is missing."""
    if not any(p.name == phase for p in project.enabled):
        return
    rel = _path(project, tail)
    if project.is_file(rel):
        yield rel
        return
    state = project.state_load.state
    recorded = state.get("user_owned") if state is not None else None
    if isinstance(recorded, list) and rel in recorded:
        yield rule.finding(
            rel,
            f"{rel} is missing; it is user-owned (`mlops update` never re-creates it) and the "
            f"template-owned code of phase `{phase}` imports it",
            fix=f"restore it (`git restore {rel}`; its generated version is in "
            ".mlops/pristine.json) or write your own with the interface this rule describes",
        )


def _bindings(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """Module-level names and the (last) statement binding each, looking into top-level
    ``if``/``try``/``with`` blocks but not into functions or classes."""
    out: dict[str, ast.stmt] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        out[name.id] = node
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            if isinstance(node.target, ast.Name) and (
                not isinstance(node, ast.AnnAssign) or node.value is not None
            ):
                out[node.target.id] = node
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                out[(alias.asname or alias.name).split(".")[0]] = node
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            nested = list(node.body) + list(getattr(node, "orelse", []))
            nested += list(getattr(node, "finalbody", []))
            for handler in getattr(node, "handlers", []):
                nested += handler.body
            out.update(_bindings(nested))
    return out


def _parameter_problems(
    node: ast.FunctionDef | ast.AsyncFunctionDef, wanted: tuple[str, ...], optional_from: int
) -> Iterator[tuple[ast.AST, str]]:
    """What is wrong with ``node``'s parameters for calls ``f(<wanted>...)``: ``wanted`` are the
    leading positional parameters' names, those from ``optional_from`` on need a default."""
    if isinstance(node, ast.AsyncFunctionDef):
        yield node, "is `async def`; the template code calls it synchronously"
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    defaults_from = len(positional) - len(args.defaults)
    for index, name in enumerate(wanted):
        if index >= len(positional):
            if args.vararg is None:
                yield node, f"takes no parameter `{name}` (parameter {index + 1})"
            return
        param = positional[index]
        if param.arg != name:
            yield param, f"parameter {index + 1} is `{param.arg}`, not `{name}`"
        if index >= optional_from and index < defaults_from:
            yield param, f"parameter `{param.arg}` needs a default (it is optional for callers)"
    extra = [p for i, p in enumerate(positional) if i >= len(wanted) and i < defaults_from]
    for param in extra:
        yield param, f"has an extra required parameter `{param.arg}` callers do not pass"
    for param, default in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        if default is None:
            yield param, f"has a required keyword-only parameter `{param.arg}` callers do not pass"


def _where(node: ast.AST) -> tuple[int, int]:
    return getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1


def _parsed(project: Project, rel: str, rule: Rule) -> ast.Module | Finding:
    tree = project.python(rel)
    if isinstance(tree, SyntaxError):
        return rule.finding(
            rel,
            f"cannot parse: {tree.msg}; its interface cannot be checked",
            line=tree.lineno or None,
            column=tree.offset or None,
            fix=f"fix the syntax error (`python -m py_compile {rel}` shows it)",
        )
    return tree


def _present_trees(
    project: Project, tail: str, phase: str, rule: Rule
) -> Iterator[Finding | tuple[str, ast.Module]]:
    """The parsed user-owned file (path and tree), or the finding that it is missing or does not
    parse."""
    for rel in _present(project, tail, phase, rule):
        if isinstance(rel, Finding):
            yield rel
            continue
        tree = _parsed(project, rel, rule)
        yield tree if isinstance(tree, Finding) else (rel, tree)


@rule(
    "MLO701",
    "features-interface",
    Severity.error,
    summary="The user-owned `data/features.py` lacks a function of its interface, or one takes "
    "other parameters.",
    why="`src/<package>/data/features.py` is yours: `mlops update` never merges into it once "
    "edited. The template-owned code calls it through three functions: the data pipeline builds "
    "gold with `build_features(tables)` and writes `aggregate_features(tables)` to the entity "
    "feature table, and the served model applies `derive_features(frame)` to every request, so "
    "training and serving compute the same features. Each must be a module-level `def` with that "
    "parameter (`tables`: the silver tables by source name; `frame`: one frame of records); more "
    "parameters need defaults.",
    fix="Define the missing function, or rename its parameter back, with the signature shown in "
    "the finding.",
    bad=Example(
        {"src/demo/data/features.py": _FEATURES_BAD},
        file="src/demo/data/features.py",
        line=16,
        note="the parameter `df` should be `frame`.",
    ),
    good=Example({"src/demo/data/features.py": _FEATURES_GOOD}),
)
def features_interface(project: Project, rule: Rule) -> Iterator[Finding]:
    for found in _present_trees(project, FEATURES, "data", rule):
        if isinstance(found, Finding):
            yield found
            continue
        rel, tree = found
        names = _bindings(tree.body)
        for function, (param, signature, caller) in FEATURE_FUNCTIONS.items():
            node = names.get(function)
            fix = f"write `{signature}` at module level ({caller})"
            if node is None:
                yield rule.finding(rel, f"`{function}` is not defined; {caller}", line=1,
                                   column=1, fix=fix)  # fmt: skip
                continue
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                line, column = _where(node)
                yield rule.finding(rel, f"`{function}` is not a function definition (`def`), so "
                                   "its parameters cannot be checked", line=line, column=column,
                                   fix=fix)  # fmt: skip
                continue
            for at, problem in _parameter_problems(node, (param,), optional_from=1):
                line, column = _where(at)
                yield rule.finding(rel, f"`{function}` {problem}; {caller}", line=line,
                                   column=column, fix=fix)  # fmt: skip


@rule(
    "MLO702",
    "features-not-self-contained",
    Severity.error,
    summary="The user-owned `data/features.py` imports a relative module or the project's own "
    "package.",
    why="A copy of `data/features.py` (with its sha256) travels inside every model package, so a "
    "model is always served with the feature code it was trained with. There the copy is loaded "
    "on its own, outside the project's package: a relative import (`from .dates import ...`) or "
    "an import of the project's package does not resolve, or silently resolves to newer code than "
    "the model was trained with.",
    fix="Import only narwhals, polars and the standard library in features.py; copy the helper "
    "you need into the file.",
    bad=Example(
        {"src/demo/data/features.py": _IMPORT_BAD}, file="src/demo/data/features.py", line=9
    ),
    good=Example({"src/demo/data/features.py": _IMPORT_GOOD}),
)
def features_self_contained(project: Project, rule: Rule) -> Iterator[Finding]:
    package = project.package
    for rel in _present(project, FEATURES, "data", rule):
        if isinstance(rel, Finding):
            continue  # MLO701 reports it
        tree = project.python(rel)
        if isinstance(tree, SyntaxError):
            continue  # MLO701 reports it
        for node in ast.walk(tree):
            shown: str | None = None
            if isinstance(node, ast.ImportFrom):
                names = ", ".join(a.name for a in node.names)
                text = f"from {'.' * node.level}{node.module or ''} import {names}"
                module = node.module or ""
                if node.level:
                    shown = f"`{text}` is a relative import"
                elif module == package or module.startswith(package + "."):
                    shown = f"`{text}` imports the project's package `{package}`"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name == package or alias.name.startswith(package + "."):
                        shown = f"`import {alias.name}` imports the project's package `{package}`"
            if shown is not None:
                line, column = _where(node)
                yield rule.finding(rel, f"{shown}; the copy of features.py in the model package "
                                   "cannot import it", line=line, column=column)  # fmt: skip


_MODELS_GOOD = '''"""Our model families."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class ModelFamily:
    name: str
    tasks: frozenset[str]
    framework: str
    make: Callable[[str, int], Any]
    space: Mapping[str, Any]
    scale: bool = False
    requires: tuple[str, ...] = ()
    register_onnx: Callable[[], None] | None = None

    def installed(self) -> bool:
        return True


def _ridge(task: str, seed: int) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge()


REGISTRY: tuple[ModelFamily, ...] = (
    ModelFamily(
        name="ridge",
        tasks=frozenset({"regression"}),
        framework="sklearn",
        make=_ridge,
        space={"alpha": [0.1, 1.0]},
    ),
)


class RegistryError(ValueError):
    pass


def get(name: str) -> ModelFamily:
    return next(f for f in REGISTRY if f.name == name)


def select(task: str, framework: str, names: Sequence[str] | None = None) -> list[ModelFamily]:
    return [f for f in REGISTRY if f.framework == framework and task in f.tasks]
'''
_MODELS_BAD = _MODELS_GOOD.replace('        space={"alpha"', '        spaces={"alpha"', 1)


@rule(
    "MLO703",
    "models-registry-shape",
    Severity.error,
    summary="The user-owned `ml/models.py` no longer has the registry shape the ML code reads.",
    why="`src/<package>/ml/models.py` is yours: `mlops update` never merges into it once edited. "
    "The template-owned training, packaging and tests read model families only through it: "
    "`select(task, framework, names=None)` and `get(name)` (raising `RegistryError`), the "
    "`REGISTRY` of `ModelFamily` entries (fields name, tasks, framework, make, space, scale, "
    "requires, register_onnx; method installed) and `TASKS`. An entry missing a field, or passing "
    "a misspelt one, fails only when training imports the module.",
    fix="Keep these names and signatures (add a family as one more `ModelFamily(...)` entry in "
    "`REGISTRY`), and pass each entry the fields `ModelFamily` requires, by name.",
    bad=Example(
        {"src/demo/ml/models.py": _MODELS_BAD},
        file="src/demo/ml/models.py",
        line=39,
        note="`spaces=` is not a field, and `space` is missing.",
    ),
    good=Example({"src/demo/ml/models.py": _MODELS_GOOD}),
)
def models_registry(project: Project, rule: Rule) -> Iterator[Finding]:
    for found in _present_trees(project, MODELS, "training", rule):
        if isinstance(found, Finding):
            yield found
        else:
            yield from _registry_findings(*found, rule)


def _registry_findings(rel: str, tree: ast.Module, rule: Rule) -> Iterator[Finding]:
    names = _bindings(tree.body)
    for name, shape in MODEL_NAMES.items():
        if name not in names:
            yield rule.finding(rel, f"`{name}` is not defined at module level; the ML code reads "
                               f"`models.{name}`", line=1, column=1,
                               fix=f"define it: `{shape}`")  # fmt: skip
    signatures = (("get", ("name",), 1), ("select", ("task", "framework", "names"), 2))
    for function, wanted, optional_from in signatures:
        node = names.get(function)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for at, problem in _parameter_problems(node, wanted, optional_from):
                line, column = _where(at)
                yield rule.finding(rel, f"`{function}` {problem}", line=line, column=column,
                                   fix=f"keep the signature `{MODEL_NAMES[function]}`")  # fmt: skip
        elif node is not None and not isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign)):
            line, column = _where(node)
            yield rule.finding(rel, f"`{function}` is not a function", line=line, column=column,
                               fix=f"keep the signature `{MODEL_NAMES[function]}`")  # fmt: skip
    error = names.get("RegistryError")
    if isinstance(error, ast.ClassDef) and not error.bases:
        line, column = _where(error)
        yield rule.finding(rel, "`RegistryError` is not an exception class (no base class); the "
                           "ML code catches it", line=line, column=column,
                           fix="`class RegistryError(ValueError): ...`")  # fmt: skip
    family = names.get("ModelFamily")
    if isinstance(family, ast.ClassDef):
        yield from _family_findings(rel, tree, family, rule)


def _family_findings(
    rel: str, tree: ast.Module, family: ast.ClassDef, rule: Rule
) -> Iterator[Finding]:
    fields: dict[str, bool] = {}  # field -> has a default
    methods: set[str] = set()
    for node in family.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            fields[node.target.id] = node.value is not None
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            methods.add(node.name)
    line, column = _where(family)
    for name in FAMILY_FIELDS:
        if name not in fields:
            yield rule.finding(rel, f"`ModelFamily` has no field `{name}`; the ML code "
                               f"reads `family.{name}`", line=line, column=column,
                               fix=f"keep the field `{name}` (see the generated one)")  # fmt: skip
    for name in FAMILY_METHODS:
        if name not in methods:
            yield rule.finding(rel, f"`ModelFamily` has no method `{name}()`; the ML code calls "
                               f"`family.{name}()`", line=line, column=column,
                               fix=f"keep the method `{name}(self) -> bool`")  # fmt: skip
    order = list(fields)
    required = [f for f, has_default in fields.items() if not has_default]
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == "ModelFamily"):  # fmt: skip
            continue
        if any(isinstance(a, ast.Starred) for a in call.args) or any(
            k.arg is None for k in call.keywords
        ):
            continue  # *args / **kwargs: cannot be checked statically
        given = set(order[: len(call.args)])
        for keyword in call.keywords:
            assert keyword.arg is not None
            if keyword.arg not in fields:
                line, column = keyword.lineno, keyword.col_offset + 1
                known = ", ".join(order)
                yield rule.finding(rel, f"`ModelFamily(...)` has no field `{keyword.arg}`",
                                   line=line, column=column,
                                   fix=f"use the fields of ModelFamily: {known}")  # fmt: skip
            given.add(keyword.arg)
        missing = [f for f in required if f not in given]
        if missing:
            line, column = _where(call)
            yield rule.finding(rel, f"`ModelFamily(...)` entry lacks the required field"
                               f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                               line=line, column=column,
                               fix=f"pass {', '.join(f'{m}=...' for m in missing)}")  # fmt: skip
