"""Distribution drift between the training reference and recent traffic.

- PSI (population stability index), the primary measure: numeric values are binned on the
  reference's deciles (so each bin holds ~10% of the reference), categorical values by category.
  Rule of thumb: < 0.1 stable, 0.1-0.2 moderate shift, > 0.2 significant shift.
- KS (two-sample Kolmogorov-Smirnov statistic, numeric) as a second opinion; for categorical
  features the second opinion is a chi-square test of homogeneity. With thousands of rows their
  p-values flag even negligible shifts, so they are reported, not used as the trigger unless
  ``monitoring.drift_metric: ks`` (then the KS statistic is compared with the threshold).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EPSILON = 1e-4  # floor for empty bins, so PSI stays finite
QUANTILE_BINS = 10


@dataclass
class Drift:
    """The drift of one column; ``bins`` holds what the report plots."""

    name: str
    kind: str  # numeric | categorical
    psi: float
    ks_statistic: float | None
    p_value: float | None
    test: str  # "ks" | "chi2"
    reference_count: int
    current_count: int
    bins: list[dict[str, Any]] = field(default_factory=list)
    drifted: bool = False

    def score(self, metric: str) -> float:
        """The value compared with the threshold: PSI, or the KS statistic when asked and known."""
        if metric == "ks" and self.ks_statistic is not None:
            return self.ks_statistic
        return self.psi

    def as_dict(self, metric: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "psi": round(self.psi, 6),
            "ks_statistic": None if self.ks_statistic is None else round(self.ks_statistic, 6),
            "p_value": self.p_value,
            "test": self.test,
            "score": round(self.score(metric), 6),
            "drifted": self.drifted,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "bins": self.bins,
        }


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of two proportion vectors over the same bins."""
    ref = np.clip(reference, EPSILON, None)
    cur = np.clip(current, EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def quantile_edges(reference: np.ndarray, bins: int = QUANTILE_BINS) -> np.ndarray:
    """Interior bin edges at the reference's quantiles (duplicates removed)."""
    inner = np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(inner)


def _label(low: float, high: float) -> str:
    def fmt(x: float) -> str:
        return "-inf" if x == -math.inf else "inf" if x == math.inf else f"{x:.4g}"

    return f"({fmt(low)}, {fmt(high)}]"


def numeric_drift(name: str, reference: Sequence[float], current: Sequence[float]) -> Drift:
    from scipy import stats

    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref = ref[np.isfinite(ref)]
    cur = cur[np.isfinite(cur)]
    if ref.size == 0 or cur.size == 0:
        raise ValueError(f"{name}: no finite values to compare")
    edges = quantile_edges(ref)
    # np.digitize(..., right=True): bin i holds edges[i-1] < x <= edges[i]
    ref_counts = np.bincount(np.digitize(ref, edges, right=True), minlength=edges.size + 1)
    cur_counts = np.bincount(np.digitize(cur, edges, right=True), minlength=edges.size + 1)
    ref_p = ref_counts / ref.size
    cur_p = cur_counts / cur.size
    bounds = [-math.inf, *edges.tolist(), math.inf]
    ks = stats.ks_2samp(ref, cur)
    return Drift(
        name=name,
        kind="numeric",
        psi=psi(ref_p, cur_p),
        ks_statistic=float(ks.statistic),
        p_value=float(ks.pvalue),
        test="ks",
        reference_count=int(ref.size),
        current_count=int(cur.size),
        bins=[
            {
                "bin": _label(bounds[i], bounds[i + 1]),
                "reference": round(float(r), 6),
                "current": round(float(c), 6),
            }
            for i, (r, c) in enumerate(zip(ref_p, cur_p, strict=True))
        ],
    )


def as_category(value: Any) -> str:
    """A category as text; True, 1 and 1.0 are the same class (labels may come back as floats)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def categorical_drift(name: str, reference: Sequence[Any], current: Sequence[Any]) -> Drift:
    from scipy import stats

    ref_counts = Counter(as_category(v) for v in reference if v is not None)
    cur_counts = Counter(as_category(v) for v in current if v is not None)
    ref_total, cur_total = sum(ref_counts.values()), sum(cur_counts.values())
    if not ref_total or not cur_total:
        raise ValueError(f"{name}: no values to compare")
    categories = sorted(set(ref_counts) | set(cur_counts))
    ref_p = np.array([ref_counts[c] / ref_total for c in categories])
    cur_p = np.array([cur_counts[c] / cur_total for c in categories])
    p_value: float | None = None
    if len(categories) > 1:
        table = np.array([[ref_counts[c] for c in categories], [cur_counts[c] for c in categories]])
        p_value = float(stats.chi2_contingency(table).pvalue)
    return Drift(
        name=name,
        kind="categorical",
        psi=psi(ref_p, cur_p),
        ks_statistic=None,
        p_value=p_value,
        test="chi2",
        reference_count=ref_total,
        current_count=cur_total,
        bins=[
            {"bin": c, "reference": round(float(r), 6), "current": round(float(k), 6)}
            for c, r, k in zip(categories, ref_p, cur_p, strict=True)
        ],
    )


def column_drift(
    name: str,
    kind: str,
    reference: Sequence[Any],
    current: Sequence[Any],
    metric: str,
    threshold: float,
) -> Drift:
    """Drift of one column, judged against ``threshold`` with ``metric`` (psi | ks)."""
    if kind == "numeric":
        drift = numeric_drift(name, reference, current)
    else:
        drift = categorical_drift(name, reference, current)
    drift.drifted = drift.score(metric) > threshold
    return drift
