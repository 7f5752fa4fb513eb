"""`mlops add-phase`, `mlops update`, `mlops diff`: CLI behaviour and merge properties.

Projects are small (`data,training`) and rendered once per module; each test works on a copy.
Assertions never depend on the content of built-in phases: they compare with a fresh render,
or use custom phases created here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlops_template import project as proj
from mlops_template.apply import apply_new
from mlops_template.cli import app
from mlops_template.errors import ProjectError
from mlops_template.markers import MARK_OURS, MARK_THEIRS, SIDE_SUFFIX, has_markers
from mlops_template.phases import load_catalogue, templates_dir
from mlops_template.render import PRISTINE_FILE, STATE_FILE, read_pristine, render
from mlops_template.spec import dump_spec, load_spec

runner = CliRunner()
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
}  # fmt: skip


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("golden") / "demo"
    spec = load_spec(name="Demo Project", phases=["data", "training"])
    apply_new(render(spec), dest)
    return dest


@pytest.fixture
def project(golden: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "demo"
    shutil.copytree(golden, dest, symlinks=True)
    return dest


def snapshot(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git/" not in p.relative_to(root).as_posix() + "/"
    }


def mlops(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})  # fmt: skip


def state(root: Path) -> dict[str, object]:
    result: dict[str, object] = json.loads((root / STATE_FILE).read_text())
    return result


def write_phase(folder: Path, name: str = "hello", *, requires: str = "[training]",
                files: dict[str, str] | None = None) -> Path:  # fmt: skip
    """A custom phase: a make target, a dependency, an owned path, a README section, files."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "phase.yaml").write_text(
        f"name: {name}\n"
        "description: A custom phase made by the tests.\n"
        "owner: ml_engineer\n"
        f"requires: {requires}\n"
        "owns: ['/src/{{ package }}/" + name + "/']\n"
        "make_targets:\n"
        f"  - name: {name}\n"
        "    help: say hello\n"
        "    recipe: ['$(PY) -m $(PACKAGE)." + name + "']\n"
        f"dependencies: ['{name}-lib>=1.0']\n"
        f"gitignore: ['{name}-cache/']\n"
        f"readme: |\n  ## {name.title()} (ML engineer)\n\n  Says hello to {{{{ project.name }}}}.\n"
    )
    default = {
        "src/{{ package }}/" + name + "/__init__.py.jinja":
            '"""Hello from {{ project.name | py_str }}."""\nGREETING = "hello"\n',
        f"docs/{name}.md": "# Hello\n\nline 1\nline 2\nline 3\n",
    }  # fmt: skip
    for rel, text in (files if files is not None else default).items():
        target = folder / "files" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return folder


# ------------------------------------------------------------------------------------------
# add-phase
# ------------------------------------------------------------------------------------------


def test_add_serving_to_a_data_training_project_keeps_user_edits(project: Path) -> None:
    makefile = (project / "Makefile").read_text() + "\nmine: ## my own target\n\techo mine\n"
    (project / "Makefile").write_text(makefile)
    pyproject = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        pyproject.replace("dependencies = [\n", 'dependencies = [\n  "rich>=13",  # ours\n', 1)
    )
    (project / "notes.txt").write_text("my notes\n")
    spec_before = (project / "mlops.yaml").read_text()

    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 0, out
    assert "not a git repository" in out

    # mlops.yaml: exactly the phases line changed, every comment kept
    spec_after = (project / "mlops.yaml").read_text()
    changed = [
        (a, b)
        for a, b in zip(spec_before.splitlines(), spec_after.splitlines(), strict=True)
        if a != b
    ]
    assert len(changed) == 1 and changed[0][1].startswith("phases:") and "serving" in changed[0][1]
    assert "serving" in state(project)["phases"]  # type: ignore[operator]

    # the new record is the render of the new spec (recorded, not re-rendered here: the
    # templates may change under a long test run)
    theirs = read_pristine((project / PRISTINE_FILE).read_text())
    assert theirs.text("mlops.yaml") == dump_spec(load_spec(project / "mlops.yaml"))
    # files the user never touched are exactly the new render
    for path in theirs:
        if path in ("Makefile", "pyproject.toml", "mlops.yaml") or path.startswith(".mlops/"):
            continue
        assert (project / path).read_bytes() == theirs.files[path].content, path
    # shared files: every line of the new render and every line of the user is there
    merged_make = (project / "Makefile").read_text()
    assert "mine: ## my own target\n\techo mine\n" in merged_make
    for line in theirs.text("Makefile").splitlines():
        if not line.startswith(".PHONY"):
            assert line in merged_make.splitlines()
    assert ".PHONY" in merged_make and " mine" not in merged_make.split("\n.PHONY", 1)[0]
    merged_py = (project / "pyproject.toml").read_text()
    assert '"rich>=13",  # ours' in merged_py
    for line in theirs.text("pyproject.toml").splitlines():
        assert line in merged_py.splitlines()
    assert (project / "notes.txt").read_text() == "my notes\n"
    assert not has_markers(merged_make + merged_py)


def test_add_phase_twice_is_a_noop(project: Path) -> None:
    assert mlops("add-phase", "serving", "--project", str(project))[0] == 0
    before = snapshot(project)
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 0 and "already enabled" in out
    assert snapshot(project) == before


def test_add_phase_with_a_missing_requirement(project: Path) -> None:
    catalogue = load_catalogue()
    enabled = {"data", "training"}
    name = next(n for n, p in catalogue.items()
                if n not in enabled and any(r not in enabled for r in p.requires))  # fmt: skip
    missing = [r for r in catalogue[name].requires if r not in enabled]
    before = snapshot(project)
    code, out = mlops("add-phase", name, "--project", str(project))
    assert code == 2
    assert f"phase {name!r} requires" in out and missing[0] in out
    assert "--with-requirements" in out
    assert snapshot(project) == before

    code, out = mlops("add-phase", name, "--project", str(project), "--with-requirements")
    assert code == 0, out
    phases = load_spec(project / "mlops.yaml").phases
    assert name in phases and all(r in phases for r in missing)


def test_unknown_phase_suggests_a_close_name(project: Path) -> None:
    code, out = mlops("add-phase", "servin", "--project", str(project))
    assert code == 2 and "unknown phase 'servin'" in out and "did you mean 'serving'" in out


