"""The three-way merge (pure): diff3 on lines, structure-aware merges, per-file decisions."""

from __future__ import annotations

from pathlib import Path

import tomlkit
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_template.markers import MARK_OURS, MARK_SEP, MARK_THEIRS, SIDE_SUFFIX, has_markers
from mlops_template.merge import (
    merge3_lines,
    merge3_text,
    merge_file,
    merge_text,
    merge_trees,
)
from mlops_template.tree import File, Tree

# ------------------------------------------------------------------------------------------
# diff3 on lines: examples
# ------------------------------------------------------------------------------------------


def lines(*items: str) -> list[str]:
    return [f"{x}\n" for x in items]


def test_changes_in_different_places_both_kept() -> None:
    base = lines("a", "b", "c", "d", "e")
    ours = lines("a", "B", "c", "d", "e")
    theirs = lines("a", "b", "c", "D", "e")
    assert merge3_lines(base, ours, theirs) == (lines("a", "B", "c", "D", "e"), 0)


def test_same_line_changed_differently_is_a_conflict_with_markers() -> None:
    base = lines("a", "b", "c")
    merged, conflicts = merge3_lines(base, lines("a", "mine", "c"), lines("a", "theirs", "c"))
    assert conflicts == 1
    assert merged == [
        "a\n", f"{MARK_OURS}\n", "mine\n", f"{MARK_SEP}\n", "theirs\n", f"{MARK_THEIRS}\n", "c\n"
    ]  # fmt: skip


def test_adjacent_changes_count_as_overlapping() -> None:
    base = lines("a", "b", "c", "d")
    _, conflicts = merge3_lines(base, lines("a", "B", "c", "d"), lines("a", "b", "C", "d"))
    assert conflicts == 1


def test_identical_changes_on_both_sides_merge_cleanly() -> None:
    base = lines("a", "b")
    assert merge3_lines(base, lines("a", "x", "b"), lines("a", "x", "b")) == (
        lines("a", "x", "b"),
        0,
    )


def test_conflict_region_excludes_what_both_sides_agree_on() -> None:
    base = lines("a", "z")
    merged, conflicts = merge3_lines(base, lines("a", "same", "mine", "z"),
                                     lines("a", "same", "theirs", "z"))  # fmt: skip
    assert conflicts == 1
    assert merged[:3] == ["a\n", "same\n", f"{MARK_OURS}\n"]


def test_missing_final_newline_never_glues_a_marker_to_a_line() -> None:
    result = merge3_text("a\nb", "a\nmine", "a\ntheirs")
    assert result.conflicts == 1
    assert "mine\n=======\ntheirs\n>>>>>>> template\n" in result.text


def test_crlf_lines_survive() -> None:
    result = merge3_text("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n", "a\r\nb\r\nc\r\nd\r\n")
    assert result == merge3_text("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n", "a\r\nb\r\nc\r\nd\r\n")
    assert result.text == "a\r\nB\r\nc\r\nd\r\n"


# ------------------------------------------------------------------------------------------
# diff3 on lines: properties
# ------------------------------------------------------------------------------------------

# An edit script on a base of unique lines: for each base index, what a side does there.
Op = tuple[str, int]  # ("keep"|"delete"|"change"|"insert", marker id)


def apply(base: list[str], ops: dict[int, Op], side: str) -> list[str]:
    out: list[str] = []
    for i, line in enumerate(base):
        kind, n = ops.get(i, ("keep", 0))
        if kind == "insert":
            out.append(f"{side}-inserted-{n}\n")
            out.append(line)
        elif kind == "change":
            out.append(f"{side}-changed-{n}\n")
        elif kind == "keep":
            out.append(line)
    return out


edit = st.tuples(st.sampled_from(["delete", "change", "insert"]), st.integers(0, 10**6))


@st.composite
def disjoint_edits(draw: st.DrawFn) -> tuple[list[str], dict[int, Op], dict[int, Op]]:
    """Base lines plus two edit scripts touching base lines at least two apart from each other
    (an untouched line always separates a user edit from a template edit)."""
    size = draw(st.integers(3, 40))
    base = [f"line {i}\n" for i in range(size)]
    owners = draw(st.lists(st.sampled_from(["", "", "", "o", "t"]), min_size=size, max_size=size))
    ours: dict[int, Op] = {}
    theirs: dict[int, Op] = {}
    for i, who in enumerate(owners):
        if not who:
            continue
        other = "t" if who == "o" else "o"
        near = owners[max(0, i - 1) : i + 2]
        if other in near:
            continue  # adjacent to the other side's edit: leave it untouched
        (ours if who == "o" else theirs)[i] = draw(edit)
    for ops in (ours, theirs):  # an insert right after the other side's edit would touch it
        for i in list(ops):
            if ops[i][0] == "insert" and (i - 1) in (theirs if ops is ours else ours):
                del ops[i]
    return base, ours, theirs


