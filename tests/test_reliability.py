"""Reliability: fuzzed spec values and documents, interrupted and failing writes.

Whatever the input or the failure, `mlops new` gives a clear error (exit 2, no traceback) or a
project whose every file parses, and the destination is either untouched or complete.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from checks import check_parses, tool
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mlops_template.cli import app
from mlops_template.errors import SpecError
from mlops_template.render import render
from mlops_template.spec import Spec, SpecSources, build_spec

runner = CliRunner()
ADVERSARIAL = [
    "",
    " ",
    "a" * 5000,
    "quote \" and ' apostrophe",
    "back\\slash\\",
    "line\nbreak",
    "{{ 7 * 7 }}",
    "{% raw %}",
    "${{ secrets.TOKEN }}",
    "$(rm -rf /); `id`; | & > <",
    "yes",
    "null",
    "~",
    "- item",
    "key: value",
    "#comment",
    "&anchor",
    "*alias",
    "!!python/object:os.system",
    "emoji 🚀 中文 Ünïcode",
    "\u2028\u2029",
    "%{ if true }",
    "@org/team",
    "user@example.com",
]
STRING_FIELDS = [
    "project.name",
    "project.description",
    "project.package",
    "roles.data_engineer",
    "roles.data_scientist",
    "roles.ml_engineer",
    "data.source.path",
    "data.source.dataset",
    "data.source.url",
    "data.source.query",
    "data.id_column",
    "ml.target",
    "infra.region",
]
VALUES = st.one_of(st.sampled_from(ADVERSARIAL), st.text(max_size=300))


def _spec_or_clear_error(sources: SpecSources) -> Spec | None:
    """The spec, or None when it is refused with issues that each carry a message."""
    try:
        return build_spec(sources)
    except SpecError as exc:
        assert exc.issues and all(i.message for i in exc.issues)
        return None


@given(field=st.sampled_from(STRING_FIELDS), value=VALUES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_string_value_is_rejected_clearly_or_renders_parsable_files(
    field: str, value: str
) -> None:
    sources = SpecSources({"project": {"name": "Fuzz"}})
    sources.set(field, value, f"--set {field}")
    spec = _spec_or_clear_error(sources)
    if spec is not None:
        check_parses(render(spec), user_text=True)


yaml_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
yaml_docs = st.recursive(
    yaml_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["project", "name", "ml", "data", "phases", "metric", "x"]),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)


@given(doc=yaml_docs)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_yaml_documents_never_give_a_traceback(tmp_path: Path, doc: object) -> None:
    spec = tmp_path / "mlops.yaml"
    spec.write_text(yaml.safe_dump(doc), encoding="utf-8")
    result = runner.invoke(app, ["new", str(tmp_path / "out"), "--spec", str(spec), "--dry-run"])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


@given(text=st.text(max_size=200))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_random_text_as_spec_never_gives_a_traceback(tmp_path: Path, text: str) -> None:
    spec = tmp_path / "mlops.yaml"
    spec.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["new", str(tmp_path / "out"), "--spec", str(spec), "--dry-run"])
    assert result.exit_code in (0, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit)


def _expected_files() -> set[str]:
    from mlops_template.spec import load_spec

    return set(render(load_spec(name="Killed Project")))


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_new_leaves_destination_untouched_or_complete(tmp_path: Path, sig: int) -> None:
    expected = _expected_files()
    rng = random.Random(1234 + int(sig))
    outcomes = {"untouched": 0, "complete": 0}
    for attempt in range(6):
        dest = tmp_path / f"p{attempt}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlops_template", "new", str(dest), "--name", "Killed Project",
             "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        time.sleep(rng.uniform(0.15, 0.7))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert b"Traceback" not in err
        if dest.exists():
            written = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
            assert written == expected, "destination half-written"
            outcomes["complete"] += 1
        else:
            outcomes["untouched"] += 1
    # a later run cleans the staging folders a SIGKILL left behind and succeeds
    result = runner.invoke(app, ["new", str(tmp_path / "after"), "--name", "Killed Project"])
    assert result.exit_code == 0
    leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".mlops-new")]
    assert leftovers == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_parent_is_a_clear_error(tmp_path: Path) -> None:  # pragma: no cover
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        result = runner.invoke(app, ["new", str(parent / "p"), "--name", "P"])
        assert result.exit_code == 2 and "not writable" in result.stderr
    finally:
        parent.chmod(stat.S_IRWXU)


def test_destination_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "p"
    target.write_text("precious\n", encoding="utf-8")
    result = runner.invoke(app, ["new", str(target), "--name", "P"])
    assert result.exit_code == 2 and "not a directory" in result.stderr
    assert target.read_text(encoding="utf-8") == "precious\n"


def test_file_where_a_directory_is_expected(tmp_path: Path) -> None:
    dest = tmp_path / "p"
    dest.mkdir()
    (dest / "conf").write_text("I am a file\n", encoding="utf-8")
    result = runner.invoke(app, ["new", str(dest), "--name", "P", "--force"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert (dest / "conf").read_text(encoding="utf-8") == "I am a file\n"
    assert sorted(p.name for p in dest.iterdir()) == ["conf"], "nothing else may be written"


def test_symlink_leading_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "p"
    dest.mkdir()
    os.symlink(outside, dest / "docs")
    result = runner.invoke(app, ["new", str(dest), "--name", "P", "--force"])
    assert result.exit_code == 2 and "symlink pointing outside" in result.stderr
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in dest.iterdir()) == ["docs"]


def test_staging_left_by_a_dead_run_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    """A run killed right after creating its staging folder (before writing anything into it)
    still leaves a folder whose name says whose it is; the next run removes it, whatever project
    it was for, and leaves alone the staging of a run that is still going."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_staging = tmp_path / f".other.{int(dead.stdout)}.abc123.mlops-new"
    dead_staging.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live_staging = tmp_path / f".busy.{live.pid}.def456.mlops-new"
        live_staging.mkdir()
        unrelated = tmp_path / ".gitignore.mlops-new"
        unrelated.write_text("a --force conflict file\n", encoding="utf-8")
        result = runner.invoke(app, ["new", str(tmp_path / "next"), "--name", "Next Project"])
        assert result.exit_code == 0, result.output
        assert not dead_staging.exists()
        assert live_staging.is_dir() and unrelated.is_file()
    finally:
        live.kill()
        live.wait()


