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
from .scoring import REGRESSION_METRICS, Scoring, scoring_for
from .split import split_gold
from .store import MLError, layout, ml_setting, write_json
from .tracking import tracker_for

CALIBRATION_BINS = 10


def score(
    metric: str,
    y_true: pd.Series | np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    classes: list[Any] | None,
    average: str | None = None,
    positive: Any = None,
) -> float:
    """One metric (see :mod:`.scoring`); roc_auc needs ``proba`` (columns in ``classes`` order)."""
    task = "regression" if metric in REGRESSION_METRICS else "classification"
    return Scoring(metric, task, average, positive).score(y_true, pred, proba, classes)


def check_scored_as_configured(metadata: dict[str, Any], cfg: dict[str, Any]) -> Scoring:
    """The scoring of conf/, refused when the model was trained under another one."""
    scoring = scoring_for(cfg)
    then = (metadata.get("metric"), metadata.get("average"), metadata.get("positive_class"))
    if then != (scoring.metric, scoring.average, scoring.positive):
        raise MLError(
            f"the candidate was trained for ml.metric {then[0]!r} (ml.average {then[1]!r}, "
            f"ml.positive_class {then[2]!r}) but conf/ now says {scoring.metric!r} "
            f"({scoring.average!r}, {scoring.positive!r}); run `make train` again"
        )
    return scoring


def calibration(
    y: np.ndarray, proba: np.ndarray, classes: list[Any], positive: int = 1
) -> dict[str, Any]:
    """Brier score and reliability bins of the positive class (binary: the class at index
    ``positive``) or of the top label (multi)."""
    if len(classes) == 2:
        confidence = proba[:, positive]
        outcome = (y == classes[positive]).astype(float)
        kind = f"P({classes[positive]})"
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
    average: str | None = None,
    positive: Any = None,
) -> dict[str, Any]:
    """All metrics of the task on one set (f1, precision, recall averaged as ``average`` says;
    ``positive``: the positive class of a binary target, default the last sorted one)."""
    y = np.asarray(y_true)
    out: dict[str, Any] = {"rows": len(y)}
    if task == "regression":
        regression = Scoring("r2", task)
        for name in REGRESSION_METRICS:
            out[name] = regression.score(y, pred, None, None, metric=name)
        return out
    assert classes is not None and proba is not None
    scoring = Scoring("accuracy", task, average, positive)
    binary = len(classes) == 2
    pos = scoring.positive_index(classes)
    roc_auc = scoring.score(y, pred, proba, classes, metric="roc_auc")
    out["roc_auc"] = None if np.isnan(roc_auc) else roc_auc
    for name in ("f1", "accuracy", "precision", "recall"):
        out[name] = scoring.score(y, pred, proba, classes, metric=name)
    averaging = scoring.averaging(classes)
    out["averaging"] = (
        f"positive class {averaging['pos_label']!r}"
        if averaging["average"] == "binary"
        else averaging["average"]
    )
    matrix = skm.confusion_matrix(y, pred, labels=classes)
    out["confusion_matrix"] = {"labels": list(classes), "rows_true_cols_pred": matrix.tolist()}
    out["calibration"] = calibration(y, proba, classes, pos)
    out["positive_rate"] = float(np.mean(y == classes[pos])) if binary else None
    return out


def evaluate_on(
    cand: Candidate, frame: pd.DataFrame, scoring: Scoring | None = None
) -> dict[str, Any]:
    """All metrics of a model on one set, averaged as ``scoring`` says (default: as trained)."""
    contract = cand.contract
    x = dataset.features(frame, contract)
    y = dataset.target(frame, contract)
    pred, proba = predict(cand.model, x, contract.task)
    if scoring is not None:
        average, positive = scoring.average, scoring.positive
    else:
        average, positive = cand.metadata.get("average"), cand.metadata.get("positive_class")
    classes = cand.metadata.get("classes")
    return report(contract.task, y, pred, proba, classes, average, positive)


def greater_is_better(cfg: dict[str, Any]) -> bool:
    return bool(ml_setting(cfg, "greater_is_better", scoring_for(cfg).greater_is_better))


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the candidate on validation and holdout; write reports/metrics.json."""
    lay = layout(cfg)
    cand = load_candidate(lay, cfg)
    gold, _, sha = dataset.load_gold(lay, cfg)
    cand.check_same_gold(sha)
    split = split_gold(gold, cand.contract.target, cand.contract.task, cfg)
    cand.check_same_split(split)
    metric = check_scored_as_configured(cand.metadata, cfg).metric
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
