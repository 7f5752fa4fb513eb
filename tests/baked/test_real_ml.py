"""Baked ML on a real dataset (palmerpenguins ships it in its wheel): text targets with f1.

One project, made with `mlops new` from a spec with a csv source (the penguins with a sex):
* the spec: ``species`` (three classes), f1 with ``ml.average: macro``, LightGBM; the blessed
  ONNX model's answers are scored by the project's monitoring as the pipeline scored them, and
  `mlops update` right after `make pipeline` has nothing to merge (the pipeline writes no file the
  template owns: its model card goes to reports/ and the model's folder);
* conf/<env>.yaml overrides: ``sex`` ('female'/'male', binary text, f1 of 'male') on LightGBM and
  on scikit-learn's families.
The project's own tests/ml (its scoring tests, the end-to-end test on its own data) run too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import palmerpenguins
import pytest

from .champion import CHAMPION_CODE, champion_dir, champion_rel
from .conftest import Baked

SPEC = """\
spec_version: 1
project: {{name: {name}, package: {package}}}
roles: {{data_engineer: "@acme/de", data_scientist: "@acme/ds", ml_engineer: "@acme/mle"}}
phases: [{phases}]
data:
  source: {{kind: csv, path: data/raw/penguins.csv}}
  pii_columns: []
ml:
  task: classification
  target: {target}
  framework: {framework}
  metric: f1
  min_score: 0.6
  tracking: none
{extra}"""


def _mlops(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlops_template", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _new(tmp: Path, name: str, target: str, framework: str, phases: str, extra: str) -> Baked:
    """`mlops new` from a spec, the penguins as the csv source, committed, `make setup`."""
    package = f"penguin_{target}"
    spec = tmp / f"{package}.yaml"
    values = {"name": name, "package": package, "phases": phases, "target": target}
    spec.write_text(SPEC.format(**values, framework=framework, extra=extra))
    proc = _mlops("new", str(tmp / package), "--spec", str(spec), "--quiet", cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    baked = Baked(tmp / package, package)
    raw = baked.path / "data" / "raw"
    raw.mkdir(parents=True)
    # the rows with a sex (11 lack one): sex is the target of the binary case
    frame = palmerpenguins.load_penguins().dropna(subset=["sex"])
    frame.to_csv(raw / "penguins.csv", index=False)
    baked.run("git", "init", "-q")
    baked.run("git", "add", "-A")
    baked.run("git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "new")
    baked.make("setup")
    return baked


def _json(baked: Baked, path: str) -> dict[str, Any]:
    data = json.loads((baked.path / path).read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Baked:
    return _new(tmp_path_factory.mktemp("real-ml"), "Penguins", "species", "lightgbm",
                "data, training, serving, monitoring", "  average: macro\n")  # fmt: skip


def _check_f1_run(baked: Baked, classes: list[str], estimators: set[str]) -> dict[str, Any]:
    train = _json(baked, "reports/train.json")
    assert train["metric"] == "f1" and train["chosen"] in estimators
    for family in train["families"]:  # the search and the validation score the same f1
        assert 0.6 < family["cv_score"] <= 1.0 and 0.6 < family["validation_score"] <= 1.0
    meta = _json(baked, champion_rel(baked.path) + "/metadata.json")
    assert meta["classes"] == classes and meta["estimator"] in estimators
    metrics = _json(baked, "reports/metrics.json")
    assert metrics["score"] == metrics["holdout"]["f1"] == meta["score"]
    gate = _json(baked, "reports/gate.json")
    assert gate["decision"] == "blessed", gate["reasons"]
    return metrics


def test_the_projects_own_ml_tests_lint_and_types(penguins: Baked) -> None:
    """Its scoring tests (every label type) and the end-to-end test on its own penguins."""
    pkg = penguins.package
    ml_code = [f"src/{pkg}/ml", "tests/ml"]
    penguins.run(".venv/bin/ruff", "check", *ml_code)
    penguins.run(".venv/bin/ruff", "format", "--check", *ml_code)
    # the ML code, and the monitoring that imports its scoring, type-check
    penguins.run(".venv/bin/mypy", f"src/{pkg}/ml", f"src/{pkg}/monitoring")
    tests = penguins.run(".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                         "tests/ml/test_scoring.py", "tests/ml/test_project_data.py")  # fmt: skip
    assert "skipped" not in tests.stdout and " passed" in tests.stdout, tests.stdout


#: the blessed ONNX model (serving's code) scores gold rows; monitoring judges them against the
#: true labels, and the ML scoring computes the same f1 from the same predictions
MONITOR = (
    CHAMPION_CODE
    + """
