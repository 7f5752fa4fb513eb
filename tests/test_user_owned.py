"""User-owned files (a phase manifest's ``user_owned``): generated once, then the team's own.

`mlops update` and `mlops add-phase` take the template's new version of such a file only while it
is still exactly as generated; once edited it is ``kept`` byte for byte (no merge, no conflict,
even where the template changed the same lines); once deleted it stays deleted.

The template change is simulated the other way round from `test_add_phase_update.py`: the project
is rendered by an *older* copy of the templates (the first line of every user-owned template and
of one template-owned file differs), then updated by the installed templates, through the CLI.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlops_template import project as proj
from mlops_template.apply import apply_new, recorded_user_owned
from mlops_template.cli import app
from mlops_template.errors import TemplateError
from mlops_template.markers import SIDE_SUFFIX, has_markers
from mlops_template.merge import merge_file, merge_trees
from mlops_template.phases import load_catalogue, load_phase, templates_dir
from mlops_template.render import STATE_FILE, render
from mlops_template.spec import load_spec
from mlops_template.tree import File, Tree

runner = CliRunner()
MODELS = "src/demo/ml/models.py"
#: a template-owned file changed the same way, to show the same edit there would conflict
TRAIN = "src/demo/ml/train.py"
OLD_MARK = "# (first line of the previous template version)\n"


def mlops(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def payload(out: str) -> dict[str, object]:
    # the JSON document, without the error message a conflict appends after it
    data, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    assert isinstance(data, dict)
    return data


def entries(out: str) -> dict[str, dict[str, object]]:
    files = payload(out)["files"]
    assert isinstance(files, list)
    return {str(e["path"]): e for e in files}


def template_source(root: Path, rel: str) -> Path:
    """The template file that renders ``rel`` (package ``demo``) in a templates folder."""
    unrendered = rel.replace("src/demo/", "src/{{ package }}/", 1)
    for phase in sorted((root / "phases").iterdir()):
        for candidate in (phase / "files" / unrendered, phase / "files" / f"{unrendered}.jinja"):
            if candidate.is_file():
                return candidate
    raise AssertionError(f"no template renders {rel}")


def owned_paths() -> list[str]:
    tree = render(load_spec(name="Demo", phases=["data", "training"]))
    return sorted(recorded_user_owned(tree))


@pytest.fixture(scope="module")
def old_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The installed templates with another first line in every user-owned file and in train.py:
    the 'previous template version' the project was generated with."""
    root = tmp_path_factory.mktemp("old") / "templates"
    shutil.copytree(templates_dir(), root, ignore=shutil.ignore_patterns("__pycache__"))
    for rel in [*owned_paths(), TRAIN]:
        source = template_source(root, rel)
        lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
        source.write_text(OLD_MARK + "".join(lines[1:]), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def old_project(tmp_path_factory: pytest.TempPathFactory, old_templates: Path) -> Path:
    dest = tmp_path_factory.mktemp("project") / "demo"
    apply_new(render(load_spec(name="Demo", phases=["data", "training"]), root=old_templates), dest)
    return dest


@pytest.fixture
def project(old_project: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "demo"
    shutil.copytree(old_project, dest)
    return dest


def new_render(root: Path) -> Tree:
    return render(load_spec(root / "mlops.yaml"))


def edit_first_line(path: Path, text: str) -> bytes:
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text(text + "".join(lines[1:]), encoding="utf-8")
    return path.read_bytes()


# ------------------------------------------------------------------------------------------
# the manifests and the record
# ------------------------------------------------------------------------------------------


def test_manifests_declare_features_and_models_as_user_owned() -> None:
    catalogue = load_catalogue()
    assert "src/{{ package }}/ml/models.py" in catalogue["training"].user_owned
    assert "src/{{ package }}/data/features.py" in catalogue["data"].user_owned
    tree = render(load_spec(name="Demo", phases=["data", "training"]))
    state = json.loads(tree.text(STATE_FILE))
    # only what this render generates is recorded (features.py once the data phase ships it)
    assert MODELS in state["user_owned"]
    assert set(state["user_owned"]) <= set(tree.files)
    data_only = render(load_spec(name="Demo", phases=["data"]))
    assert MODELS not in recorded_user_owned(data_only)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"src/x/*.py"', "is not a relative file path"),
        ('"/src/x.py"', "is not a relative file path"),
        ('"src/../x.py"', "is not a relative file path"),
        ('"src/pkg/"', "is not a relative file path"),
        ("3", "must be a file path string"),
    ],
)
def test_a_bad_user_owned_entry_is_located(tmp_path: Path, value: str, message: str) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "phase.yaml").write_text(
        f"name: bad\ndescription: d\nowner: ml_engineer\nuser_owned:\n  - ok.py\n  - {value}\n"
    )
    with pytest.raises(TemplateError) as caught:
        load_phase(folder)
    text = caught.value.render()
    assert f"{folder / 'phase.yaml'}:6:5 user_owned[1]" in text and message in text, text


