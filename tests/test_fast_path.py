"""`mlops new` and `mlops lint` without typer (mlops_template.commands.fast_main) behave exactly as
through typer: same exit code, output and files; any other command line is left to typer."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from mlops_template.cli import main as typer_main
from mlops_template.commands import fast_main, read_args


def _typer(args: list[str]) -> int:
    try:
        code = typer_main(args)
    except SystemExit as exc:
        code = exc.code
    return int(code or 0)


def _both(args: list[str], capsys: pytest.CaptureFixture[str], made: list[str]) -> None:
    """Run ``args`` through typer, remove what it wrote, then through the fast path; compare."""
    capsys.readouterr()
    code_typer = _typer(args)
    out_typer, err_typer = capsys.readouterr()
    trees = {}
    for name in made:
        if Path(name).exists():
            trees[name] = _listing(Path(name))
            shutil.rmtree(name)
    code_fast = fast_main(args)
    out_fast, err_fast = capsys.readouterr()
    assert code_fast is not None, f"the fast path declined {args}"
    assert (code_fast, out_fast, err_fast) == (code_typer, out_typer, err_typer), args
    assert {n: _listing(Path(n)) for n in made if Path(n).exists()} == trees


def _listing(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_new_and_lint_match_typer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a TTY: nothing prompts
    _both(["new", "proj", "--no-input", "--name", "Demo Project"], capsys, ["proj"])
    (tmp_path / "proj").mkdir(exist_ok=True)
    shutil.rmtree("proj")
    _typer(["new", "proj", "--no-input", "--name", "Demo Project", "-q"])  # for the lint cases
    _both(["new", "json", "--name=Demo", "--format", "json", "--set", "ml.task=regression"],
          capsys, ["json"])  # fmt: skip
    _both(["new", "dry", "-n", "Demo", "--phases", "data,training", "--dry-run"], capsys, ["dry"])
    _both(["new", "spec", "-s", "proj/mlops.yaml", "--set", "project.name=Other", "-q"], capsys,
          ["spec"])  # fmt: skip
    _both(["new", "none", "--no-input"], capsys, ["none"])  # no name: usage error, exit 2
    _both(["new", "bad", "--name", "X", "--set", "ml.metric=bogus"], capsys, ["bad"])  # spec error
    _both(["new", "proj", "--name", "Demo Project"], capsys, [])  # not empty: exit 2
    _both(["new", "forced", "--name", "D", "--force", "--quiet"], capsys, ["forced"])
    _both(["new", "--name", "Default Dest", "-q"], capsys, ["default_dest"])
    (tmp_path / "proj" / "src" / "demo_project" / "data" / "x.py").write_text(
        "import demo_project.serving\n", encoding="utf-8"
    )  # a layering finding: exit 1
    for args in (
        ["lint", "proj"],
        ["lint", "proj", "--format", "json"],
        ["lint", "proj", "--format=sarif", "--select", "MLO1", "--select", "MLO4", "--strict"],
        ["lint", "proj", "--format", "github", "--ignore", "MLO4"],
        ["lint", "missing"],
        ["lint", "proj", "--select", "nonsense"],
    ):
        _both(args, capsys, [])
    monkeypatch.chdir(tmp_path / "proj")
    _both(["lint"], capsys, [])


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["new", "--help"],
        ["lint", "--help"],
        ["new", "p", "-i", "--name", "X"],  # the wizard: typer's path
        ["new", "p", "-qn", "X"],  # combined short options
        ["new", "p", "--name", "-x"],  # a value that looks like an option
        ["new", "p", "--name", "A", "--name", "B"],  # repeated single option
        ["new", "p", "--no-input=1", "--name", "X"],
        ["new", "p", "q", "--name", "X"],  # two destinations
        ["new", "p", "--name"],  # missing value
        ["new", "p", "--name", "X", "--format", "yaml"],
        ["new", "p", "--nmae", "X"],  # a typo
        ["new", "--", "p", "--name", "X"],
        ["lint", "a", "b"],
        ["lint", "--format", "xml"],
        ["lint", "--format", "JSON"],
        ["lint", ""],
        ["update"],
        ["phases", "--format", "json"],
    ],
)
def test_anything_else_is_left_to_typer(args: list[str]) -> None:
    assert fast_main(args) is None


def test_completion_is_left_to_typer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_MLOPS_COMPLETE", "complete_bash")
    assert fast_main(["lint", "."]) is None


def test_read_args_takes_both_value_forms() -> None:
    options = {"--set": ("sets", "multi"), "-n": ("name", "value"), "--x": ("x", "flag")}
    assert read_args(["a", "--set=k=v", "-n", "N", "--set", "k2=v2", "--x"], options) == (
        {"sets": ["k=v", "k2=v2"], "name": "N", "x": True},
        ["a"],
    )
