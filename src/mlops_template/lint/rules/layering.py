"""MLO4xx: the layering of the generated package, read from the Python AST (nothing is imported).

Contracts, with ``P`` the project's package:

* data code (``P.data``) does not import ML, serving or monitoring code;
* ML code (``P.ml``) does not import data ingestion, serving or monitoring code, and does not
  read the bronze or silver layers (it reads gold only);
* serving code (``P.serving``) does not import training code or data ingestion;
* and whatever each enabled phase's manifest lists under ``forbidden_imports``.

Relative imports are resolved to absolute module names first, so ``from ..serving import app``
inside ``P/ml/train.py`` is ``P.serving.app``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from mlops_template.lint.model import Example, Finding, Rule, Severity, rule
from mlops_template.lint.project import Project

#: (layer, what it must not import, why) with module names relative to the package.
CONTRACTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("data", ("ml", "serving", "monitoring"), "data code must not depend on ML or serving code"),
    ("ml", ("data.ingest", "serving", "monitoring"),
     "ML code reads gold only and must not depend on ingestion or serving code"),
    ("serving", ("ml.train", "data.ingest"),
     "serving loads the packaged model; it must not depend on training or ingestion code"),
)  # fmt: skip
RAW_LAYERS = ("bronze", "silver")
_RAW_PATH = re.compile(r"(?:^|[/\\])(bronze|silver)(?:[/\\]|$)", re.IGNORECASE)
_DYNAMIC_IMPORTS = frozenset({"import_module", "__import__"})

_FEATURES_BAD = '''"""Data-quality checks."""

from ..ml.train import train
'''
_FEATURES_GOOD = '''"""Data-quality checks."""

from ..common.config import load_config
'''
_EVALUATE_BAD = '''"""Evaluation."""

import demo.monitoring.drift
'''
_EVALUATE_GOOD = '''"""Evaluation."""

import demo.common.config
'''
_TRAIN_BROKEN = '''"""Training; predictions come back from serving through the request log, not imports."""


def train(:
    pass
'''
_LOAD_BAD = '''"""Training data."""

from ..common.config import load_config, resolve


def features_path():
    return resolve(load_config(), "silver")
'''
_LOAD_GOOD = '''"""Training data (gold only, never bronze or silver)."""

from ..common.config import load_config, resolve


def features_path():
    return resolve(load_config(), "gold") / "features.parquet"
'''


@dataclass(frozen=True)
class Import:
    line: int
    column: int
    #: absolute module names this statement may load: ``from a import b`` -> (``a``, ``a.b``).
    modules: tuple[str, ...]
    shown: str


def resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str | None:
    """The absolute name of ``from <level dots><target> import ...`` inside ``module``."""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(parts) - 1:
        return None  # beyond the top-level package
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement, nested ones included, without descending into expressions (fast)."""
    stack = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        for name in ("body", "orelse", "finalbody", "handlers", "cases"):
            children = getattr(node, name, None)
            if children:
                stack.extend(reversed(children))


def imports_of(
    tree: ast.Module, module: str, is_package: bool, *, dynamic: bool = True
) -> Iterator[Import]:
    """Imports of ``tree`` (``module`` is its dotted name), relative ones resolved.

    ``dynamic`` also looks for ``importlib.import_module("...")`` / ``__import__("...")`` calls
    with a literal name, which needs a walk over every expression.
    """
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(
                    node.lineno, node.col_offset + 1, (alias.name,), f"import {alias.name}"
                )
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = resolve_relative(module, is_package, node.level, node.module)
                if base is None:
                    continue
            else:
                base = node.module or ""
            names = [a.name for a in node.names if a.name != "*"]
            dots = "." * node.level
            shown = f"from {dots}{node.module or ''} import {', '.join(a.name for a in node.names)}"
            yield Import(node.lineno, node.col_offset + 1,
                         (base, *(f"{base}.{n}" for n in names)), shown)  # fmt: skip
    if dynamic:
        yield from _dynamic_imports(tree, module, is_package)


def _dynamic_imports(tree: ast.Module, module: str, is_package: bool) -> Iterator[Import]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        first = node.args[0]
        if name not in _DYNAMIC_IMPORTS or not isinstance(first, ast.Constant):
            continue
        if not isinstance(first.value, str):
            continue
        target = first.value
        if target.startswith("."):
            stripped = target.lstrip(".")
            level = len(target) - len(stripped)
            resolved = resolve_relative(module, is_package, level, stripped or None)
            if resolved is None:
                continue
            target = resolved
        yield Import(node.lineno, node.col_offset + 1, (target,), f"{name}({first.value!r})")


