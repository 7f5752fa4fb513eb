"""The quoting filters: any string survives a round trip through the target language's parser."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import hcl2
import pytest
import yaml
from checks import tool
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_template.quoting import (
    hcl_str,
    json_str,
    md_text,
    py_doc,
    py_str,
    tag_value,
    toml_str,
    yaml_str,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NASTY = [
    "",
    'say "hi"',
    "back\\slash\\",
    "new\nline\r\n",
    "tab\tand\x00nul\x7f",
    "{{ jinja }} {% raw %}",
    "${var} %{ if } $${x}",
    "yes",
    "- item",
    "key: value # comment",
    "'single' \"double\"",
    "\u2028\u2029\x85 separators",
    "emoji 🚀 and 中文",
    "~",
    "null",
    "@at",
    "&anchor *alias !tag",
]
TEXT = st.one_of(st.sampled_from(NASTY), st.text(max_size=200))


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_toml_round_trip(value: str) -> None:
    assert tomllib.loads(f"x = {toml_str(value)}\n")["x"] == value


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_yaml_round_trip(value: str) -> None:
    rendered = yaml_str(value)
    assert "\n" not in rendered
    assert yaml.safe_load(f"x: {rendered}\n")["x"] == value


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_json_round_trip(value: str) -> None:
    assert json.loads(json_str(value)) == value


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_python_round_trip(value: str) -> None:
    assert ast.literal_eval(py_str(value)) == value


@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_python_docstring_round_trip(value: str) -> None:
    module = ast.parse(py_doc(value) + "\n")
    assert ast.get_docstring(module, clean=False).replace("\n", " ").strip() == " ".join(
        value.split()
    )


def test_python_strings_and_docstrings_are_ruff_formatted(tmp_path: Path) -> None:
    import subprocess

    for i, value in enumerate([*NASTY, "word " * 60, 'ends with "quote"', "x" * 150]):
        (tmp_path / f"doc{i}.py").write_text(py_doc(value) + "\n", encoding="utf-8")
        (tmp_path / f"str{i}.py").write_text(f"VALUE = {py_str(value)}\n", encoding="utf-8")
    ruff = tool("ruff")
    done = subprocess.run(
        [ruff, "format", "--check", "--diff", "--no-cache", "--line-length", "100", "."],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(
        [ruff, "check", "--no-cache", "--select", "E501", "--line-length", "100",
         *(p.name for p in tmp_path.glob("doc*.py"))],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@given(st.one_of(st.sampled_from(NASTY), st.text(st.characters(codec="utf-8"), max_size=80)))
@settings(max_examples=200, deadline=None)
def test_hcl_string_parses_and_decodes_back(value: str) -> None:
    parsed = hcl2.loads(f"x = {hcl_str(value)}\n")["x"]
    raw = parsed[0] if isinstance(parsed, list) else parsed
    # the hcl2 parser (bc-python-hcl2, checkov's) returns the literal body with its escapes; decode them as Terraform would
    assert _hcl_decode(raw) == value
    assert "${" not in hcl_str(value).replace("$${", "")


def _hcl_decode(body: str) -> str:
    body = body[1:-1] if len(body) >= 2 and body[0] == body[-1] == '"' else body
    out, i = [], 0
    simple = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(simple[nxt])
            i += 2
            continue
        if body.startswith("$${", i) or body.startswith("%%{", i):
            out.append(body[i + 1 : i + 3])
            i += 3
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@pytest.mark.parametrize("value", NASTY)
def test_markdown_text_has_no_markup(value: str) -> None:
    out = md_text(value)
    assert "<" not in out and ">" not in out


@given(TEXT)
def test_tag_values_are_cloud_safe(value: str) -> None:
    out = tag_value(value)
    assert out and len(out) <= 63
    assert all(c.islower() or c.isdigit() or c in "-_" for c in out)
