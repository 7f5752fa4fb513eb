"""Three-way merge of a generated project: pure functions, no disk access.

``base`` is the pristine render recorded in ``.mlops/`` (what the template produced last time),
``ours`` is the working tree (the user's version) and ``theirs`` is the new render. Per file:

* untouched by the user -> take theirs; untouched by the template -> keep ours;
* changed by both -> merge: a structure-aware merge for the files where lines are the wrong unit
  (``pyproject.toml``: union of dependency lists; ``Makefile``: by target; ``CODEOWNERS`` and
  ``.gitignore``: by entry; ``README.md``: by section), otherwise a line-based diff3;
* overlapping changes -> conflict markers (``<<<<<<< yours`` / ``=======`` / ``>>>>>>> template``),
  reported as ``conflict``;
* a file the user deleted stays deleted; a file the user created where the template now wants one
  is a conflict and is never overwritten (the template's version goes next to it as
  ``<path>.mlops-new``); binary files are never merged; a file the template no longer generates is
  removed only if the user never touched it;
* a *user-owned* file (a phase manifest's ``user_owned``: ``data/features.py``, ``ml/models.py``)
  is never merged: while it is still as generated it takes the template's new version, once the
  user edited it it is ``kept`` byte for byte (even where the template changed the same lines:
  no conflict), and once deleted it stays deleted.

The line merge is diff3 on top of :class:`difflib.SequenceMatcher`: base lines matched in both
ours and theirs are synchronisation points; between two of them each side either kept the base
region, or changed it; if both changed it differently, that region is a conflict. Like git, two
changes on adjacent lines (no unchanged line between them) count as overlapping.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from mlops_template.markers import (
    MARK_OURS,
    MARK_SEP,
    MARK_THEIRS,
    REJ_SUFFIX,
    SIDE_SUFFIX,
)
from mlops_template.tree import Action, File, Tree

# ------------------------------------------------------------------------------------------
# line-based diff3
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextMerge:
    """The merged text of one file, how many conflict regions it holds, and the method used."""

    text: str
    conflicts: int
    method: str


def _matches(a: Sequence[str], b: Sequence[str]) -> dict[int, int]:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out: dict[int, int] = {}
    for i, j, size in matcher.get_matching_blocks():
        for k in range(size):
            out[i + k] = j + k
    return out


def _eol(line: str) -> str:
    return line if line.endswith("\n") else line + "\n"


def _conflict(ours: list[str], theirs: list[str]) -> list[str]:
    # what both sides agree on at the edges of the region is not part of the conflict
    start = 0
    while start < min(len(ours), len(theirs)) and ours[start] == theirs[start]:
        start += 1
    end = 0
    while (
        end < min(len(ours), len(theirs)) - start
        and ours[len(ours) - 1 - end] == theirs[len(theirs) - 1 - end]
    ):
        end += 1
    o_mid = ours[start : len(ours) - end]
    t_mid = theirs[start : len(theirs) - end]
    out = [_eol(x) for x in ours[:start]]
    out.append(MARK_OURS + "\n")
    out.extend(_eol(x) for x in o_mid)
    out.append(MARK_SEP + "\n")
    out.extend(_eol(x) for x in t_mid)
    out.append(MARK_THEIRS + "\n")
    out.extend(ours[len(ours) - end :])
    return out


def merge3_lines(
    base: Sequence[str], ours: Sequence[str], theirs: Sequence[str], *, prefer_theirs: bool = False
) -> tuple[list[str], int]:
    """diff3 of three line lists (lines keep their line ends). Returns (lines, conflicts).

    With ``prefer_theirs`` a conflicting region takes theirs instead of conflict markers (the
    count still says how many regions that happened to).
    """
    in_ours = _matches(base, ours)
    in_theirs = _matches(base, theirs)
    out: list[str] = []
    conflicts = 0
    b0 = o0 = t0 = 0
    syncs = [i for i in range(len(base)) if i in in_ours and i in in_theirs]
    for i in [*syncs, len(base)]:
        o1 = in_ours[i] if i < len(base) else len(ours)
        t1 = in_theirs[i] if i < len(base) else len(theirs)
        b_part, o_part, t_part = list(base[b0:i]), list(ours[o0:o1]), list(theirs[t0:t1])
        if o_part == t_part:
            out.extend(o_part)
        elif o_part == b_part:
            out.extend(t_part)
        elif t_part == b_part:
            out.extend(o_part)
        else:
            conflicts += 1
            out.extend(t_part if prefer_theirs else _conflict(o_part, t_part))
        if i < len(base):
            out.append(ours[o1])
        b0, o0, t0 = i + 1, o1 + 1, t1 + 1
    return out, conflicts


def merge3_text(base: str, ours: str, theirs: str) -> TextMerge:
    lines, conflicts = merge3_lines(
        base.splitlines(keepends=True),
        ours.splitlines(keepends=True),
        theirs.splitlines(keepends=True),
    )
    return TextMerge("".join(lines), conflicts, "lines")


# ------------------------------------------------------------------------------------------
# keyed blocks: Makefile targets, CODEOWNERS / .gitignore entries, Markdown sections
# ------------------------------------------------------------------------------------------

#: a block: (key, lines). The first block is the preamble, key "".
Block = tuple[str, list[str]]
BlockMerger = Callable[
    [str, "list[str] | None", list[str], "list[str] | None"], "tuple[list[str], int]"
]


def _split_blocks(
    text: str, start_key: Callable[[str], str | None], *, attach_comments: bool = True
) -> list[Block]:
    """Split ``text`` into a preamble and blocks that start where ``start_key`` returns a key.

    Comment lines right before a block start belong to that block. Repeated keys get a
    ``#n`` suffix so every key is unique.
    """
    blocks: list[Block] = [("", [])]
    seen: dict[str, int] = {}
    for line in text.splitlines(keepends=True):
        key = start_key(line)
        if key is None:
            blocks[-1][1].append(line)
            continue
        lead: list[str] = []
        previous = blocks[-1][1]
        if attach_comments:
            while previous and previous[-1].lstrip().startswith("#"):
                lead.insert(0, previous.pop())
        count = seen.get(key, 0)
        seen[key] = count + 1
        blocks.append((key if count == 0 else f"{key}#{count}", [*lead, line]))
    return blocks


def _merge_block_default(
    key: str, base: list[str] | None, ours: list[str], theirs: list[str] | None
) -> tuple[list[str], int]:
    if theirs is None:
        return ours, 0
    if ours == theirs or theirs == base:
        return ours, 0
    if ours == base:
        return theirs, 0
    return merge3_lines(base or [], ours, theirs)


def merge_blocks(
    base: list[Block],
    ours: list[Block],
    theirs: list[Block],
    merge_block: BlockMerger = _merge_block_default,
) -> tuple[list[str], int]:
    """Three-way merge of keyed blocks.

    The result keeps ours' order; a block the template added is inserted after the block that
    precedes it in theirs; a block the user removed stays removed; a block the template removed
    goes only if the user never changed it; a block both changed is merged with ``merge_block``.
    """
    b, o, t = dict(base), dict(ours), dict(theirs)
    keys: list[str] = []
    for key, lines in ours:
        if key and key in b and key not in t and lines == b[key]:
            continue  # the template dropped it and the user never touched it
        keys.append(key)
    theirs_order = [k for k, _ in theirs]
    deleted_but_changed: set[str] = set()
    for index, key in enumerate(theirs_order):
        if key in o:
            continue  # present on our side already
        if key in b:
            if t[key] == b[key]:
                continue  # deleted by the user, untouched by the template: stays deleted
            deleted_but_changed.add(key)  # deleted by the user, changed by the template
        position = 0
        for previous in reversed(theirs_order[:index]):
            if previous in keys:
                position = keys.index(previous) + 1
                break
        keys.insert(max(position, 1 if keys and keys[0] == "" else 0), key)
    out: list[str] = []
    conflicts = 0
    for key in keys:
        if key in o:
            lines, n = merge_block(key, b.get(key), o[key], t.get(key))
        elif key in deleted_but_changed:
            lines, n = _conflict([], t[key]), 1
        else:
            lines, n = t[key], 0
        if out and lines and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out.extend(lines)
        conflicts += n
    return out, conflicts


_MAKE_RULE = re.compile(r"^(?P<name>[^\s:=#][^:=]*?)\s*::?(?!=)")


def _make_key(line: str) -> str | None:
    if line.startswith(("\t", " ")):
        return None
    match = _MAKE_RULE.match(line)
    return match.group("name").strip() if match else None


def _merge_make_block(
    key: str, base: list[str] | None, ours: list[str], theirs: list[str] | None
) -> tuple[list[str], int]:
    if key != ".PHONY" or theirs is None or base is None:
        return _merge_block_default(key, base, ours, theirs)
    heads = [next((i for i, x in enumerate(b) if _make_key(x)), -1) for b in (base, ours, theirs)]
    if -1 in heads:
        return _merge_block_default(key, base, ours, theirs)
    words = [
        b[h].split(":", 1)[1].split() for b, h in zip((base, ours, theirs), heads, strict=True)
    ]
    b_words, o_words, t_words = words
    merged = [w for w in o_words if w in t_words or w not in b_words]
    merged += [w for w in t_words if w not in b_words and w not in merged]
    line = ".PHONY: " + " ".join(merged) + "\n"
    rest, n = _merge_block_default(
        "", base[heads[0] + 1 :], ours[heads[1] + 1 :], theirs[heads[2] + 1 :]
    )
    return [*ours[: heads[1]], line, *rest], n


def _entry_key(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    return stripped.split()[0]


def _line_key(line: str) -> str | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    return stripped


def _markdown_splitter() -> Callable[[str], str | None]:
    in_fence = False

    def key(line: str) -> str | None:
        nonlocal in_fence
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            return None
        if not in_fence and line.startswith("## "):
            return line.strip()
        return None

    return key


# ------------------------------------------------------------------------------------------
# pyproject.toml: tables merged key by key, dependency lists as sets (tomlkit keeps comments)
# ------------------------------------------------------------------------------------------


class _Unmergeable(Exception):
    """Both sides changed the same value differently: fall back to line merge with markers."""


def _dep_name(requirement: Any) -> str:
    text = str(requirement)
    name = re.split(r"[\s<>=!~;\[(@]", text.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _is_requirement_list(path: tuple[str, ...]) -> bool:
    joined = ".".join(path)
    return (
        joined in ("project.dependencies", "build-system.requires")
        or joined.startswith(("project.optional-dependencies.", "dependency-groups."))
        or fnmatch.fnmatchcase(joined, "tool.*.dev-dependencies")
    )


def _merge_requirements(base: list[Any], ours: Any, theirs: list[Any]) -> None:
    """Apply the template's change of a requirement list (``base`` -> ``theirs``) to ``ours``.

    The lists are sets keyed by the PEP 503 normalised package name: an entry the template
    added is appended, one it dropped goes (if the user kept it), a changed pin follows where
    the user kept the old one. A name listed twice (in any spelling) is kept once, the user's
    own version winning over one that came from the template. Edits happen in place, so the
    user's comments stay.
    """
    b: dict[str, set[str]] = {}
    for item in base:
        b.setdefault(_dep_name(item), set()).add(str(item))
    t: dict[str, str] = {}
    for item in theirs:
        t.setdefault(_dep_name(item), str(item))
    # one entry per name: the user's own version if there is one, else the first
    seen: dict[str, int] = {}
    for index in range(len(ours)):
        name = _dep_name(ours[index])
        known = b.get(name, set())
        seen.setdefault(name, index)
        if str(ours[seen[name]]) in known and str(ours[index]) not in known:
            seen[name] = index
    for index in range(len(ours) - 1, -1, -1):
        name = _dep_name(ours[index])
        if seen[name] != index and (
            str(ours[index]) in b.get(name, set())
            or str(ours[index]) == t.get(name)
            or str(ours[index]) == str(ours[seen[name]])
        ):
            del ours[index]  # a duplicate that came from the template (or repeats another)
            seen = {k: (v - 1 if v > index else v) for k, v in seen.items()}
    for index in range(len(ours) - 1, -1, -1):
        name = _dep_name(ours[index])
        current = str(ours[index])
        specs = b.get(name)
        if specs is None:
            continue  # the user's own entry
        if name not in t:
            if current in specs:
                del ours[index]  # the template dropped it; the user never changed it
            continue
        if t[name] in specs or current == t[name]:
            continue  # the template did not change it, or the user already has its version
        if current in specs:
            ours[index] = t[name]  # the template changed the pin; the user kept the old one
        else:
            raise _Unmergeable(name)  # both changed the pin differently
    present = {_dep_name(x) for x in ours}
    for name, specs in b.items():
        if name not in present and name in t and t[name] not in specs:
            raise _Unmergeable(name)  # removed by the user, changed by the template
    for name, requirement in t.items():
        if name not in b and name not in present:
            ours.append(requirement)


def _requirement_duplicates(text: str) -> set[tuple[str, str]]:
    """(list, name) pairs listed more than once in a TOML file's requirement lists."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    out: set[tuple[str, str]] = set()

    def walk(table: Any, path: tuple[str, ...]) -> None:
        for key, value in table.items():
            here = (*path, str(key))
            if isinstance(value, dict):
                walk(value, here)
            elif isinstance(value, list) and _is_requirement_list(here):
                names = [_dep_name(x) for x in value if isinstance(x, str)]
                out.update((".".join(here), n) for n in names if names.count(n) > 1)

    try:
        walk(tomlkit.parse(text).unwrap(), ())
    except TOMLKitError:
        return set()
    return out


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def _merge_table(base: Any, ours: Any, theirs: Any, path: tuple[str, ...]) -> None:
    for key in list(theirs.keys()) + [k for k in base if k not in theirs]:
        here = (*path, str(key))
        b = base.get(key)
        t = theirs.get(key)
        o = ours.get(key)
        if _plain(t) == _plain(b):
            continue  # the template did not change it: whatever the user has stays
        if key not in ours:
            if b is None:
                ours[key] = t  # new from the template
                continue
            raise _Unmergeable(".".join(here))  # removed by the user, changed by the template
        if t is None:
            if _plain(o) == _plain(b):
                del ours[key]
            continue
        if _plain(o) == _plain(t):
            continue
        if isinstance(o, dict) and isinstance(t, dict) and isinstance(b, dict):
            _merge_table(b, o, t, here)  # key by key: the user's comments inside stay
        elif (
            isinstance(o, list)
            and isinstance(t, list)
            and isinstance(b, list)
            and _is_requirement_list(here)
        ):
            _merge_requirements(list(b), o, list(t))  # in place: the user's comments stay
        elif _plain(o) == _plain(b):
            ours[key] = t
        else:
            raise _Unmergeable(".".join(here))


