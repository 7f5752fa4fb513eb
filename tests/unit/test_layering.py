"""Layering of the tool, from the AST: cli -> (project, lint, output, wizard) -> (render, apply,
merge) -> (spec, phases) -> (yamlsource, sandbox) -> (errors, tree, quoting, limits). Lower layers never import upper
ones, lint never imports anything that writes, and nothing but the entry points imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "mlops_template"
LAYERS = {
    "errors": 0, "tree": 0, "quoting": 0, "limits": 0, "cachestore": 0, "yamlsource": 0.5,
    "sandbox": 0.5,
    "codecache": 0.5, "markers": 0.5, "phases": 1, "spec": 2,
    # validated specs kept across runs: above spec, below what renders or lints
    "speccache": 2.5,
    "render": 3, "apply": 3, "merge": 3, "gitread": 3,
    "project": 4, "lint": 4, "output": 4, "wizard": 4,
    # the typer-free bodies of `new` and `lint`, used by cli and by entry's fast path
    "commands": 4.5,
    "cli": 5, "entry": 6, "__main__": 7,
}  # fmt: skip
#: modules that may never be imported by the named package (lint is read-only)
FORBIDDEN = {"lint": {"apply", "merge", "project", "cli", "wizard"}}


def internal_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("mlops_template."):
                found.add(node.module.split(".")[1])
            elif node.module == "mlops_template":
                found.update(alias.name for alias in node.names)
            elif node.level and node.module:
                found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mlops_template."):
                    found.add(alias.name.split(".")[1])
    return {name for name in found if name in LAYERS}


def top_module(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


MODULES = sorted(p for p in SRC.rglob("*.py") if top_module(p) in LAYERS)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_only_go_down(path: Path) -> None:
    me = top_module(path)
    for imported in internal_imports(path):
        if imported == me:
            continue
        assert LAYERS[imported] < LAYERS[me] or (
            LAYERS[imported] == LAYERS[me] == 3 and imported != "apply"
        ), f"{path.relative_to(SRC)} ({me}) imports {imported}: layering violation"
        assert imported not in FORBIDDEN.get(me, set()), f"{me} must not import {imported}"


def test_every_module_has_a_layer() -> None:
    unknown = {top_module(p) for p in SRC.rglob("*.py")} - set(LAYERS) - {"__init__"}
    assert not unknown, f"give these modules a layer in test_layering.py: {sorted(unknown)}"
