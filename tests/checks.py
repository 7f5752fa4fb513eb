"""Shared checks for generated trees: every file parses in its language, no template leftovers."""

from __future__ import annotations

import ast
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from mlops_template.render import Tree

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: the dev environment's scripts (ruff, actionlint, checkov, ...): next to this interpreter
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """A validator from the dev environment (next to this interpreter), else from PATH."""
    local = BIN / name
    found = str(local) if local.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make test` (it installs the dev extras)")
    return found


LEFTOVER = re.compile(r"(?<![$\\])\{\{|\{%|\{#")


def check_parses(tree: Tree, *, user_text: bool = False) -> None:
    """``user_text``: spec values may legitimately contain template-like text (fuzzing)."""
    for path in tree:
        entry = tree.files[path]
        if not entry.is_text():
            continue
        text = entry.content.decode("utf-8")
        if path != ".mlops/pristine.json" and not user_text:
            match = LEFTOVER.search(text)
            assert match is None, (
                f"{path}: leftover template syntax near {text[match.start() :][:40]!r}"
            )
        if path.endswith(".py"):
            ast.parse(text, filename=path)
        elif path.endswith(".toml"):
            tomllib.loads(text)
        elif path.endswith((".yaml", ".yml")):
            list(yaml.safe_load_all(text))
        elif path.endswith((".json", ".ipynb")):
            json.loads(text)
        elif path.endswith(".tf"):
            import hcl2

            hcl2.loads(text)
