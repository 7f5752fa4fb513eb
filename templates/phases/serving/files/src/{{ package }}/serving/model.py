"""The blessed model: its metadata and an onnxruntime session that scores feature columns.

The ONNX graph takes one input per feature, named as the feature, shaped ``[None, 1]``: float32
for numeric features and string for categorical ones. Classifiers expose ``label`` and
``probabilities``; regressors expose ``variable``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.dates import DATE_PARTS

METADATA_FILE = "metadata.json"
MODEL_FILE = "model.onnx"
REFERENCE_FILE = "reference.parquet"
FEATURE_KINDS = ("numeric", "categorical")
TASKS = ("classification", "regression")


class ModelError(RuntimeError):
    """The model folder is missing or inconsistent; the message names the file and how to fix it."""


@dataclass(frozen=True)
class Feature:
    """One model input. ``fill`` is the value silver imputed a missing one with (None: the
    feature is required); ``fences`` the [lower, upper] range silver clips numeric values at.
    ``source`` is the original (bronze) column name when silver renamed it, or, with ``part``,
    the date column this numeric part (``year``, ``month``, ...) of gold's expansion comes from."""

    name: str
    kind: str  # "numeric" | "categorical"
    categories: tuple[str, ...] = ()
    fill: Any = None
    fences: tuple[float, float] | None = None
    source: str | None = None
    part: str | None = None


@dataclass(frozen=True)
class Input:
    """One raw column a client sends (gold contract ``inputs``: a main-table silver column, not
    the target nor PII). ``kind`` is numeric, categorical, date or datetime; ``dtype`` silver's
    type (the frame the packaged ``derive_features`` sees has it); ``source`` the bronze name
    when silver renamed the column."""

    name: str
    kind: str
    dtype: str | None = None
    categories: tuple[str, ...] = ()
    fill: Any = None
    fences: tuple[float, float] | None = None
    source: str | None = None


@dataclass(frozen=True)
class ModelMetadata:
    """The parts of ``metadata.json`` that serving and monitoring rely on (``raw`` has the rest).

    ``inputs``, ``derived`` and ``entity_features`` come from gold's contract (packaging copies
    them): empty for a model packaged before features travelled with the model, which is then
    served on its features alone."""

    path: Path
    model_version: str
    task: str
    target: str
    features: tuple[Feature, ...]
    classes: tuple[Any, ...]
    raw: Mapping[str, Any]
    inputs: tuple[Input, ...] = ()
    derived: tuple[str, ...] = ()
    entity_features: tuple[str, ...] = ()
    id_column: str | None = None

    @property
    def computed(self) -> frozenset[str]:
        """The model features the packaged feature code computes (derived, looked up by id):
        never sent by a client."""
        names = set(self.feature_names)
        return frozenset(n for n in (*self.derived, *self.entity_features) if n in names)

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def renamed(self) -> dict[str, str]:
        """Feature name -> its original (bronze) name, for the features silver renamed."""
        return {
            f.name: f.source
            for f in self.features
            if f.source and f.part is None and f.source != f.name
        }

    @property
    def dates(self) -> dict[str, dict[str, str]]:
        """Date column (original name) -> {part: gold feature name} of gold's date expansion."""
        out: dict[str, dict[str, str]] = {}
        for f in self.features:
            if f.part is not None and f.source is not None:
                out.setdefault(f.source, {})[f.part] = f.name
        return out


def _bad(path: Path, message: str) -> ModelError:
    return ModelError(f"{path}: {message}; re-run `make pipeline` to rebuild the blessed model")


