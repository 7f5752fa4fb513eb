"""The interactive wizard: questions from the models, answers validated at once, confirmation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlops_template.cli import app
from mlops_template.wizard import QUESTIONS, field_info

runner = CliRunner()


def test_questions_come_from_the_models() -> None:
    description, choices = field_info("data.engine")
    assert choices == ["polars", "duckdb", "spark"]
    assert "engine" in description.lower()
    assert field_info("ml.task")[1] == ["classification", "regression"]
    keys = [q.key for q in QUESTIONS]
    for key in ("project.name", "ml.task", "ml.target", "data.source.kind", "data.engine",
                "phases", "infra.cloud", "ci.provider", "roles.ml_engineer"):  # fmt: skip
        assert key in keys


def test_wizard_reasks_bad_answers_and_writes_after_confirmation(tmp_path: Path) -> None:
    answers = [
        "",  # name is required: asked again
        "Churn Demo",
        "",  # description: default
        "regresion",  # typo: explained and asked again
        "regression",
        "",  # source kind: synthetic
        "",  # target: default for the task
        "",  # engine
        "serving",  # missing requirements: asked again
        "data,training",
        "",  # ci provider
        "@bad handle",
        "@acme/de",
        "",
        "",
        "y",
    ]
    dest = tmp_path / "p"
    result = runner.invoke(app, ["new", str(dest), "-i"], input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "a project name is required" in result.output
    assert "Input should be 'classification' or 'regression'" in result.output
    assert "requires 'training'" in result.output
    assert "is not a CODEOWNERS handle" in result.output
    spec = yaml.safe_load((dest / "mlops.yaml").read_text(encoding="utf-8"))
    assert spec["ml"] | {"task": "regression", "target": "lifetime_value"} == spec["ml"]
    assert spec["phases"] == ["data", "training"]
    assert spec["roles"]["data_engineer"] == "@acme/de"


def test_declining_writes_nothing(tmp_path: Path) -> None:
    answers = ["Demo", "", "", "", "", "", "data", "", "", "", "", "n"]
    result = runner.invoke(app, ["new", str(tmp_path / "p"), "-i"], input="\n".join(answers) + "\n")
    assert result.exit_code == 0 and "nothing written" in result.output
    assert list(tmp_path.iterdir()) == []


def test_input_ending_early_is_a_clean_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["new", str(tmp_path / "p"), "-i"], input="Demo\n")
    assert result.exit_code == 2
    assert "input ended" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_flags_preset_answers(tmp_path: Path) -> None:
    answers = ["", "", "", "", "", "", "", "", "", "", "", "", "y"]
    result = runner.invoke(
        app,
        ["new", str(tmp_path / "p"), "-i", "--name", "Preset", "--set", "infra.cloud=gcp"],
        input="\n".join(answers) + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "project.name:" not in result.output
    spec = yaml.safe_load((tmp_path / "p" / "mlops.yaml").read_text(encoding="utf-8"))
    assert spec["project"]["name"] == "Preset" and spec["infra"]["cloud"] == "gcp"


def test_ctrl_c_during_the_questions_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_template import cli

    answers = iter(["Demo", ""])

    def ask(prompt: str) -> str:
        try:
            return next(answers)
        except StopIteration:
            raise KeyboardInterrupt from None  # the user presses Ctrl-C at the third question

    monkeypatch.setattr(cli, "_ask", ask)
    result = runner.invoke(app, ["new", str(tmp_path / "p"), "-i"])
    assert result.exit_code == 130 and "nothing was written" in result.stderr
    assert list(tmp_path.iterdir()) == []
