"""Baked projects on real datasets that pip packages ship (no download), each through
`make pipeline` and a `/predict` call on the generated service (FastAPI's TestClient, in process).

- breast cancer (scikit-learn) written as a CSV keeps names like ``mean radius``; a row id that is
  sorted with the label is added to it. Silver renames the features to identifiers and leaves the
  row id out of the features, saying why in the data-quality report; ONNX packaging and serving
  work with the renamed features, and the service takes a row under either name.
- seattle-weather (vega_datasets), through the duckdb engine: a ``date`` column and a text
  multiclass target. Gold expands the date into numeric parts, so the service scores a date the
  data never had, sent as its parts or as the date itself (an impossible date is a 422 naming
  the field).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest

from .champion import champion_rel
from .conftest import Baked, BakeFn

PHASES = ["data", "training", "serving"]
#: the request of the service, scored in process by the generated app
PREDICT = """
import json, sys
from fastapi.testclient import TestClient
from {package}.serving.app import create_app

body = json.loads(sys.argv[1])
with TestClient(create_app()) as client:
    response = client.post("/predict", json=body)
print(json.dumps({{"status": response.status_code, "body": response.json()}}))
"""


def _csv_project(
    bake: BakeFn, name: str, target: str, kind: str = "csv", engine: str = "polars"
) -> Baked:
    """A project reading ``data/raw/<name>.csv`` (kind json: ``<name>.jsonl``, JSON lines)."""
    ending = "jsonl" if kind == "json" else kind
    return bake(
        None,
        sets=[
            f"data.source.kind={kind}",
            f"data.source.path=data/raw/{name}.{ending}",
            f"data.engine={engine}",
            f"ml.target={target}",
            "ml.tracking=none",
        ],
        phases=PHASES,
    )


def _predict(project: Baked, body: dict[str, Any]) -> dict[str, Any]:
    code = PREDICT.format(package=project.package)
    proc = project.run(str(project.path / ".venv/bin/python"), "-c", code, json.dumps(body))
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _read(project: Baked, path: str) -> Any:
    return json.loads((project.path / path).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cancer(bake: BakeFn) -> tuple[Baked, str]:
    project = _csv_project(bake, "cancer", "target")
    # rows sorted by the label and numbered in that order, then shuffled: the id predicts the label
    project.python(
        textwrap.dedent("""
        from pathlib import Path
        from sklearn.datasets import load_breast_cancer
        frame = load_breast_cancer(as_frame=True).frame.sort_values("target", kind="stable")
        frame.insert(0, "row_id", range(len(frame)))
        Path("data/raw").mkdir(parents=True, exist_ok=True)
        frame.sample(frac=1.0, random_state=3).to_csv("data/raw/cancer.csv", index=False)
    """)
    )
    result = project.make("pipeline")
    return project, result.stdout


def test_spaced_names_are_renamed_and_the_model_is_packaged(cancer: tuple[Baked, str]) -> None:
    project, stdout = cancer
    assert "model.onnx parity ok" in stdout
    assert "'mean radius' -> 'mean_radius'" in stdout
    meta = _read(project, champion_rel(project.path) + "/metadata.json")
    features = {f["name"]: f for f in meta["features"]}
    assert len(features) == 30
    assert features["mean_radius"]["source"] == "mean radius"
    assert all(" " not in name for name in features)
    quality = _read(project, "reports/data-quality.json")
    assert quality["columns"]["renamed"]["worst concave points"] == "worst_concave_points"


def test_a_row_id_is_excluded_with_a_note(cancer: tuple[Baked, str]) -> None:
    project, stdout = cancer
    assert "column 'row_id' is not a feature: looks like a row identifier" in stdout
    meta = _read(project, champion_rel(project.path) + "/metadata.json")
    assert "row_id" not in {f["name"] for f in meta["features"]}
    report = (project.path / "reports/data-quality.md").read_text(encoding="utf-8")
    assert "| `row_id` | looks like a row identifier" in report
    explanation = _read(project, "reports/explanation.json")
    assert "row_id" not in {f["feature"] for f in explanation["features"]}


def test_the_service_scores_a_real_row(cancer: tuple[Baked, str]) -> None:
    project, _ = cancer
    row = (
        project.python(
            textwrap.dedent("""
        import csv, json
        print(json.dumps(next(csv.DictReader(open("data/raw/cancer.csv")))))
    """)
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    values = json.loads(row)
    meta = _read(project, champion_rel(project.path) + "/metadata.json")
    body = {f["name"]: float(values[f.get("source", f["name"])]) for f in meta["features"]}
    result = _predict(project, body)
    assert result["status"] == 200, result
    [prediction] = result["body"]["predictions"]
    assert prediction["prediction"] == int(values["target"])
    # the same row under the CSV's own names (`mean radius`): the service takes the original names
    raw = {f["source"]: float(values[f["source"]]) for f in meta["features"] if "source" in f}
    assert "mean radius" in raw
    same = _predict(project, raw)
    assert same["status"] == 200, same
    assert same["body"]["predictions"][0]["probabilities"] == prediction["probabilities"]
    both = _predict(project, {**raw, "mean_radius": raw["mean radius"]})
    assert both["status"] == 422, both
    assert "not both" in both["body"]["detail"][0]["msg"]


@pytest.fixture(scope="module")
def weather(bake: BakeFn) -> tuple[Baked, str]:
    vega = pytest.importorskip("vega_datasets")
    # the same real data as JSON lines (a json source), dates as ISO strings as an export has them;
    # through the duckdb engine (breast cancer goes through polars)
    project = _csv_project(bake, "weather", "weather", kind="json", engine="duckdb")
    raw = project.path / "data/raw"
    raw.mkdir(parents=True, exist_ok=True)
    frame = vega.data.seattle_weather()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    frame.to_json(raw / "weather.jsonl", orient="records", lines=True)
    result = project.make("pipeline")
    return project, result.stdout


def test_a_date_column_becomes_numeric_parts(weather: tuple[Baked, str]) -> None:
    project, stdout = weather
    [manifest] = project.path.glob("data/bronze/ingest_date=*/*.manifest.json")
    source = json.loads(manifest.read_text(encoding="utf-8"))["source"]
    assert source["kind"] == "json" and source["files"] == ["data/raw/weather.jsonl"]
    assert _read(project, "reports/data-quality.json")["engine"] == "duckdb"
    assert "date column 'date' -> gold features date_year, date_month" in stdout
    contract = _read(project, "data/gold/contract.json")
    kinds = {f["name"]: f["kind"] for f in contract["features"]}
    assert "date" not in kinds
    parts = ["date_year", "date_month", "date_day", "date_day_of_week"]
    assert all(kinds[p] == "numeric" for p in parts)
    meta = _read(project, champion_rel(project.path) + "/metadata.json")
    assert sorted(meta["classes"]) == ["drizzle", "fog", "rain", "snow", "sun"]


def test_the_service_scores_a_date_the_data_never_had(weather: tuple[Baked, str]) -> None:
    project, _ = weather
    # 2031-07-04 is a Friday (ISO day 5), years after the data (2012-2015)
    body = {
        "date_year": 2031.0,
        "date_month": 7.0,
        "date_day": 4.0,
        "date_day_of_week": 5.0,
        "precipitation": 0.0,
        "temp_max": 27.5,
        "temp_min": 14.0,
        "wind": 3.1,
    }
    result = _predict(project, body)
    assert result["status"] == 200, result
    [prediction] = result["body"]["predictions"]
    assert prediction["prediction"] in {"drizzle", "fog", "rain", "snow", "sun"}
    # the date as the source has it: the service expands it into the same parts gold does
    raw = {k: v for k, v in body.items() if not k.startswith("date_")}
    same = _predict(project, {**raw, "date": "2031-07-04"})
    assert same["status"] == 200, same
    assert same["body"]["predictions"][0]["probabilities"] == prediction["probabilities"]
    for bad, why in (("2031-02-30", "not a date of the calendar"), ("yesterday", "ISO date")):
        refused = _predict(project, {**raw, "date": bad})
        assert refused["status"] == 422, refused
        [error] = refused["body"]["detail"]
        assert error["loc"] == ["body", "date"], error
        assert why in error["msg"], error