@settings(max_examples=200, deadline=None)
@given(disjoint_edits())
def test_disjoint_edits_merge_to_both_edits_applied(
    case: tuple[list[str], dict[int, Op], dict[int, Op]],
) -> None:
    base, o_ops, t_ops = case
    ours, theirs = apply(base, o_ops, "user"), apply(base, t_ops, "template")
    merged, conflicts = merge3_lines(base, ours, theirs)
    assert conflicts == 0
    assert merged == _both(base, o_ops, t_ops)


def _both(base: list[str], o_ops: dict[int, Op], t_ops: dict[int, Op]) -> list[str]:
    out: list[str] = []
    for i, line in enumerate(base):
        side, ops = ("user", o_ops) if i in o_ops else ("template", t_ops)
        kind, n = ops.get(i, ("keep", 0))
        if kind == "insert":
            out += [f"{side}-inserted-{n}\n", line]
        elif kind == "change":
            out.append(f"{side}-changed-{n}\n")
        elif kind == "keep":
            out.append(line)
    return out


@st.composite
def any_edits(draw: st.DrawFn) -> tuple[list[str], dict[int, Op], dict[int, Op]]:
    size = draw(st.integers(1, 30))
    base = [f"line {i}\n" for i in range(size)]
    idx = st.integers(0, size - 1)
    ours = draw(st.dictionaries(idx, edit, max_size=size))
    theirs = draw(st.dictionaries(idx, edit, max_size=size))
    return base, ours, theirs


@settings(max_examples=200, deadline=None)
@given(any_edits())
def test_every_user_line_survives_and_conflicts_are_marked(
    case: tuple[list[str], dict[int, Op], dict[int, Op]],
) -> None:
    base, o_ops, t_ops = case
    ours, theirs = apply(base, o_ops, "user"), apply(base, t_ops, "template")
    merged, conflicts = merge3_lines(base, ours, theirs)
    # a line the user wrote is never lost: merged cleanly or inside a conflict's "yours" side
    for line in ours:
        if line.startswith("user-"):
            assert line in merged
    assert has_markers("".join(merged)) == (conflicts > 0)
    assert merged.count(f"{MARK_OURS}\n") == conflicts
    if not (set(o_ops) & set(t_ops)) and conflicts == 0:
        for line in theirs:
            if line.startswith("template-"):
                assert line in merged


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a\n", "b\n", "\n", "c"]), max_size=12),
       st.lists(st.sampled_from(["a\n", "x\n", "\n"]), max_size=12))  # fmt: skip
def test_one_sided_changes_are_taken_verbatim(base: list[str], other: list[str]) -> None:
    assert merge3_lines(base, base, other) == (other, 0)
    assert merge3_lines(base, other, base) == (other, 0)
    assert merge3_lines(base, other, other) == (other, 0)


# ------------------------------------------------------------------------------------------
# structure-aware merges
# ------------------------------------------------------------------------------------------

PYPROJECT = """[project]
name = "demo"
dependencies = [
  "pyyaml>=6.0",
  "polars>=1.0",
]

[project.optional-dependencies]
dev = [
  "pytest>=8.0",
]

[tool.ruff]
line-length = 100
"""


def test_pyproject_dependency_lists_are_unioned_and_user_comments_kept() -> None:
    ours = PYPROJECT.replace('  "polars>=1.0",\n', '  "polars>=1.0",\n  "rich>=13",  # mine\n')
    ours = ours.replace("line-length = 100", "line-length = 120  # we like long lines")
    theirs = PYPROJECT.replace('  "polars>=1.0",\n', '  "polars>=1.0",\n  "fastapi>=0.110",\n')
    theirs = theirs.replace('  "pytest>=8.0",\n', '  "pytest>=8.0",\n  "httpx>=0.27",\n')
    result = merge_text("pyproject.toml", PYPROJECT, ours, theirs)
    assert result.conflicts == 0
    doc = tomlkit.parse(result.text).unwrap()
    assert doc["project"]["dependencies"] == ["pyyaml>=6.0", "polars>=1.0", "rich>=13",
                                              "fastapi>=0.110"]  # fmt: skip
    assert doc["project"]["optional-dependencies"]["dev"] == ["pytest>=8.0", "httpx>=0.27"]
    assert "# mine" in result.text and "# we like long lines" in result.text
    assert doc["tool"]["ruff"]["line-length"] == 120


