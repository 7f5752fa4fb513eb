"""Explanation: permutation importance of every contract feature on the holdout.

The whole pipeline is permuted column by column on raw features, so the importances speak in the
business's feature names (not one-hot columns) and cover preprocessing too.
"""

from __future__ import annotations

from typing import Any

from sklearn.inspection import permutation_importance

from . import dataset
from .evaluate import check_scored_as_configured
from .model import load_candidate
from .split import split_gold
from .store import layout, ml_setting, write_json
from .tracking import tracker_for

MAX_ROWS = 2000
REPEATS = 5


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    lay = layout(cfg)
    cand = load_candidate(lay, cfg)
    gold, _, sha = dataset.load_gold(lay, cfg)
    cand.check_same_gold(sha)
    contract = cand.contract
    split = split_gold(gold, contract.target, contract.task, cfg)
    cand.check_same_split(split)
    seed = int(ml_setting(cfg, "split.seed"))
    rows = split.holdout
    if len(rows) > MAX_ROWS:
        rows = rows.sample(MAX_ROWS, random_state=seed)
    x = dataset.features(rows, contract)
    y = dataset.target(rows, contract)
    scoring = check_scored_as_configured(cand.metadata, cfg)
    metric = scoring.metric
    result = permutation_importance(
        cand.model,
        x,
        y,
        scoring=scoring.scorer(cand.metadata.get("classes")),
        n_repeats=REPEATS,
        random_state=seed,
        n_jobs=1,
    )
    ranked: list[dict[str, Any]] = [
        {
            "feature": name,
            "importance_mean": float(result.importances_mean[i]),
            "importance_std": float(result.importances_std[i]),
        }
        for i, name in enumerate(contract.names)
    ]
    ranked.sort(key=lambda r: float(r["importance_mean"]), reverse=True)
    summary = {
        "model_version": cand.metadata["model_version"],
        "method": "permutation importance (drop in the metric when a feature is shuffled)",
        "metric": metric,
        "set": "holdout",
        "rows": len(rows),
        "repeats": REPEATS,
        "features": ranked,
    }
    out = write_json(lay.report("explanation.json"), summary)
    tracker_for(cfg).log_artifacts(cand.run_id, [out])
    return summary