def merge_toml(base: str, ours: str, theirs: str) -> TextMerge | None:
    """Structure-aware merge of a TOML file; ``None`` when it cannot merge without a conflict."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        b_doc, o_doc, t_doc = tomlkit.parse(base), tomlkit.parse(ours), tomlkit.parse(theirs)
    except TOMLKitError:
        return None
    try:
        _merge_table(b_doc, o_doc, t_doc, ())
    except _Unmergeable:
        return None
    return TextMerge(tomlkit.dumps(o_doc), 0, "toml")


def _yaml_ok(text: str) -> bool:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        YAML(typ="rt").load(text)  # also refuses duplicate keys
    except YAMLError:
        return False
    return True


def _toml_ok(text: str) -> bool:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        tomlkit.parse(text)
    except TOMLKitError:
        return False
    return True


# ------------------------------------------------------------------------------------------
# workflow YAML: merged job by job
# ------------------------------------------------------------------------------------------


def roundtrip_yaml(text: str) -> Any:
    """A round-trip YAML instance that writes with the indentation ``text`` uses."""
    from ruamel.yaml import YAML
    from ruamel.yaml.util import load_yaml_guess_indent

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    indents = [
        len(line) - len(line.lstrip(" "))
        for line in text.splitlines()
        if line.startswith(" ") and line.strip() and not line.lstrip().startswith(("#", "-"))
    ]
    mapping = min(indents) if indents else 2
    try:
        _, sequence, offset = load_yaml_guess_indent(text)
    except Exception:  # the real parse below reports the error with its position
        sequence, offset = None, None
    if sequence is None or offset is None:
        sequence, offset = mapping + 2, mapping
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return yaml


def merge_workflow(base: str, ours: str, theirs: str) -> TextMerge | None:
    """Merge a CI workflow by top-level key and by job; ``None`` when a job changed on both sides.

    The user's document is kept (comments and formatting via ruamel round-trip); jobs the
    template added are appended, jobs it changed are replaced only where the user kept them.
    """
    import io

    from ruamel.yaml.error import YAMLError

    yaml = roundtrip_yaml(ours)
    try:
        b_doc, o_doc, t_doc = (yaml.load(x) for x in (base, ours, theirs))
    except YAMLError:
        return None
    if not all(isinstance(d, dict) for d in (b_doc, o_doc, t_doc)):
        return None

    def merge_map(b: Any, o: Any, t: Any, depth: int) -> None:
        for key in list(t.keys()) + [k for k in b if k not in t]:
            bv, ov, tv = b.get(key), o.get(key), t.get(key)
            if tv == bv:
                continue
            if key not in o:
                if key in b:
                    raise _Unmergeable(str(key))  # removed by the user, changed by the template
                o[key] = tv
                continue
            if key not in t:
                if ov == bv:
                    del o[key]
                continue
            if ov == tv:
                continue
            if ov == bv:
                o[key] = tv
            elif depth == 0 and key == "jobs" and all(isinstance(x, dict) for x in (bv, ov, tv)):
                merge_map(bv, ov, tv, depth + 1)
            else:
                raise _Unmergeable(str(key))

    try:
        merge_map(b_doc, o_doc, t_doc, 0)
    except _Unmergeable:
        return None

    def dump(doc: Any) -> str:
        buffer = io.StringIO()
        yaml.dump(doc, buffer)
        return buffer.getvalue()

    # the round trip may re-indent the user's lines: apply only its difference to the user's text
    merged, _ = merge3_lines(
        dump(yaml.load(ours)).splitlines(keepends=True),
        ours.splitlines(keepends=True),
        dump(o_doc).splitlines(keepends=True),
        prefer_theirs=True,
    )
    return TextMerge("".join(merged), 0, "workflow")


# ------------------------------------------------------------------------------------------
# dispatch
# ------------------------------------------------------------------------------------------


def _kind(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name == "pyproject.toml":
        return "toml"
    if name in ("Makefile", "GNUmakefile") or name.endswith(".mk"):
        return "makefile"
    if name == "CODEOWNERS":
        return "codeowners"
    if name in (".gitignore", ".dockerignore"):
        return "ignore"
    if name == "README.md":
        return "markdown"
    if (".github/workflows/" in f"/{path}" and name.endswith((".yml", ".yaml"))) or name in (
        ".gitlab-ci.yml",
        "azure-pipelines.yml",
    ):
        return "workflow"
    return "text"


def _blocks_merge(kind: str, base: str, ours: str, theirs: str) -> TextMerge:
    if kind == "makefile":
        splitter: Callable[[str], str | None] = _make_key
        merger: BlockMerger = _merge_make_block
    elif kind == "codeowners":
        splitter, merger = _entry_key, _merge_block_default
    elif kind == "ignore":
        splitter, merger = _line_key, _merge_block_default
    else:
        b, o, t = (
            _split_blocks(x, _markdown_splitter(), attach_comments=False)
            for x in (base, ours, theirs)
        )
        lines, n = merge_blocks(b, o, t)
        return TextMerge("".join(lines), n, kind)
    b, o, t = (_split_blocks(x, splitter) for x in (base, ours, theirs))
    lines, n = merge_blocks(b, o, t, merger)
    return TextMerge("".join(lines), n, kind)


def _added_lines(base: str, theirs: str) -> set[str]:
    """Lines the template added or changed, compared without indentation or trailing comma."""
    b, t = base.splitlines(), theirs.splitlines()
    out: set[str] = set()
    matcher = difflib.SequenceMatcher(None, b, t, autojunk=False)
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        if tag in ("insert", "replace"):
            out.update(x.strip().rstrip(",") for x in t[j1:j2])
    out.discard("")
    return out


def _keeps_template_changes(base: str, theirs: str, merged: TextMerge | None) -> TextMerge | None:
    """A structural merge works on values: it must not silently drop a line the template added
    (a comment, say). When it would, the line merge with its conflict markers is used instead."""
    if merged is None:
        return None
    have = {x.strip().rstrip(",") for x in merged.text.splitlines()}
    missing = _added_lines(base, theirs) - have
    if merged.method == "toml":
        # a requirement the template added is there when the user lists the same package
        # (PEP 503 name) with their own pin or spelling: the user's entry wins
        names = {_dep_name(_unquote(x)) for x in have if _unquote(x) is not None}
        missing = {x for x in missing if _unquote(x) is None or _dep_name(_unquote(x)) not in names}
    return merged if not missing else None


def _unquote(line: str) -> str | None:
    """The string of a line that is one quoted TOML string (a list item), else None."""
    text = line.split("#", 1)[0].strip().rstrip(",").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return None


def merge_text(path: str, base: str, ours: str, theirs: str) -> TextMerge:
    """Merge one text file changed on both sides.

    A clean line merge is the most faithful result and is used when it is valid; where it
    conflicts (or, for TOML, does not parse) the structure-aware merge of the file's kind is
    tried, and the result with fewer conflicts wins.
    """
    by_lines = merge3_text(base, ours, theirs)
    kind = _kind(path)
    if kind == "text":
        return by_lines

    def toml_ok(text: str) -> bool:
        if not _toml_ok(text):
            return False
        # a merge never adds a duplicate requirement: only the user's own may stay
        allowed = _requirement_duplicates(ours) - (
            _requirement_duplicates(base) - _requirement_duplicates(theirs)
        )
        return _requirement_duplicates(text) <= allowed

    valid = {"toml": toml_ok, "workflow": _yaml_ok}.get(kind, lambda _: True)
    if by_lines.conflicts == 0 and valid(by_lines.text):
        return by_lines
    try:
        if kind == "toml":
            structured = _keeps_template_changes(base, theirs, merge_toml(base, ours, theirs))
        elif kind == "workflow":
            structured = _keeps_template_changes(base, theirs, merge_workflow(base, ours, theirs))
        else:
            structured = _blocks_merge(kind, base, ours, theirs)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        structured = None  # a parser choked on an unusual document: the line merge stands
    if structured is not None and structured.conflicts <= by_lines.conflicts:
        return structured
    if by_lines.conflicts == 0:
        # the line merge is clean but not a valid document (a key added twice, say), and the
        # structural merge found a real clash: show both versions as one conflict
        lines = _conflict(ours.splitlines(keepends=True), theirs.splitlines(keepends=True))
        return TextMerge("".join(lines), 1, "lines")
    return by_lines


# ------------------------------------------------------------------------------------------
# whole trees
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What to do with one path. ``content`` None + ``delete`` False means: leave it alone."""

    path: str
    action: Action
    content: File | None = None
    delete: bool = False
    detail: str = ""
    #: the path is user-owned (a manifest's ``user_owned``): reported as such
    user_owned: bool = False