def test_new_reports_the_user_owned_files(tmp_path: Path) -> None:
    code, out = mlops("new", str(tmp_path / "demo"), "--name", "Demo", "--phases",
                      "data,training", "--format", "json")  # fmt: skip
    assert code == 0, out
    files = entries(out)
    assert files[MODELS] == {"action": "created", "path": MODELS, "user_owned": True}
    assert "user_owned" not in files[TRAIN]
    code, out = mlops("new", str(tmp_path / "text"), "--name", "Demo", "--phases",
                      "data,training")  # fmt: skip
    assert code == 0, out
    assert "user-owned" in out and MODELS in out


# ------------------------------------------------------------------------------------------
# the merge rule, on its own
# ------------------------------------------------------------------------------------------

BASE = File(b"line 1\nline 2\nline 3\n")
THEIRS = File(b"line 1 (template v2)\nline 2\nline 3\n")
OURS = File(b"line 1 (mine)\nline 2\nline 3\n")


def test_merge_rule_pristine_takes_the_template() -> None:
    [decision] = merge_file("f.py", BASE, BASE, THEIRS, user_owned=True)
    assert decision.action == "updated" and decision.content == THEIRS


def test_merge_rule_edited_is_kept_where_a_template_owned_file_conflicts() -> None:
    [decision] = merge_file("f.py", BASE, OURS, THEIRS, user_owned=True)
    assert decision.action == "kept" and decision.content is None and not decision.delete
    assert "user-owned" in decision.detail and "not merged" in decision.detail
    [control] = merge_file("f.py", BASE, OURS, THEIRS)
    assert control.action == "conflict"  # the same edits in a template-owned file
    # edited in other lines than the template changed: still kept as is, not merged
    mine = File(b"line 1\nline 2\nline 3 (mine)\n")
    [decision] = merge_file("f.py", BASE, mine, THEIRS, user_owned=True)
    assert decision.action == "kept" and decision.content is None
    [control] = merge_file("f.py", BASE, mine, THEIRS)
    assert control.action == "merged"
    # the template did not change it: kept (not 'unchanged'), so the report names it
    [decision] = merge_file("f.py", BASE, OURS, BASE, user_owned=True)
    assert decision.action == "kept" and decision.detail == "user-owned, edited by you: kept"


def test_merge_rule_deleted_stays_deleted() -> None:
    [decision] = merge_file("f.py", BASE, None, THEIRS, user_owned=True)
    assert decision.action == "skipped" and decision.content is None
    assert decision.detail == "user-owned, deleted by you: stays deleted"


def test_merge_rule_other_cases() -> None:
    # a new user-owned file: created; the user's own file already there: kept + side file
    [created] = merge_file("f.py", None, None, THEIRS, user_owned=True)
    assert created.action == "created" and created.content == THEIRS
    kept, side = merge_file("f.py", None, OURS, THEIRS, user_owned=True)
    assert (kept.action, kept.content) == ("kept", None)
    assert (side.path, side.action, side.content) == ("f.py" + SIDE_SUFFIX, "created", THEIRS)
    # no longer generated: removed only as generated, kept once edited
    [removed] = merge_file("f.py", BASE, BASE, None, user_owned=True)
    assert removed.action == "removed" and removed.delete
    [kept] = merge_file("f.py", BASE, OURS, None, user_owned=True)
    assert kept.action == "kept" and not kept.delete
    # CRLF checkout of a pristine file: still pristine
    crlf = File(BASE.content.replace(b"\n", b"\r\n"))
    [updated] = merge_file("f.py", BASE, crlf, THEIRS, user_owned=True)
    assert updated.action == "updated"
    assert updated.content == File(THEIRS.content.replace(b"\n", b"\r\n"))


