"""Shared checks for generated trees: every file parses in its language, no template leftovers."""

from __future__ import annotations

import ast
import hashlib
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


#: (language, sha256 of the text) of every file that parsed already: the option matrix renders
#: the same file (a .tf module, a workflow) in dozens of trees, and parsing HCL is the slow part
_PARSED: set[tuple[str, str]] = set()


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
        language = _language(path)
        if language is None:
            continue
        key = (language, hashlib.sha256(entry.content).hexdigest())
        if key in _PARSED:
            continue
        if language == "python":
            ast.parse(text, filename=path)
        elif language == "toml":
            tomllib.loads(text)
        elif language == "yaml":
            list(yaml.safe_load_all(text))
        elif language == "json":
            json.loads(text)
        else:
            import hcl2

            hcl2.loads(text)
        _PARSED.add(key)


def _language(path: str) -> str | None:
    if path.endswith(".py"):
        return "python"
    if path.endswith(".toml"):
        return "toml"
    if path.endswith((".yaml", ".yml")):
        return "yaml"
    if path.endswith((".json", ".ipynb")):
        return "json"
    if path.endswith(".tf"):
        return "hcl"
    return None
