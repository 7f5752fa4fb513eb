"""The CLI through typer's CliRunner: exit codes, reports, and that bad input writes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_template import __version__, apply
from mlops_template.cli import app, main

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_version_and_fast_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke("--version")
    assert code == 0 and out.strip() == f"mlops {__version__}"
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mlops {__version__}"


def test_new_from_example_spec(tmp_path: Path) -> None:
    dest = tmp_path / "churn"
    code, out, err = invoke("new", str(dest), "--spec", str(REPO / "examples/churn/mlops.yaml"))
    assert code == 0, err
    assert "created:" in out and "make pipeline" in out
    assert (dest / "mlops.yaml").is_file() and (dest / ".mlops" / "state.json").is_file()
    assert (dest / "src" / "churn_prediction" / "common" / "config.py").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "staging dir left behind"


def test_new_json_report_lists_every_file(tmp_path: Path) -> None:
    dest = tmp_path / "p"
    code, out, _ = invoke("new", str(dest), "--name", "P Q", "--format", "json")
    assert code == 0
    report = json.loads(out)
    written = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert sorted(f["path"] for f in report["files"]) == written
    assert report["summary"] == {"created": len(written)}


def test_default_destination_is_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, _ = invoke("new", "--name", "Fraud Detection", "--quiet")
    assert code == 0 and (tmp_path / "fraud_detection" / "Makefile").is_file()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    code, out, _ = invoke("new", str(tmp_path / "p"), "--name", "P", "--dry-run")
    assert code == 0 and "would create" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "ml.metric=rmse"], "does not fit task"),
        (["--set", "ml.nope=1"], "unknown key"),
        (["--set", "project.package=class"], "keyword"),
        (["--set", "project.package=json"], "standard-library"),
        (["--phases", "serving"], "requires 'training'"),
        (["--set", "ml.min_score=abc"], "valid number"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, out, err = invoke("new", str(tmp_path / "p"), "--name", "P", *args)
    assert code == 2
    assert message in err and err.startswith("error:")
    assert "Traceback" not in out + err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "spec file not found"),
        ("project: [unclosed\n", "YAML syntax error"),
        ("project: {name: x}\nfoo: 1\n", "foo: unknown key"),
    ],
)
def test_bad_spec_files(tmp_path: Path, content: str | None, message: str) -> None:
    spec = tmp_path / "mlops.yaml"
    if content is not None:
        spec.write_text(content, encoding="utf-8")
    code, _, err = invoke("new", str(tmp_path / "p"), "--spec", str(spec))
    assert code == 2 and message in err
    assert not (tmp_path / "p").exists()


def test_no_name_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke("new", str(tmp_path / "p"))
    assert code == 2 and "--name" in err


def test_non_empty_destination_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "p"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine\n", encoding="utf-8")
    code, _, err = invoke("new", str(dest), "--name", "P")
    assert code == 2 and "not empty" in err and "--force" in err
    assert [p.name for p in dest.iterdir()] == ["notes.txt"]


def test_force_never_overwrites_silently(tmp_path: Path) -> None:
    dest = tmp_path / "p"
    dest.mkdir()
    (dest / "README.md").write_text("my readme\n", encoding="utf-8")
    code, out, _ = invoke("new", str(dest), "--name", "P", "--force")
    assert code == 0
    assert (dest / "README.md").read_text(encoding="utf-8") == "my readme\n"
    assert (dest / "README.md.mlops-new").is_file()
    assert "skipped" in out and "README.md" in out


def test_interrupt_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    original = apply._write_new_file

    def flaky(target: Path, entry: apply.File, made: set[Path]) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        original(target, entry, made)

    monkeypatch.setattr(apply, "_write_new_file", flaky)
    code, _, err = invoke("new", str(tmp_path / "p"), "--name", "P")
    assert code == 130 and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []


def test_disk_full_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def full(target: Path, entry: apply.File, made: set[Path]) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(apply, "_write_new_file", full)
    code, _, err = invoke("new", str(tmp_path / "p"), "--name", "P")
    assert code == 2 and "No space left" in err
    assert list(tmp_path.iterdir()) == []


def test_schema_is_json(tmp_path: Path) -> None:
    code, out, _ = invoke("schema")
    assert code == 0 and json.loads(out)["title"] == "mlops.yaml"


def test_phases_lists_the_catalogue() -> None:
    code, out, _ = invoke("phases", "--format", "json")
    rows = json.loads(out)
    assert code == 0
    names = [r["name"] for r in rows]
    assert names[:5] == ["data", "training", "serving", "monitoring", "infra"]
    assert {"analysis", "experimentation"} <= set(names)
    code, out, _ = invoke("phases")
    assert code == 0 and "data_engineer" in out


def test_completion_offers_spec_keys_and_choices() -> None:
    from mlops_template.cli import _complete_phase, _complete_set

    assert "ml.metric=" in _complete_set("ml.")
    assert _complete_set("data.engine=") == [
        "data.engine=polars",
        "data.engine=duckdb",
        "data.engine=spark",
    ]
    assert _complete_phase("mon") == ["monitoring"]


def test_new_project_folder_gets_the_umask_mode_not_the_staging_one(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    code, _, _ = invoke("new", str(tmp_path / "p"), "--name", "P")
    assert code == 0
    assert (tmp_path / "p").stat().st_mode & 0o777 == 0o777 & ~mask
    assert (tmp_path / "p" / "Makefile").stat().st_mode & 0o777 == 0o666 & ~mask


def test_version_and_help_do_not_import_the_heavy_libraries() -> None:
    """Start-up stays fast: `--version` imports no CLI framework, `--help` no pydantic, jinja2,
    rich or PyYAML (checked in a fresh interpreter)."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from mlops_template.entry import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['pydantic', 'jinja2', 'rich', 'yaml', 'typer']\n"
        "print('IMPORTED:' + ','.join(m for m in heavy if m in sys.modules))\n"
    )
    for args, allowed in ((["--version"], ""), (["--help"], "typer")):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True,
                              text=True, check=True)  # fmt: skip
        imported = done.stdout.rsplit("IMPORTED:", 1)[1].strip()
        assert imported == allowed, f"mlops {args[0]} imported {imported}"


def test_without_a_tty_new_never_prompts(tmp_path: Path) -> None:
    """CliRunner's stdin is not a TTY: with no spec and no name, new explains instead of asking."""
    code, out, err = invoke("new", str(tmp_path / "p"))
    assert code == 2 and not (tmp_path / "p").exists()
    assert "project.name" in out + err
