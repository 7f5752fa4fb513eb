"""The monitoring checks: data drift, prediction drift, performance on late labels, model
staleness, schema mismatches and, when the registry has a challenger, champion vs challenger on
labelled live traffic (compare.py). ``run_checks`` returns the JSON-ready report."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..common import registry
from ..serving.model import REFERENCE_FILE, ModelMetadata, read_metadata
from .compare import ComparisonSettings, champion_tenure, compare
from .drift import as_category, column_drift

if TYPE_CHECKING:
    from ..ml.scoring import Scoring

EXIT_HEALTHY = 0
EXIT_USAGE = 2
EXIT_RETRAIN = 3
EXIT_MOVED = 4
EXIT_CODES = {
    str(EXIT_HEALTHY): "healthy: no retraining needed (or too little traffic to judge drift)",
    str(EXIT_USAGE): "usage or data error: missing model/reference, unreadable labels",
    str(EXIT_RETRAIN): "retraining due: drift above the threshold, model too old, or "
    "performance on labelled traffic below ml.min_score",
    str(EXIT_MOVED): "the registry moved: the challenger was rolled back (worse with "
    "confidence) or promoted (monitoring.comparison.auto_promote); redeploy or let the service "
    "reload models/aliases.json (retraining due wins: 3)",
}
SCHEMA_ALERT_RATE = 0.05


class MonitoringError(RuntimeError):
    """Monitoring cannot run; the message names the file or key and how to fix it."""


@dataclass
class Settings:
    model_dir: Path
    logs_dir: Path
    labels_dir: Path
    drift_metric: str = "psi"
    drift_threshold: float = 0.2
    max_model_age_days: float = 30
    min_samples: int = 100
    min_score: float | None = None
    metric: str | None = None
    greater_is_better: bool = True
    since: datetime | None = None
    all_versions: bool = False
    now: datetime = field(default_factory=lambda: datetime.now().astimezone())
    #: the registry (models/): champion vs challenger when it names a challenger; None when
    #: --model-dir names one model folder
    models_dir: Path | None = None
    comparison: ComparisonSettings = field(default_factory=ComparisonSettings)


def parse_time(value: str) -> datetime:
    """ISO-8601 (``Z`` accepted on every Python version); naive times are taken as UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = datetime.fromisoformat(text + "+00:00")
    return parsed


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def flagged_requests(window: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests serving flagged: values beyond the range seen in training, features imputed."""
    flagged = [r for r in window if isinstance(r.get("out_of_range"), list) and r["out_of_range"]]
    by_feature: dict[str, int] = {}
    for r in flagged:
        for name in r["out_of_range"]:
            by_feature[str(name)] = by_feature.get(str(name), 0) + 1
    imputed = sum(1 for r in window if isinstance(r.get("imputed"), list) and r["imputed"])
    return {
        "out_of_range_requests": len(flagged),
        "out_of_range_by_feature": dict(sorted(by_feature.items())),
        "imputed_requests": imputed,
    }


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The records of a JSON-lines file and the number of unreadable lines (missing file: none)."""
    if not path.is_file():
        return [], 0
    records, bad = [], 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:  # strict JSON: NaN/Infinity are not numbers a log line may hold
                item = json.loads(line, parse_constant=_no_constant)
            except (json.JSONDecodeError, ValueError):
                bad += 1
                continue
            if isinstance(item, dict):
                records.append(item)
            else:
                bad += 1
    return records, bad


def _in_window(record: dict[str, Any], since: datetime | None) -> bool:
    if since is None:
        return True
    try:
        return parse_time(str(record.get("timestamp", ""))) >= since
    except ValueError:
        return False


def load_reference(model_dir: Path, metadata: ModelMetadata) -> Any:
    import polars as pl

    path = model_dir / REFERENCE_FILE
    if not path.is_file():
        raise MonitoringError(
            f"{path} not found: the drift reference is written with the "
            "blessed model; run `make pipeline`"
        )
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise MonitoringError(f"{path}: not a readable parquet file ({exc})") from None
    missing = [n for n in [*metadata.feature_names, "prediction"] if n not in frame.columns]
    if missing:
        raise MonitoringError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            "re-run `make pipeline` to rebuild the reference"
        )
    return frame