def uses_crlf(data: bytes) -> bool:
    """Whether every line of ``data`` ends with CRLF (a Windows checkout, ``core.autocrlf``)."""
    lf = data.count(b"\n")
    return lf > 0 and data.count(b"\r\n") == lf


def _to_lf(entry: File | None) -> File | None:
    if entry is None or b"\r\n" not in entry.content or not entry.is_text():
        return entry
    return File(entry.content.replace(b"\r\n", b"\n"), entry.executable)


def _to_crlf(entry: File) -> File:
    if not entry.is_text():
        return entry
    lf = entry.content.replace(b"\r\n", b"\n")
    return File(lf.replace(b"\n", b"\r\n"), entry.executable)


ConflictStyle = Literal["inline", "rej"]


def split_conflicts(text: str) -> tuple[str, list[tuple[int, list[str], list[str]]]]:
    """Resolve this tool's conflict regions to the user's side: the text without them, and for
    each region (0-based line where it starts in that text, the user's lines, the template's)."""
    out: list[str] = []
    hunks: list[tuple[int, list[str], list[str]]] = []
    side: list[str] | None = None
    mine: list[str] = []
    template: list[str] = []
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if side is None and bare == MARK_OURS:
            mine, template = [], []
            side = mine
        elif side is mine and bare == MARK_SEP:
            side = template
        elif side is template and bare == MARK_THEIRS:
            hunks.append((len(out), mine, template))
            out.extend(mine)
            side = None
        elif side is not None:
            side.append(line)
        else:
            out.append(line)
    if side is not None:  # not a region of ours after all: leave the text as it was
        return text, []
    return "".join(out), hunks


