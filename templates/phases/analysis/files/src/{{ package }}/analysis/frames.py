"""The data behind the business report and the dashboard, as small pandas frames.

Inputs (read only; never bronze or silver):

- gold: ``data/gold/aggregates.parquet`` (``dimension``, ``value``, ``rows``, ``share``,
  ``target_mean``), ``features.parquet`` and ``contract.json``;
- the champion model: ``models/versions/<champion>/metadata.json`` (``models/aliases.json``)
  and the gate's ``reports/gate.json``;
- the model's outputs: ``logs/requests.jsonl`` (REST service and batch scoring, one JSON object
  per scored record) and ``reports/predictions.parquet`` (batch scoring), when they exist.

Missing gold is an error (run ``make data``); missing model outputs are not (no traffic yet).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..common import registry
from ..common.config import resolve

AGGREGATE_COLUMNS = ["dimension", "value", "rows", "share", "target_mean"]
REQUEST_COLUMNS = ["request_id", "timestamp", "model_version", "prediction", "latency_ms"]
QUARTILE_SUFFIX = "_quartile"


class AnalysisError(RuntimeError):
    """An input is missing or unreadable; the message names the file and how to build it."""


@dataclass(frozen=True)
class Sources:
    """Where the analysis reads, all under the project root."""

    root: Path
    gold: Path
    models: Path
    reports: Path
    logs: Path

    @property
    def aggregates(self) -> Path:
        return self.gold / "aggregates.parquet"

    @property
    def features(self) -> Path:
        return self.gold / "features.parquet"

    @property
    def contract(self) -> Path:
        return self.gold / "contract.json"

    @property
    def metadata(self) -> Path:
        """The champion's metadata (``models/blessed/`` in a project from before the registry;
        missing before the first blessing: the dashboard then says there is no model yet)."""
        try:
            return registry.model_dir(self.models, "champion") / "metadata.json"
        except registry.LegacyLayoutError:
            return self.models / registry.LEGACY_BLESSED / "metadata.json"
        except registry.RegistryError:
            return self.models / registry.VERSIONS_DIR / "none" / "metadata.json"

    @property
    def gate(self) -> Path:
        return self.reports / "gate.json"

    @property
    def requests(self) -> Path:
        return self.logs / "requests.jsonl"

    @property
    def predictions(self) -> Path:
        return self.reports / "predictions.parquet"

    def show(self, path: Path) -> str:
        """``path`` relative to the project root when it is inside it (for messages)."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)


