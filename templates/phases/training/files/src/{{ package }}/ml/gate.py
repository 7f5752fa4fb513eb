"""The acceptance gate ("blessing") on the untouched holdout.

The candidate passes only when
1. its holdout score reaches ``ml.min_score`` (a minimum, or a maximum for rmse/mae:
   ``ml.greater_is_better``),
2. it is not worse than the champion (the model serving today) by more than
   ``ml.gate.max_regression`` (the champion is re-scored on the same holdout when it can be
   loaded), and
3. its ONNX export passed the parity test.

Pass -> the candidate's folder (model.onnx, model.joblib, metadata.json, ...) plus
``reference.parquet`` is kept as ``models/versions/<version>/`` (common/registry.py). With
``serving.strategy: single`` (the default), or when there is no champion yet, it becomes the
champion; with ``shadow``, ``canary`` or ``ab`` it becomes the challenger, served beside the
champion until ``make monitor`` (or ``python -m <package>.ml promote``) decides. The move is
recorded in ``models/registry.jsonl`` (who, when, why) and, with MLflow, the model is registered
and the registry's aliases mirror the local ones.
Fail -> nothing is blessed, and :class:`GateRejected` carries the one-line reason.
Either way the decision and its evidence are written to ``reports/gate.json``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from ..common import registry
from ..common.config import origin
from ..common.lineage import record
from . import dataset
from .evaluate import check_scored_as_configured, evaluate_on, greater_is_better
from .model import (
    METADATA_FILE,
    MODEL_FILE,
    ONNX_FILE,
    REFERENCE_FILE,
    Candidate,
    load_candidate,
    predict,
)
from .scoring import Scoring
from .split import Split, split_gold
from .store import (
    GateRejected,
    Layout,
    MLError,
    layout,
    ml_setting,
    read_json,
    staging_dir,
    utc_now,
    write_json,
)
from .tracking import tracker_for

REFERENCE_ROWS = 5000
STRATEGIES = ("single", "shadow", "canary", "ab")


def serving_strategy(cfg: dict[str, Any]) -> str:
    """``serving.strategy`` of conf/ (single when the project has no serving section)."""
    serving = cfg.get("serving")
    strategy = serving.get("strategy", "single") if isinstance(serving, dict) else "single"
    if strategy not in STRATEGIES:
        raise MLError(
            f"{origin(cfg, 'serving.strategy')}: serving.strategy = {strategy!r}; use one of "
            + ", ".join(STRATEGIES)
        )
    return str(strategy)


def meets_threshold(score: float, min_score: float, greater_is_better: bool) -> bool:
    """``min_score`` is a minimum for scores and a maximum for errors (rmse, mae)."""
    return score >= min_score if greater_is_better else score <= min_score


def within_regression(
    candidate: float, blessed: float, max_regression: float, greater_is_better: bool
) -> bool:
    """True when the candidate is at most ``max_regression`` worse than the blessed model."""
    if greater_is_better:
        return candidate >= blessed - max_regression
    return candidate <= blessed + max_regression


def _blessed_evidence(lay: Layout, cfg: dict[str, Any], split: Split, scoring: Scoring
                      ) -> dict[str, Any] | None:  # fmt: skip
    """The champion's score on today's holdout, as the candidate is scored.

    Its recorded score stands in when it cannot be re-scored (its features are gone from gold)
    and was recorded under the same metric and averaging. A blessed model of another target or
    task is not comparable: ``score`` is None and ``scored_on`` says why.
    """
    champion = lay.champion
    if champion is None:
        return None
    meta_file = champion / METADATA_FILE
    meta = read_json(meta_file, "restore the folder, or move the champion alias to a kept version "
                     "(`python -m <package>.ml rollback --to <version>`)")  # fmt: skip
    evidence: dict[str, Any] = {
        "model_version": meta.get("model_version"),
        "recorded_score": meta.get("score"),
    }
    target, task = ml_setting(cfg, "target"), ml_setting(cfg, "task")
    if (meta.get("target"), meta.get("task")) != (target, task):
        evidence["score"] = None
        evidence["scored_on"] = (
            f"not comparable: the blessed model predicts {meta.get('target')!r} "
            f"({meta.get('task')}), the candidate {target!r} ({task})"
        )
        return evidence
    try:
        blessed = load_candidate(lay, cfg, folder=champion)
        # scored as the candidate is (same metric and averaging), not as it was trained
        results = evaluate_on(blessed, split.holdout, scoring)
        if results.get(scoring.metric) is None:
            raise MLError(f"{scoring.metric} is undefined on the holdout")
        evidence["score"] = results[scoring.metric]
        evidence["scored_on"] = "current holdout"
    except (MLError, KeyError, ValueError) as exc:
        then = (meta.get("metric"), meta.get("average"), meta.get("positive_class"))
        if then == (scoring.metric, scoring.average, scoring.positive):
            evidence["score"] = meta.get("score")
            evidence["scored_on"] = f"recorded score (could not re-score: {exc})"
        else:
            evidence["score"] = None
            evidence["scored_on"] = (
                f"not comparable: could not re-score it ({exc}) and its score was recorded for "
                f"{meta.get('metric')!r} (average {meta.get('average')!r})"
            )
    return evidence


def _reference(cand: Candidate, split: Split, seed: int) -> pd.DataFrame:
    """A sample of training features (as in gold) with the model's prediction: drift reference."""
    contract = cand.contract
    rows = split.train
    if len(rows) > REFERENCE_ROWS:
        rows = rows.sample(REFERENCE_ROWS, random_state=seed)
    pred, _ = predict(cand.model, dataset.features(rows, contract), contract.task)
    out = rows[contract.names].reset_index(drop=True).copy()
    out["prediction"] = pred
    return out