def load_labels(labels_dir: Path, target: str) -> dict[str, Any]:
    """request_id -> true value from ``labels_dir/*.csv`` and ``*.parquet``."""
    import polars as pl

    labels: dict[str, Any] = {}
    if not labels_dir.is_dir():
        return labels
    for path in sorted([*labels_dir.glob("*.csv"), *labels_dir.glob("*.parquet")]):
        try:
            frame = pl.read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise MonitoringError(f"{path}: cannot be read ({exc})") from None
        missing = [c for c in ("request_id", target) if c not in frame.columns]
        if missing:
            raise MonitoringError(
                f"{path}: missing column(s) {', '.join(missing)}; a labels "
                f"file needs `request_id` and the target `{target}`"
            )
        for request_id, value in frame.select("request_id", target).iter_rows():
            if request_id is not None and value is not None:
                labels[str(request_id)] = value
    return labels


def staleness(metadata: ModelMetadata, settings: Settings) -> dict[str, Any]:
    trained = metadata.raw.get("trained_at")
    if not trained:
        raise MonitoringError(f"{metadata.path}: missing `trained_at`; re-run `make pipeline`")
    try:
        trained_at = parse_time(str(trained))
    except ValueError:
        raise MonitoringError(
            f"{metadata.path}: trained_at {trained!r} is not an ISO-8601 time"
        ) from None
    age = (settings.now - trained_at) / timedelta(days=1)
    return {
        "model_version": metadata.model_version,
        "trained_at": str(trained),
        "age_days": round(age, 2),
        "max_model_age_days": settings.max_model_age_days,
        "stale": age > settings.max_model_age_days,
    }


def _score(
    scoring: Scoring, truth: list[Any], records: list[dict[str, Any]], classes: list[Any] | None
) -> float:
    """The model's metric on labelled traffic, computed as training computed it."""
    if scoring.task == "regression":
        y = [float(t) for t in truth]
        return scoring.score(y, [float(r["prediction"]) for r in records], None, None)
    if not classes or len(classes) < 2:
        return math.nan
    # labels come back from files as text or numbers: compare them as categories
    labels = [as_category(c) for c in classes]
    y_cat = [as_category(t) for t in truth]
    p_cat = [as_category(r["prediction"]) for r in records]
    proba = None
    if scoring.metric == "roc_auc":
        rows = [
            [float((r.get("probabilities") or {}).get(str(c), math.nan)) for c in classes]
            for r in records
        ]
        if any(math.isnan(v) for row in rows for v in row):
            return math.nan
        proba = np.asarray(rows, dtype=np.float64)
    return scoring.score(y_cat, p_cat, proba, labels)


def performance(
    records: list[dict[str, Any]],
    labels: dict[str, Any],
    metadata: ModelMetadata,
    settings: Settings,
) -> dict[str, Any]:
    metric = settings.metric or str(metadata.raw.get("metric") or "")
    joined = [
        (labels[str(r.get("request_id"))], r) for r in records if str(r.get("request_id")) in labels
    ]
    out: dict[str, Any] = {
        "labelled": len(joined),
        "metric": metric,
        "training_score": metadata.raw.get("score"),
        "min_score": settings.min_score,
        "value": None,
        "judged": False,
        "degraded": False,
    }
    if len(joined) < settings.min_samples:
        out["reason"] = (
            f"{len(joined)} labelled requests; at least {settings.min_samples} "
            "(monitoring.min_samples) are needed"
        )
        return out
    from ..ml.scoring import Scoring  # sklearn, only when there are labels to judge
    from ..ml.store import MLError

    try:
        scoring = Scoring(
            metric, metadata.task, metadata.raw.get("average"), metadata.raw.get("positive_class")
        )
    except MLError as exc:
        raise MonitoringError(f"{settings.model_dir}: {exc}") from None
    truth, scored = [t for t, _ in joined], [r for _, r in joined]
    if metadata.task == "classification":
        unknown = {as_category(t) for t in truth} - {as_category(c) for c in metadata.classes}
        if unknown:
            out["reason"] = (
                f"the labels hold classes the model was not trained on: {sorted(unknown)}; "
                "retrain on data that has them"
            )
            return out
    value = _score(scoring, truth, scored, list(metadata.classes or []) or None)
    if math.isnan(value):
        out["reason"] = f"{metric} is undefined on these labels (one class only?)"
        return out
    out["value"] = round(value, 6)
    out["judged"] = True
    if settings.min_score is not None:
        if settings.greater_is_better:
            out["degraded"] = value < settings.min_score
        else:
            out["degraded"] = value > settings.min_score
    return out