def fingerprint(src: Sources) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime in ns, size) of every input that exists: changes whenever an input does."""
    inputs = [src.aggregates, src.features, src.contract, src.metadata, src.gate, src.requests,
              src.predictions]  # fmt: skip
    out = []
    for path in inputs:
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


def sources(cfg: dict[str, Any]) -> Sources:
    return Sources(
        root=Path(cfg["root"]),
        gold=resolve(cfg, "gold"),
        models=resolve(cfg, "models"),
        reports=resolve(cfg, "reports"),
        logs=resolve(cfg, "logs"),
    )


def _read_json(src: Sources, path: Path, hint: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AnalysisError(f"{src.show(path)} not found; {hint}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise AnalysisError(f"{src.show(path)}: not readable JSON ({exc}); {hint}") from None
    if not isinstance(data, dict):
        raise AnalysisError(f"{src.show(path)}: expected a JSON object; {hint}")
    return data


def _read_parquet(src: Sources, path: Path, hint: str) -> pd.DataFrame:
    if not path.is_file():
        raise AnalysisError(f"{src.show(path)} not found; {hint}")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise AnalysisError(
            f"{src.show(path)}: not a readable parquet file ({exc}); {hint}"
        ) from None


def load_contract(src: Sources) -> dict[str, Any]:
    """``data/gold/contract.json`` (target, task, features)."""
    contract = _read_json(src, src.contract, "run `make data` to build the gold layer")
    for key in ("target", "task", "features"):
        if key not in contract:
            raise AnalysisError(
                f"{src.show(src.contract)}: missing key {key!r}; rebuild gold with `make data`"
            )
    return contract


def load_aggregates(src: Sources) -> pd.DataFrame:
    """Gold business aggregates, long format, sorted by dimension and value."""
    frame = _read_parquet(src, src.aggregates, "run `make data` to build the gold layer")
    missing = [c for c in AGGREGATE_COLUMNS if c not in frame.columns]
    if missing:
        raise AnalysisError(
            f"{src.show(src.aggregates)}: missing column(s) {', '.join(missing)}; "
            "rebuild gold with `make data`"
        )
    frame = frame[AGGREGATE_COLUMNS].copy()
    frame["value"] = frame["value"].astype("string").fillna("(missing)").astype(str)
    frame["rows"] = frame["rows"].astype("int64")
    frame["share"] = frame["share"].astype("float64")
    frame["target_mean"] = pd.to_numeric(frame["target_mean"], errors="coerce").astype("float64")
    return frame.sort_values(["dimension", "value"], kind="stable").reset_index(drop=True)


def load_gold_features(src: Sources, contract: dict[str, Any]) -> pd.DataFrame:
    """Gold ``features.parquet`` (must hold the contract's target)."""
    frame = _read_parquet(src, src.features, "run `make data` to build the gold layer")
    if contract["target"] not in frame.columns:
        raise AnalysisError(
            f"{src.show(src.features)}: target column {contract['target']!r} missing; rebuild "
            "gold with `make data`"
        )
    return frame


def target_summary(target: pd.Series, task: str) -> pd.DataFrame:
    """Classification: rows and share per class; regression: one row of rows, mean, std, min,
    median and max."""
    values = target.dropna()
    if task == "classification":
        counts = values.value_counts().sort_index()
        return pd.DataFrame(
            {
                "class": [str(v) for v in counts.index],
                "rows": counts.to_numpy(dtype="int64"),
                "share": (counts / max(len(values), 1)).to_numpy(dtype="float64"),
            }
        )
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return pd.DataFrame(
        {
            "rows": [len(numbers)],
            "mean": [float(numbers.mean()) if len(numbers) else math.nan],
            "std": [float(numbers.std()) if len(numbers) > 1 else math.nan],
            "min": [float(numbers.min()) if len(numbers) else math.nan],
            "median": [float(numbers.median()) if len(numbers) else math.nan],
            "max": [float(numbers.max()) if len(numbers) else math.nan],
        }
    )


def load_model(src: Sources) -> dict[str, Any] | None:
    """The blessed model's metadata plus the last gate decision, or None before the first one."""
    if not src.metadata.is_file():
        return None
    metadata = _read_json(src, src.metadata, "run `make pipeline` to bless a model")
    for key in ("model_version", "task", "metric"):
        if key not in metadata:
            raise AnalysisError(
                f"{src.show(src.metadata)}: missing key {key!r}; run `make pipeline` again"
            )
    gate = None
    if src.gate.is_file():
        gate = _read_json(src, src.gate, "run `make pipeline` to rebuild it")
    return {**metadata, "gate": gate}


def positive_class(model: dict[str, Any] | None) -> Any:
    """The class whose rate is reported, as in the metrics: ``ml.positive_class`` the model was
    trained with, else the second of two sorted classes (None with three or more)."""
    if model is None:
        return None
    classes = model.get("classes") or []
    if len(classes) != 2:
        return None
    named = model.get("positive_class")
    if named is not None:
        for c in classes:
            if c == named or str(c) == str(named):
                return c
    return classes[1]


def load_requests(src: Sources) -> pd.DataFrame:
    """``logs/requests.jsonl`` as one row per scored record: the REQUEST_COLUMNS (``timestamp``
    as UTC datetimes) followed by one column per logged feature. Empty when nothing is logged."""
    path = src.requests
    if not path.is_file():
        return _empty_requests()
    records: list[dict[str, Any]] = []
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise AnalysisError(f"{src.show(path)}: cannot be read ({exc})") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnalysisError(
                    f"{src.show(path)}:{number}: not valid JSON ({exc.msg}); remove or repair "
                    "the line (the service appends whole lines: a cut line means a crash)"
                ) from None
            if not isinstance(raw, dict):
                raise AnalysisError(f"{src.show(path)}:{number}: expected a JSON object")
            missing = [c for c in REQUEST_COLUMNS if c not in raw]
            if missing:
                raise AnalysisError(
                    f"{src.show(path)}:{number}: missing key(s) {', '.join(missing)}; every "
                    f"record needs {', '.join(REQUEST_COLUMNS)}"
                )
            row = {c: raw[c] for c in REQUEST_COLUMNS}
            features = raw.get("features") or {}
            if isinstance(features, dict):
                row.update({k: v for k, v in features.items() if k not in row})
            records.append(row)
    if not records:
        return _empty_requests()
    frame = pd.DataFrame.from_records(records)
    stamps = pd.to_datetime(frame["timestamp"], utc=True, errors="coerce", format="ISO8601")
    bad = stamps.isna()
    if bad.any():
        first = frame.loc[bad, "timestamp"].iloc[0]
        raise AnalysisError(
            f"{src.show(path)}: {int(bad.sum())} record(s) with an unreadable timestamp "
            f"(first: {first!r}); timestamps are ISO-8601 UTC"
        )
    frame["timestamp"] = stamps
    frame["latency_ms"] = pd.to_numeric(frame["latency_ms"], errors="coerce").astype("float64")
    frame["model_version"] = frame["model_version"].astype(str)
    return frame


def _empty_requests() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="object") for c in REQUEST_COLUMNS})
    frame["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["latency_ms"] = pd.Series(dtype="float64")
    return frame


def load_batch_predictions(src: Sources) -> pd.DataFrame | None:
    """``reports/predictions.parquet`` from `make score`, or None when it does not exist."""
    if not src.predictions.is_file():
        return None
    frame = _read_parquet(src, src.predictions, "run `make score` again")
    if "prediction" not in frame.columns:
        raise AnalysisError(
            f"{src.show(src.predictions)}: no `prediction` column; run `make score` again"
        )
    return frame


def _is_positive(predictions: pd.Series, positive: Any) -> pd.Series:
    return predictions.map(lambda p: p == positive or str(p) == str(positive)).astype("float64")


def by_model_version(requests: pd.DataFrame) -> pd.DataFrame:
    """Per model version: requests, first and last seen, median and p95 latency (ms)."""
    columns = ["model_version", "requests", "first_seen", "last_seen", "latency_p50_ms",
               "latency_p95_ms"]  # fmt: skip
    if requests.empty:
        return pd.DataFrame({c: [] for c in columns})
    grouped = requests.groupby("model_version", sort=True)
    out = grouped.agg(
        requests=("request_id", "size"),
        first_seen=("timestamp", "min"),
        last_seen=("timestamp", "max"),
        latency_p50_ms=("latency_ms", lambda s: float(s.quantile(0.5))),
        latency_p95_ms=("latency_ms", lambda s: float(s.quantile(0.95))),
    ).reset_index()
    out["requests"] = out["requests"].astype("int64")
    return out.sort_values("first_seen", kind="stable").reset_index(drop=True)[columns]


def volume_by_day(requests: pd.DataFrame, task: str, positive: Any = None) -> pd.DataFrame:
    """Per UTC day: requests and the predicted positive rate (binary classification) or the
    mean prediction (regression)."""
    outcome = _outcome_name(task, positive)
    columns = ["day", "requests", *([outcome] if outcome else [])]
    if requests.empty:
        return pd.DataFrame({c: [] for c in columns})
    frame = pd.DataFrame(
        {"day": requests["timestamp"].dt.strftime("%Y-%m-%d"), "request_id": requests["request_id"]}
    )
    if outcome:
        frame[outcome] = _outcome_values(requests["prediction"], task, positive)
    aggs: dict[str, Any] = {"requests": ("request_id", "size")}
    if outcome:
        aggs[outcome] = (outcome, "mean")
    out = frame.groupby("day", sort=True).agg(**aggs).reset_index()
    out["requests"] = out["requests"].astype("int64")
    return out[columns]


def _outcome_name(task: str, positive: Any) -> str | None:
    if task == "regression":
        return "mean_prediction"
    return "predicted_positive_rate" if positive is not None else None


def _outcome_values(predictions: pd.Series, task: str, positive: Any) -> pd.Series:
    if task == "regression":
        return pd.to_numeric(predictions, errors="coerce").astype("float64")
    return _is_positive(predictions, positive)


def prediction_distribution(predictions: pd.Series, task: str, bins: int = 10) -> pd.DataFrame:
    """Classification: count and share per predicted label. Regression: count and share per
    equal-width bin of the predicted value (``bin`` is ``"[low, high)"``, the last one closed)."""
    values = predictions.dropna()
    empty = pd.DataFrame({"label" if task == "classification" else "bin": [], "count": [],
                          "share": []})  # fmt: skip
    if values.empty:
        return empty
    if task == "classification":
        counts = values.map(str).value_counts().sort_index()
        return pd.DataFrame(
            {
                "label": counts.index.tolist(),
                "count": counts.to_numpy(dtype="int64"),
                "share": (counts / len(values)).to_numpy(dtype="float64"),
            }
        )
    numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype="float64")
    if numbers.size == 0:
        return empty
    low, high = float(numbers.min()), float(numbers.max())
    if low == high:
        high = low + 1.0
    edges = np.linspace(low, high, bins + 1)
    counts, _ = np.histogram(numbers, bins=edges)
    return pd.DataFrame(
        {
            # numpy's last bin includes its upper edge
            "bin": [
                f"[{edges[i]:.3g}, {edges[i + 1]:.3g}{']' if i == bins - 1 else ')'}"
                for i in range(bins)
            ],
            "count": counts.astype("int64"),
            "share": counts / len(numbers),
        }
    )