def test_pyproject_pin_changed_by_template_follows_unless_user_changed_it() -> None:
    theirs = PYPROJECT.replace("polars>=1.0", "polars>=1.2").replace(
        '  "pyyaml>=6.0",\n', '  "pyyaml>=6.0",\n  "numpy>=2",\n'
    )
    ours = PYPROJECT.replace('  "pyyaml>=6.0",\n', '  "pyyaml>=6.0",\n  "mine>=1",\n')
    result = merge_text("pyproject.toml", PYPROJECT, ours, theirs)
    deps = tomlkit.parse(result.text).unwrap()["project"]["dependencies"]
    assert "polars>=1.2" in deps and "mine>=1" in deps and "numpy>=2" in deps
    # both changed the same pin differently: a real conflict, shown with markers
    ours2 = PYPROJECT.replace("polars>=1.0", "polars==1.1")
    clash = merge_text("pyproject.toml", PYPROJECT, ours2, theirs)
    assert clash.conflicts == 1 and has_markers(clash.text)


MAKEFILE = """.PHONY: help setup train clean

help: ## list the targets
\t@grep '##' Makefile

train: | $(STAMP) ## train
\t$(PY) -m pkg.ml train

clean: ## clean
\trm -rf .venv
"""


def test_makefile_targets_added_on_both_sides_merge_by_target() -> None:
    ours = MAKEFILE.replace(".PHONY: help setup train clean", ".PHONY: help setup train clean mine")
    ours += "\nmine: ## my own target\n\techo mine\n"
    theirs = MAKEFILE.replace("clean\n\nhelp", "clean serve\n\nhelp").replace(
        "\nclean: ## clean",
        "\nserve: | $(STAMP) ## serve\n\t$(PY) -m pkg.serving\n\nclean: ## clean",
    )
    # the line merge conflicts on .PHONY; the target-wise merge does not
    assert merge3_text(MAKEFILE, ours, theirs).conflicts == 1
    result = merge_text("Makefile", MAKEFILE, ours, theirs)
    assert result.conflicts == 0, result.text
    assert ".PHONY: help setup train clean mine serve\n" in result.text
    assert "mine: ## my own target\n\techo mine\n" in result.text
    assert "serve: | $(STAMP) ## serve\n\t$(PY) -m pkg.serving\n" in result.text
    assert result.text.index("serve:") < result.text.index("clean:")  # the template's place


def test_makefile_recipe_changed_on_both_sides_conflicts_inside_the_target() -> None:
    ours = MAKEFILE.replace("pkg.ml train", "pkg.ml train --fast")
    theirs = MAKEFILE.replace("pkg.ml train", "pkg.ml fit")
    result = merge_text("Makefile", MAKEFILE, ours, theirs)
    assert result.conflicts == 1
    assert "--fast" in result.text and "pkg.ml fit" in result.text


CODEOWNERS = """# owners
*                  @org/all
/src/pkg/data/     @org/data
"""


def test_codeowners_entries_added_on_both_sides() -> None:
    ours = CODEOWNERS + "/notebooks/mine/   @me\n"
    theirs = CODEOWNERS + "/src/pkg/serving/  @org/mle\n"
    result = merge_text(".github/CODEOWNERS", CODEOWNERS, ours, theirs)
    assert result.conflicts == 0
    # the template's entry goes where the template puts it (after its predecessor), so the
    # user's own entries stay last and keep winning (in CODEOWNERS the last match wins)
    assert result.text.endswith("/src/pkg/serving/  @org/mle\n/notebooks/mine/   @me\n")


def test_gitignore_lines_added_on_both_sides() -> None:
    base = ".venv/\n__pycache__/\n"
    result = merge_text(".gitignore", base, base + "my-cache/\n", base + "mlruns/\n")
    assert result.conflicts == 0
    assert set(result.text.splitlines()) == {".venv/", "__pycache__/", "my-cache/", "mlruns/"}