def format_rejects(path: str, hunks: Sequence[tuple[int, list[str], list[str]]]) -> str:
    """The template's rejected changes as a zero-context unified diff against the written file
    (``git apply --unidiff-zero <file>.rej`` applies them)."""
    out = [f"--- a/{path}\n", f"+++ b/{path}\n"]
    offset = 0
    for start, mine, template in hunks:
        old_start = start + 1 if mine else start
        new_start = start + offset + 1 if template else start + offset
        out.append(f"@@ -{old_start},{len(mine)} +{new_start},{len(template)} @@\n")
        out.extend("-" + _eol(x) for x in mine)
        out.extend("+" + _eol(x) for x in template)
        offset += len(template) - len(mine)
    return "".join(out)


def _as_rejects(decision: Decision) -> list[Decision]:
    if decision.action != "conflict" or decision.content is None:
        return [decision]
    try:
        text = decision.content.content.decode("utf-8")
    except UnicodeDecodeError:
        return [decision]
    resolved, hunks = split_conflicts(text)
    if not hunks:
        return [decision]
    n = len(hunks)
    side = decision.path + REJ_SUFFIX
    detail = (f"{n} change{'s' if n != 1 else ''} of the template conflict with yours; yours "
              f"kept, the template's in {side}")  # fmt: skip
    return [
        Decision(decision.path, "conflict",
                 File(resolved.encode("utf-8"), decision.content.executable), detail=detail),
        Decision(side, "created", File(format_rejects(decision.path, hunks).encode("utf-8"))),
    ]  # fmt: skip