def read_metadata(model_dir: Path) -> ModelMetadata:
    """Read and check ``<model_dir>/metadata.json``."""
    path = model_dir / METADATA_FILE
    if not path.is_file():
        raise ModelError(
            f"{path} not found: there is no blessed model yet; run `make pipeline` first"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise _bad(path, f"cannot be read as JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise _bad(path, "must be a JSON object")
    for key in ("model_version", "task", "target", "features"):
        if key not in raw:
            raise _bad(path, f"missing key {key!r}")
    if raw["task"] not in TASKS:
        raise _bad(path, f"task {raw['task']!r} is not one of {', '.join(TASKS)}")
    if not isinstance(raw["features"], list) or not raw["features"]:
        raise _bad(path, "`features` must be a non-empty list")
    features: list[Feature] = []
    for index, item in enumerate(raw["features"]):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _bad(path, f"features[{index}] needs a string `name`")
        kind = item.get("kind")
        if kind not in FEATURE_KINDS:
            raise _bad(
                path,
                f"features[{index}] ({item['name']}): kind {kind!r} is not "
                f"one of {', '.join(FEATURE_KINDS)}",
            )
        categories = tuple(str(c) for c in item.get("categories") or ())
        source, part = item.get("source"), item.get("part")
        if source is not None and (not isinstance(source, str) or not source):
            raise _bad(path, f"features[{index}] ({item['name']}): `source` must be a name")
        if part is not None and (part not in DATE_PARTS["datetime"] or source is None):
            raise _bad(
                path,
                f"features[{index}] ({item['name']}): `part` must be one of "
                f"{', '.join(DATE_PARTS['datetime'])}, with the date column as `source`",
            )
        features.append(
            Feature(
                item["name"], kind, categories, *_imputation(path, index, item, kind), source, part
            )
        )
    classes = tuple(raw.get("classes") or ())
    if raw["task"] == "classification" and not classes:
        raise _bad(path, "a classification model needs its `classes`")
    id_column = raw.get("id_column")
    if id_column is not None and (not isinstance(id_column, str) or not id_column):
        raise _bad(path, "`id_column` must be a column name or null")
    return ModelMetadata(
        path=path,
        model_version=str(raw["model_version"]),
        task=raw["task"],
        target=str(raw["target"]),
        features=tuple(features),
        classes=classes,
        raw=raw,
        inputs=_inputs(path, raw.get("inputs")),
        derived=_names(path, raw, "derived"),
        entity_features=_names(path, raw, "entity_features"),
        id_column=id_column,
    )


INPUT_KINDS = ("numeric", "categorical", "date", "datetime")


def _names(path: Path, raw: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        raise _bad(path, f"`{key}` must be a list of feature names")
    return tuple(value)


def _inputs(path: Path, value: Any) -> tuple[Input, ...]:
    """``inputs`` of the metadata (gold's contract), checked; () when the model has none."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(path, "`inputs` must be a list of columns")
    out: list[Input] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _bad(path, f"inputs[{index}] needs a string `name`")
        kind = item.get("kind")
        if kind not in INPUT_KINDS:
            raise _bad(
                path,
                f"inputs[{index}] ({item['name']}): kind {kind!r} is not one of "
                f"{', '.join(INPUT_KINDS)}",
            )
        dtype, source = item.get("dtype"), item.get("source")
        if dtype is not None and not isinstance(dtype, str):
            raise _bad(path, f"inputs[{index}] ({item['name']}): `dtype` must be a type name")
        if source is not None and (not isinstance(source, str) or not source):
            raise _bad(path, f"inputs[{index}] ({item['name']}): `source` must be a name")
        if kind in ("date", "datetime"):
            fill: Any = item.get("fill")
            if fill is not None and not isinstance(fill, str):
                raise _bad(path, f"inputs[{index}] ({item['name']}): `fill` must be ISO text")
            fences = None
        else:
            fill, fences = _imputation(path, index, item, kind, "inputs")
        out.append(
            Input(
                name=item["name"],
                kind=kind,
                dtype=dtype,
                categories=tuple(str(c) for c in item.get("categories") or ()),
                fill=fill,
                fences=fences,
                source=source if source != item["name"] else None,
            )
        )
    return tuple(out)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _imputation(
    path: Path, index: int, item: dict[str, Any], kind: str, key: str = "features"
) -> tuple[Any, tuple[float, float] | None]:
    """The ``fill`` and ``fences`` of ``<key>[index]`` (from gold's contract), checked."""
    where = f"{key}[{index}] ({item['name']})"
    fill = item.get("fill")
    if fill is not None:
        if kind == "numeric" and not _number(fill):
            raise _bad(path, f"{where}: `fill` must be a finite number, not {fill!r}")
        if kind == "categorical":
            fill = str(fill)
    raw = item.get("fences")
    if raw is None:
        return fill, None
    if (
        kind != "numeric"
        or not isinstance(raw, list)
        or len(raw) != 2
        or not all(_number(v) for v in raw)
        or raw[0] > raw[1]
    ):
        raise _bad(path, f"{where}: `fences` must be [lower, upper] numbers of a numeric feature")
    return fill, (float(raw[0]), float(raw[1]))


def _python(value: Any) -> Any:
    """numpy scalars and bytes -> plain JSON-friendly Python values."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return value


class OnnxModel:
    """An onnxruntime session for the blessed model, checked against its metadata."""

    def __init__(
        self, model_dir: Path, metadata: ModelMetadata | None = None, threads: int = 1
    ) -> None:
        import onnxruntime as ort

        self.metadata = metadata or read_metadata(model_dir)
        path = model_dir / MODEL_FILE
        if not path.is_file():
            raise ModelError(f"{path} not found; run `make pipeline` to export the blessed model")
        options = ort.SessionOptions()
        # one request is one tiny row: extra threads only add scheduling latency
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise _bad(path, f"onnxruntime cannot load it ({exc})") from None
        inputs = {i.name for i in self.session.get_inputs()}
        missing = [n for n in self.metadata.feature_names if n not in inputs]
        unknown = sorted(inputs - set(self.metadata.feature_names))
        if missing or unknown:
            raise _bad(
                path,
                f"ONNX inputs do not match metadata features (missing inputs: "
                f"{missing or 'none'}, inputs not in metadata: {unknown or 'none'})",
            )
        outputs = [o.name for o in self.session.get_outputs()]
        if self.metadata.task == "classification":
            if not {"label", "probabilities"} <= set(outputs):
                raise _bad(
                    path,
                    f"a classifier must output `label` and `probabilities` "
                    f"(export with zipmap=False); it outputs {outputs}",
                )
            self._outputs = ["label", "probabilities"]
        else:
            self._outputs = ["variable"] if "variable" in outputs else outputs[:1]
        self._numeric = {f.name for f in self.metadata.features if f.kind == "numeric"}

    def feeds(self, columns: Mapping[str, Sequence[Any]]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for name in self.metadata.feature_names:
            values = columns[name]
            if name in self._numeric:
                out[name] = np.asarray(values, dtype=np.float32).reshape(-1, 1)
            else:
                out[name] = np.asarray([str(v) for v in values], dtype=object).reshape(-1, 1)
        return out

    def predict_columns(self, columns: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
        """Score feature columns (name -> values); one result dict per row.

        Classification: ``{"prediction": label, "probabilities": {class: p}}``;
        regression: ``{"prediction": value}``.
        """
        results = self.session.run(self._outputs, self.feeds(columns))
        if self.metadata.task == "regression":
            values = np.asarray(results[0]).reshape(-1)
            return [{"prediction": float(v)} for v in values]
        labels = np.asarray(results[0]).reshape(-1)
        probabilities = np.asarray(results[1])
        names = [str(c) for c in self.metadata.classes]
        if probabilities.ndim != 2 or probabilities.shape[1] != len(names):
            names = [str(i) for i in range(probabilities.shape[-1])]
        return [
            {
                "prediction": _python(label),
                "probabilities": {n: round(float(p), 6) for n, p in zip(names, row, strict=True)},
            }
            for label, row in zip(labels, probabilities.tolist(), strict=True)
        ]

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        columns = {name: [r[name] for r in records] for name in self.metadata.feature_names}
        return self.predict_columns(columns)
