"""Metrics: the spec's metric plus the usual companions, on validation and holdout.

Classification: ROC AUC, F1, precision, recall, accuracy, confusion matrix, calibration (Brier
score and reliability bins). Regression: RMSE, MAE, R2. Writes ``reports/metrics.json`` and the
holdout score into the candidate's metadata (the score the gate judges).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from . import dataset
from .model import Candidate, load_candidate, predict
from .split import split_gold
from .store import MLError, layout, ml_setting, write_json
from .tracking import tracker_for

CLASSIFICATION_METRICS = ("roc_auc", "f1", "accuracy")
REGRESSION_METRICS = ("r2", "rmse", "mae")
LOWER_IS_BETTER = ("rmse", "mae")
CALIBRATION_BINS = 10


def score(
    metric: str,
    y_true: pd.Series | np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
) -> float:
    """One metric; roc_auc needs ``proba`` (columns in ``classes`` order)."""
    y = np.asarray(y_true)
    if metric == "r2":
        return float(skm.r2_score(y, pred))
    if metric == "rmse":
        return float(np.sqrt(skm.mean_squared_error(y, pred)))
    if metric == "mae":
        return float(skm.mean_absolute_error(y, pred))
    if metric == "accuracy":
        return float(skm.accuracy_score(y, pred))
    if classes is None:
        raise MLError(f"metric {metric!r} needs the class labels")
    binary = len(classes) == 2
    if metric == "f1":
        if binary:
            return float(skm.f1_score(y, pred, pos_label=classes[1]))
        return float(skm.f1_score(y, pred, average="macro", labels=classes))
    if metric == "roc_auc":
        if proba is None:
            raise MLError("roc_auc needs predicted probabilities")
        if len(np.unique(y)) < 2:
            raise MLError("roc_auc is undefined on a set with one class; gold needs more rows")
        if binary:
            return float(skm.roc_auc_score(y == classes[1], proba[:, 1]))
        return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))
    raise MLError(
        f"unknown metric {metric!r}; use one of {', '.join(CLASSIFICATION_METRICS)} "
        f"(classification) or {', '.join(REGRESSION_METRICS)} (regression)"
    )


def calibration(y: np.ndarray, proba: np.ndarray, classes: list[Any]) -> dict[str, Any]:
    """Brier score and reliability bins of the positive class (binary) or top label (multi)."""
    if len(classes) == 2:
        confidence = proba[:, 1]
        outcome = (y == classes[1]).astype(float)
        kind = f"P({classes[1]})"
    else:
        top = proba.argmax(axis=1)
        confidence = proba[np.arange(len(y)), top]
        outcome = (np.asarray(classes, dtype=object)[top] == y).astype(float)
        kind = "top-label confidence"
    brier = float(np.mean((confidence - outcome) ** 2))
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    bins: list[dict[str, Any]] = []
    for b in range(CALIBRATION_BINS):
        mask = which == b
        if mask.any():
            bins.append(
                {
                    "range": [float(edges[b]), float(edges[b + 1])],
                    "count": int(mask.sum()),
                    "mean_predicted": float(confidence[mask].mean()),
                    "observed_rate": float(outcome[mask].mean()),
                }
            )
    gaps = [abs(b["mean_predicted"] - b["observed_rate"]) * b["count"] for b in bins]
    ece = float(sum(gaps) / max(len(y), 1))
    return {"of": kind, "brier": brier, "expected_calibration_error": ece, "bins": bins}


def report(
    task: str,
    y_true: pd.Series,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
) -> dict[str, Any]:
    """All metrics of the task on one set."""
    y = np.asarray(y_true)
    out: dict[str, Any] = {"rows": len(y)}
    if task == "regression":
        for name in REGRESSION_METRICS:
            out[name] = score(name, y, pred, None, None)
        return out
    assert classes is not None and proba is not None
    binary = len(classes) == 2
    averaging: dict[str, Any] = (
        {"average": "binary", "pos_label": classes[1]}
        if binary
        else {"average": "macro", "labels": classes}
    )
    out["roc_auc"] = score("roc_auc", y, pred, proba, classes) if len(np.unique(y)) > 1 else None
    out["f1"] = score("f1", y, pred, proba, classes)
    out["accuracy"] = score("accuracy", y, pred, proba, classes)
    out["precision"] = float(skm.precision_score(y, pred, zero_division=0, **averaging))
    out["recall"] = float(skm.recall_score(y, pred, zero_division=0, **averaging))
    matrix = skm.confusion_matrix(y, pred, labels=classes)
    out["confusion_matrix"] = {"labels": list(classes), "rows_true_cols_pred": matrix.tolist()}
    out["calibration"] = calibration(y, proba, classes)
    out["positive_rate"] = float(np.mean(y == classes[1])) if binary else None
    return out


def evaluate_on(cand: Candidate, frame: pd.DataFrame) -> dict[str, Any]:
    contract = cand.contract
    x = dataset.features(frame, contract)
    y = dataset.target(frame, contract)
    pred, proba = predict(cand.model, x, contract.task)
    return report(contract.task, y, pred, proba, cand.metadata.get("classes"))


def greater_is_better(cfg: dict[str, Any]) -> bool:
    metric = ml_setting(cfg, "metric")
    return bool(ml_setting(cfg, "greater_is_better", metric not in LOWER_IS_BETTER))


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the candidate on validation and holdout; write reports/metrics.json."""
    lay = layout(cfg)
    cand = load_candidate(lay, cfg)
    gold, _, sha = dataset.load_gold(lay, cfg)
    cand.check_same_gold(sha)
    split = split_gold(gold, cand.contract.target, cand.contract.task, cfg)
    cand.check_same_split(split)
    metric = ml_setting(cfg, "metric")
    results = {
        "validation": evaluate_on(cand, split.validation),
        "holdout": evaluate_on(cand, split.holdout),
    }
    holdout_score = results["holdout"].get(metric)
    if holdout_score is None:
        raise MLError(f"metric {metric!r} could not be computed on the holdout")
    summary = {
        "model_version": cand.metadata["model_version"],
        "task": cand.contract.task,
        "metric": metric,
        "greater_is_better": greater_is_better(cfg),
        "min_score": float(ml_setting(cfg, "min_score")),
        "score": holdout_score,
        **results,
    }
    write_json(lay.report("metrics.json"), summary)
    cand.metadata["score"] = holdout_score
    cand.metadata["metrics"] = {
        "validation": {k: v for k, v in results["validation"].items() if _scalar(v)},
        "holdout": {k: v for k, v in results["holdout"].items() if _scalar(v)},
    }
    cand.save_metadata()
    tracker = tracker_for(cfg)
    run_id = cand.run_id
    flat = {f"{s}_{k}": v for s, r in cand.metadata["metrics"].items() for k, v in r.items()}
    tracker.log_metrics(run_id, flat)
    tracker.log_artifacts(run_id, [lay.report("metrics.json")])
    return summary


def _scalar(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