def merge_file(
    path: str,
    base: File | None,
    ours: File | None,
    theirs: File | None,
    *,
    blocked: bool = False,
    conflict: ConflictStyle = "inline",
    user_owned: bool = False,
) -> list[Decision]:
    """The decision for one path (plus a side file holding the template's version, if any).

    A working file whose lines all end with CRLF (a Windows checkout with
    ``core.autocrlf=true``, where the template's render has LF) is compared and merged on LF
    line ends and written back with CRLF: line ends alone are never a change or a conflict.

    With ``conflict="rej"`` a conflicting file keeps the user's side of each conflicting region
    (the template's other changes are merged) and the template's side goes to ``<path>.rej``.
    """
    crlf = ours is not None and uses_crlf(ours.content) and ours.is_text()
    if crlf:
        base, theirs = _to_lf(base), _to_lf(theirs)
    decisions = _merge_file(path, base, _to_lf(ours) if crlf else ours, theirs, blocked=blocked,
                            user_owned=user_owned)  # fmt: skip
    if conflict == "rej":
        decisions = [x for decision in decisions for x in _as_rejects(decision)]
    if not crlf:
        return decisions
    out: list[Decision] = []
    for decision in decisions:
        content = decision.content
        if content is not None:
            content = _to_crlf(content)
            if decision.path == path and content == ours and decision.action != "conflict":
                decision = Decision(path, "unchanged", detail="only line ends differ")
                content = None
        out.append(Decision(decision.path, decision.action, content, decision.delete,
                            decision.detail))  # fmt: skip
    return out