LIST_FIELDS = ["data.pii_columns", "infra.environments"]


@pytest.mark.slow
@given(
    field=st.sampled_from(STRING_FIELDS + LIST_FIELDS),
    value=VALUES,
    ci=st.sampled_from(["github", "gitlab", "azure-devops"]),
)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_fuzzed_values_leave_make_and_the_workflows_working(
    tmp_path_factory: pytest.TempPathFactory, field: str, value: str, ci: str
) -> None:
    """Beyond parsing: a project rendered from an adversarial value still has a Makefile that
    `make -n` accepts for its main targets, and GitHub workflows that actionlint accepts."""
    import shutil

    from mlops_template.apply import apply_new

    sources = SpecSources({"project": {"name": "Fuzz"}, "ci": {"provider": ci}})
    sources.set(field, [value] if field in LIST_FIELDS else value, f"--set {field}")
    spec = _spec_or_clear_error(sources)
    if spec is None:
        event("rejected with a clear error")
        return
    event("rendered, make -n and actionlint checked")
    dest = tmp_path_factory.mktemp("fuzz") / "p"
    apply_new(render(spec), dest)
    for target in ("help", "setup", "pipeline", "test", "lint"):
        done = subprocess.run(["make", "-n", target], cwd=dest, capture_output=True, text=True)
        assert done.returncode == 0, f"make -n {target}: {done.stderr}"
    workflows = sorted((dest / ".github" / "workflows").glob("*.yml"))
    if workflows:
        subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
        done = subprocess.run([tool("actionlint"), *map(str, workflows)], cwd=dest,
                              capture_output=True, text=True)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    shutil.rmtree(dest.parent, ignore_errors=True)