def _scoring(metadata: ModelMetadata, settings: Settings) -> Scoring:
    from ..ml.scoring import Scoring  # sklearn, only when there are labels to judge
    from ..ml.store import MLError

    metric = settings.metric or str(metadata.raw.get("metric") or "")
    try:
        return Scoring(
            metric, metadata.task, metadata.raw.get("average"), metadata.raw.get("positive_class")
        )
    except MLError as exc:
        raise MonitoringError(f"{metadata.path}: {exc}") from None


def challenger_comparison(
    settings: Settings,
    logged: list[dict[str, Any]],
    labels: dict[str, Any],
    champion: ModelMetadata,
) -> dict[str, Any] | None:
    """Champion vs challenger (compare.py), or None when the registry has no challenger."""
    if settings.models_dir is None:
        return None
    try:
        challenger = registry.aliases(settings.models_dir)["challenger"]
        if challenger is None:
            return None
        folder = registry.model_dir(settings.models_dir, "challenger")
    except registry.RegistryError as exc:
        raise MonitoringError(str(exc)) from None
    other = read_metadata(folder)
    if (other.task, other.target) != (champion.task, champion.target):
        raise MonitoringError(
            f"{folder}: the challenger predicts {other.target!r} ({other.task}), the champion "
            f"{champion.target!r} ({champion.task}); they cannot be compared: withdraw it "
            "(`make rollback ALIAS=challenger`)"
        )
    window = [r for r in logged if _in_window(r, settings.since)]
    return compare(
        window,
        labels,
        champion.model_version,
        challenger,
        _scoring(champion, settings),
        {"champion": list(champion.classes) or None, "challenger": list(other.classes) or None},
        settings.comparison,
    )