#: how the report names a user-owned file's decision
USER_OWNED = "user-owned"


def _user_owned_file(
    path: str, base: File | None, ours: File | None, theirs: File | None
) -> list[Decision] | None:
    """The decision for a user-owned file, or None where the generic rules say the same thing
    (both sides equal). Never a merge, never a conflict: the template's version is taken only
    while the working file is still exactly what the template last produced (``base``)."""
    if theirs is None:
        if base is None or ours is None:
            return []
        if ours.content == base.content:
            return [Decision(path, "removed", delete=True,
                             detail=f"{USER_OWNED}, as generated; no longer generated")]  # fmt: skip
        return [Decision(path, "kept", detail=f"{USER_OWNED}, edited by you: kept (the template "
                         "no longer generates it)")]  # fmt: skip
    if ours is None:
        if base is None:
            return [Decision(path, "created", theirs,
                             detail=f"{USER_OWNED}: a working example, yours to edit")]  # fmt: skip
        return [Decision(path, "skipped", detail=f"{USER_OWNED}, deleted by you: stays deleted")]
    if ours.content == theirs.content:
        return None
    if base is None:
        return [
            Decision(path, "kept", detail=f"{USER_OWNED}: your file kept; the template's example "
                     f"is in {path}{SIDE_SUFFIX} (compare the interface `mlops lint` checks)"),
            Decision(path + SIDE_SUFFIX, "created", theirs),
        ]  # fmt: skip
    if ours.content == base.content:
        return [Decision(path, "updated", theirs,
                         detail=f"{USER_OWNED}, still as generated: the template's new version "
                         "taken")]  # fmt: skip
    if theirs.content == base.content:
        return [Decision(path, "kept", detail=f"{USER_OWNED}, edited by you: kept")]
    return [Decision(path, "kept", detail=f"{USER_OWNED}, edited by you: kept as is; the "
                     "template's changes to its example are not merged into it")]  # fmt: skip