@dataclass(frozen=True)
class Facts:
    """What the rules need from one Python file, extracted in one parse (the tree is dropped)."""

    error: SyntaxError | None
    imports: tuple[Import, ...] = ()
    raw_refs: tuple[tuple[int, int, str], ...] = ()


def forbidden_for(project: Project, rel: str) -> frozenset[str]:
    """Every module ``rel`` must not import: its layer's contract plus the manifests of the
    enabled phases that own it."""
    package = project.package
    banned: set[str] = set()
    for layer, forbidden, _ in CONTRACTS:
        if rel.startswith(f"src/{package}/{layer}/"):
            banned.update(f"{package}.{f}" for f in forbidden)
    for phase in project.enabled:
        if not phase.forbidden_imports:
            continue
        for owned in phase.owns:
            root = project.expand(owned).strip("/")
            if root.startswith("src/") and rel.startswith(root + "/"):
                banned.update(project.expand(f) for f in phase.forbidden_imports)
                break
    return frozenset(banned)


def _suspect_words(project: Project, rel: str) -> re.Pattern[str] | None:
    """The last component of every module ``rel`` must not import, as whole words.

    An import of ``P.ml.train`` (absolute, relative, ``from .. import train`` or a literal
    ``import_module`` name) always spells ``train`` in the file, so a file whose text contains
    none of these words imports none of its forbidden modules and need not be parsed.
    """
    banned = forbidden_for(project, rel)
    if not banned:
        return None
    patterns: dict[frozenset[str], re.Pattern[str]] = project.cache.setdefault("suspect", {})
    if banned not in patterns:
        words = sorted({re.escape(b.rsplit(".", 1)[-1]) for b in banned})
        patterns[banned] = re.compile(rf"\b(?:{'|'.join(words)})\b")
    return patterns[banned]


def facts(project: Project, rel: str) -> Facts:
    """What the layering rules need from ``rel``, parsing it at most once per run.

    Files that mention no forbidden module (and, in ML code, neither bronze nor silver) are not
    parsed at all: nothing in them can break a layering contract.
    """
    cache: dict[str, Facts] = project.cache.setdefault("python_facts", {})
    if rel in cache:
        return cache[rel]
    text = project.text(rel) or ""
    lowered = text.lower()
    in_ml = rel.startswith(f"src/{project.package}/ml/")
    raw_suspect = in_ml and ("bronze" in lowered or "silver" in lowered)
    words = _suspect_words(project, rel)
    import_suspect = words is not None and words.search(text) is not None
    if project.text(rel) is not None and not raw_suspect and not import_suspect:
        cache[rel] = Facts(None)
        return cache[rel]
    tree = project.python(rel)
    if isinstance(tree, SyntaxError):
        found = Facts(tree)
    else:
        named = project.module_name(rel)
        imports: tuple[Import, ...] = ()
        if named is not None:
            dynamic = any(name in text for name in _DYNAMIC_IMPORTS)
            imports = tuple(imports_of(tree, named[0], named[1], dynamic=dynamic))
        raw: tuple[tuple[int, int, str], ...] = ()
        if raw_suspect:
            raw = tuple(raw_layer_references(tree))
        found = Facts(None, imports, raw)
    cache[rel] = found
    return found


def _hits(modules: tuple[str, ...], forbidden: str) -> str | None:
    for name in modules:
        if name == forbidden or name.startswith(forbidden + "."):
            return name
    return None


def _package_files(project: Project, sub: str) -> list[str]:
    return project.walk(f"src/{project.package}/{sub}", (".py",))


@rule(
    "MLO401",
    "layer-import",
    Severity.error,
    summary="Code of one layer imports a layer it must not depend on.",
    why="The three pipelines stay separate so each can change, be tested and be owned on its own: "
    "data code does not import ML, serving or monitoring code; ML code does not import data "
    "ingestion, serving or monitoring code; serving does not import training or ingestion code.",
    fix="Move the shared code into `common/` (or the layer that owns it) and import it from "
    "there; pass data between pipelines through the data lake (gold) and the model registry.",
    bad=Example(
        {"src/demo/data/quality.py": _FEATURES_BAD}, file="src/demo/data/quality.py", line=3
    ),
    good=Example({"src/demo/data/quality.py": _FEATURES_GOOD}),
)
def layer_imports(project: Project, rule: Rule) -> Iterator[Finding]:
    package = project.package
    for layer, forbidden, why in CONTRACTS:
        banned = [f"{package}.{f}" for f in forbidden]
        for rel in _package_files(project, layer):
            for imp in facts(project, rel).imports:
                for target in banned:
                    name = _hits(imp.modules, target)
                    if name:
                        yield rule.finding(
                            rel,
                            f"`{imp.shown}`: {package}.{layer} imports {name}; {why}",
                            line=imp.line,
                            column=imp.column,
                            key=f"import:{name}",
                        )
                        break