def _keep(lay: Layout, cand: Candidate, reference: pd.DataFrame) -> Path:
    """Copy the candidate's folder (model, ONNX, the feature code it travels with, ...) plus the
    drift reference to ``models/versions/<version>/``, written in full before it appears."""
    version = registry.check_version(str(cand.metadata["model_version"]))
    staging = staging_dir(lay.versions / version)
    try:
        for item in cand.folder.iterdir():
            if item.name.startswith(".") or item.name in (METADATA_FILE, REFERENCE_FILE):
                continue
            if item.is_dir():
                shutil.copytree(item, staging / item.name)
            else:
                shutil.copy2(item, staging / item.name)
        for name in (MODEL_FILE, ONNX_FILE):
            if not (staging / name).is_file():
                raise MLError(f"{cand.folder / name} is missing; re-run `make pipeline`")
        reference.to_parquet(staging / REFERENCE_FILE, index=False)
        write_json(staging / METADATA_FILE, cand.metadata)
        return registry.install(lay.models, staging, version)
    except registry.RegistryError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise MLError(str(exc)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _bless(lay: Layout, cfg: dict[str, Any], cand: Candidate, reference: pd.DataFrame,
           entry: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """Keep the candidate and point champion (strategy single, or no champion yet) or
    challenger (shadow / canary / ab) at it; returns the registry event."""
    version = str(cand.metadata["model_version"])
    strategy = serving_strategy(cfg)
    champion = registry.aliases(lay.models)["champion"]
    folder = _keep(lay, cand, reference)
    if strategy == "single" or champion is None:
        alias = "champion"
        why = (
            "first blessed model" if champion is None
            else f"passed the gate; serving.strategy single replaces champion {champion}"
        )  # fmt: skip
    else:
        alias = "challenger"
        why = f"passed the gate; serving.strategy {strategy} tests it against champion {champion}"
    event = registry.move(lay.models, alias, version, who=registry.who(), why=why, event="bless",
                          extra=entry)  # fmt: skip
    record(
        lay.root / "data" / "lineage.jsonl",
        "ml.bless",
        inputs=[cand.folder / MODEL_FILE, lay.features],
        outputs=[folder / ONNX_FILE, folder / REFERENCE_FILE],
        root=lay.root,
        extra={"model_version": version, "alias": alias, "replaces": champion},
    )
    return event


def migrate_layout(lay: Layout) -> dict[str, Any] | None:
    """Move a pre-registry ``models/blessed/`` (+ ``archive/``) into ``models/versions/``."""
    try:
        return registry.migrate(lay.models, who=registry.who())
    except registry.RegistryError as exc:
        raise MLError(str(exc)) from None


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Judge the candidate; bless it or raise GateRejected. Writes reports/gate.json."""
    lay = layout(cfg)
    cand = load_candidate(lay, cfg)
    migrated = migrate_layout(lay)
    meta = cand.metadata
    if meta.get("score") is None:
        raise MLError("the candidate has no holdout score; run `python -m <package>.ml evaluate`")
    if "onnx" not in meta:
        raise MLError("the candidate is not packaged; run `python -m <package>.ml package`")
    gold, _, sha = dataset.load_gold(lay, cfg)
    cand.check_same_gold(sha)
    contract = cand.contract
    split = split_gold(gold, contract.target, contract.task, cfg)
    cand.check_same_split(split)

    scoring = check_scored_as_configured(meta, cfg)
    metric = scoring.metric
    gib = greater_is_better(cfg)
    min_score = float(ml_setting(cfg, "min_score"))
    max_regression = float(ml_setting(cfg, "gate.max_regression"))
    if max_regression < 0:
        raise MLError(f"conf: ml.gate.max_regression = {max_regression} must be >= 0")
    score = float(meta["score"])
    word = ">=" if gib else "<="
    checks: list[dict[str, Any]] = []
    ok = meets_threshold(score, min_score, gib)
    checks.append(
        {
            "check": "min_score",
            "passed": ok,
            "detail": f"holdout {metric} {score:.4f} {word} {min_score}"
            if ok
            else f"holdout {metric} {score:.4f} does not reach min_score {min_score} "
            f"(needs {word} {min_score})",
        }
    )
    blessed = _blessed_evidence(lay, cfg, split, scoring)
    if blessed is None:
        checks.append({"check": "vs_blessed", "passed": True, "detail": "no champion yet"})
    elif blessed.get("score") is None:
        detail = f"champion {blessed['model_version']} {blessed['scored_on']}"
        checks.append({"check": "vs_blessed", "passed": True, "detail": detail})
    else:
        ref = float(blessed["score"])
        ok = within_regression(score, ref, max_regression, gib)
        checks.append(
            {
                "check": "vs_blessed",
                "passed": ok,
                "detail": f"holdout {metric} {score:.4f} vs champion {blessed['model_version']} "
                f"{ref:.4f} (allowed regression {max_regression})"
                + ("" if ok else ": the candidate is worse than the champion"),
            }
        )
    parity = meta["onnx"]["parity"]
    checks.append(
        {
            "check": "onnx_parity",
            "passed": bool(parity.get("ok")),
            "detail": f"max |native - onnx| {parity.get('max_abs_diff'):.3g} on "
            f"{parity.get('rows')} holdout rows",
        }
    )
    passed = all(c["passed"] for c in checks)
    reasons = [c["detail"] for c in checks if not c["passed"]]
    decision: dict[str, Any] = {
        "decision": "blessed" if passed else "rejected",
        "passed": passed,
        "reasons": reasons,
        "decided_at": utc_now(),
        "metric": metric,
        "greater_is_better": gib,
        "min_score": min_score,
        "max_regression": max_regression,
        "candidate": {
            "model_version": meta["model_version"],
            "score": score,
            "estimator": meta.get("estimator"),
        },
        "blessed_before": blessed,
        "checks": checks,
        "holdout_rows": len(split.holdout),
        "registry": None,
        "migrated": migrated,
    }
    tracker = tracker_for(cfg)
    if passed:
        reference = _reference(cand, split, int(ml_setting(cfg, "split.seed")))
        cand.metadata["blessed_at"] = decision["decided_at"]
        entry: dict[str, Any] = {
            "model_version": meta["model_version"],
            "blessed_at": decision["decided_at"],
            "metric": metric,
            "score": score,
        }
        registered = tracker.register(
            meta.get("tracking", {}).get("model_uri"),
            {"model_version": meta["model_version"], metric: f"{score:.6f}"},
        )
        if registered is not None:
            entry["mlflow"] = registered
        event = _bless(lay, cfg, cand, reference, entry)
        tracker.mirror_aliases(event["aliases"])
        decision["registry"] = event
        decision["alias"] = next(
            c["alias"] for c in event["changes"] if c["to"] == meta["model_version"]
        )
    out = write_json(lay.report("gate.json"), decision)
    tracker.log_metrics(cand.run_id, {"gate_passed": 1.0 if passed else 0.0})
    tracker.log_artifacts(cand.run_id, [out])
    if not passed:
        raise GateRejected(f"candidate {meta['model_version']}: " + "; ".join(reasons))
    return decision