import json
from pathlib import Path
import pandas as pd
from {pkg}.monitoring.checks import Settings, performance
from {pkg}.ml.scoring import Scoring
from {pkg}.serving.model import OnnxModel
model = OnnxModel(Path(CHAMP))
gold = pd.read_parquet('data/gold/features.parquet').dropna()
names = [f.name for f in model.metadata.features]
outs = model.predict_records(gold[names].to_dict('records'))
records = [{{'request_id': str(i), **o}} for i, o in enumerate(outs)]
labels = {{str(i): y for i, y in enumerate(gold['species'])}}
settings = Settings(model_dir=Path(CHAMP), logs_dir=Path('logs'),
                    labels_dir=Path('labels'), min_samples=10, min_score=0.6, metric='f1')
perf = performance(records, labels, model.metadata, settings)
pred = [o['prediction'] for o in outs]
direct = Scoring('f1', 'classification', 'macro').score(gold['species'], pred, None,
                                                        list(model.metadata.classes))
print(json.dumps({{'perf': perf, 'direct': direct}}))
"""
)


def test_three_classes_f1_macro_pipeline_monitoring_and_update(penguins: Baked) -> None:
    card_before = (penguins.path / "docs" / "model-card.md").read_bytes()
    penguins.make("pipeline")
    metrics = _check_f1_run(penguins, ["Adelie", "Chinstrap", "Gentoo"], {"lightgbm"})
    assert metrics["holdout"]["averaging"] == "macro"
    card = (penguins.path / "reports" / "model-card.md").read_text()
    assert "Decision: BLESSED" in card and "## Intended use" in card
    assert (champion_dir(penguins.path) / "model-card.md").read_text() == card

    # the pipeline wrote nothing git tracks, so `mlops update` has nothing to merge
    assert penguins.run("git", "status", "--porcelain").stdout == ""
    update = _mlops("update", cwd=penguins.path)
    assert update.returncode == 0, update.stdout + update.stderr
    assert "conflict" not in update.stdout.lower(), update.stdout
    assert (penguins.path / "docs" / "model-card.md").read_bytes() == card_before

    # monitoring scores the blessed model's answers on labelled rows as the pipeline does
    out = penguins.python(MONITOR.format(pkg=penguins.package)).stdout
    result = json.loads(out.strip().splitlines()[-1])
    perf = result["perf"]
    assert perf["judged"] and not perf["degraded"], perf
    assert perf["value"] == pytest.approx(result["direct"], abs=1e-6)
    assert 0.6 < perf["value"] <= 1.0

    # conf/ asking for another averaging than the candidate was trained with: retrain first
    (penguins.path / "conf" / "weighted.yaml").write_text("ml:\n  average: weighted\n")
    proc = penguins.run(".venv/bin/python", "-m", f"{penguins.package}.ml", "gate",
                        check=False, env={"MLOPS_ENV": "weighted"})  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "ml.average" in proc.stderr and "make train" in proc.stderr


def test_binary_text_target_with_f1_on_lightgbm_and_sklearn(penguins: Baked) -> None:
    """sex ('female'/'male') as the target, through conf/<env>.yaml: data and ML pipelines."""
    # the first run replaces the blessed species model (another target: not compared); the
    # second is judged on min_score alone, whichever framework scores better
    for env, framework, estimators in (
        ("sex", "lightgbm", {"lightgbm"}),
        ("sexsk", "sklearn", {"logistic_regression", "random_forest"}),
    ):
        (penguins.path / "conf" / f"{env}.yaml").write_text(
            f"ml:\n  target: sex\n  average: null\n  framework: {framework}\n"
            "  gate:\n    max_regression: 1.0\n"
        )
        penguins.make("pipeline", env={"MLOPS_ENV": env})
        metrics = _check_f1_run(penguins, ["female", "male"], estimators)
        assert metrics["holdout"]["averaging"] == "positive class 'male'"
    gate = _json(penguins, "reports/gate.json")
    assert gate["blessed_before"]["scored_on"] == "current holdout"  # sex vs sex: compared
