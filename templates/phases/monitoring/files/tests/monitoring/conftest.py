"""Monitoring fixtures: the champion's metadata and drift reference in the model registry
(models/versions/<version>/ + models/aliases.json) plus request logs, written straight into a
temporary project (monitoring never runs the model, so no ONNX is needed)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

FEATURES: list[dict[str, Any]] = [
    {"name": "tenure", "kind": "numeric", "dtype": "Float64"},
    {"name": "monthly_charges", "kind": "numeric", "dtype": "Float64"},
    {
        "name": "plan",
        "kind": "categorical",
        "dtype": "String",
        "categories": ["basic", "plus", "pro"],
    },
]
VERSION = "fixture-1"


def sample(
    rows: int, seed: int, shift: float = 0.0, plan_p: tuple[float, float, float] = (0.5, 0.3, 0.2)
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "tenure": rng.normal(24 + shift, 6, rows),
            "monthly_charges": rng.normal(60 + 2 * shift, 12, rows),
            "plan": rng.choice(["basic", "plus", "pro"], rows, p=list(plan_p)).tolist(),
        }
    )


def predict(frame: pl.DataFrame, task: str) -> list[Any]:
    """A fixed rule standing in for the model (monitoring only sees its outputs)."""
    score = frame["tenure"].to_numpy() - 0.2 * frame["monthly_charges"].to_numpy()
    if task == "classification":
        return [int(s > 12) for s in score]
    return [float(s) for s in score]


def iso_days_ago(days: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - days * 86400))


@pytest.fixture
def task(project: Path) -> str:
    import yaml

    base = yaml.safe_load((project / "conf" / "base.yaml").read_text(encoding="utf-8"))
    return str(base["ml"]["task"])


@pytest.fixture
def monitored(project: Path, task: str) -> Path:
    """A project whose champion was trained 1 day ago, with a 2 000-row reference."""
    folder = project / "models" / "versions" / VERSION
    folder.mkdir(parents=True)
    aliases = {"champion": VERSION, "challenger": None}
    (project / "models" / "aliases.json").write_text(json.dumps(aliases), encoding="utf-8")
    reference = sample(2000, seed=0)
    reference.with_columns(pl.Series("prediction", predict(reference, task))).write_parquet(
        folder / "reference.parquet"
    )
    metadata = {
        "model_version": VERSION,
        "trained_at": iso_days_ago(1),
        "task": task,
        "target": "target",
        "metric": "accuracy" if task == "classification" else "mae",
        "score": 0.9,
        "greater_is_better": task == "classification",
        "features": FEATURES,
        "training_data": {"path": "data/gold/features.parquet", "sha256": "0" * 64},
        "framework": "sklearn",
        **({"classes": [0, 1]} if task == "classification" else {}),
    }
    (folder / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    # a deterministic configuration for the tests, whatever the project's spec says
    gate = ("accuracy", 0.8, "true") if task == "classification" else ("mae", 5.0, "false")
    (project / "conf" / "test.yaml").write_text(
        "monitoring:\n  drift_metric: psi\n  drift_threshold: 0.2\n  max_model_age_days: 30\n"
        f"  min_samples: 100\nml:\n  metric: {gate[0]}\n  min_score: {gate[1]}\n"
        f"  greater_is_better: {gate[2]}\n",
        encoding="utf-8",
    )
    return project


@pytest.fixture
def log_requests(monitored: Path, task: str) -> Callable[..., list[dict[str, Any]]]:
    """``log_requests(frame, version=VERSION, age_days=0.01)`` appends frame's rows to
    logs/requests.jsonl, stamped ``age_days`` ago."""

    def _log(
        frame: pl.DataFrame, version: str = VERSION, age_days: float = 0.01
    ) -> list[dict[str, Any]]:
        logs = monitored / "logs"
        logs.mkdir(exist_ok=True)
        records = []
        for i, (row, pred) in enumerate(zip(frame.to_dicts(), predict(frame, task), strict=True)):
            record: dict[str, Any] = {
                "request_id": f"{version}-{i}",
                "timestamp": iso_days_ago(age_days),
                "model_version": version,
                "features": row,
                "prediction": pred,
                "latency_ms": 1.0,
            }
            if task == "classification":
                record["probabilities"] = {"0": 1.0 - pred, "1": float(pred)}
            records.append(record)
        with (logs / "requests.jsonl").open("a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in records)
        return records

    return _log


@pytest.fixture
def make_sample() -> Callable[..., pl.DataFrame]:
    """``make_sample(rows, seed, shift=0.0, plan_p=(0.5, 0.3, 0.2))``: feature rows; the
    reference is ``make_sample(2000, seed=0)``."""
    return sample


@pytest.fixture
def days_ago() -> Callable[[float], str]:
    """``days_ago(n)``: an ISO-8601 UTC timestamp n days in the past."""
    return iso_days_ago