def test_dry_run_writes_nothing_and_shows_the_diff(project: Path) -> None:
    before = snapshot(project)
    code, out = mlops("add-phase", "serving", "--project", str(project), "--dry-run")
    assert code == 0, out
    assert "--- a/mlops.yaml\n+++ b/mlops.yaml\n" in out
    assert "+phases:" in out and "dry run, nothing written" in out
    assert snapshot(project) == before
    assert not (project / proj.LOCK_FILE).exists()


def test_dirty_git_tree_is_refused_unless_allowed(project: Path) -> None:
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "generated")
    (project / "README.md").write_text((project / "README.md").read_text() + "\nlocal edit\n")
    before = snapshot(project)
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 2 and "uncommitted changes" in out and "README.md" in out
    assert "--allow-dirty" in out
    assert snapshot(project) == before
    code, out = mlops("add-phase", "serving", "--project", str(project), "--allow-dirty")
    assert code == 0, out
    assert "local edit" in (project / "README.md").read_text()


def test_outside_a_generated_project(tmp_path: Path) -> None:
    code, out = mlops("add-phase", "serving", "--project", str(tmp_path))
    assert code == 2 and "not a project generated by mlops" in out
    code, out = mlops("update", "--project", str(tmp_path / "missing"))
    assert code == 2 and "no such folder" in out


def test_lock_held_or_stale(project: Path) -> None:
    lock = project / proj.LOCK_FILE
    import socket

    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": 0}))
    code, out = mlops("update", "--project", str(project))
    assert code == 2 and "another mlops run" in out
    # a lock whose process is gone on another machine cannot be judged from here
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": "elsewhere", "since": 0}))
    code, out = mlops("update", "--project", str(project))
    assert code == 2 and "another mlops run" in out and "elsewhere" in out
    # issue 19: one left on this machine by a process that is gone is taken over, with a note
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname(), "since": 0}))
    code, out = mlops("update", "--project", str(project))
    assert code == 0 and "took over" in out and "no longer running" in out, out
    assert not lock.exists()
    assert mlops("update", "--project", str(project))[0] == 0
    assert not lock.exists()


def test_add_phase_with_set_edits_the_spec(project: Path) -> None:
    code, out = mlops("add-phase", "serving", "--project", str(project),
                      "--set", "serving.mode=batch")  # fmt: skip
    assert code == 0, out
    spec = load_spec(project / "mlops.yaml")
    assert spec.serving.mode == "batch" and "serving" in spec.phases


def test_invalid_set_names_the_key_and_writes_nothing(project: Path) -> None:
    before = snapshot(project)
    code, out = mlops("add-phase", "serving", "--project", str(project),
                      "--set", "serving.mode=carrier-pigeon")  # fmt: skip
    assert code == 2 and "serving.mode" in out and "--set serving.mode" in out
    assert snapshot(project) == before


# ------------------------------------------------------------------------------------------
# custom phases
# ------------------------------------------------------------------------------------------


def test_custom_phase_folder_is_rendered_merged_and_recorded(project: Path, tmp_path: Path) -> None:
    folder = write_phase(tmp_path / "phases" / "hello")
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 0, out
    package = load_spec(project / "mlops.yaml").package
    init = project / "src" / package / "hello" / "__init__.py"
    assert init.read_text() == '"""Hello from "Demo Project"."""\nGREETING = "hello"\n'
    assert "\nhello: | $(STAMP) ## say hello\n" in (project / "Makefile").read_text()
    assert '"hello-lib>=1.0"' in (project / "pyproject.toml").read_text()
    assert f"/src/{package}/hello/" in (project / ".github" / "CODEOWNERS").read_text()
    assert state(project)["custom_phases"] == [{"name": "hello", "path": str(folder.resolve())}]

    # twice: a no-op
    before = snapshot(project)
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 0 and "already enabled" in out
    assert snapshot(project) == before

    # the user edits line 1, the phase's author changes line 3: update merges both
    doc = project / "docs" / "hello.md"
    doc.write_text(doc.read_text().replace("line 1", "line 1 (edited by us)"))
    (folder / "files" / "docs" / "hello.md").write_text("# Hello\n\nline 1\nline 2\nline three\n")
    code, out = mlops("update", "--project", str(project))
    assert code == 0, out
    assert doc.read_text() == "# Hello\n\nline 1 (edited by us)\nline 2\nline three\n"

    # both change line 2: a conflict, marked in the file, exit 1
    doc.write_text(doc.read_text().replace("line 2", "our line 2"))
    (folder / "files" / "docs" / "hello.md").write_text("# Hello\n\nline 1\nLINE 2\nline three\n")
    code, out = mlops("update", "--project", str(project))
    assert code == 1
    assert "conflict" in out and "docs/hello.md" in out
    text = doc.read_text()
    assert MARK_OURS in text and MARK_THEIRS in text and "our line 2" in text and "LINE 2" in text


def test_custom_phase_requirement_and_name_clash(project: Path, tmp_path: Path) -> None:
    folder = write_phase(tmp_path / "p" / "needy", "needy", requires="[serving]")
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 2 and "requires serving" in out
    clash = write_phase(tmp_path / "p" / "data", "data", requires="[]")
    code, out = mlops("add-phase", str(clash), "--project", str(project))
    assert code == 2 and "is a built-in phase" in out


def test_user_file_at_a_path_the_template_now_wants(project: Path, tmp_path: Path) -> None:
    folder = write_phase(tmp_path / "hello")
    (project / "docs" / "hello.md").write_text("my own hello\n")
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 1 and "docs/hello.md" in out
    assert (project / "docs" / "hello.md").read_text() == "my own hello\n"
    assert (project / "docs" / f"hello.md{SIDE_SUFFIX}").read_text().startswith("# Hello")
    # issue 19: the hint names the side file that was written, and no markers (there are none)
    assert "1 file has conflicts: docs/hello.md" in out, out
    assert f"docs/hello.md{SIDE_SUFFIX}" in out and "markers" not in out, out


