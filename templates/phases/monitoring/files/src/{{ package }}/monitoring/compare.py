"""Champion vs challenger on live traffic with late ground truth: the score difference, its
confidence interval, and a decision (promote, keep testing, roll back).

Samples come from the request log (``logs/requests.jsonl``) joined with the labels
(``data/labels/*.csv|parquet``, including ``feedback.csv`` from ``POST /feedback``) on
``request_id``:

- **shadow**: every request answered by the champion also carries ``shadow`` = the challenger's
  prediction of the *same* record, so the two models are compared on the same labelled requests
  (a paired sample);
- **canary / ab**: each request was answered by one model (``model_version``), so the two arms
  are independent samples of the traffic (routing by a stable hash keeps them comparable).

The interval is a **bootstrap percentile interval** of ``score(challenger) - score(champion)``
(signed so that positive = the challenger is better, also for rmse/mae): the metric is the
project's own (``ml.metric``: ROC AUC, F1, RMSE, ... are not means of per-request values, so the
two-proportion or Welch intervals, which need a per-request mean such as accuracy, do not apply),
and resampling the request indices jointly (shadow) or per arm (canary/ab) respects how the
samples were drawn. ``monitoring.comparison.bootstrap`` resamples with a fixed seed, so the same
log gives the same decision.

Decision (``monitoring.comparison`` in conf/):

- fewer than ``min_samples`` labelled requests for either model -> ``keep_testing``;
- the whole interval above ``min_improvement`` -> ``promote`` (acted on only when
  ``auto_promote: true``; otherwise the report asks for ``make promote``);
- the whole interval below 0 (the challenger is worse with confidence) -> ``rollback`` (the
  challenger is withdrawn when ``auto_rollback: true``, the default);
- otherwise -> ``keep_testing``.

Looking at a running experiment every day and stopping at the first confident interval
inflates the false-decision rate (the peeking problem); a larger ``min_samples`` and a higher
``confidence`` keep it in check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .drift import as_category

if TYPE_CHECKING:
    from ..ml.scoring import Scoring

DECISIONS = ("promote", "keep_testing", "rollback")


@dataclass(frozen=True)
class ComparisonSettings:
    min_samples: int = 200
    confidence: float = 0.95
    bootstrap: int = 500
    min_improvement: float = 0.0
    auto_rollback: bool = True
    auto_promote: bool = False
    seed: int = 0

    @classmethod
    def from_config(cls, node: Any, where: str = "monitoring.comparison") -> ComparisonSettings:
        """From conf's ``monitoring.comparison`` mapping; a wrong value is a ValueError naming
        the key."""
        if node is None:
            return cls()
        if not isinstance(node, dict):
            raise ValueError(f"{where} must be a mapping, not {node!r}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(node) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; use {sorted(known)}")
        out = cls(**node)
        checks = [
            (isinstance(out.min_samples, int) and out.min_samples >= 2, "min_samples", ">= 2"),
            (
                isinstance(out.confidence, float) and 0.5 <= out.confidence < 1,
                "confidence",
                "in [0.5, 1)",
            ),
            (isinstance(out.bootstrap, int) and out.bootstrap >= 100, "bootstrap", ">= 100"),
            (
                isinstance(out.min_improvement, int | float) and out.min_improvement >= 0,
                "min_improvement",
                ">= 0",
            ),
            (isinstance(out.auto_rollback, bool), "auto_rollback", "true or false"),
            (isinstance(out.auto_promote, bool), "auto_promote", "true or false"),
            (isinstance(out.seed, int), "seed", "an integer"),
        ]
        for ok, key, rule in checks:
            if not ok:
                raise ValueError(f"{where}.{key} = {getattr(out, key)!r} must be {rule}")
        return out


def arms(records: list[dict[str, Any]], champion: str, challenger: str
         ) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """(mode, champion records, challenger records) from the request log.

    shadow: pairs (the same requests, the challenger's prediction from ``shadow``);
    split: the requests each model answered.
    """
    shadowed = []
    for r in records:
        shadow = r.get("shadow")
        if (
            r.get("model_version") == champion
            and isinstance(shadow, dict)
            and shadow.get("model_version") == challenger
            and "prediction" in shadow
            and not shadow.get("error")
        ):
            shadowed.append(r)
    if shadowed:
        twins = [
            {
                "request_id": r.get("request_id"),
                "model_version": challenger,
                "prediction": r["shadow"]["prediction"],
                "probabilities": r["shadow"].get("probabilities"),
            }
            for r in shadowed
        ]
        return "shadow", shadowed, twins
    return (
        "split",
        [r for r in records if r.get("model_version") == champion],
        [r for r in records if r.get("model_version") == challenger],
    )


class _Prepared:
    """Labels and predictions of one arm as arrays, so each resample only indexes them."""

    def __init__(self, scoring: Scoring, truth: list[Any], records: list[dict[str, Any]],
                 classes: list[Any] | None) -> None:  # fmt: skip
        self.scoring = scoring
        self.n = len(records)
        self.proba: np.ndarray | None = None
        if scoring.task == "regression":
            self.labels = None
            self.y = np.asarray([float(t) for t in truth], dtype=np.float64)
            self.p = np.asarray([float(r["prediction"]) for r in records], dtype=np.float64)
            return
        self.labels = [as_category(c) for c in (classes or [])]
        self.y = np.asarray([as_category(t) for t in truth], dtype=object)
        self.p = np.asarray([as_category(r["prediction"]) for r in records], dtype=object)
        if scoring.metric == "roc_auc":
            rows = [
                [float((r.get("probabilities") or {}).get(str(c), math.nan)) for c in classes or []]
                for r in records
            ]
            self.proba = np.asarray(rows, dtype=np.float64).reshape(len(records), -1)

    @property
    def usable(self) -> str | None:
        """Why the arm cannot be scored (None: it can)."""
        if self.scoring.task == "classification" and len(self.labels or []) < 2:
            return "the model's classes are unknown"
        if self.proba is not None and np.isnan(self.proba).any():
            return "roc_auc needs the logged probabilities of every class"
        return None

    def score(self, idx: np.ndarray | None = None) -> float:
        """The metric on the rows ``idx`` (all rows: exactly ml/scoring.py's value)."""
        if idx is None:
            idx = np.arange(self.n)
        proba = None if self.proba is None else self.proba[idx]
        try:
            return float(self.scoring.score(self.y[idx], self.p[idx], proba, self.labels))
        except ValueError:  # e.g. one class only in a resample
            return math.nan

    def resampler(self) -> Callable[[np.ndarray], float]:
        """The metric on a resample of row indices: a vectorised numpy version for accuracy,
        binary ROC AUC, binary f1 and the regression metrics (the same numbers
        as scikit-learn, far cheaper per resample), scikit-learn through ml/scoring.py for the
        others (multiclass averages)."""
        metric, y, p = self.scoring.metric, self.y, self.p
        if self.scoring.task == "regression":
            if metric == "rmse":
                return lambda idx: float(np.sqrt(np.mean((y[idx] - p[idx]) ** 2)))
            if metric == "mae":
                return lambda idx: float(np.mean(np.abs(y[idx] - p[idx])))

            def r2(idx: np.ndarray) -> float:
                yy = y[idx]
                total = float(np.sum((yy - yy.mean()) ** 2))
                return math.nan if total == 0 else 1 - float(np.sum((yy - p[idx]) ** 2)) / total

            return r2
        labels = self.labels or []
        if metric == "accuracy":
            correct = (y == p).astype(np.float64)
            return lambda idx: float(correct[idx].mean())
        if metric == "roc_auc" and len(labels) == 2 and self.proba is not None:
            from scipy.stats import rankdata

            i = self.scoring.positive_index(labels)
            positive = y == labels[i]
            column = self.proba[:, i]

            def auc(idx: np.ndarray) -> float:
                pos = positive[idx]
                n_pos = int(pos.sum())
                n_neg = len(idx) - n_pos
                if n_pos == 0 or n_neg == 0:
                    return math.nan
                ranks = rankdata(column[idx])
                return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))

            return auc
        averaging = self.scoring.averaging(labels) if len(labels) >= 2 else {}
        if metric == "f1" and averaging.get("average") == "binary":
            hit_true = y == averaging["pos_label"]
            hit_pred = p == averaging["pos_label"]

            def f1(idx: np.ndarray) -> float:
                t, q = hit_true[idx], hit_pred[idx]
                tp = float(np.sum(t & q))
                den = 2 * tp + float(np.sum(~t & q)) + float(np.sum(t & ~q))
                return 2 * tp / den if den else 0.0  # scikit-learn's zero_division=0

            return f1
        return self.score