def run_checks(settings: Settings) -> dict[str, Any]:
    """Every check, as the JSON-ready report (``retraining_due`` and ``exit_code`` included)."""
    started = time.perf_counter()
    metadata = read_metadata(settings.model_dir)
    reference = load_reference(settings.model_dir, metadata)
    stale = staleness(metadata, settings)

    logged, unreadable = _read_jsonl(settings.logs_dir / "requests.jsonl")
    window = [r for r in logged if _in_window(r, settings.since)]
    if not settings.all_versions:
        window = [r for r in window if r.get("model_version") == metadata.model_version]
    names = metadata.feature_names
    complete = [
        r
        for r in window
        if isinstance(r.get("features"), dict)
        and all(n in r["features"] for n in names)
        and "prediction" in r
    ]
    schema_errors, bad_errors = _read_jsonl(settings.logs_dir / "schema-errors.jsonl")
    schema_errors = [e for e in schema_errors if _in_window(e, settings.since)]

    judged = len(complete) >= settings.min_samples
    features: list[dict[str, Any]] = []
    prediction: dict[str, Any] | None = None
    if judged:
        for feature in metadata.features:
            drift = column_drift(
                feature.name,
                feature.kind,
                reference[feature.name].to_list(),
                [r["features"][feature.name] for r in complete],
                settings.drift_metric,
                settings.drift_threshold,
            )
            features.append(drift.as_dict(settings.drift_metric))
        kind = "categorical" if metadata.task == "classification" else "numeric"
        prediction = column_drift(
            "prediction",
            kind,
            reference["prediction"].to_list(),
            [r["prediction"] for r in complete],
            settings.drift_metric,
            settings.drift_threshold,
        ).as_dict(settings.drift_metric)
    drifted = [f["name"] for f in features if f["drifted"]]

    labels = load_labels(settings.labels_dir, metadata.target)
    perf = performance(window, labels, metadata, settings)
    comparison = challenger_comparison(settings, logged, labels, metadata)
    tenure = None
    if settings.models_dir is not None:
        try:
            events = registry.history(settings.models_dir)
        except registry.RegistryError as exc:
            raise MonitoringError(str(exc)) from None
        tenure = champion_tenure(events, settings.now.isoformat(timespec="seconds"))
    total = len(window) + len(schema_errors)
    mismatch_rate = len(schema_errors) / total if total else 0.0

    reasons = []
    if drifted:
        reasons.append(f"data drift in {', '.join(drifted)}")
    if prediction and prediction["drifted"]:
        reasons.append("prediction drift")
    if stale["stale"]:
        reasons.append(f"model is {stale['age_days']} days old (max {settings.max_model_age_days})")
    if perf["degraded"]:
        reasons.append(
            f"{perf['metric']} {perf['value']} on labelled traffic is worse than the "
            f"gate (ml.min_score {settings.min_score})"
        )
    alerts = []
    if mismatch_rate > SCHEMA_ALERT_RATE:
        alerts.append(
            f"{mismatch_rate:.1%} of requests were rejected for schema mismatches; "
            "see logs/schema-errors.jsonl (retraining does not fix this: check the "
            "callers)"
        )
    if unreadable or bad_errors:
        alerts.append(f"{unreadable + bad_errors} unreadable log line(s) skipped")
    flags = flagged_requests(window)
    if flags["out_of_range_requests"]:
        counts = ", ".join(f"{n} {c}" for n, c in flags["out_of_range_by_feature"].items())
        alerts.append(
            f"{flags['out_of_range_requests']} request(s) flagged out of range (values beyond "
            f"the range seen in training: {counts}); see `out_of_range` in logs/requests.jsonl"
        )
    retrain = bool(reasons)
    return {
        "generated_at": settings.now.isoformat(timespec="seconds"),
        "model": stale,
        "thresholds": {
            "drift_metric": settings.drift_metric,
            "drift_threshold": settings.drift_threshold,
            "min_samples": settings.min_samples,
            "max_model_age_days": settings.max_model_age_days,
            "min_score": settings.min_score,
        },
        "window": {
            "since": settings.since.isoformat(timespec="seconds") if settings.since else None,
            "model_version": None if settings.all_versions else metadata.model_version,
            "requests": len(window),
            "complete_requests": len(complete),
            "first": min((str(r.get("timestamp")) for r in window), default=None),
            "last": max((str(r.get("timestamp")) for r in window), default=None),
            "reference_rows": reference.height,
        },
        "data_drift": {
            "judged": judged,
            "reason": None
            if judged
            else (
                f"{len(complete)} logged requests for this model; at least "
                f"{settings.min_samples} (monitoring.min_samples) are needed"
            ),
            "drifted_features": drifted,
            "features": features,
        },
        "prediction_drift": prediction,
        "performance": perf,
        "schema": {
            "rejected_requests": len(schema_errors),
            "accepted_requests": len(window),
            "mismatch_rate": round(mismatch_rate, 6),
        },
        "flagged": flags,
        "comparison": comparison,
        "champion_tenure": tenure,
        "alerts": alerts,
        "retraining_due": retrain,
        "reasons": reasons,
        "exit_code": EXIT_RETRAIN if retrain else EXIT_HEALTHY,
        "exit_codes": EXIT_CODES,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