def test_merge_trees_flags_user_owned_decisions_and_renames() -> None:
    base = Tree({"a.py": BASE, "b.py": BASE})
    theirs = Tree({"a.py": THEIRS, "b.py": THEIRS})
    decisions = merge_trees(base, {"a.py": OURS, "b.py": OURS}, theirs,
                            user_owned=frozenset({"a.py"}))  # fmt: skip
    by_path = {d.path: d for d in decisions}
    assert by_path["a.py"].user_owned and by_path["a.py"].action == "kept"
    assert not by_path["b.py"].user_owned and by_path["b.py"].action == "conflict"
    # renamed by the user (git mv a.py c.py) and edited: kept at the new path
    moved = merge_trees(base, {"c.py": OURS, "b.py": BASE}, theirs,
                        renames={"a.py": "c.py"}, user_owned=frozenset({"a.py"}))  # fmt: skip
    by_path = {d.path: d for d in moved}
    assert by_path["c.py"].action == "kept" and by_path["c.py"].user_owned


# ------------------------------------------------------------------------------------------
# mlops update / add-phase through the CLI
# ------------------------------------------------------------------------------------------


def test_the_old_templates_really_change_the_first_lines(project: Path) -> None:
    theirs = new_render(project)
    for rel in [*owned_paths(), TRAIN]:
        assert (project / rel).read_text().startswith(OLD_MARK)
        assert not theirs.text(rel).startswith(OLD_MARK)


def test_update_takes_the_template_while_pristine(project: Path) -> None:
    code, out = mlops("update", "--project", str(project), "--format", "json")
    assert code == 0, out
    files = entries(out)
    theirs = new_render(project)
    for rel in owned_paths():
        assert (project / rel).read_bytes() == theirs.files[rel].content
        assert files[rel]["action"] == "updated" and files[rel]["user_owned"] is True
        assert "still as generated" in str(files[rel]["detail"])


def test_update_keeps_an_edited_file_byte_for_byte_without_conflict(project: Path) -> None:
    models = project / MODELS
    mine = edit_first_line(models, '"""Our own model families (the team edited this line)."""\n')
    train = project / TRAIN
    edit_first_line(train, '"""Our training notes."""\n')
    code, out = mlops("update", "--project", str(project), "--format", "json")
    # the template-owned file with the same kind of edit conflicts; the user-owned one never
    assert code == 1, out
    files = entries(out)
    assert files[TRAIN]["action"] == "conflict" and has_markers(train.read_text())
    assert files[MODELS] == {
        "action": "kept", "path": MODELS, "user_owned": True,
        "detail": "user-owned, edited by you: kept as is; the template's changes to its example "
                  "are not merged into it",
    }  # fmt: skip
    assert models.read_bytes() == mine
    assert payload(out)["summary"]["kept"] == 1  # type: ignore[index]


def test_update_of_an_edited_user_owned_file_alone_exits_0(project: Path) -> None:
    models = project / MODELS
    mine = edit_first_line(models, "# ours\n")
    code, out = mlops("update", "--project", str(project))
    assert code == 0, out
    assert "kept" in out and "user-owned, edited by you" in out, out
    assert "conflict" not in out
    assert models.read_bytes() == mine
    # the record now holds the new render: the next update keeps it again, still no conflict
    code, out = mlops("update", "--project", str(project), "--format", "json")
    assert code == 0, out
    assert entries(out)[MODELS]["action"] == "kept"
    assert models.read_bytes() == mine
    assert MODELS in json.loads((project / STATE_FILE).read_text())["user_owned"]


def test_update_never_resurrects_a_deleted_user_owned_file(project: Path) -> None:
    (project / MODELS).unlink()
    code, out = mlops("update", "--project", str(project), "--format", "json")
    assert code == 0, out
    assert entries(out)[MODELS]["action"] == "skipped"
    assert not (project / MODELS).exists()
    code, out = mlops("update", "--project", str(project))
    assert code == 0 and not (project / MODELS).exists(), out


def test_dry_run_says_kept_and_writes_nothing(project: Path) -> None:
    mine = edit_first_line(project / MODELS, "# ours\n")
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    code, out = mlops("update", "--project", str(project), "--dry-run")
    assert code == 0, out
    assert "dry run, nothing written" in out
    line = next(x for x in out.splitlines() if MODELS in x)
    assert line.split()[0] == "kept" and "user-owned" in line, out
    assert f"+++ b/{MODELS}" not in out  # no diff shown for it: nothing will change there
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before
    assert (project / MODELS).read_bytes() == mine


def test_add_phase_keeps_an_edited_user_owned_file(project: Path) -> None:
    mine = edit_first_line(project / MODELS, "# ours\n")
    code, out = mlops("add-phase", "serving", "--project", str(project), "--format", "json")
    assert code == 0, out
    files = entries(out)
    assert files[MODELS]["action"] == "kept" and files[MODELS]["user_owned"] is True
    assert (project / MODELS).read_bytes() == mine
    assert (project / "src" / "demo" / "serving").is_dir()