def compare(
    records: list[dict[str, Any]],
    labels: dict[str, Any],
    champion: str,
    challenger: str,
    scoring: Scoring,
    classes: dict[str, list[Any] | None],
    settings: ComparisonSettings,
) -> dict[str, Any]:
    """The comparison block of the report (see the module docstring)."""
    mode, champ, chal = arms(records, champion, challenger)

    def joined(rows: list[dict[str, Any]]) -> list[tuple[Any, dict[str, Any]]]:
        return [(labels[str(r.get("request_id"))], r) for r in rows
                if str(r.get("request_id")) in labels]  # fmt: skip

    champ_l, chal_l = joined(champ), joined(chal)
    sign = 1.0 if scoring.greater_is_better else -1.0
    out: dict[str, Any] = {
        "champion": champion,
        "challenger": challenger,
        "mode": mode,
        "metric": scoring.metric,
        "greater_is_better": scoring.greater_is_better,
        "method": (
            f"bootstrap percentile interval ({settings.bootstrap} resamples, "
            + ("paired: the same requests" if mode == "shadow" else "independent arms")
            + ") of score(challenger) - score(champion), signed so that > 0 = challenger better"
        ),
        "confidence": settings.confidence,
        "min_samples": settings.min_samples,
        "min_improvement": settings.min_improvement,
        "requests": {"champion": len(champ), "challenger": len(chal)},
        "labelled": {"champion": len(champ_l), "challenger": len(chal_l)},
        "score": {"champion": None, "challenger": None},
        "difference": None,
        "interval": None,
        "decision": "keep_testing",
        "reason": "",
    }
    short = [name for name, n in (("champion", len(champ_l)), ("challenger", len(chal_l)))
             if n < settings.min_samples]  # fmt: skip
    if short:
        out["reason"] = (
            f"{len(champ_l)} labelled requests for the champion and {len(chal_l)} for the "
            f"challenger; at least {settings.min_samples} each (monitoring.comparison.min_samples) "
            "are needed to decide"
        )
        return out
    a = _Prepared(scoring, [t for t, _ in champ_l], [r for _, r in champ_l], classes["champion"])
    b = _Prepared(scoring, [t for t, _ in chal_l], [r for _, r in chal_l], classes["challenger"])
    for name, arm in (("champion", a), ("challenger", b)):
        if arm.usable:
            out["reason"] = f"the {name} cannot be scored: {arm.usable}"
            return out
    score_a, score_b = a.score(), b.score()
    if math.isnan(score_a) or math.isnan(score_b):
        out["reason"] = f"{scoring.metric} is undefined on the labelled requests (one class only?)"
        return out
    out["score"] = {"champion": round(score_a, 6), "challenger": round(score_b, 6)}
    diff = sign * (score_b - score_a)
    out["difference"] = round(diff, 6)

    rng = np.random.default_rng(settings.seed)
    score_a_on, score_b_on = a.resampler(), b.resampler()
    diffs = []
    for _ in range(settings.bootstrap):
        if mode == "shadow":
            idx = rng.integers(0, a.n, a.n)
            da, db = score_a_on(idx), score_b_on(idx)
        else:
            da, db = score_a_on(rng.integers(0, a.n, a.n)), score_b_on(rng.integers(0, b.n, b.n))
        if not (math.isnan(da) or math.isnan(db)):
            diffs.append(sign * (db - da))
    if len(diffs) < 0.9 * settings.bootstrap:
        out["reason"] = (
            f"{scoring.metric} was undefined on {settings.bootstrap - len(diffs)} of "
            f"{settings.bootstrap} resamples (too few labels of a class); keep collecting labels"
        )
        return out
    tail = (1 - settings.confidence) / 2
    low, high = (float(v) for v in np.quantile(np.asarray(diffs), [tail, 1 - tail]))
    out["interval"] = [round(low, 6), round(high, 6)]
    pct = f"{settings.confidence:.0%}"
    shown = (
        f"{scoring.metric} champion {score_a:.4f}, challenger {score_b:.4f}; difference "
        f"{diff:+.4f} (challenger better when > 0), {pct} interval [{low:+.4f}, {high:+.4f}] "
        f"on {len(champ_l)}/{len(chal_l)} labelled requests"
    )
    if high < 0:
        out["decision"] = "rollback"
        out["reason"] = f"the challenger is worse with {pct} confidence: {shown}"
    elif low > settings.min_improvement:
        out["decision"] = "promote"
        out["reason"] = (
            f"the challenger is better by more than {settings.min_improvement} with {pct} "
            f"confidence: {shown}"
        )
    else:
        out["decision"] = "keep_testing"
        out["reason"] = f"no difference with {pct} confidence yet: {shown}"
    return out


def champion_tenure(events: list[dict[str, Any]], now: str) -> dict[str, Any]:
    """How long each champion served before it was replaced (from registry.jsonl): the stats on
    how long a deployed model takes to go stale. ``now`` closes the current champion's term."""
    from .checks import parse_time

    terms: list[dict[str, Any]] = []
    for entry in events:
        for change in entry.get("changes") or []:
            if change.get("alias") != "champion" or not entry.get("when"):
                continue
            if terms and terms[-1]["until"] is None:
                terms[-1].update(until=entry["when"], ended_by=entry.get("event"),
                                 why=entry.get("why"))  # fmt: skip
            if change.get("to"):
                terms.append({"model_version": change["to"], "since": entry["when"],
                              "until": None, "ended_by": None, "why": None})  # fmt: skip
    for term in terms:
        end = parse_time(term["until"] or now)
        term["days"] = round((end - parse_time(term["since"])).total_seconds() / 86400, 3)
    ended = sorted(t["days"] for t in terms if t["until"] is not None)
    return {
        "terms": terms[-10:],
        "replaced": len(ended),
        "median_days_until_replaced": float(np.median(ended)) if ended else None,
        "current_days": terms[-1]["days"] if terms and terms[-1]["until"] is None else None,
    }
