"""Conflict markers and side files: how the tool marks a conflict, and how it finds one left
unresolved. Pure text functions, shared by the merge (which writes them) and lint (which
reports them)."""

from __future__ import annotations

import re

MARK_OURS = "<<<<<<< yours"
MARK_SEP = "======="
MARK_THEIRS = ">>>>>>> template"
#: suffix of the template's version written next to a file that could not take it.
SIDE_SUFFIX = ".mlops-new"
#: suffix of the template's rejected changes (``--conflict rej``), a zero-context patch.
REJ_SUFFIX = ".rej"


def has_markers(text: str) -> bool:
    return any(
        line.startswith((MARK_OURS, MARK_THEIRS)) or line.rstrip("\r\n") == MARK_SEP
        for line in text.splitlines()
    )


_OPEN = re.compile(r"^<{7}(?: |$)")
_BASE = re.compile(r"^\|{7}(?: |$)")
_SEP = re.compile(r"^={7}$")
_CLOSE = re.compile(r"^>{7}(?: |$)")


def conflict_regions(text: str) -> list[int]:
    """The 1-based line numbers where an unresolved conflict region starts.

    A region is a ``<<<<<<<`` line, then (after an optional diff3 ``|||||||`` base part) a
    ``=======`` line, then a ``>>>>>>>`` line, as written by this tool, git, diff3 or copier.
    A lone ``=======`` (a Markdown heading underline) is not a region.
    """
    out: list[int] = []
    if "<<<<<<<" not in text:
        return out  # no line can open a region (lint reads every file the template made)
    start: int | None = None
    state = ""  # "" outside, "ours" after <<<, "base" after |||, "theirs" after ===
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if _OPEN.match(line):
            start, state = number, "ours"
        elif state == "ours" and _BASE.match(line):
            state = "base"
        elif state in ("ours", "base") and _SEP.match(line):
            state = "theirs"
        elif state == "theirs" and _CLOSE.match(line):
            assert start is not None
            out.append(start)
            start, state = None, ""
    return out