def segments(
    aggregates: pd.DataFrame,
    requests: pd.DataFrame,
    task: str,
    positive: Any = None,
    gold_features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per gold segment (dimension, value): gold rows and observed target mean next to the
    requests scored in that segment and what the model predicted for them.

    Categorical dimensions match the logged feature value; numeric quartile dimensions
    (``<feature>_quartile``, q1..q4) bucket the logged value on the quartiles of gold
    ``gold_features`` (the same cut points the data pipeline used).
    """
    outcome = _outcome_name(task, positive)
    out = aggregates.rename(columns={"rows": "gold_rows", "target_mean": "gold_target_mean"})
    out = out[["dimension", "value", "gold_rows", "gold_target_mean"]].copy()
    out["requests"] = 0
    if outcome:
        out[outcome] = math.nan
    if requests.empty:
        return out
    values = _outcome_values(requests["prediction"], task, positive) if outcome else None
    for dimension in out["dimension"].unique():
        bucket = _segment_of(dimension, requests, gold_features)
        if bucket is None:
            continue
        frame = pd.DataFrame({"value": bucket, "n": 1})
        if values is not None:
            frame["outcome"] = values.to_numpy()
        grouped = frame.groupby("value")
        counts = grouped["n"].sum()
        mask = out["dimension"] == dimension
        out.loc[mask, "requests"] = out.loc[mask, "value"].map(counts).fillna(0).to_numpy()
        if outcome:
            means = grouped["outcome"].mean()
            out.loc[mask, outcome] = out.loc[mask, "value"].map(means).to_numpy(dtype="float64")
    out["requests"] = out["requests"].astype("int64")
    return out


def _segment_of(
    dimension: str, requests: pd.DataFrame, gold_features: pd.DataFrame | None
) -> pd.Series | None:
    if dimension in requests.columns:
        return requests[dimension].map(lambda v: "(missing)" if v is None else str(v))
    base = dimension.removesuffix(QUARTILE_SUFFIX)
    if (
        dimension.endswith(QUARTILE_SUFFIX)
        and base in requests.columns
        and gold_features is not None
        and base in gold_features.columns
    ):
        cuts = pd.to_numeric(gold_features[base], errors="coerce").quantile([0.25, 0.5, 0.75])
        logged = pd.to_numeric(requests[base], errors="coerce")
        quartile = 1 + sum((logged > float(c)).astype("int64") for c in cuts.to_numpy())
        labels = "q" + quartile.astype(str)
        return labels.where(logged.notna(), "(missing)")
    return None


@dataclass
class Overview:
    """Everything the report and the dashboard show, computed once from the inputs."""

    project: str
    src: Sources
    task: str
    target: str
    gold_rows: int
    target_summary: pd.DataFrame
    aggregates: pd.DataFrame
    gold_features: pd.DataFrame
    model: dict[str, Any] | None
    requests: pd.DataFrame
    batch: pd.DataFrame | None

    @property
    def positive(self) -> Any:
        return positive_class(self.model)

    def for_version(self, version: str | None) -> Overview:
        """The same overview with the requests of one model version only (None: all)."""
        if version is None:
            return self
        kept = self.requests[self.requests["model_version"] == version].reset_index(drop=True)
        return replace(self, requests=kept)

    def by_model_version(self) -> pd.DataFrame:
        return by_model_version(self.requests)

    def volume_by_day(self) -> pd.DataFrame:
        return volume_by_day(self.requests, self.task, self.positive)

    def prediction_distribution(self) -> pd.DataFrame:
        return prediction_distribution(self.requests["prediction"], self.task)

    def segments(self) -> pd.DataFrame:
        return segments(
            self.aggregates, self.requests, self.task, self.positive, self.gold_features
        )


def collect(cfg: dict[str, Any]) -> Overview:
    """Read every input once (raises AnalysisError naming the file that is missing or bad)."""
    src = sources(cfg)
    contract = load_contract(src)
    features = load_gold_features(src, contract)
    task = str(contract["task"])
    return Overview(
        project=str(cfg.get("project", {}).get("name", src.root.name)),
        src=src,
        task=task,
        target=str(contract["target"]),
        gold_rows=len(features),
        target_summary=target_summary(features[contract["target"]], task),
        aggregates=load_aggregates(src),
        gold_features=features,
        model=load_model(src),
        requests=load_requests(src),
        batch=load_batch_predictions(src),
    )
