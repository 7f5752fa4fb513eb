"""Baked ML pipeline: generate the examples, `make pipeline`, and check the result from outside.

Each case is a generated project (data + training phases) installed into its own .venv. The
checks read what the pipeline wrote (reports/gate.json, the champion in models/versions/) and
re-run the blessed ONNX model in onnxruntime against the native model with code written here, not
the project's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .champion import CHAMPION_CODE, champion_dir, champion_rel
from .conftest import Baked, BakeFn

PHASES = ["data", "training"]

#: name -> (example, --set overrides)
CASES = {
    "churn": ("churn", ["ml.tracking=none"]),
    "diabetes": ("diabetes", ["ml.tracking=none"]),
    "churn-lightgbm-mlflow": ("churn", ["ml.tracking=mlflow", "ml.framework=lightgbm"]),
}

#: independent parity check: ONNX inputs built from the gold contract, as the contract doc says
PARITY = (
    CHAMPION_CODE
    + """
import json, joblib, numpy as np, onnxruntime as ort, pandas as pd
meta = json.load(open(CHAMP + '/metadata.json'))
gold = pd.read_parquet('data/gold/features.parquet')
gold = gold.sample(min(500, len(gold)), random_state=1)
feats = meta['features']
x = pd.DataFrame({
    f['name']: gold[f['name']].astype('float32').astype('float64') if f['kind'] == 'numeric'
    else gold[f['name']].fillna('').astype(str).astype(object)
    for f in feats
})
feeds = {
    f['name']: x[[f['name']]].to_numpy(np.float32) if f['kind'] == 'numeric'
    else x[[f['name']]].to_numpy(object)
    for f in feats
}
session = ort.InferenceSession(CHAMP + '/model.onnx')
inputs = {i.name: (i.type, i.shape) for i in session.get_inputs()}
outputs = [o.name for o in session.get_outputs()]
model = joblib.load(CHAMP + '/model.joblib')
result = session.run(None, feeds)
if meta['task'] == 'classification':
    native = model.predict_proba(x)
    diff = float(np.abs(native - result[1]).max())
    agree = float(np.mean(model.predict(x).astype(str) == result[0].astype(str)))
else:
    diff = float(np.abs(model.predict(x) - result[0].ravel()).max())
    agree = 1.0
print(json.dumps({'inputs': {k: [t, [str(d) for d in s]] for k, (t, s) in inputs.items()},
                  'outputs': outputs, 'max_abs_diff': diff, 'label_agreement': agree}))
