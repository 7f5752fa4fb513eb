"""Training: a scikit-learn Pipeline (preprocessing + estimator) and a bounded random search.

Preprocessing is a ColumnTransformer: numeric features -> median imputer (+ standard scaler for
linear models; trees are scale-invariant and unscaled inputs keep float32 ONNX parity exact),
categorical features -> constant imputer + OneHotEncoder(handle_unknown="ignore").

The model families come from ``ml/models.py`` (the project's own registry): ``ml.families`` in
conf names them, or else every family of ``ml.framework`` there is searched (sklearn: a linear
model and a random forest; lightgbm: LightGBM; xgboost: XGBoost, when installed). Each family
gets ``ml.search.n_iter`` random draws scored by ``ml.search.cv``-fold cross-validation on (at
most ``ml.search.max_rows`` rows of) the training split; the best draw is refitted on the whole
training split, and the family that scores best on the validation split becomes the candidate.
The holdout is not touched here.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import joblib
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, RandomizedSearchCV, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ..common.lineage import record
from . import dataset, models
from .evaluate import greater_is_better
from .model import METADATA_FILE, MODEL_FILE, predict
from .scoring import scoring_for
from .split import split_gold
from .store import MLError, layout, ml_setting, replace_dir, staging_dir, utc_now, write_json
from .tracking import tracker_for


@dataclass(frozen=True)
class Family:
    """One model family of the search, ready to fit: an estimator, its search space, scaling."""

    name: str
    estimator: BaseEstimator
    space: dict[str, Any]
    scale: bool


def families(
    task: str, framework: str, seed: int, names: Sequence[str] | None = None
) -> list[Family]:
    """The ``ml/models.py`` families conf selects (``ml.families``, else ``ml.framework``)."""
    try:
        chosen = models.select(task, framework, names)
    except models.RegistryError as exc:
        raise MLError(str(exc)) from None
    return [
        Family(
            f.name,
            f.make(task, seed),  # type: ignore[arg-type]
            {f"model__{key}": value for key, value in f.space.items()},
            f.scale,
        )
        for f in chosen
    ]


def build_pipeline(contract: dataset.Contract, estimator: BaseEstimator, scale: bool) -> Pipeline:
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical = Pipeline(
        [
            (
                "impute",
                SimpleImputer(
                    missing_values=dataset.MISSING_CATEGORY,
                    strategy="constant",
                    fill_value="missing",
                ),
            ),
            ("onehot", OneHotEncoder(handle_unknown="ignore")),
        ]
    )
    parts: list[tuple[str, Any, list[str]]] = []
    if contract.numeric:
        parts.append(("numeric", Pipeline(numeric_steps), contract.numeric))
    if contract.categorical:
        parts.append(("categorical", categorical, contract.categorical))
    return Pipeline([("features", ColumnTransformer(parts)), ("model", estimator)])


def _family_names(cfg: dict[str, Any]) -> list[str] | None:
    names = ml_setting(cfg, "families", None)
    if names is None:
        return None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise MLError(
            f"conf: ml.families = {names!r}; give a list of family names from ml/models.py "
            "(or remove it to search every family of ml.framework)"
        )
    return names


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Split gold, search each family, keep the best on validation -> models/candidate/."""
    started, cpu_started = time.perf_counter(), time.process_time()
    lay = layout(cfg)
    scoring = scoring_for(cfg)
    metric = scoring.metric
    gold, contract, sha = dataset.load_gold(lay, cfg)
    split = split_gold(gold, contract.target, contract.task, cfg)
    framework = ml_setting(cfg, "framework")
    gib = greater_is_better(cfg)
    n_iter = int(ml_setting(cfg, "search.n_iter"))
    folds = int(ml_setting(cfg, "search.cv"))
    seed = int(ml_setting(cfg, "search.seed"))
    n_jobs = int(ml_setting(cfg, "search.n_jobs", 1))
    max_rows = int(ml_setting(cfg, "search.max_rows", 4000))
    if n_iter < 1 or folds < 2 or max_rows < 2 * folds:
        raise MLError(
            f"conf: ml.search.n_iter = {n_iter} must be >= 1, ml.search.cv = {folds} >= 2 and "
            f"ml.search.max_rows = {max_rows} >= 2 * cv"
        )

    x_train = dataset.features(split.train, contract)
    y_train = dataset.target(split.train, contract)
    x_val = dataset.features(split.validation, contract)
    y_val = dataset.target(split.validation, contract)
    classes = sorted(pd.unique(y_train).tolist()) if contract.task == "classification" else None
    if classes is not None and len(classes) < 2:
        raise MLError(f"target {contract.target!r} has one class in the training split")
    if classes is not None and len(classes) == 2:
        scoring.positive_index(classes)  # ml.positive_class names a class, or a clear error
    x_search, y_search = x_train, y_train
    if len(x_train) > max_rows:
        x_search, _, y_search, _ = train_test_split(
            x_train,
            y_train,
            train_size=max_rows,
            random_state=seed,
            stratify=y_train if contract.task == "classification" else None,
        )
    splitter = (
        StratifiedKFold(folds, shuffle=True, random_state=seed)
        if contract.task == "classification"
        else KFold(folds, shuffle=True, random_state=seed)
    )

    results: list[dict[str, Any]] = []
    best: tuple[float, Any, dict[str, Any]] | None = None
    for fam in families(contract.task, framework, seed, _family_names(cfg)):
        t0, cpu0 = time.perf_counter(), time.process_time()
        search = RandomizedSearchCV(
            build_pipeline(contract, fam.estimator, fam.scale),
            fam.space,
            n_iter=n_iter,
            cv=splitter,
            scoring=scoring.scorer(classes),
            random_state=seed,
            n_jobs=n_jobs,
            refit=False,
            error_score="raise",
        )
        search.fit(x_search, y_search)
        fitted = clone(search.estimator).set_params(**search.best_params_).fit(x_train, y_train)
        pred, proba = predict(fitted, x_val, contract.task)
        val_score = scoring.score(y_val, pred, proba, classes)
        entry = {
            "family": fam.name,
            "best_params": {k.removeprefix("model__"): v for k, v in search.best_params_.items()},
            # the search maximises, so error metrics are negated there
            "cv_score": float(search.best_score_) * (1.0 if scoring.greater_is_better else -1.0),
            "validation_score": val_score,
            "draws": n_iter,
            "search_rows": len(x_search),
            "seconds": round(time.perf_counter() - t0, 2),
            "cpu_seconds": round(time.process_time() - cpu0, 2),
        }
        results.append(entry)
        key = val_score if gib else -val_score
        if best is None or key > best[0]:
            best = (key, fitted, entry)
    assert best is not None
    _, model, chosen = best

    trained_at = utc_now()
    version = f"{trained_at.replace('-', '').replace(':', '')}-{sha[:8]}"
    stem, n = version, 1
    while (lay.versions / version).exists():  # trained twice in one second: versions are unique
        n += 1
        version = f"{stem}.{n}"
    metadata: dict[str, Any] = {
        "model_version": version,
        "trained_at": trained_at,
        "task": contract.task,
        "target": contract.target,
        "id_column": contract.id_column,
        "metric": metric,
        "average": scoring.average,
        "positive_class": scoring.positive,
        "score": None,
        "greater_is_better": gib,
        "features": contract.features,
        "classes": classes,
        "training_data": {
            "path": str(lay.features.relative_to(lay.root))
            if lay.features.is_relative_to(lay.root)
            else str(lay.features),
            "sha256": sha,
        },
        "framework": framework,
        "estimator": chosen["family"],
        "params": chosen["best_params"],
        "validation_score": chosen["validation_score"],
        "split": {
            **split.fingerprint(),
            "seed": int(ml_setting(cfg, "split.seed")),
            "stratified": contract.task == "classification",
        },
        "search": {"n_iter": n_iter, "cv": folds, "seed": seed, "max_rows": max_rows},
        "tracking": {"kind": ml_setting(cfg, "tracking")},
    }
    tracker = tracker_for(cfg)
    run_id = tracker.start(version, {"model_version": version, "estimator": chosen["family"]})
    metadata["tracking"]["run_id"] = run_id

    staging = staging_dir(lay.candidate)
    try:
        joblib.dump(model, staging / MODEL_FILE)
        write_json(staging / METADATA_FILE, metadata)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_dir(staging, lay.candidate)
    record(
        lay.root / "data" / "lineage.jsonl",
        "ml.train",
        inputs=[lay.features, lay.contract],
        outputs=[lay.candidate / MODEL_FILE],
        root=lay.root,
        extra={"model_version": version, "estimator": chosen["family"]},
    )

    seconds = round(time.perf_counter() - started, 2)
    summary = {
        "model_version": version,
        "metric": metric,
        "greater_is_better": gib,
        "chosen": chosen["family"],
        "families": results,
        "split": metadata["split"],
        "seconds": seconds,
        "cpu_seconds": round(time.process_time() - cpu_started, 2),
    }
    write_json(lay.report("train.json"), summary)
    tracker.log_params(
        run_id,
        {
            "estimator": chosen["family"],
            "framework": framework,
            **{f"param_{k}": v for k, v in chosen["best_params"].items()},
            "search_n_iter": n_iter,
            "search_cv": folds,
            "train_rows": len(split.train),
            "validation_rows": len(split.validation),
            "holdout_rows": len(split.holdout),
            "gold_sha256": sha,
        },
    )
    tracker.log_metrics(
        run_id,
        {f"cv_{r['family']}": r["cv_score"] for r in results}
        | {f"validation_{r['family']}": r["validation_score"] for r in results},
    )
    lineage = lay.root / "data" / "lineage.jsonl"
    tracker.log_artifacts(run_id, [lay.report("train.json"), lay.contract, lineage])
    return summary
