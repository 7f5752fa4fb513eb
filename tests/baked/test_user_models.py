"""Baked: a user adds a model family the way the generated project says to — one entry in
``src/<package>/ml/models.py`` plus conf — and nothing template-owned changes.

One project (data + training, churn's synthetic source, no tracking). The user's edit:
scikit-learn's ExtraTreesClassifier registered in models.py (skl2onnx converts it itself) and
``ml.families: [extra_trees]`` in conf/dev.yaml. Then, on that one project:
* the project's own ruff, mypy and its generated tests/ml/test_models.py pass on the edited file
  (the test picks the new entry up: ONNX parity of extra_trees on a tiny frame);
* `make pipeline` trains only extra_trees, packages it to ONNX (parity-tested) and blesses it;
* a misspelt family in conf stops training with exit 2, names the name and models.py, and leaves
  the candidate as it was; two families listed are both searched and the better one is kept;
* committed, then a spec change (ml.min_score) and `mlops update`: exit 0, no conflict, the
  template's change lands in conf/base.yaml, models.py and the user's conf/dev.yaml are unchanged;
* XGBoost, registered but optional: disabled until pyproject's `xgboost` extra (xgboost-cpu +
  onnxmltools) is installed, then its entry trains, converts and matches native in test_models.py.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .champion import champion_dir, champion_rel
from .conftest import Baked, BakeFn

ENTRY = """

def _extra_trees(task: str, seed: int) -> Estimator:
    from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

    cls = ExtraTreesClassifier if task == "classification" else ExtraTreesRegressor
    return cls(random_state=seed, n_jobs=1)


REGISTRY = (
    *REGISTRY,
    ModelFamily(
        name="extra_trees",
        tasks=frozenset(TASKS),
        framework="sklearn-extra",
        make=_extra_trees,
        space={"n_estimators": [50, 100], "max_depth": [6, 10], "min_samples_leaf": [5, 20]},
    ),
)
"""

SELECT = "ml:\n  families: [{names}]\n"


def _json(baked: Baked, path: str) -> dict[str, Any]:
    data = json.loads((baked.path / path).read_text())
    assert isinstance(data, dict)
    return data


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _commit(baked: Baked, message: str) -> None:
    baked.run("git", "add", "-A")
    baked.run(
        "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", message
    )


@pytest.fixture(scope="module")
def user_project(bake: BakeFn) -> Baked:
    baked = bake(
        "churn",
        sets=["ml.tracking=none", "data.source.rows=6000", "ml.min_score=0.6"],
        phases=["data", "training"],
    )
    _commit(baked, "new")
    models = baked.path / "src" / baked.package / "ml" / "models.py"
    models.write_text(models.read_text() + ENTRY)
    dev = baked.path / "conf" / "dev.yaml"
    dev.write_text(dev.read_text() + SELECT.format(names="extra_trees"))
    return baked


def test_the_users_family_passes_the_projects_own_checks(user_project: Baked) -> None:
    user_project.make("lint", "typecheck")
    proc = user_project.run(
        ".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
        "tests/ml/test_models.py", "-k", "extra_trees", "-rA",
    )  # fmt: skip
    # the generated test is parametrised over REGISTRY: the new entry is trained and converted
    for task in ("classification", "regression"):
        case = f"test_family_trains_converts_and_matches_native[extra_trees-{task}]"
        assert f"PASSED tests/ml/test_models.py::{case}" in proc.stdout, proc.stdout


def test_pipeline_trains_packages_and_blesses_the_new_family(user_project: Baked) -> None:
    user_project.make("pipeline")
    train = _json(user_project, "reports/train.json")
    assert [f["family"] for f in train["families"]] == ["extra_trees"]
    assert train["chosen"] == "extra_trees"
    blessed = _json(user_project, champion_rel(user_project.path) + "/metadata.json")
    assert blessed["estimator"] == "extra_trees"
    assert blessed["onnx"]["parity"]["ok"] is True
    assert (champion_dir(user_project.path) / "model.onnx").is_file()
    gate = _json(user_project, "reports/gate.json")
    assert gate["passed"] is True, gate
    card = (user_project.path / "reports" / "model-card.md").read_text()
    assert "extra_trees" in card


def test_family_selection_errors_and_comparison(user_project: Baked) -> None:
    dev = user_project.path / "conf" / "dev.yaml"
    edited = dev.read_text()
    candidate = user_project.path / "models" / "candidate" / "model.joblib"
    assert candidate.is_file(), "run after the pipeline test"
    before = _sha(candidate)
    py = str(user_project.path / ".venv" / "bin" / "python")
    try:
        dev.write_text(edited.replace("[extra_trees]", "[extra_tree]"))
        bad = user_project.run(py, "-m", f"{user_project.package}.ml", "train", check=False)
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert "'extra_tree'" in bad.stderr and "ml/models.py" in bad.stderr, bad.stderr
        assert _sha(candidate) == before, "a refused run must not replace the candidate"

        dev.write_text(edited.replace("[extra_trees]", "[random_forest, extra_trees]"))
        user_project.run(py, "-m", f"{user_project.package}.ml", "train")
        train = _json(user_project, "reports/train.json")
        scores = {f["family"]: f["validation_score"] for f in train["families"]}
        assert set(scores) == {"random_forest", "extra_trees"}
        assert train["chosen"] == max(scores, key=lambda name: scores[name])
    finally:
        dev.write_text(edited)


def test_update_after_the_edit_has_no_conflict(user_project: Baked) -> None:
    _commit(user_project, "feat: extra_trees model family")
    models = user_project.path / "src" / user_project.package / "ml" / "models.py"
    dev = user_project.path / "conf" / "dev.yaml"
    models_sha, dev_text = _sha(models), dev.read_text()
    spec = user_project.path / "mlops.yaml"
    text = spec.read_text()
    assert "min_score: 0.6\n" in text
    spec.write_text(text.replace("min_score: 0.6\n", "min_score: 0.55\n"))
    _commit(user_project, "chore: lower min_score")
    proc = subprocess.run(
        [sys.executable, "-m", "mlops_template", "update"],
        cwd=user_project.path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "conflict" not in proc.stdout.lower(), proc.stdout
    assert _sha(models) == models_sha
    assert dev.read_text() == dev_text
    base = (user_project.path / "conf" / "base.yaml").read_text()
    assert "min_score: 0.55" in base
    assert "<<<<<<<" not in models.read_text() + base


def test_the_xgboost_extra_installs_and_its_family_converts(user_project: Baked) -> None:
    """XGBoost is listed in models.py but enabled only once pyproject's `xgboost` extra is in."""
    py = str(user_project.path / ".venv" / "bin" / "python")
    probe = "from {p}.ml import models; print(models.get('xgboost').installed())"
    before = user_project.run(py, "-c", probe.format(p=user_project.package))
    assert before.stdout.strip() == "False"
    uv = user_project.path / ".venv" / "bin" / "uv"
    pip = (
        [str(uv), "pip", "install", "--python", py] if uv.exists() else [py, "-m", "pip", "install"]
    )
    user_project.run(*pip, "-q", "-e", ".[dev,xgboost]")
    proc = user_project.run(
        py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA",
        "tests/ml/test_models.py", "-k", "xgboost",
    )  # fmt: skip
    for task in ("classification", "regression"):
        case = f"test_family_trains_converts_and_matches_native[xgboost-{task}]"
        assert f"PASSED tests/ml/test_models.py::{case}" in proc.stdout, proc.stdout