def test_readme_sections_added_on_both_sides() -> None:
    base = "# Demo\n\nIntro.\n\n## Data\n\nData text.\n"
    ours = base + "\n## Our notes\n\nMine.\n"
    theirs = base + "\n## Serving\n\nServe text.\n"
    result = merge_text("README.md", base, ours, theirs)
    assert result.conflicts == 0
    assert "## Our notes\n\nMine.\n" in result.text and "## Serving\n\nServe text.\n" in result.text


def test_workflow_jobs_added_on_both_sides_keep_the_users_bytes() -> None:
    base = (
        "name: ci\non: [push]\njobs:\n    test:\n        runs-on: ubuntu-latest\n"
        "        steps:\n            - run: echo   # x\n"
    )
    ours = base + "    mine:  # my job\n        runs-on: ubuntu-latest\n"
    theirs = base + "    lint:\n        runs-on: ubuntu-latest\n"
    result = merge_text(".github/workflows/ci.yml", base, ours, theirs)
    assert result.conflicts == 0 and result.method == "workflow"
    assert result.text == ours + "    lint:\n        runs-on: ubuntu-latest\n"


def test_workflow_job_changed_on_both_sides_conflicts() -> None:
    base = "jobs:\n  test:\n    runs-on: ubuntu-latest\n"
    ours = base.replace("ubuntu-latest", "ubuntu-24.04")
    theirs = base.replace("ubuntu-latest", "ubuntu-22.04")
    result = merge_text(".github/workflows/ci.yml", base, ours, theirs)
    assert result.conflicts == 1 and has_markers(result.text)


def test_unknown_text_files_use_the_line_merge() -> None:
    result = merge_text("src/pkg/x.py", "a\n", "a\nb\n", "a\nc\n")
    assert result.method == "lines" and result.conflicts == 1


# ------------------------------------------------------------------------------------------
# per-file decisions
# ------------------------------------------------------------------------------------------


def f(text: str | bytes, executable: bool = False) -> File:
    return File(text.encode() if isinstance(text, str) else text, executable)


def test_file_rules() -> None:
    b, o, t = f("a\n"), f("a\nmine\n"), f("a\nnew\n")
    assert merge_file("x", b, b, t)[0].action == "updated"
    assert merge_file("x", b, o, b)[0].action == "unchanged"
    assert merge_file("x", b, t, t)[0].action == "unchanged"
    assert merge_file("x", None, None, t)[0].action == "created"
    conflict = merge_file("x", b, o, t)
    assert conflict[0].action == "conflict" and conflict[0].content is not None
    assert has_markers(conflict[0].content.content.decode())


def test_user_deleted_file_stays_deleted() -> None:
    for theirs in (f("a\n"), f("a\nchanged\n")):
        (decision,) = merge_file("x", f("a\n"), None, theirs)
        assert decision.action == "skipped" and decision.content is None and not decision.delete


def test_user_file_where_the_template_now_wants_one_is_never_overwritten() -> None:
    decisions = merge_file("docs/x.md", None, f("mine\n"), f("template\n"))
    assert decisions[0].action == "conflict" and decisions[0].content is None
    assert decisions[1].path == "docs/x.md" + SIDE_SUFFIX
    assert decisions[1].content == f("template\n")


def test_binary_files_are_never_merged() -> None:
    b, o, t = f(b"\x00\x01"), f(b"\x00\x02"), f(b"\x00\x03")
    decisions = merge_file("model.bin", b, o, t)
    assert decisions[0].action == "conflict" and decisions[0].content is None
    assert decisions[1].content == t
    assert merge_file("model.bin", b, b, t)[0].content == t


def test_template_removed_file() -> None:
    (gone,) = merge_file("old.py", f("a\n"), f("a\n"), None)
    assert gone.action == "removed" and gone.delete
    (kept,) = merge_file("old.py", f("a\n"), f("a\nmine\n"), None)
    assert kept.action == "skipped" and not kept.delete


def test_merge_trees_skips_unmerged_and_blocked_paths() -> None:
    base = Tree({"mlops.yaml": f("a"), "x": f("1\n")})
    theirs = Tree({"mlops.yaml": f("b"), "x": f("2\n"), "y": f("3\n")})
    decisions = merge_trees(base, {"x": f("1\n")}, theirs, skip=frozenset({"mlops.yaml"}),
                            blocked=frozenset({"y"}))  # fmt: skip
    assert [(d.path, d.action) for d in decisions] == [("x", "updated"), ("y", "conflict")]