"""
)


def _json(baked: Baked, path: str) -> dict[str, Any]:
    return json.loads((baked.path / path).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pipelines(bake: BakeFn) -> dict[str, tuple[Baked, Any]]:
    """Each case baked once, with the completed `make pipeline` process."""
    out = {}
    for name, (example, sets) in CASES.items():
        baked = bake(example, sets=sets, phases=PHASES)
        out[name] = (baked, baked.make("pipeline"))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_pipeline_blesses_a_model_that_reaches_min_score(
    pipelines: dict[str, tuple[Baked, Any]], case: str
) -> None:
    baked, proc = pipelines[case]
    assert "ml gate: BLESSED" in proc.stdout
    gate = _json(baked, "reports/gate.json")
    assert gate["decision"] == "blessed" and gate["passed"] is True and gate["reasons"] == []
    conf_ml = _json(baked, champion_rel(baked.path) + "/metadata.json")
    metrics = _json(baked, "reports/metrics.json")
    min_score = metrics["min_score"]
    score = metrics["holdout"][metrics["metric"]]
    if metrics["greater_is_better"]:
        assert score >= min_score
    else:
        assert score <= min_score
    assert conf_ml["score"] == pytest.approx(score)
    for name in ("model.onnx", "model.joblib", "metadata.json", "reference.parquet"):
        assert (champion_dir(baked.path) / name).is_file(), name
    for key in ("model_version", "trained_at", "task", "target", "metric", "score",
                "greater_is_better", "features", "training_data", "framework"):  # fmt: skip
        assert key in conf_ml, key
    contract = _json(baked, "data/gold/contract.json")
    assert conf_ml["features"] == contract["features"]
    assert (baked.path / "reports" / "model-card.md").read_text().count("BLESSED") == 1


@pytest.mark.parametrize("case", list(CASES))
def test_blessed_onnx_reproduces_the_native_model(
    pipelines: dict[str, tuple[Baked, Any]], case: str
) -> None:
    baked, _ = pipelines[case]
    check = json.loads(baked.python(PARITY).stdout.strip().splitlines()[-1])
    meta = _json(baked, champion_rel(baked.path) + "/metadata.json")
    expected = {
        f["name"]: "tensor(float)" if f["kind"] == "numeric" else "tensor(string)"
        for f in meta["features"]
    }
    assert {k: t for k, (t, _) in check["inputs"].items()} == expected
    assert all(shape[1] == "1" for _, shape in check["inputs"].values())
    if meta["task"] == "classification":
        assert check["outputs"] == ["label", "probabilities"]
        assert check["max_abs_diff"] < 1e-4
        assert check["label_agreement"] == 1.0
    else:
        assert check["outputs"] == ["variable"]
        assert check["max_abs_diff"] < 1e-2  # target in the hundreds, float32 ONNX


def test_mlflow_registers_the_blessed_model_with_an_alias(
    pipelines: dict[str, tuple[Baked, Any]],
) -> None:
    baked, _ = pipelines["churn-lightgbm-mlflow"]
    assert (baked.path / "mlflow.db").is_file()
    meta = _json(baked, champion_rel(baked.path) + "/metadata.json")
    assert meta["framework"] == "lightgbm"
    code = (
        "import json, mlflow\n"
        "from mlflow import MlflowClient\n"
        "client = MlflowClient(tracking_uri='sqlite:///mlflow.db')\n"
        f"mv = client.get_model_version_by_alias({baked.package!r}, 'blessed')\n"
        "run = client.get_run(mv.run_id)\n"
        "arts = [a.path for a in client.list_artifacts(mv.run_id)]\n"
        "print(json.dumps({'tag': mv.tags.get('model_version'), 'metrics': run.data.metrics,"
        " 'artifacts': arts}))\n"
    )
    info = json.loads(baked.python(code).stdout.strip().splitlines()[-1])
    assert info["tag"] == meta["model_version"]
    assert info["metrics"]["holdout_roc_auc"] == pytest.approx(meta["score"])
    assert info["metrics"]["gate_passed"] == 1.0
    assert {"metrics.json", "explanation.json", "gate.json", "contract.json"} <= set(
        info["artifacts"]
    )


def test_unreachable_min_score_fails_the_pipeline_and_blesses_nothing(bake: BakeFn) -> None:
    baked = bake("churn", sets=["ml.tracking=none", "ml.min_score=0.999"], phases=PHASES)
    proc = baked.make("pipeline", check=False)
    assert proc.returncode != 0
    assert "REJECTED" in proc.stderr and "does not reach min_score 0.999" in proc.stderr
    assert not (baked.path / "models" / "aliases.json").exists()
    gate = _json(baked, "reports/gate.json")
    assert gate["decision"] == "rejected" and gate["passed"] is False
    assert (baked.path / "models" / "candidate" / "model.onnx").is_file()  # packaged, not blessed
    assert "REJECTED" in (baked.path / "reports" / "model-card.md").read_text()


def test_generated_tests_lint_and_benchmark_pass(pipelines: dict[str, tuple[Baked, Any]]) -> None:
    """The data + training project's tests all import and are collected, its linters pass, its
    latency benchmark runs. (Its tests are run in test_serving_monitoring.py, whose project has
    these phases and more: running them here too took 110 s of the suite for the same tests.)"""
    baked, _ = pipelines["churn"]
    bench = baked.make("bench-latency")
    assert "onnxruntime" in bench.stdout and "native" in bench.stdout
    collected = baked.run(".venv/bin/python", "-m", "pytest", "--collect-only", "-q")
    assert "tests/ml/" in collected.stdout and "tests/data/" in collected.stdout
    assert "tests/serving/" not in collected.stdout  # no serving phase, no serving tests
    baked.make("lint")
