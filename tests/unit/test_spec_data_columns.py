"""data.date_columns and data.keep_features: validated in the spec, carried into conf/base.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_template.errors import SpecError
from mlops_template.render import render
from mlops_template.spec import load_spec

CSV = """\
project: {name: Visits}
data:
  source: {kind: csv, path: data/raw/visits.csv}
  date_columns: %s
  keep_features: %s
ml: {target: label}
"""


def _spec(tmp_path: Path, dates: str = "[]", keep: str = "[]") -> Path:
    path = tmp_path / "mlops.yaml"
    path.write_text(CSV % (dates, keep), encoding="utf-8")
    return path


def _errors(path: Path) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    return [issue.render() for issue in exc.value.issues]


def test_listed_columns_reach_the_project_conf(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, '["visit date", "signup: day"]', "[row_id]"))
    tree = render(spec)
    conf = yaml.safe_load(tree.files["conf/base.yaml"].content.decode("utf-8"))
    assert conf["data"]["date_columns"] == ["visit date", "signup: day"]
    assert conf["data"]["keep_features"] == ["row_id"]


def test_unset_lists_leave_the_conf_as_it_was(tmp_path: Path) -> None:
    tree = render(load_spec(_spec(tmp_path)))
    text = tree.files["conf/base.yaml"].content.decode("utf-8")
    assert "date_columns" not in text and "keep_features" not in text


def test_a_column_listed_twice_or_empty_is_an_error(tmp_path: Path) -> None:
    errors = _errors(_spec(tmp_path, "[day, day]", '[" "]'))
    assert any("data.date_columns.1" in e and "'day' is listed twice" in e for e in errors)
    assert any("data.keep_features.0" in e and "an empty column name" in e for e in errors)


def test_the_target_is_not_a_date_feature(tmp_path: Path) -> None:
    errors = _errors(_spec(tmp_path, "[label]"))
    assert any("data.date_columns.0" in e and "the target" in e for e in errors)