def test_clean_line_merge_that_breaks_the_document_becomes_a_conflict() -> None:
    base = "[tool.x]\na = 1\nb = 2\nc = 3\n"
    ours = base.replace("a = 1\n", "foo = 1\na = 1\n")  # the user adds foo at the top
    theirs = base + "foo = 2\n"  # the template adds foo at the bottom: duplicate key
    assert merge3_text(base, ours, theirs).conflicts == 0
    result = merge_text("pyproject.toml", base, ours, theirs)
    assert result.conflicts == 1 and "foo = 1" in result.text and "foo = 2" in result.text
    wf = "jobs:\n  a:\n    x: 1\n\n  b:\n    y: 2\n"
    result = merge_text(".github/workflows/ci.yml", wf,
                        wf.replace("  a:\n", "  c:\n    z: 1\n  a:\n"), wf + "  c:\n    z: 2\n")  # fmt: skip
    assert result.conflicts == 1 and has_markers(result.text)


# ------------------------------------------------------------------------------------------
# issue 19: CRLF working trees, leftover markers, requirement lists as sets
# ------------------------------------------------------------------------------------------


def crlf(text: str) -> File:
    return File(text.replace("\n", "\r\n").encode())


def test_crlf_file_the_user_never_edited_takes_the_template_in_crlf() -> None:
    base, theirs = "a\nb\nc\n", "a\nb\nc\nd\n"
    (decision,) = merge_file("docs/x.md", f(base), crlf(base), f(theirs))
    assert decision.action == "updated" and decision.content == crlf(theirs)
    # unchanged by the template: nothing to write, whatever the line ends
    (same,) = merge_file("docs/x.md", f(base), crlf(base), f(base))
    assert same.action == "unchanged" and same.content is None
    # a template file removed while the user's CRLF copy is untouched: removed
    (gone,) = merge_file("docs/x.md", f(base), crlf(base), None)
    assert gone.action == "removed" and gone.delete


def test_crlf_user_edit_merges_with_only_the_real_clash_marked_and_endings_kept() -> None:
    base = "".join(f"line {n}\n" for n in range(1, 11))
    ours = base.replace("line 2\n", "line 2 (mine)\n").replace("line 9\n", "line 9 (mine)\n")
    theirs = base.replace("line 5\n", "line 5 (template)\n").replace("line 9\n", "line 9 (new)\n")
    (decision,) = merge_file("notes.txt", f(base), crlf(ours), f(theirs))
    assert decision.action == "conflict" and decision.detail == "1 conflict marked in the file"
    assert decision.content is not None
    data = decision.content.content
    assert data.count(b"\r\n") == data.count(b"\n")  # every line ends with CRLF, markers too
    text = data.decode().replace("\r\n", "\n")
    assert "line 2 (mine)\n" in text and "line 5 (template)\n" in text
    assert text.count(MARK_OURS) == 1
    clean = merge_file("notes.txt", f(base), crlf(ours), f(base.replace("line 5", "five")))
    assert clean[0].action == "merged" and clean[0].content is not None
    assert clean[0].content == crlf(ours.replace("line 5", "five"))


def test_conflict_regions_are_found_in_every_marker_style() -> None:
    from mlops_template.markers import conflict_regions

    ours_style = f"a\n{MARK_OURS}\nmine\n{MARK_SEP}\ntheirs\n{MARK_THEIRS}\nb\n"
    git_style = "x\n<<<<<<< HEAD\nmine\n||||||| base\nold\n=======\nnew\n>>>>>>> branch\n"
    assert conflict_regions(ours_style) == [2]
    assert conflict_regions(git_style) == [2]
    assert conflict_regions(git_style.replace("\n", "\r\n")) == [2]
    # a Markdown heading underline or a half region is not a conflict
    assert conflict_regions("Title\n=======\n\ntext\n") == []
    assert conflict_regions("<<<<<<< HEAD\nmine\n") == []