@rule(
    "MLO402",
    "manifest-forbidden-import",
    Severity.error,
    summary="A phase's code imports a module its manifest forbids (`forbidden_imports`).",
    why="Phase manifests (`templates/phases/<name>/phase.yaml`) declare which modules the phase's "
    "code must never import, e.g. serving must not import `P.ml.train`.",
    fix="Import the shared code from `common/` instead, or move it there.",
    bad=Example({"src/demo/ml/evaluate.py": _EVALUATE_BAD}, file="src/demo/ml/evaluate.py", line=3),
    good=Example({"src/demo/ml/evaluate.py": _EVALUATE_GOOD}),
)
def manifest_imports(project: Project, rule: Rule) -> Iterator[Finding]:
    for phase in project.enabled:
        banned = [project.expand(f) for f in phase.forbidden_imports]
        if not banned:
            continue
        roots = [project.expand(o).strip("/") for o in phase.owns]
        for root in roots:
            if not root.startswith("src/") or not project.is_dir(root):
                continue
            for rel in project.walk(root, (".py",)):
                for imp in facts(project, rel).imports:
                    for target in banned:
                        name = _hits(imp.modules, target)
                        if name:
                            yield rule.finding(
                                rel,
                                f"`{imp.shown}`: phase `{phase.name}` must not import {target} "
                                f"(forbidden_imports in its phase.yaml)",
                                line=imp.line,
                                column=imp.column,
                                key=f"import:{name}",
                            )
                            break


def _docstrings(tree: ast.Module) -> set[int]:
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def raw_layer_references(tree: ast.Module) -> Iterator[tuple[int, int, str]]:
    """(line, column, what) for every reference to the bronze or silver layer."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            value = node.value
            if value.strip().lower() in RAW_LAYERS or _RAW_PATH.search(value):
                yield node.lineno, node.col_offset + 1, f"the string {value!r}"
        elif isinstance(node, ast.Attribute) and node.attr.lower() in RAW_LAYERS:
            yield node.lineno, node.col_offset + 1, f"the attribute `.{node.attr}`"


@rule(
    "MLO403",
    "ml-reads-raw-layer",
    Severity.error,
    summary="ML code refers to the bronze or silver layer.",
    why="ML code reads gold only: gold is the contract (`data/gold/contract.json`) between the "
    "data and ML pipelines. Reading bronze or silver skips validation, PII masking and the "
    "feature contract, and couples training to the data pipeline's internals.",
    fix='Read the model-ready features from gold: `resolve(cfg, "gold")`; ask the data pipeline '
    "to add what is missing to gold.",
    bad=Example({"src/demo/ml/load.py": _LOAD_BAD}, file="src/demo/ml/load.py", line=7),
    good=Example({"src/demo/ml/load.py": _LOAD_GOOD}),
)
def ml_raw_layers(project: Project, rule: Rule) -> Iterator[Finding]:
    for rel in _package_files(project, "ml"):
        for line, column, what in facts(project, rel).raw_refs:
            yield rule.finding(
                rel,
                f"ML code refers to a raw data layer: {what}",
                line=line,
                column=column,
            )


@rule(
    "MLO404",
    "python-syntax-error",
    Severity.error,
    summary="A Python file whose imports must be checked cannot be parsed.",
    why="Layering is checked on the syntax tree of every package file that mentions a module its "
    "layer must not import (or, in ML code, bronze or silver); if such a file does not parse, "
    "its imports cannot be verified. Files that mention none of them are not parsed: general "
    "syntax checking is ruff's job (the generated project runs it in pre-commit and CI).",
    fix="Fix the syntax error (`python -m py_compile FILE` shows it).",
    bad=Example(
        {"src/demo/ml/train.py": _TRAIN_BROKEN},
        file="src/demo/ml/train.py",
        line=4,
        note="the docstring mentions `serving`, so the file's imports must be checked.",
    ),
    good=Example({"src/demo/ml/train.py": _TRAIN_BROKEN.replace("train(:", "train():")}),
)
def syntax_errors(project: Project, rule: Rule) -> Iterator[Finding]:
    for rel in project.walk(f"src/{project.package}", (".py",)):
        error = facts(project, rel).error
        if error is not None:
            yield rule.finding(
                rel,
                f"cannot parse: {error.msg}",
                line=error.lineno or None,
                column=error.offset or None,
            )
