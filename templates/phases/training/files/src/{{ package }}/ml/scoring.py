"""The one definition of how a model is scored: hyper-parameter search, evaluation, the gate and
monitoring all call :class:`Scoring`, so a metric means the same thing at every step.

Classification labels may be text, integers or booleans. ``classes`` is the sorted list of labels
seen in training; for a binary target the *positive* class is ``ml.positive_class`` when conf
names one (``churned`` over ``stayed``), else the last one (``'yes'`` over ``'no'``, ``True`` over
``False``, ``1`` over ``0``). f1, precision and recall of a binary target
are those of the positive class unless ``ml.average`` asks for an average over both classes; with
three or more classes they are averaged as ``ml.average`` says (macro when unset). ROC AUC of three
or more classes is one-vs-rest, averaged the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from .store import MLError, ml_setting

CLASSIFICATION_METRICS = ("roc_auc", "f1", "accuracy")
REGRESSION_METRICS = ("r2", "rmse", "mae")
#: companions of the spec's metric in the evaluation report (averaged like f1)
AVERAGED_METRICS = ("f1", "precision", "recall")
LOWER_IS_BETTER = ("rmse", "mae")
AVERAGES = ("macro", "weighted", "micro")


@dataclass(frozen=True)
class Scoring:
    """A metric of a task, with the averaging of f1 / precision / recall / multiclass ROC AUC."""

    metric: str
    task: str
    average: str | None = None
    #: the positive class of a binary target (None: the last of the sorted classes)
    positive: Any = None

    def __post_init__(self) -> None:
        known = CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS
        if self.task not in ("classification", "regression"):
            raise MLError(f"conf: ml.task = {self.task!r}; use classification or regression")
        if self.metric not in known:
            raise MLError(
                f"conf: ml.metric = {self.metric!r} does not fit task {self.task!r}; "
                f"use one of {', '.join(known)}"
            )
        if self.average is not None:
            if self.task != "classification":
                raise MLError(
                    f"conf: ml.average = {self.average!r} only applies to classification; "
                    "remove it (or set it to null)"
                )
            if self.average not in AVERAGES:
                raise MLError(
                    f"conf: ml.average = {self.average!r}; use one of {', '.join(AVERAGES)} "
                    "(or null: the positive class of a binary target, macro otherwise)"
                )

        if self.positive is not None and self.task != "classification":
            raise MLError(
                f"conf: ml.positive_class = {self.positive!r} only applies to classification; "
                "remove it (or set it to null)"
            )

    @property
    def greater_is_better(self) -> bool:
        return self.metric not in LOWER_IS_BETTER

    def positive_index(self, classes: Sequence[Any]) -> int:
        """Where the positive class of a binary target sits in ``classes`` (sorted labels)."""
        if self.positive is None:
            return len(classes) - 1
        for i, c in enumerate(classes):
            if c == self.positive or str(c) == str(self.positive):
                return i
        raise MLError(
            f"conf: ml.positive_class = {self.positive!r} is not a class of the target "
            f"(classes: {', '.join(map(str, classes))}); name one of them or set it to null"
        )

    def positive_class(self, classes: Sequence[Any]) -> Any:
        """The positive class of a binary target (a label of ``classes``)."""
        return classes[self.positive_index(classes)]

    def averaging(self, classes: Sequence[Any]) -> dict[str, Any]:
        """The keyword arguments of sklearn's f1 / precision / recall for these classes."""
        if self.average is None and len(classes) == 2:
            return {"average": "binary", "pos_label": self.positive_class(classes)}
        return {"average": self.average or "macro", "labels": list(classes)}

    def score(
        self,
        y_true: pd.Series | np.ndarray | Sequence[Any],
        pred: np.ndarray | Sequence[Any],
        proba: np.ndarray | None,
        classes: Sequence[Any] | None,
        metric: str | None = None,
    ) -> float:
        """``metric`` (default: this scoring's) on one set; ``proba`` columns in ``classes`` order.

        ROC AUC returns NaN when the set holds a single class (it is undefined there).
        """
        name = metric or self.metric
        y = np.asarray(y_true)
        p = np.asarray(pred)
        if name in REGRESSION_METRICS:
            y_num, p_num = y.astype(np.float64), p.astype(np.float64)
            if name == "r2":
                return float(skm.r2_score(y_num, p_num))
            if name == "rmse":
                return float(np.sqrt(skm.mean_squared_error(y_num, p_num)))
            return float(skm.mean_absolute_error(y_num, p_num))
        if classes is None or len(classes) < 2:
            raise MLError(f"metric {name!r} needs the class labels (two or more)")
        labels = list(classes)
        if name == "accuracy":
            return float(skm.accuracy_score(y, p))
        if name in AVERAGED_METRICS:
            fn = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}
            return float(fn[name](y, p, zero_division=0, **self.averaging(labels)))
        if name == "roc_auc":
            if proba is None:
                raise MLError("roc_auc needs predicted probabilities")
            prob = np.asarray(proba, dtype=np.float64)
            present = set(pd.unique(y).tolist())
            if len(present) < 2:
                return float("nan")
            if len(labels) == 2:
                i = self.positive_index(labels)
                return float(skm.roc_auc_score(y == labels[i], prob[:, i]))
            if not present <= set(labels):
                raise MLError(f"labels {sorted(map(str, present - set(labels)))} are not classes")
            if len(present) < len(labels):
                # one-vs-rest over the classes present; the columns are renormalised
                keep = [i for i, c in enumerate(labels) if c in present]
                prob = prob[:, keep]
                prob = prob / np.clip(prob.sum(axis=1, keepdims=True), 1e-12, None)
                labels = [labels[i] for i in keep]
                if len(labels) == 2:
                    return float(skm.roc_auc_score(y == labels[1], prob[:, 1]))
            return float(
                skm.roc_auc_score(
                    y, prob, multi_class="ovr", labels=labels, average=self.average or "macro"
                )
            )
        raise MLError(
            f"unknown metric {name!r}; use one of {', '.join(CLASSIFICATION_METRICS)} "
            f"(classification) or {', '.join(REGRESSION_METRICS)} (regression)"
        )

    def scorer(self, classes: Sequence[Any] | None) -> Callable[[Any, pd.DataFrame, Any], float]:
        """A ``scoring=`` callable for sklearn's searches: greater is better (errors negated)."""
        sign = 1.0 if self.greater_is_better else -1.0
        labels = list(classes) if classes is not None else None

        def _score(estimator: Any, x: pd.DataFrame, y: Any) -> float:
            if self.task == "classification":
                proba = np.asarray(estimator.predict_proba(x), dtype=np.float64)
                fitted = list(estimator.classes_)
                wanted = labels or fitted
                # columns in `classes` order; a class missing from a fold scores probability 0
                full = np.zeros((len(proba), len(wanted)))
                for j, c in enumerate(fitted):
                    if c not in wanted:
                        raise MLError(
                            f"the model predicts class {c!r}, which is not among the classes it "
                            f"is scored against ({wanted}: `classes` in the model's metadata.json, "
                            "the labels seen in training). The model and its metadata come from "
                            "different runs: train again (`make train`) so they match."
                        )
                    full[:, wanted.index(c)] = proba[:, j]
                pred = np.asarray(estimator.classes_)[proba.argmax(axis=1)]
                value = self.score(y, pred, full, wanted)
            else:
                value = self.score(y, np.asarray(estimator.predict(x)), None, None)
            return sign * value

        return _score


def scoring_for(cfg: dict[str, Any]) -> Scoring:
    """The scoring conf/ asks for: ``ml.task``, ``ml.metric``, ``ml.average`` and
    ``ml.positive_class`` (both optional)."""
    average = ml_setting(cfg, "average", None)
    return Scoring(
        metric=str(ml_setting(cfg, "metric")),
        task=str(ml_setting(cfg, "task")),
        average=None if average is None else str(average),
        positive=ml_setting(cfg, "positive_class", None),
    )