def test_an_interrupted_update_is_recognised_with_user_owned_files(
    project: Path, tmp_path: Path
) -> None:
    """interrupted_update replays the same merge: a kept file must not look like a stray change."""
    import subprocess

    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    edit_first_line(project / MODELS, "# ours\n")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "generated"]):
        subprocess.run(["git", *args], cwd=project, check=True, capture_output=True,
                       env={**__import__("os").environ, **env})  # fmt: skip
    theirs = new_render(project)
    (project / TRAIN).write_bytes(theirs.files[TRAIN].content)  # a half-done run
    outcome = proj.update(project=project)
    assert not outcome.report.conflicts
    assert any("interrupted update" in n for n in outcome.notes), outcome.notes
    kept = [e for e in outcome.report.entries if e.path == MODELS]
    assert kept and kept[0].action == "kept" and kept[0].user_owned


# ------------------------------------------------------------------------------------------
# lint: the interface of the user-owned files (MLO701-MLO703)
# ------------------------------------------------------------------------------------------

FEATURES = "src/demo/data/features.py"


@pytest.fixture(scope="module")
def fresh_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("fresh") / "demo"
    apply_new(render(load_spec(name="Demo", phases=["data", "training"])), dest)
    return dest


@pytest.fixture
def linted(fresh_project: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "demo"
    shutil.copytree(fresh_project, dest)
    return dest


def findings(root: Path, rule: str) -> list[tuple[str, int | None, int | None, str]]:
    from mlops_template.lint import lint

    return [(f.file, f.line, f.column, f.message)
            for f in lint(root, select=[rule]).findings if f.rule == rule]  # fmt: skip


@pytest.mark.parametrize(
    "spec_args",
    [{"name": "Demo", "phases": ["data", "training"]},
     {"name": "Demo", "phases": ["data", "training"],
      "sets": ["data.source=sklearn:breast_cancer"]}],
    ids=["synthetic", "sklearn"],
)  # fmt: skip
def test_generated_user_owned_files_pass_their_rules(
    tmp_path: Path, spec_args: dict[str, Any]
) -> None:
    dest = tmp_path / "demo"
    apply_new(render(load_spec(**spec_args)), dest)
    for rule in ("MLO701", "MLO702", "MLO703"):
        assert findings(dest, rule) == [], rule


FEATURES_OK = '''"""Ours."""

from __future__ import annotations

import narwhals as nw


def aggregate_features(tables):
    return None


def derive_features(frame, *, scale=1.0):
    return frame


def build_features(tables, extra=None, *args, **kwargs):
    return derive_features(tables["customers"])
'''


def test_features_interface_findings_are_located(linted: Path) -> None:
    path = linted / FEATURES
    path.write_text(FEATURES_OK)
    assert findings(linted, "MLO701") == []  # extra parameters with defaults are fine
    path.write_text(
        FEATURES_OK.replace("def derive_features(frame, *, scale=1.0)",
                            "async def derive_features(frame, *, scale)")
        .replace("def aggregate_features(tables):\n    return None\n",
                 "aggregate_features = None\n")
        .replace("def build_features(tables, extra=None,", "def build_features(tabs, extra,")
    )  # fmt: skip
    found = findings(linted, "MLO701")
    where = {(line, column) for _, line, column, _ in found}
    messages = " | ".join(m for *_, m in found)
    assert (8, 1) in where and "`aggregate_features` is not a function definition" in messages
    assert (11, 1) in where and "`derive_features` is `async def`" in messages
    assert (11, 37) in where and "required keyword-only parameter `scale`" in messages
    assert (15, 20) in where and "parameter 1 is `tabs`, not `tables`" in messages
    assert (15, 26) in where and "extra required parameter `extra`" in messages
    # a missing function: at the top of the file, with the signature to write as the fix
    path.write_text(FEATURES_OK.replace("def derive_features", "def derive"))
    from mlops_template.lint import lint

    [finding] = lint(linted, select=["MLO701"]).findings
    assert (finding.line, finding.column) == (1, 1)
    assert "`derive_features` is not defined" in finding.message
    assert "def derive_features(frame: nw.LazyFrame) -> nw.LazyFrame:" in finding.fix


def test_features_syntax_error_and_noqa(linted: Path) -> None:
    path = linted / FEATURES
    path.write_text(FEATURES_OK.replace("def derive_features(frame", "def derive_features(frame:"))
    [(file, line, _, message)] = findings(linted, "MLO701")
    assert file == FEATURES and line == 12 and message.startswith("cannot parse")
    assert findings(linted, "MLO702") == []  # reported once, by MLO701
    path.write_text(FEATURES_OK.replace("def derive_features(frame,",
                                        "def derive_features(df,  # noqa: MLO701\n"))  # fmt: skip
    assert findings(linted, "MLO701") == []


def test_features_deleted_after_generation_is_reported(linted: Path) -> None:
    (linted / FEATURES).unlink()
    [(file, line, _, message)] = findings(linted, "MLO701")
    assert file == FEATURES and line is None and "is missing; it is user-owned" in message
    (linted / MODELS).unlink()
    [(file, _, _, message)] = findings(linted, "MLO703")
    assert file == MODELS and "is missing" in message


def test_features_imports_must_be_self_contained(linted: Path) -> None:
    path = linted / FEATURES
    path.write_text(FEATURES_OK.replace(
        "import narwhals as nw\n",
        "import narwhals as nw\nimport polars as pl\nimport json\n"
        "from . import dates\nfrom ..common.config import load_config\nimport demo.data.dates\n"
        "from demo.common import config\n\n\ndef _late():\n    from .dates import expand\n",
    ))  # fmt: skip
    found = findings(linted, "MLO702")
    assert [(line, column) for _, line, column, _ in found] == [
        (8, 1),
        (9, 1),
        (10, 1),
        (11, 1),
        (15, 5),
    ]
    messages = [m for *_, m in found]
    assert "`from . import dates` is a relative import" in messages[0]
    assert "imports the project's package `demo`" in messages[2]
    assert "imports the project's package `demo`" in messages[3]


MODELS_OK = '''"""Ours."""

from dataclasses import dataclass
from typing import Any

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class ModelFamily:
    name: str
    tasks: frozenset[str]
    framework: str
    make: Any
    space: Any
    scale: bool = False
    requires: tuple[str, ...] = ()
    register_onnx: Any = None

    def installed(self) -> bool:
        return True


REGISTRY = (ModelFamily("a", frozenset(TASKS), "sklearn", make=print, space={}),)
REGISTRY = (*REGISTRY, ModelFamily(**{"name": "b"}))


class RegistryError(ValueError):
    pass


def get(name):
    return REGISTRY[0]


def select(task, framework, names=None):
    return list(REGISTRY)
'''


def test_models_registry_shape(linted: Path) -> None:
    path = linted / MODELS
    path.write_text(MODELS_OK)
    assert findings(linted, "MLO703") == []  # positional fields and **kwargs are accepted
    path.write_text(
        MODELS_OK.replace("TASKS = (", "KINDS = (").replace("    register_onnx: Any = None\n", "")
        .replace("    def installed(self) -> bool:", "    def ok(self) -> bool:")
        .replace("make=print, space={}", "make=print, spaces={}")
        .replace("class RegistryError(ValueError):", "class RegistryError:")
        .replace("def select(task, framework, names=None):", "def select(task, names):")
    )  # fmt: skip
    found = findings(linted, "MLO703")
    by_message = {m: (line, column) for _, line, column, m in found}
    expected = {
        "`TASKS` is not defined at module level": (1, 1),
        "`ModelFamily` has no field `register_onnx`": (10, 1),
        "`ModelFamily` has no method `installed()`": (10, 1),
        "`ModelFamily(...)` has no field `spaces`": (23, 71),
        "`ModelFamily(...)` entry lacks the required field space": (23, 13),
        "`RegistryError` is not an exception class": (27, 1),
        "`select` parameter 2 is `names`, not `framework`": (35, 18),
        "`select` takes no parameter `names` (parameter 3)": (35, 1),
    }
    for start, place in expected.items():
        hits = [at for message, at in by_message.items() if message.startswith(start)]
        assert hits == [place], (start, by_message)
    assert len(found) == len(expected), found


def test_a_project_recorded_before_user_owned_existed_keeps_its_edited_models(
    project: Path,
) -> None:
    """An older record has no `user_owned` list: the new render's list applies all the same."""
    record = json.loads((project / STATE_FILE).read_text())
    del record["user_owned"]
    (project / STATE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    mine = edit_first_line(project / MODELS, "# ours\n")
    code, out = mlops("update", "--project", str(project), "--format", "json")
    assert code == 0, out
    assert entries(out)[MODELS]["action"] == "kept"
    assert (project / MODELS).read_bytes() == mine
    assert MODELS in json.loads((project / STATE_FILE).read_text())["user_owned"]
