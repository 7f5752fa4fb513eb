"""Jinja filters that quote a value safely for each target language.

Every spec value that reaches a generated file goes through one of these, so no value (quotes,
backslashes, newlines, ``{{``, ``${``, unicode, YAML specials) can break the file or inject into it.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

_TOML_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def toml_str(value: Any) -> str:
    """A TOML basic string (``"..."``)."""
    text = str(value)
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    return '"' + _TOML_CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", out) + '"'


def json_str(value: Any) -> str:
    """A JSON value (strings double-quoted and escaped)."""
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def yaml_str(value: Any) -> str:
    """A YAML double-quoted scalar, on one line, whatever the value holds."""
    import yaml

    text: str = yaml.dump(
        str(value), default_style='"', allow_unicode=False, width=10**9, Dumper=yaml.SafeDumper
    )
    return text.strip().removesuffix("...").strip()


#: the line length of the generated projects' ruff configuration
GENERATED_LINE_LENGTH = 100


def _py_escape(text: str, quote: str) -> str:
    """``text`` for the inside of a Python string delimited by ``quote``: backslashes and that
    quote escaped, non-printable characters as escape sequences."""
    out = []
    for ch in text:
        if ch in ("\\", quote):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def py_str(value: Any) -> str:
    """A Python literal, valid in any source position that takes an expression.

    Strings are quoted the way ``ruff format`` writes them: double quotes unless single quotes
    need fewer escapes, non-printable characters escaped, so generated code is formatted as is.
    """
    if not isinstance(value, str):
        return repr(value)
    quote = "'" if value.count('"') > value.count("'") else '"'
    return quote + _py_escape(value, quote) + quote


def py_doc(value: Any, width: int = GENERATED_LINE_LENGTH - 4) -> str:
    """A module docstring: whitespace collapsed, wrapped to ``width``, escaped so that no quote,
    backslash or control character can end it early; formatted the way ``ruff format`` keeps it."""
    import textwrap

    text = _py_escape(" ".join(str(value).split()), '"')
    if len(text) + 6 <= GENERATED_LINE_LENGTH:  # """text""" fits on one line
        return f'"""{text}"""'
    lines = textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)
    # a wrapped line must not end inside an escape: textwrap only breaks at spaces, which are
    # never escaped, so every line is a whole sequence of escapes
    if len(lines) == 1:  # one word longer than a line: ruff keeps it on one line
        return f'"""{text}"""'
    return '"""' + "\n".join(lines) + '\n"""'


def hcl_str(value: Any) -> str:
    """An HCL (Terraform) quoted string; ``${`` and ``%{`` are escaped so nothing interpolates."""
    text = str(value)
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    escaped = "".join(out).replace("${", "$${").replace("%{", "%%{")
    return '"' + escaped + '"'


def shell_quote(value: Any) -> str:
    return shlex.quote(str(value))


def md_text(value: Any) -> str:
    """Plain text safe inside Markdown prose: no raw HTML, no accidental headings or tables."""
    text = str(value).replace("\r", " ")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = re.sub(r"([\\`*_\[\]|#])", r"\\\1", text)
    return text


def comment_text(value: Any) -> str:
    """One line of text for a ``#`` comment (newlines folded; no trailing backslash, which
    would continue a Makefile or shell comment onto the next line)."""
    return " ".join(str(value).split()).rstrip("\\")


def tag_value(value: Any, limit: int = 63) -> str:
    """A cloud tag/label value: lowercase letters, digits, ``-`` and ``_`` only (GCP rules)."""
    cleaned = re.sub(r"[^a-z0-9_-]+", "-", str(value).lower()).strip("-")
    return cleaned[:limit] or "project"


FILTERS = {
    "toml_str": toml_str,
    "json_str": json_str,
    "yaml_str": yaml_str,
    "py_str": py_str,
    "py_doc": py_doc,
    "hcl_str": hcl_str,
    "shell_quote": shell_quote,
    "md_text": md_text,
    "comment_text": comment_text,
    "tag_value": tag_value,
}
