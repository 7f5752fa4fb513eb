"""Gold features and their contract, turned into model inputs (pandas for fit, numpy for ONNX).

Model input representation (shared by the native model and ONNX, so both see the same values):
numeric features are float64 values rounded to float32 precision (ONNX inputs are float32),
missing stays NaN; categorical features are Python strings, missing becomes "".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..common.lineage import sha256_file
from .store import Layout, MLError, ml_setting, read_json

KINDS = ("numeric", "categorical")
MISSING_CATEGORY = ""


@dataclass(frozen=True)
class Contract:
    """``data/gold/contract.json``: what the data phase promises the model."""

    target: str
    task: str
    id_column: str | None
    features: list[dict[str, Any]]

    @property
    def names(self) -> list[str]:
        return [f["name"] for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f["name"] for f in self.features if f["kind"] == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [f["name"] for f in self.features if f["kind"] == "categorical"]


def load_contract(lay: Layout, cfg: dict[str, Any]) -> Contract:
    path = lay.contract
    raw = read_json(path, "run `make data` to build the gold layer")
    for key in ("target", "task", "features"):
        if key not in raw:
            raise MLError(f"{path}: missing key {key!r}; rebuild gold with `make data`")
    features = raw["features"]
    if not isinstance(features, list) or not features:
        raise MLError(f"{path}: `features` must be a non-empty list")
    seen: set[str] = set()
    for i, feat in enumerate(features):
        if not isinstance(feat, dict) or not isinstance(feat.get("name"), str):
            raise MLError(f"{path}: features[{i}] needs a string `name`")
        if feat.get("kind") not in KINDS:
            raise MLError(
                f"{path}: features[{i}] ({feat['name']}): kind {feat.get('kind')!r} is not one of "
                f"{', '.join(KINDS)}"
            )
        if feat["name"] in seen:
            raise MLError(f"{path}: feature {feat['name']!r} is listed twice")
        seen.add(feat["name"])
    target, task = raw["target"], raw["task"]
    want_target, want_task = ml_setting(cfg, "target"), ml_setting(cfg, "task")
    if target != want_target:
        raise MLError(
            f"{path}: target {target!r} differs from ml.target {want_target!r} in conf/; "
            "fix ml.target in mlops.yaml/conf or rebuild gold with `make data`"
        )
    if task != want_task:
        raise MLError(
            f"{path}: task {task!r} differs from ml.task {want_task!r} in conf/; "
            "rebuild gold with `make data`"
        )
    if target in seen:
        raise MLError(f"{path}: the target {target!r} is also listed as a feature")
    return Contract(target=target, task=task, id_column=raw.get("id_column"), features=features)


def load_gold(lay: Layout, cfg: dict[str, Any]) -> tuple[pd.DataFrame, Contract, str]:
    """Gold rows (index 0..n-1), the contract and the sha256 of features.parquet."""
    contract = load_contract(lay, cfg)
    path = lay.features
    if not path.is_file():
        raise MLError(f"{path} not found; run `make data` to build the gold layer")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise MLError(
            f"{path}: cannot be read as parquet ({exc}); rebuild it with `make data`"
        ) from None
    missing = [c for c in [*contract.names, contract.target] if c not in frame.columns]
    if missing:
        raise MLError(
            f"{path}: columns {missing} listed in {lay.contract.name} are missing; "
            "rebuild gold with `make data`"
        )
    if frame.empty:
        raise MLError(f"{path}: no rows; check the data pipeline's quarantine report")
    nulls = int(frame[contract.target].isna().sum())
    if nulls:
        raise MLError(
            f"{path}: target column {contract.target!r} has {nulls} missing values; gold must "
            "drop unlabelled rows"
        )
    return frame.reset_index(drop=True), contract, sha256_file(path)


def features(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """The model input frame, in contract order (see the module docstring)."""
    out: dict[str, Any] = {}
    for name in contract.numeric:
        try:
            values = pd.to_numeric(frame[name], errors="raise").astype("float64")
        except (TypeError, ValueError) as exc:
            raise MLError(f"feature {name!r} is declared numeric but holds {exc}") from None
        out[name] = values.astype("float32").astype("float64").to_numpy()
    for name in contract.categorical:
        col = frame[name]
        strings = np.where(col.isna().to_numpy(), MISSING_CATEGORY, col.astype(str).to_numpy())
        out[name] = strings.astype(object)
    return pd.DataFrame(out, index=frame.index)[contract.names]


def target(frame: pd.DataFrame, contract: Contract) -> pd.Series:
    """The target: integer or string class labels for classification, float64 for regression."""
    y = frame[contract.target]
    if contract.task == "regression":
        try:
            return pd.to_numeric(y, errors="raise").astype("float64")
        except (TypeError, ValueError):
            raise MLError(f"target {contract.target!r} must be numeric for regression") from None
    if pd.api.types.is_bool_dtype(y):
        return y.astype("int64")
    if pd.api.types.is_numeric_dtype(y):
        as_float = y.astype("float64")
        if not np.all(np.mod(as_float, 1) == 0):
            raise MLError(
                f"target {contract.target!r} has non-integer numbers; classification needs "
                "class labels (ints or strings)"
            )
        return as_float.astype("int64")
    return y.astype(str).astype(object)


def onnx_feeds(x: pd.DataFrame, contract: Contract) -> dict[str, np.ndarray]:
    """One ONNX input per feature, shape [n, 1]: float32 numeric, string categorical."""
    feeds: dict[str, np.ndarray] = {}
    for name in contract.numeric:
        feeds[name] = x[name].to_numpy(dtype=np.float32).reshape(-1, 1)
    for name in contract.categorical:
        feeds[name] = x[name].to_numpy(dtype=object).astype(str).astype(object).reshape(-1, 1)
    return feeds