def _merge_file(
    path: str,
    base: File | None,
    ours: File | None,
    theirs: File | None,
    *,
    blocked: bool = False,
    user_owned: bool = False,
) -> list[Decision]:
    if blocked:
        return [Decision(path, "conflict", detail="a folder is where the template has a file; "
                         "move it and run again")]  # fmt: skip
    if user_owned:
        decided = _user_owned_file(path, base, ours, theirs)
        if decided is not None:
            return decided
    if theirs is None:
        if base is None or ours is None:
            return []
        if ours.content == base.content:
            return [Decision(path, "removed", delete=True, detail="no longer generated")]
        return [Decision(path, "skipped", detail="no longer generated by the template; kept "
                         "because you changed it")]  # fmt: skip
    if ours is None:
        if base is None:
            return [Decision(path, "created", theirs)]
        if base.content == theirs.content:
            return [Decision(path, "skipped", detail="deleted by you; stays deleted")]
        detail = "deleted by you; stays deleted (the template has changed it since)"
        return [Decision(path, "skipped", detail=detail)]
    if ours.content == theirs.content:
        if ours.executable != theirs.executable and (
            base is None or ours.executable == base.executable
        ):
            return [Decision(path, "updated", theirs, detail="file mode")]
        return [Decision(path, "unchanged")]
    if base is None:
        return [
            Decision(path, "conflict", detail=f"your file is where the template now wants one; "
                     f"kept yours, the template's version is in {path}{SIDE_SUFFIX}"),
            Decision(path + SIDE_SUFFIX, "created", theirs),
        ]  # fmt: skip
    if ours.content == base.content:
        return [Decision(path, "updated", theirs)]
    if theirs.content == base.content:
        return [Decision(path, "unchanged", detail="your edits kept")]
    if not (base.is_text() and ours.is_text() and theirs.is_text()):
        return [
            Decision(path, "conflict", detail=f"binary file changed by you and the template; "
                     f"kept yours, the template's version is in {path}{SIDE_SUFFIX}"),
            Decision(path + SIDE_SUFFIX, "created", theirs),
        ]  # fmt: skip
    merged = merge_text(
        path,
        base.content.decode("utf-8"),
        ours.content.decode("utf-8"),
        theirs.content.decode("utf-8"),
    )
    executable = ours.executable or theirs.executable
    content = File(merged.text.encode("utf-8"), executable)
    if merged.conflicts:
        n = merged.conflicts
        detail = f"{n} conflict{'s' if n != 1 else ''} marked in the file"
        return [Decision(path, "conflict", content, detail=detail)]
    if content.content == ours.content:
        return [Decision(path, "unchanged", detail="your edits kept")]
    return [Decision(path, "merged", content, detail=f"{merged.method} merge")]