def test_one_added_dependency_merges_over_a_base_duplicate_and_a_dropped_comment() -> None:
    base = (
        '[project]\nname = "demo"\ndependencies = [\n  # data\n  "polars>=1.0",\n'
        '  "pyyaml>=6.0",\n  "PyYAML>=6.0",\n]\n'
    )
    theirs = (
        '[project]\nname = "demo"\ndependencies = [\n  "polars>=1.0",\n  "pyyaml>=6.0",\n'
        '  "scikit-learn>=1.5",\n]\n'
    )
    ours = base.replace('  "PyYAML>=6.0",\n', '  "PyYAML>=6.0",\n  "rich>=13",  # for the CLI\n')
    result = merge_text("pyproject.toml", base, ours, theirs)
    assert result.conflicts == 0, result.text
    deps = tomlkit.parse(result.text).unwrap()["project"]["dependencies"]
    assert deps == ["polars>=1.0", "pyyaml>=6.0", "rich>=13", "scikit-learn>=1.5"]
    assert "# for the CLI" in result.text and "# data" in result.text


def test_requirements_are_keyed_by_pep503_name_and_never_duplicated() -> None:
    # both add the same package, spelled differently: one entry, the user's
    ours = PYPROJECT.replace(
        '  "pyyaml>=6.0",\n', '  "Scikit_Learn>=1.4",  # ours\n  "pyyaml>=6.0",\n'
    )
    theirs = PYPROJECT.replace('  "polars>=1.0",\n', '  "polars>=1.0",\n  "scikit-learn>=1.5",\n')
    result = merge_text("pyproject.toml", PYPROJECT, ours, theirs)
    deps = tomlkit.parse(result.text).unwrap()["project"]["dependencies"]
    assert result.conflicts == 0 and deps == ["Scikit_Learn>=1.4", "pyyaml>=6.0", "polars>=1.0"]
    assert "# ours" in result.text
    # the template changes a pin the user kept, next to a user line: the new pin, once
    ours = PYPROJECT.replace('  "polars>=1.0",\n', '  "polars>=1.0",\n  "rich>=13",\n')
    theirs = PYPROJECT.replace("polars>=1.0", "polars>=1.2")
    deps = tomlkit.parse(merge_text("pyproject.toml", PYPROJECT, ours, theirs).text).unwrap()
    assert deps["project"]["dependencies"] == ["pyyaml>=6.0", "polars>=1.2", "rich>=13"]


def test_conflict_rej_keeps_yours_in_the_file_and_the_templates_side_in_a_patch(
    tmp_path: Path,
) -> None:
    import subprocess

    from mlops_template.markers import REJ_SUFFIX

    base = "".join(f"line {n}\n" for n in range(1, 11))
    ours = base.replace("line 2\n", "line 2 (mine)\n").replace("line 9\n", "line 9 (mine)\n")
    theirs = base.replace("line 5\n", "line 5 (template)\n").replace(
        "line 9\n", "line 9 (new)\nline 9b (new)\n"
    )
    decisions = merge_file("notes.txt", f(base), f(ours), f(theirs), conflict="rej")
    assert [(d.path, d.action) for d in decisions] == [
        ("notes.txt", "conflict"), ("notes.txt" + REJ_SUFFIX, "created"),
    ]  # fmt: skip
    assert decisions[0].content is not None and decisions[1].content is not None
    written = decisions[0].content.content.decode()
    assert not has_markers(written) and "line 9 (mine)\n" in written
    assert "line 2 (mine)\n" in written and "line 5 (template)\n" in written  # merged
    patch = decisions[1].content.content.decode()
    assert "-line 9 (mine)\n+line 9 (new)\n+line 9b (new)\n" in patch
    # the patch applies to the written file and gives the template's side of the region
    (tmp_path / "notes.txt").write_text(written)
    (tmp_path / "notes.txt.rej").write_text(patch)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "apply", "--unidiff-zero", "notes.txt.rej"], cwd=tmp_path, check=True)
    applied = (tmp_path / "notes.txt").read_text()
    assert applied == written.replace("line 9 (mine)\n", "line 9 (new)\nline 9b (new)\n")
    # inline stays the default, and a CRLF file's .rej is CRLF like it
    assert merge_file("notes.txt", f(base), f(ours), f(theirs))[0].content is not None
    assert len(merge_file("notes.txt", f(base), f(ours), f(theirs))) == 1
    (kept, rej) = merge_file("notes.txt", f(base), crlf(ours), f(theirs), conflict="rej")
    assert kept.content is not None and uses_crlf_bytes(kept.content.content)
    assert rej.content is not None and b"-line 9 (mine)\r\n" in rej.content.content


def uses_crlf_bytes(data: bytes) -> bool:
    return data.count(b"\r\n") == data.count(b"\n") > 0