def test_conflict_hint_names_only_what_was_written(project: Path, tmp_path: Path) -> None:
    folder = write_phase(tmp_path / "hello")
    assert mlops("add-phase", str(folder), "--project", str(project))[0] == 0
    mine = project / "docs" / "hello.md"
    mine.write_text(mine.read_text().replace("line 2", "line 2, mine"))
    phase_file = folder / "files" / "docs" / "hello.md"
    phase_file.write_text(phase_file.read_text().replace("line 2", "line 2, the template's"))
    code, out = mlops("update", "--project", str(project))
    assert code == 1 and "1 file has conflicts: docs/hello.md" in out, out
    assert "markers in docs/hello.md" in out and SIDE_SUFFIX not in out, out
    assert not (project / "docs" / f"hello.md{SIDE_SUFFIX}").exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"{{ '..' }}/outside.txt": "x\n"}, "path segment rendered to '..'"),
        # a file name cannot hold '/': build it at render time ("../outside", "/tmp/abs")
        ({"{{ '%c%c%coutside' % (46, 46, 47) }}.txt": "x\n"}, "path segment rendered to"),
        ({"{{ '%ctmp%cabs' % (47, 47) }}.txt": "x\n"}, "path segment rendered to"),
        ({"x.txt.jinja": "{{ ''.__class__.__mro__[1].__subclasses__() }}"}, "unsafe"),
        ({"y.txt.jinja": "{% include '../../../../etc/hostname' %}"}, "TemplateNotFound"),
        ({".mlops/state.json": "{}\n"}, "mlops manages itself"),
    ],
)
def test_malicious_custom_phase_cannot_write_outside(
    project: Path, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    folder = write_phase(tmp_path / "evil" / "evil", "evil", files=files)
    before = snapshot(project)
    outside = snapshot(tmp_path)
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 2, out
    assert message in out
    assert snapshot(project) == before
    assert snapshot(tmp_path) == outside
    assert not Path("/tmp/abs/x.txt").exists()


def test_symlinks_in_a_custom_phase_are_refused(project: Path, tmp_path: Path) -> None:
    folder = write_phase(tmp_path / "evil", "evil", files={})
    (tmp_path / "secret.txt").write_text("secret\n")
    (folder / "files").mkdir(exist_ok=True)
    (folder / "files" / "leak.txt").symlink_to(tmp_path / "secret.txt")
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 2 and "symlinks are not allowed" in out


def test_project_symlink_leading_outside_is_refused(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / "docs").rename(tmp_path / "docs-moved")
    (project / "docs").symlink_to(elsewhere)
    folder = write_phase(tmp_path / "hello")
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 2 and "symlink pointing outside the project" in out
    assert list(elsewhere.iterdir()) == []


# ------------------------------------------------------------------------------------------
# update and diff
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def upgraded_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the installed templates with a 'new template version': lines appended to
    every base text template, one new base file."""
    root = tmp_path_factory.mktemp("templates") / "templates"
    shutil.copytree(templates_dir(), root, ignore=shutil.ignore_patterns("__pycache__"))
    for path in sorted((root / "base").rglob("*")):
        if path.is_file() and path.suffix in (".jinja", ".py", ".md", ".yaml", ".toml"):
            path.write_text(path.read_text() + "# template v2\n")
    (root / "base" / "docs" / "upgrade-notes.md").write_text("# New in v2\n")
    return root


def test_update_with_no_template_change_does_nothing(tmp_path: Path) -> None:
    # rendered here, not copied from the module's project: the templates must not change
    # between the render and the update for this test to mean anything
    project = tmp_path / "fresh"
    apply_new(render(load_spec(name="Fresh", phases=["data"])), project)
    before = snapshot(project)
    code, out = mlops("update", "--project", str(project))
    assert code == 0, out
    assert snapshot(project) == before
    code, out = mlops("diff", "--project", str(project))
    assert code == 0 and "no changes" in out


def test_update_merges_a_template_upgrade(project: Path, upgraded_templates: Path) -> None:
    readme = project / "README.md"
    readme.write_text("Our intro line.\n" + readme.read_text())
    (project / "docs" / "runbook.md").unlink()
    dry = proj.update(project=project, dry_run=True, templates_root=upgraded_templates)
    assert "+# template v2" in dry.diff and "+++ b/docs/upgrade-notes.md" in dry.diff
    assert not (project / "docs" / "upgrade-notes.md").exists()
    outcome = proj.update(project=project, templates_root=upgraded_templates)
    assert not outcome.report.conflicts
    assert readme.read_text().startswith("Our intro line.\n")
    assert readme.read_text().endswith("# template v2\n")
    assert (project / "docs" / "upgrade-notes.md").read_text() == "# New in v2\n"
    assert not (project / "docs" / "runbook.md").exists()  # deleted by the user: stays deleted
    actions = {e.path: e.action for e in outcome.report.entries}
    assert actions["docs/runbook.md"] == "skipped" and actions["README.md"] == "merged"
    # the record now holds the upgraded render: a second update is a no-op
    again = proj.update(project=project, templates_root=upgraded_templates)
    assert again.diff == "" and set(again.report.summary()) <= {"unchanged", "skipped"}


def test_update_interrupted_after_some_writes_can_be_rerun(
    project: Path, upgraded_templates: Path
) -> None:
    """Files written before an interruption already equal the new render: a rerun completes."""
    spec = load_spec(project / "mlops.yaml")
    theirs = render(spec, root=upgraded_templates)
    (project / "Makefile").write_bytes(theirs.files["Makefile"].content)  # half-done run
    outcome = proj.update(project=project, templates_root=upgraded_templates)
    assert not outcome.report.conflicts
    assert (project / "Makefile").read_bytes() == theirs.files["Makefile"].content


# ------------------------------------------------------------------------------------------
# property: random user edits survive add-phase and update; overlaps are reported conflicts
# ------------------------------------------------------------------------------------------

EDITABLE = ("Makefile", "pyproject.toml", "README.md", ".github/CODEOWNERS", ".gitignore",
            "conf/base.yaml", "docs/roles.md")  # fmt: skip


# each example renders a project (~0.3 s): few examples, and no shrinking (it would take
# minutes); a failing example is printed as drawn, and it is short enough to read
PROJECT_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def user_edits(draw: st.DrawFn) -> list[tuple[str, str, int, int]]:
    """(file, kind, position, marker id) with kind insert/change/delete/newfile/rmfile."""
    count = draw(st.integers(1, 8))
    return [
        (
            draw(st.sampled_from(EDITABLE)),
            draw(st.sampled_from(["insert", "insert", "change", "delete", "newfile", "rmfile"])),
            draw(st.integers(0, 10_000)),
            n,
        )
        for n in range(count)
    ]


def apply_edits(root: Path, edits: list[tuple[str, str, int, int]]) -> dict[str, object]:
    """Apply the edits; returns what to check: markers per file, new files, removed files."""
    markers: dict[str, list[str]] = {}
    new_files: dict[str, str] = {}
    removed: set[str] = set()
    deleted: dict[str, list[str]] = {}
    for path, kind, pos, n in edits:
        target = root / path
        if kind == "newfile":
            rel = f"user/notes-{n}.txt"
            (root / "user").mkdir(exist_ok=True)
            (root / rel).write_text(f"user file {n}\n")
            new_files[rel] = f"user file {n}\n"
            continue
        if path in removed:
            continue
        if kind == "rmfile":
            target.unlink()
            removed.add(path)
            markers.pop(path, None)
            continue
        lines = target.read_text().splitlines(keepends=True)
        if not lines:
            continue
        i = pos % len(lines)
        marker = f"# user edit {n}\n"
        if kind == "insert":
            lines.insert(i, marker)
        elif kind == "change":
            if lines[i].startswith("# user edit"):
                continue
            lines[i] = marker
        elif kind == "delete":
            if lines[i].startswith("# user edit"):
                continue
            if lines[i].strip() and lines.count(lines[i]) == 1:
                deleted.setdefault(path, []).append(lines[i])
            del lines[i]
        if kind in ("insert", "change"):
            markers.setdefault(path, []).append(marker)
        target.write_text("".join(lines))
    return {"markers": markers, "new_files": new_files, "removed": removed, "deleted": deleted}


def check_merge(root: Path, outcome: proj.Outcome, expected: dict[str, object],
                base: dict[str, bytes], theirs: dict[str, bytes]) -> None:  # fmt: skip
    conflicts = {e.path for e in outcome.report.conflicts}
    markers: dict[str, list[str]] = expected["markers"]  # type: ignore[assignment]
    for path, lines in markers.items():
        text = (root / path).read_text()
        for marker in lines:  # every line the user wrote is still there, conflict or not
            assert marker in text, (path, marker)
    for path, content in expected["new_files"].items():  # type: ignore[attr-defined]
        assert (root / path).read_text() == content
    for path in expected["removed"]:  # type: ignore[attr-defined]
        assert not (root / path).exists(), path
    for path in theirs:
        target = root / path
        if path.startswith(".mlops/") or path == "mlops.yaml" or not target.exists():
            continue
        text = target.read_text()
        if path in conflicts:
            assert has_markers(text) or (root / (path + SIDE_SUFFIX)).exists(), path
            continue
        assert not has_markers(text), path
        # a line the user deleted (one the template kept as it was) stays deleted
        for line in expected["deleted"].get(path, []):  # type: ignore[attr-defined]
            was = base.get(path, b"").decode().splitlines(keepends=True).count(line)
            now = theirs[path].decode().splitlines(keepends=True).count(line)
            if was == now == 1:
                assert line not in text.splitlines(keepends=True), (path, line)
        if path not in markers and path in base and target.read_bytes() == base[path]:
            assert target.read_bytes() == theirs[path], f"{path}: untouched, must equal theirs"

        # every line the template added (vs. the previous render) is there when merged cleanly
        # (compared without indentation and trailing comma: tomlkit may re-indent list items)
        def norm(lines: list[str]) -> set[str]:
            return {x.strip().rstrip(",") for x in lines}

        old = norm(base.get(path, b"").decode().splitlines())
        merged = norm(text.splitlines())
        for line in norm(theirs[path].decode().splitlines()):
            if line not in old and not line.startswith(".PHONY"):
                assert line in merged, (path, line)


@PROJECT_SETTINGS
@given(edits=user_edits())
def test_random_user_edits_survive_add_phase(
    golden: Path, tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[str, str, int, int]]
) -> None:
    root = tmp_path_factory.mktemp("prop") / "demo"
    shutil.copytree(golden, root)
    phase = write_phase(tmp_path_factory.mktemp("phase") / "hello")
    expected = apply_edits(root, edits)
    base = {
        p: f.content for p, f in read_pristine((root / PRISTINE_FILE).read_text()).files.items()
    }
    outcome = proj.add_phase(str(phase), project=root)
    theirs = {
        p: f.content for p, f in read_pristine((root / PRISTINE_FILE).read_text()).files.items()
    }
    check_merge(root, outcome, expected, base, theirs)


@PROJECT_SETTINGS
@given(edits=user_edits())
def test_random_user_edits_survive_update(
    golden: Path,
    upgraded_templates: Path,
    tmp_path_factory: pytest.TempPathFactory,
    edits: list[tuple[str, str, int, int]],
) -> None:
    root = tmp_path_factory.mktemp("prop") / "demo"
    shutil.copytree(golden, root)
    expected = apply_edits(root, edits)
    base = {
        p: f.content for p, f in read_pristine((root / PRISTINE_FILE).read_text()).files.items()
    }
    outcome = proj.update(project=root, templates_root=upgraded_templates)
    theirs = {
        p: f.content for p, f in read_pristine((root / PRISTINE_FILE).read_text()).files.items()
    }
    check_merge(root, outcome, expected, base, theirs)
    # a line appended by the template right after a line the user changed at the end of a
    # file overlaps: such files must be the ones reported
    for path in EDITABLE:
        target = root / path
        if target.exists() and has_markers(target.read_text()):
            assert path in {e.path for e in outcome.report.conflicts}


def test_errors_leave_no_lock(project: Path) -> None:
    with pytest.raises(ProjectError), proj.project_lock(project):
        raise ProjectError("boom")
    assert not (project / proj.LOCK_FILE).exists()


@pytest.fixture(autouse=True)
def _no_stray_files() -> Iterator[None]:
    yield
    assert not Path("/tmp/abs").exists()


def test_spec_edit_keeps_the_users_formatting_and_comments() -> None:
    text = (
        "# our spec\n"
        "project:\n"
        "    name: 'Demo'   # quoted on purpose\n"
        "phases:\n"
        "    - data      # first\n"
        "    - training\n"
        "data:\n"
        "    source: {kind: synthetic, rows: 1000}\n"
        "    pii_columns: [email]\n"
        "    path: null\n"
    )
    edited = proj.edit_spec_text(text, "mlops.yaml", ["serving"], [("serving.mode", "batch")])
    before, after = text.splitlines(), edited.splitlines()
    assert [x for x in before if x not in after] == []  # every original line is still there
    added = [x for x in after if x not in before]
    assert [x.strip() for x in added] == ["- serving", "serving:", "mode: batch"]
    assert after.index(added[0].rstrip()) == after.index("    - training") + 1


def test_spec_without_phases_gets_the_defaults_plus_the_new_one() -> None:
    edited = proj.edit_spec_text("project:\n  name: Demo\n", "mlops.yaml", ["analysis"], [])
    spec = proj.validate_spec_text(edited, "mlops.yaml", [])
    assert spec.phases[-1] == "analysis" and "data" in spec.phases
    assert edited.startswith("project:\n  name: Demo\n")


def test_diff_and_json_output(project: Path, tmp_path: Path) -> None:
    folder = write_phase(tmp_path / "hello")
    code, out = mlops("add-phase", str(folder), "--project", str(project), "--dry-run",
                      "--format", "json")  # fmt: skip
    assert code == 0, out
    payload = json.loads(out[out.index("{") :])
    assert payload["dry_run"] is True and "+++ b/docs/hello.md" in payload["diff"]
    assert {"action": "created", "path": "docs/hello.md"} in payload["files"]
    assert not (project / "docs" / "hello.md").exists()


def write_cookiecutter(
    folder: Path, *, hook: bool = False, name: str = "{{ cookiecutter.package }}"
) -> Path:
    top = folder / "{{ cookiecutter.project_slug }}"
    (top / "tools" / name).mkdir(parents=True)
    (folder / "cookiecutter.json").write_text(json.dumps(
        {"project_slug": "placeholder", "package": "pkg", "ml_task": "regression",
         "greeting": "hello {{ cookiecutter.package }}"}
    ))  # fmt: skip
    (top / "tools" / name / "info.txt").write_text(
        "task={{ cookiecutter.ml_task }}\n{{ cookiecutter.greeting }}\n"
    )
    if hook:
        (folder / "hooks").mkdir()
        marker = folder.parent / "hook-ran"
        (folder / "hooks" / "post_gen_project.py").write_text(
            f"open({str(marker)!r}, 'w').write('ran')\n"
        )
    return folder


def test_cookiecutter_template_phase(project: Path, tmp_path: Path) -> None:
    folder = write_cookiecutter(tmp_path / "tools-kit", hook=True)
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 0, out
    spec = load_spec(project / "mlops.yaml")
    info = project / "tools" / spec.package / "info.txt"
    # the spec's values reached cookiecutter's extra_context (task, package)
    assert info.read_text() == f"task={spec.ml.task}\nhello {spec.package}\n"
    assert "hooks not run" in out and not (tmp_path / "hook-ran").exists()
    recorded = state(project)["custom_phases"]
    assert recorded == [
        {"name": "tools-kit", "path": str(folder.resolve()), "kind": "cookiecutter"}
    ]
    # update re-renders it; a user edit is kept, the template's change merged
    info.write_text("# ours\n" + info.read_text())
    top = folder / "{{ cookiecutter.project_slug }}" / "tools" / "{{ cookiecutter.package }}"
    (top / "info.txt").write_text((top / "info.txt").read_text() + "v2\n")
    code, out = mlops("update", "--project", str(project), "--trust")
    assert code == 0, out
    assert info.read_text() == f"# ours\ntask={spec.ml.task}\nhello {spec.package}\nv2\n"
    assert (tmp_path / "hook-ran").exists()  # --trust runs the hooks


def test_cookiecutter_template_cannot_escape(project: Path, tmp_path: Path) -> None:
    folder = write_cookiecutter(tmp_path / "evil-kit", name="{{ '%c%c' % (46, 46) }}")
    before = snapshot(project)
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert code == 2 and "refusing to write outside" in out
    assert snapshot(project) == before
    assert not (tmp_path / "info.txt").exists()


def test_phase_listed_by_hand_but_never_rendered_is_rendered(project: Path) -> None:
    spec_file = project / "mlops.yaml"
    spec_file.write_text(spec_file.read_text().replace("phases: [data, training]",
                                                       "phases: [data, training, serving]"))  # fmt: skip
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 0 and "already enabled" not in out, out
    assert "serving" in state(project)["phases"]  # type: ignore[operator]
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 0 and "already enabled" in out


# ------------------------------------------------------------------------------------------
# faults while add-phase writes: a full disk, a kill at any moment
# ------------------------------------------------------------------------------------------


def _uninterrupted(project: Path, tmp_path: Path, *args: str) -> dict[str, str]:
    twin = tmp_path / "twin"
    shutil.copytree(project, twin, symlinks=True)
    code, out = mlops(*args, "--project", str(twin))
    assert code == 0, out
    return snapshot(twin)


def _each_file_whole(now: dict[str, str], before: dict[str, str], after: dict[str, str]) -> None:
    """Every file is either as it was or as the finished run writes it: none half-written,
    none lost, nothing else left behind."""
    for rel, digest in now.items():
        assert digest in (before.get(rel), after.get(rel)), f"{rel} is neither before nor after"
    for rel in set(before) & set(after):
        assert rel in now, f"{rel} lost"


def test_disk_full_during_add_phase_loses_nothing_and_a_rerun_completes(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nA user's own paragraph.\n")
    before = snapshot(project)
    after = _uninterrupted(project, tmp_path, "add-phase", "serving")
    calls = {"n": 0}
    original = proj.write_file

    def fills_up(target: Path, entry: proj.File) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(target, entry)

    monkeypatch.setattr(proj, "write_file", fills_up)
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 2 and "No space left on device" in out and "3 of" in out, out
    _each_file_whole(snapshot(project), before, after)
    monkeypatch.undo()
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 0, out
    assert snapshot(project) == after
    assert "A user's own paragraph." in readme.read_text()


def _killed_runs(
    project: Path,
    tmp_path: Path,
    expected: tuple[dict[str, str], dict[str, str]],
    command: Callable[[Path], list[str]],
    seed: int,
) -> Iterator[tuple[Path, bytes]]:
    """Six copies of ``project``, each with ``command(copy)`` started in its own process and
    killed at a random moment (SIGINT and SIGKILL in turn); checks that every file of the copy is
    whole (as before or as after the run) and yields the copy with the run's stderr."""
    import random
    import signal
    import time

    before, after = expected
    rng = random.Random(seed)
    for attempt in range(6):
        work = tmp_path / f"killed{attempt}"
        shutil.copytree(project, work, symlinks=True)
        proc = subprocess.Popen(command(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.2, 1.5))
        proc.send_signal(signal.SIGKILL if attempt % 2 else signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        now = snapshot(work)
        leftovers = [r for r in now if r.endswith(".mlops-tmp") or r == ".mlops/lock"]
        _each_file_whole({r: d for r, d in now.items() if r not in leftovers}, before, after)
        yield work, err


@pytest.mark.slow
def test_add_phase_killed_at_any_moment_keeps_every_file_whole(
    project: Path, tmp_path: Path
) -> None:
    import sys

    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nA user's own paragraph.\n")
    committed(project)  # a git project: the rerun must not be refused as dirty
    expected = snapshot(project), _uninterrupted(project, tmp_path, "add-phase", "serving")
    command = [sys.executable, "-m", "mlops_template", "add-phase", "serving", "--quiet"]
    for work, err in _killed_runs(
        project, tmp_path, expected, lambda w: [*command, "--project", str(w)], seed=20261123
    ):
        assert b"Traceback" not in err
        # the next run takes over a lock left by the killed run (saying so) and finishes the
        # job with no manual step: the same tree as a run that was never interrupted
        left = (work / ".mlops/lock").exists()
        code, out = mlops("add-phase", "serving", "--project", str(work))
        assert code == 0, out
        assert not left or "took over" in out, out
        assert snapshot(work) == expected[1]


@pytest.mark.slow
def test_update_killed_at_any_moment_keeps_every_file_whole(
    project: Path, tmp_path: Path, upgraded_templates: Path
) -> None:
    """The same as for add-phase, for an update to a new template version. The run goes through
    the library (the CLI has no switch for another templates folder), in its own process."""
    import sys

    readme = project / "README.md"  # an edit far from the end, where the new version appends
    lines = readme.read_text().splitlines(keepends=True)
    readme.write_text("".join([*lines[:2], "A user's own paragraph.\n\n", *lines[2:]]))
    committed(project)  # a git project: the rerun must not be refused as dirty
    before = snapshot(project)
    twin = tmp_path / "twin"
    shutil.copytree(project, twin, symlinks=True)
    assert not proj.update(project=twin, templates_root=upgraded_templates).report.conflicts
    assert "A user's own paragraph." in (twin / "README.md").read_text()
    after = snapshot(twin)
    code = (
        "import sys; from pathlib import Path; from mlops_template import project as p\n"
        "p.update(project=Path(sys.argv[1]), templates_root=Path(sys.argv[2]))\n"
    )
    for work, _ in _killed_runs(
        project, tmp_path, (before, after),
        lambda w: [sys.executable, "-c", code, str(w), str(upgraded_templates)], seed=112326,
    ):  # fmt: skip
        # no manual step: a stale lock is taken over, the killed run's writes are its own
        assert not proj.update(project=work, templates_root=upgraded_templates).report.conflicts
        assert snapshot(work) == after


def test_a_second_phase_never_clobbers_the_first(project: Path, tmp_path: Path) -> None:
    """serving then monitoring: after both, every file equals a fresh render of the project with
    both phases, except the user's own edit, which is still there."""
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text() + "\nmine: ## my own target\n\techo mine\n")
    assert mlops("add-phase", "serving", "--project", str(project))[0] == 0
    code, out = mlops("add-phase", "monitoring", "--project", str(project))
    assert code == 0, out
    assert state(project)["phases"] == ["data", "training", "serving", "monitoring"]
    fresh = render(load_spec(project / "mlops.yaml"))
    for path in fresh:
        if path == "Makefile" or path.startswith(".mlops/"):
            continue
        assert (project / path).read_bytes() == fresh.files[path].content, path
    merged = makefile.read_text()
    assert "mine: ## my own target\n\techo mine\n" in merged
    assert "serve:" in merged and "monitor:" in merged


def test_update_records_the_versions_and_spec_it_rendered(
    project: Path, upgraded_templates: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_template import render as render_module
    from mlops_template import template_version

    old = state(project)
    monkeypatch.setattr(render_module, "__version__", "9.9.9")
    outcome = proj.update(project=project, templates_root=upgraded_templates)
    assert not outcome.report.conflicts
    new = state(project)
    # the version of the templates it rendered (here the upgraded copy), not the installed one
    upgraded = template_version(upgraded_templates)
    assert (new["tool_version"], new["template_version"]) == ("9.9.9", upgraded)
    assert (old["tool_version"], old["template_version"]) != ("9.9.9", upgraded)
    assert f"(template {upgraded})" in (project / "README.md").read_text()
    assert new["spec_hash"] == old["spec_hash"]  # the spec did not change
    assert (project / "docs" / "upgrade-notes.md").read_text() == "# New in v2\n"
    recorded = read_pristine((project / PRISTINE_FILE).read_text())
    assert recorded.text("docs/upgrade-notes.md") == "# New in v2\n"


def test_analysis_and_experimentation_added_to_a_project_without_them(project: Path) -> None:
    """The two phases a data scientist adds later, on a data+training project: exactly the files
    of a fresh render with them, the notebook hook in pre-commit, and the result lints clean."""
    from mlops_template.lint import lint

    for phase in ("experimentation", "analysis"):
        code, out = mlops("add-phase", phase, "--project", str(project))
        assert code == 0, out
    fresh = render(load_spec(project / "mlops.yaml"))
    assert {p for p in fresh if not p.startswith(".mlops/")} <= set(snapshot(project))
    for path in fresh:
        if not path.startswith(".mlops/"):
            assert (project / path).read_bytes() == fresh.files[path].content, path
    assert "nbstripout" in (project / ".pre-commit-config.yaml").read_text()
    assert (project / "notebooks" / "01-eda.ipynb").is_file()
    assert (project / "src" / "demo_project" / "analysis" / "report.py").is_file()
    findings = [f for f in lint(project).findings if f.severity.value != "info"]
    assert not findings, findings


# ------------------------------------------------------------------------------------------
# issue 19: no merge goes wrong quietly (each test: an older render, user edits, update)
# ------------------------------------------------------------------------------------------


def committed(root: Path, message: str = "generated") -> None:
    if not (root / ".git").exists():
        git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def test_update_refuses_a_file_with_committed_conflict_markers(
    project: Path, upgraded_templates: Path
) -> None:
    makefile = project / "Makefile"
    lines = makefile.read_text().splitlines(keepends=True)
    lines[3:3] = ["<<<<<<< yours\n", "mine:\n", "=======\n", "theirs:\n", ">>>>>>> template\n"]
    makefile.write_text("".join(lines))
    committed(project)
    before = snapshot(project)
    with pytest.raises(ProjectError) as caught:
        proj.update(project=project, templates_root=upgraded_templates)
    assert "Makefile:4" in str(caught.value) and "conflict markers" in str(caught.value)
    assert snapshot(project) == before
    code, out = mlops("update", "--project", str(project))  # the CLI: exit 2, file:line
    assert code == 2 and "Makefile:4" in out, out
    assert snapshot(project) == before
    code, out = mlops("lint", str(project), "--select", "MLO604")
    assert code == 1 and "Makefile:4" in out and "MLO604" in out, out


def test_update_of_a_crlf_checkout_conflicts_only_where_both_changed(
    project: Path, upgraded_templates: Path
) -> None:
    """A Windows checkout (core.autocrlf=true): files untouched by the user take the new
    template, the user's edit merges, and every file keeps its CRLF line ends."""
    committed(project)
    git(project, "config", "core.autocrlf", "true")
    for path in project.rglob("*"):  # what a checkout with autocrlf writes
        rel = path.relative_to(project).as_posix()
        if path.is_file() and not rel.startswith((".git/", ".mlops/")):
            data = path.read_bytes()
            if b"\0" not in data:
                path.write_bytes(data.replace(b"\n", b"\r\n"))
    readme = project / "README.md"
    readme.write_bytes(b"Our intro line.\r\n" + readme.read_bytes())
    committed(project, "our intro")
    outcome = proj.update(project=project, templates_root=upgraded_templates)
    assert not outcome.report.conflicts, outcome.report.conflicts
    actions = {e.path: e.action for e in outcome.report.entries}
    assert actions["README.md"] == "merged" and actions["Makefile"] == "updated"
    text = readme.read_bytes()
    assert text.startswith(b"Our intro line.\r\n") and text.endswith(b"# template v2\r\n")
    for rel in ("README.md", "Makefile", "pyproject.toml"):
        data = (project / rel).read_bytes()
        assert data.count(b"\r\n") == data.count(b"\n"), f"{rel} has mixed line ends"


def test_template_version_moves_whenever_a_template_changes(tmp_path: Path) -> None:
    from mlops_template import TEMPLATE_RELEASE, TEMPLATE_VERSION, template_version

    copy = tmp_path / "templates"
    shutil.copytree(templates_dir(), copy, ignore=shutil.ignore_patterns("__pycache__"))
    # (computed afresh: TEMPLATE_VERSION is computed once per process, and the templates of
    # this working tree may have changed since)
    same = template_version(copy)
    assert same == template_version() and same.startswith(TEMPLATE_RELEASE + "+")
    assert TEMPLATE_VERSION.startswith(TEMPLATE_RELEASE + "+")
    makefile = copy / "base" / "Makefile.jinja"
    original = makefile.read_bytes()
    makefile.write_bytes(original + b"# one more line\n")
    assert template_version(copy) != same
    makefile.write_bytes(original)
    assert template_version(copy) == same
    (copy / "base" / "docs" / "new.md").write_text("# a new template file\n")
    assert template_version(copy) != same
    # a project records the version it was rendered from; README and state agree
    tree = render(load_spec(name="Versioned", phases=["data"]))
    recorded = json.loads(tree.text(STATE_FILE))["template_version"]
    assert recorded.startswith(TEMPLATE_RELEASE + "+")
    assert f"(template {recorded})" in tree.text("README.md")


def test_update_records_the_new_template_version_of_an_old_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_template import TEMPLATE_VERSION
    from mlops_template import render as render_module

    project = tmp_path / "old"
    with monkeypatch.context() as patch:  # rendered by the tool whose version never moved
        patch.setattr(render_module, "TEMPLATE_VERSION", "2026.11.1")
        apply_new(render(load_spec(name="Old", phases=["data"])), project)
    readme = project / "README.md"
    assert "(template 2026.11.1)" in readme.read_text()
    committed(project)
    code, out = mlops("lint", str(project), "--select", "MLO602")
    assert "2026.11.1" in out and TEMPLATE_VERSION in out, out
    code, out = mlops("update", "--project", str(project))
    assert code == 0 and f"template 2026.11.1 -> {TEMPLATE_VERSION}" in out, out
    assert state(project)["template_version"] == TEMPLATE_VERSION
    assert f"(template {TEMPLATE_VERSION})" in readme.read_text()
    code, out = mlops("lint", str(project), "--select", "MLO602")
    assert "MLO602" not in out, out


def test_rerun_after_an_interrupted_update_finishes_it_without_allow_dirty(
    project: Path, tmp_path: Path, upgraded_templates: Path
) -> None:
    """A kill during the writes leaves some files written, a temporary file and the lock: the
    rerun takes the lock over, sees that the only changes are the killed update's own, and
    finishes; a change of the user's own is still refused."""
    import socket

    readme = project / "README.md"
    readme.write_text("Our intro line.\n" + readme.read_text())
    committed(project)
    twin = tmp_path / "twin"
    shutil.copytree(project, twin, symlinks=True)
    finished = proj.update(project=twin, templates_root=upgraded_templates)
    assert not finished.report.conflicts
    after = snapshot(twin)
    written = sorted(e.path for e in finished.report.entries
                     if e.action in ("updated", "merged", "created"))  # fmt: skip
    assert "README.md" in written and len(written) > 4
    for rel in written[: len(written) // 2]:  # killed half-way through the writes
        target = project / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((twin / rel).read_bytes())
    (project / "README.md").write_bytes((twin / "README.md").read_bytes())  # a merged file
    (project / ".Makefile.abc123.mlops-tmp").write_text("half a Makef")
    mine = project / "mine.txt"
    mine.write_text("my own uncommitted work\n")
    with pytest.raises(ProjectError, match="uncommitted changes"):
        proj.update(project=project, templates_root=upgraded_templates)
    mine.unlink()
    (project / proj.LOCK_FILE).write_text(
        json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname(), "since": 0})
    )
    outcome = proj.update(project=project, templates_root=upgraded_templates)
    assert any("took over" in n for n in outcome.notes), outcome.notes
    assert any("finishing an interrupted update" in n for n in outcome.notes), outcome.notes
    assert not outcome.report.conflicts
    assert snapshot(project) == after


def test_template_changes_reach_a_file_the_user_renamed(
    project: Path, tmp_path: Path, upgraded_templates: Path
) -> None:
    committed(project)
    (project / "docs" / "team").mkdir()
    git(project, "mv", "docs/roles.md", "docs/team/roles.md")
    moved = project / "docs" / "team" / "roles.md"
    moved.write_text("Our own first line.\n" + moved.read_text())
    committed(project, "our layout")
    outcome = proj.update(project=project, templates_root=upgraded_templates)
    assert not outcome.report.conflicts
    entries = {e.path: e for e in outcome.report.entries}
    assert entries["docs/roles.md"].action == "skipped"
    assert "renamed by you to docs/team/roles.md" in entries["docs/roles.md"].detail
    assert entries["docs/team/roles.md"].action == "merged"
    assert "renamed from docs/roles.md" in entries["docs/team/roles.md"].detail
    text = moved.read_text()
    assert text.startswith("Our own first line.\n") and text.endswith("# template v2\n")
    assert not (project / "docs" / "roles.md").exists()
    # the record now knows the render: a second update changes nothing
    committed(project, "updated")
    again = proj.update(project=project, templates_root=upgraded_templates)
    assert again.diff == "" and not again.report.conflicts
    # a later template change still reaches the renamed file (found from the first render)
    later = tmp_path / "later"
    shutil.copytree(upgraded_templates, later)
    roles = later / "base" / "docs" / "roles.md.jinja"
    roles.write_text(roles.read_text() + "# template v3\n")
    third = proj.update(project=project, templates_root=later)
    assert not third.report.conflicts and moved.read_text().endswith("# template v3\n")
    assert moved.read_text().startswith("Our own first line.\n")


def test_conflict_rej_writes_the_templates_side_next_to_the_file(
    project: Path, tmp_path: Path
) -> None:
    folder = write_phase(tmp_path / "hello")
    assert mlops("add-phase", str(folder), "--project", str(project))[0] == 0
    mine = project / "docs" / "hello.md"
    mine.write_text(mine.read_text().replace("line 2", "line 2, mine"))
    phase_file = folder / "files" / "docs" / "hello.md"
    phase_file.write_text(phase_file.read_text().replace("line 2", "line 2, the template's"))
    code, out = mlops("update", "--project", str(project), "--conflict", "rej")
    assert code == 1 and "1 file has conflicts: docs/hello.md" in out, out
    assert "docs/hello.md.rej" in out and "markers" not in out, out
    assert "line 2, mine" in mine.read_text() and not has_markers(mine.read_text())
    rej = (project / "docs" / "hello.md.rej").read_text()
    assert "-line 2, mine\n+line 2, the template's\n" in rej
    code, out = mlops("lint", str(project), "--select", "MLO604")
    assert code == 0, out
    code, out = mlops("update", "--project", str(project), "--conflict", "nonsense")
    assert code == 2 and "--conflict" in out, out


def test_temporary_files_of_a_killed_write_do_not_make_the_tree_dirty(project: Path) -> None:
    committed(project)
    (project / ".mlops" / ".lock.k1ll3d.mlops-tmp").write_text('{"pid": 1')
    (project / "docs" / ".runbook.md.x9.mlops-tmp").write_text("half a file")
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 0, out
    assert not list(project.rglob("*.mlops-tmp"))  # removed by the run


def test_rename_and_interrupted_update_in_a_project_inside_a_bigger_repository(
    golden: Path, tmp_path: Path, upgraded_templates: Path
) -> None:
    """git reports paths from the repository's root: a project in a subfolder (a monorepo)
    gets the same rename detection and interrupted-update recovery."""
    repo = tmp_path / "mono"
    project = repo / "services" / "demo"
    shutil.copytree(golden, project, symlinks=True)
    (repo / "other.txt").write_text("another team's file\n")
    committed(repo)
    (project / "docs" / "team").mkdir()
    git(project, "mv", "docs/roles.md", "docs/team/roles.md")
    committed(repo, "our layout")
    twin = tmp_path / "twin"
    shutil.copytree(repo, twin, symlinks=True)
    finished = proj.update(project=twin / "services" / "demo", templates_root=upgraded_templates)
    assert not finished.report.conflicts
    moved = {e.path: e.action for e in finished.report.entries}
    assert moved["docs/team/roles.md"] == "updated", moved
    after = snapshot(twin / "services" / "demo")
    # killed after its first writes: the rerun finishes without --allow-dirty
    for rel in ("Makefile", "docs/team/roles.md"):
        (project / rel).write_bytes((twin / "services" / "demo" / rel).read_bytes())
    (repo / "other.txt").write_text("changed outside the project\n")  # not the project's business
    outcome = proj.update(project=project, templates_root=upgraded_templates)
    assert any("finishing an interrupted update" in n for n in outcome.notes), outcome.notes
    assert snapshot(project) == after


def test_add_phase_in_a_crlf_checkout_keeps_crlf_everywhere(project: Path) -> None:
    for rel in ("mlops.yaml", "Makefile", "pyproject.toml", "README.md"):
        path = project / rel
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 0, out
    for rel in ("mlops.yaml", "Makefile", "pyproject.toml", "README.md"):
        data = (project / rel).read_bytes()
        assert data.count(b"\r\n") == data.count(b"\n"), f"{rel} has mixed line ends"
    assert b"training, serving]\r\n" in (project / "mlops.yaml").read_bytes()


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs in the killed process."""


def test_rerun_after_a_killed_add_phase_finishes_it_without_allow_dirty(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan a run records in its lock before writing lets the rerun tell the killed run's
    writes (mlops.yaml and merged files included) from the user's own changes."""
    import socket

    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nA user's own paragraph.\n")
    committed(project)
    after = _uninterrupted(project, tmp_path, "add-phase", "serving")
    held: dict[str, object] = {}
    original_record, original_write = proj.Lock.record_plan, proj.write_file
    calls = {"n": 0}

    def record(self: proj.Lock, plan: dict[str, str | None]) -> None:
        original_record(self, plan)
        held.update(self.info)

    def write(target: Path, entry: proj.File) -> None:
        calls["n"] += 1
        if calls["n"] == 5:  # four files written: killed before the fifth
            raise _Killed
        original_write(target, entry)

    monkeypatch.setattr(proj.Lock, "record_plan", record)
    monkeypatch.setattr(proj, "write_file", write)
    with pytest.raises(_Killed):
        proj.add_phase("serving", project=project)
    monkeypatch.undo()
    # what a SIGKILL leaves: the lock with the plan, of a process that is gone
    (project / proj.LOCK_FILE).write_text(json.dumps({**held, "pid": 2**22 + 12345}))
    assert held["host"] == socket.gethostname() and "plan" in held
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 0, out
    assert "took over" in out and "finishing an interrupted run" in out, out
    assert snapshot(project) == after


def test_a_full_disk_when_recording_the_plan_writes_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    def full(target: Path, entry: proj.File) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    before = snapshot(project)
    monkeypatch.setattr(proj, "_replace_file", full)
    code, out = mlops("add-phase", "serving", "--project", str(project))
    assert code == 2 and "cannot record the planned writes" in out and "nothing" in out, out
    assert snapshot(project) == before and not (project / proj.LOCK_FILE).exists()