def _merge_renamed(
    path: str,
    moved: str,
    base: File,
    ours: File,
    theirs: File | None,
    conflict: ConflictStyle = "inline",
    user_owned: bool = False,
) -> list[Decision]:
    """A file the user renamed from ``path`` to ``moved``: the template's changes go there."""
    if theirs is None:
        detail = f"renamed by you to {moved}; no longer generated by the template, yours kept"
        return [Decision(path, "skipped", detail=detail)]
    out = [Decision(path, "skipped", detail=f"renamed by you to {moved}; merged there")]
    for decision in merge_file(moved, base, ours, theirs, conflict=conflict,
                               user_owned=user_owned):  # fmt: skip
        if decision.path == moved:
            detail = "; ".join(x for x in (decision.detail, f"renamed from {path}") if x)
            decision = Decision(moved, decision.action, decision.content, decision.delete, detail)
        out.append(decision)
    return out


def merge_trees(
    base: Tree,
    ours: Mapping[str, File],
    theirs: Tree,
    *,
    skip: frozenset[str] = frozenset(),
    blocked: frozenset[str] = frozenset(),
    renames: Mapping[str, str] | None = None,
    conflict: ConflictStyle = "inline",
    user_owned: frozenset[str] = frozenset(),
) -> list[Decision]:
    """Decisions for every path of ``base`` or ``theirs`` (``ours`` holds the working files).

    ``renames`` maps a generated path the user renamed (``git mv``) to its new path (whose
    content ``ours`` holds): the template's changes of the old path are merged into the new one.
    ``user_owned`` paths are never merged (see :func:`_user_owned_file`); their decisions carry
    ``user_owned=True``.
    """
    out: list[Decision] = []
    known = set(base.files) | set(theirs.files)
    for path in sorted(known):
        if path in skip:
            continue
        owned = path in user_owned
        decided = _decide(path, base, ours, theirs, blocked, renames, conflict, owned)
        out.extend(replace(d, user_owned=True) if owned and not d.path.endswith(SIDE_SUFFIX)
                   else d for d in decided)  # fmt: skip
    return out


def _decide(
    path: str,
    base: Tree,
    ours: Mapping[str, File],
    theirs: Tree,
    blocked: frozenset[str],
    renames: Mapping[str, str] | None,
    conflict: ConflictStyle,
    owned: bool,
) -> list[Decision]:
    moved = (renames or {}).get(path)
    if (
        moved is not None
        and path in base.files
        and path not in ours
        and moved in ours
        and moved not in base.files
        and moved not in theirs.files
        and moved not in blocked
    ):
        return _merge_renamed(path, moved, base.files[path], ours[moved],
                              theirs.files.get(path), conflict, owned)  # fmt: skip
    return merge_file(
        path,
        base.files.get(path),
        ours.get(path),
        theirs.files.get(path),
        blocked=path in blocked,
        conflict=conflict,
        user_owned=owned,
    )
