"""ONNX export (skl2onnx, with the converter ``ml/models.py`` registers per family) and parity.

Inputs: one per contract feature, named as the feature, shape [None, 1], float32 for numeric and
string for categorical. Outputs: ``label`` + ``probabilities`` (classification, no zipmap) or
``variable`` (regression). The parity test runs ONNX and the native model on the holdout and
fails loudly when they disagree beyond the tolerance: a model whose ONNX twin predicts something
else must never be blessed.

Features travel with the model: packaging copies the project's feature code
(``src/<package>/data/features.py``) and gold's per-entity feature table
(``data/gold/entity_features.parquet``, when the data pipeline wrote one, plus gold's values for
the ids it lacks: entities without history that the join filled) into the model's folder
beside ``model.onnx``, and records in ``metadata.json`` their sha256 and gold's raw ``inputs``
(the columns a client sends), ``derived`` and ``entity_features``. Serving and batch scoring
load that copy, so a model is always scored with the feature code it was trained with.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..common.lineage import sha256_file
from . import dataset, models
from .model import ONNX_FILE, load_candidate, predict
from .split import split_gold
from .store import Layout, MLError, layout, ml_setting
from .tracking import tracker_for

#: the feature code and the per-entity features, as the model folder holds them
FEATURE_CODE_FILE = "features.py"
ENTITY_FILE = "entity_features.parquet"
#: the project's feature code (user-owned; data phase): <package>/data/features.py
FEATURE_CODE = Path(__file__).resolve().parents[1] / "data" / FEATURE_CODE_FILE
#: what gold's contract says about the raw columns, copied into the model's metadata
CONTRACT_KEYS = ("main_table", "inputs", "derived", "entity_features")

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
PROBA_ATOL = 1e-4
REGRESSION_RTOL = 1e-4


def to_onnx(model: Any, contract: dataset.Contract, family: str) -> Any:
    """The fitted pipeline as an ONNX ModelProto; ``family`` names its ``ml/models.py`` entry."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    try:
        entry = models.get(family)
    except models.RegistryError as exc:
        raise MLError(f"the candidate's family: {exc}") from None
    if entry.register_onnx is not None:
        try:
            entry.register_onnx()
        except ImportError as exc:
            raise MLError(
                f"ONNX converter of model family {family!r} cannot be loaded ({exc}); install "
                f"{list(entry.requires)} (see ml/models.py)"
            ) from None
    inputs = [
        (
            f["name"],
            FloatTensorType([None, 1]) if f["kind"] == "numeric" else StringTensorType([None, 1]),
        )
        for f in contract.features
    ]
    options = {id(model): {"zipmap": False}} if contract.task == "classification" else None
    try:
        onx = convert_sklearn(
            model, name="model", initial_types=inputs, options=options,
            target_opset=TARGET_OPSET,
        )  # fmt: skip
    except Exception as exc:
        raise MLError(
            f"ONNX conversion failed for {type(model[-1]).__name__}: {exc}; choose an estimator "
            "that skl2onnx/onnxmltools can convert"
        ) from exc
    return onx


def onnx_predict(
    session: Any, x: pd.DataFrame, contract: dataset.Contract
) -> tuple[np.ndarray, np.ndarray | None]:
    outputs = session.run(None, dataset.onnx_feeds(x, contract))
    if contract.task == "classification":
        return np.asarray(outputs[0]).ravel(), np.asarray(outputs[1], dtype=np.float64)
    return np.asarray(outputs[0], dtype=np.float64).ravel(), None


def parity(
    task: str,
    native: tuple[np.ndarray, np.ndarray | None],
    onnx: tuple[np.ndarray, np.ndarray | None],
    atol: float = PROBA_ATOL,
    rtol: float = REGRESSION_RTOL,
) -> dict[str, Any]:
    """Compare predictions; ``ok`` is False when any row differs beyond the tolerance."""
    n_pred, n_proba = native
    o_pred, o_proba = onnx
    rows = len(n_pred)
    if task == "classification":
        assert n_proba is not None and o_proba is not None
        if n_proba.shape != o_proba.shape:
            raise MLError(
                f"ONNX parity failed: probabilities of shape {o_proba.shape}, native "
                f"{n_proba.shape}; the export lost or added classes"
            )
        diff = np.abs(n_proba - o_proba).max(axis=1)
        # a label may only differ where the native top two probabilities are a near tie
        ordered = np.sort(n_proba, axis=1)
        margin = ordered[:, -1] - ordered[:, -2]
        label_bad = (n_pred.astype(str) != o_pred.astype(str)) & (margin > 2 * atol)
        bad = (diff > atol) | label_bad
        worst = int(np.argmax(diff + label_bad))
        result = {
            "rows": rows,
            "max_abs_diff": float(diff.max()),
            "tolerance": {"probability_atol": atol},
            "label_agreement": float(np.mean(n_pred.astype(str) == o_pred.astype(str))),
        }
    else:
        diff = np.abs(n_pred - o_pred)
        allowed = atol + rtol * np.abs(n_pred)
        bad = diff > allowed
        worst = int((diff - allowed).argmax())
        result = {
            "rows": rows,
            "max_abs_diff": float(diff.max()),
            "tolerance": {"atol": atol, "rtol": rtol},
        }
    result["rows_out_of_tolerance"] = int(bad.sum())
    result["bad_rows"] = [int(i) for i in np.flatnonzero(bad)[:100]]
    result["worst_row"] = worst
    result["ok"] = not bool(bad.any())
    return result


#: at most this share of holdout rows may differ by a float32 threshold rounding (see below)
MAX_BOUNDARY_SHARE = 0.001


def float32_boundary_rows(
    model: Any,
    x: pd.DataFrame,
    contract: dataset.Contract,
    onnx: tuple[np.ndarray, np.ndarray | None],
    rows: list[int],
    atol: float = PROBA_ATOL,
    rtol: float = REGRESSION_RTOL,
) -> list[int]:
    """Those of ``rows`` (out of tolerance) whose difference is a float32 threshold rounding.

    ONNX tree ensembles compare float32 inputs with float32 thresholds; the native model keeps
    double thresholds. A value lying exactly on the float32 rounding of a threshold goes the other
    way in ONNX. Such a row is recognised, not assumed: moving one numeric input by one float32
    step (up or down) makes the native model give ONNX's answer within the tolerance.
    """
    o_pred, o_proba = onnx
    numeric = list(contract.numeric)
    found: list[int] = []
    for i in rows:
        row = x.iloc[[i]]
        want = o_proba[i] if o_proba is not None else o_pred[i]
        for name in numeric:
            value = np.float32(row[name].iloc[0])
            for toward in (np.float32(-np.inf), np.float32(np.inf)):
                moved = row.copy()
                moved[name] = float(np.nextafter(value, toward))
                pred, proba = predict(model, moved, contract.task)
                got = proba[0] if proba is not None else pred[0]
                limit = atol if o_proba is not None else atol + rtol * abs(float(want))
                if np.all(np.abs(np.asarray(got, dtype=np.float64) - want) <= limit):
                    found.append(i)
                    break
            else:
                continue
            break
    return found


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Export the candidate to ONNX, parity-test it on the holdout, record both in its metadata."""
    import onnxruntime as ort

    lay = layout(cfg)
    cand = load_candidate(lay, cfg)
    gold, _, sha = dataset.load_gold(lay, cfg)
    cand.check_same_gold(sha)
    contract = cand.contract
    split = split_gold(gold, contract.target, contract.task, cfg)
    cand.check_same_split(split)
    onx = to_onnx(cand.model, contract, str(cand.metadata["estimator"]))
    blob = onx.SerializeToString()
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    x = dataset.features(split.holdout, contract)
    atol = float(ml_setting(cfg, "package.atol", PROBA_ATOL))
    rtol = float(ml_setting(cfg, "package.rtol", REGRESSION_RTOL))
    native, twin = predict(cand.model, x, contract.task), onnx_predict(session, x, contract)
    check = parity(contract.task, native, twin, atol=atol, rtol=rtol)
    bad = check["bad_rows"]
    if not check["ok"] and len(bad) == check["rows_out_of_tolerance"] <= max(
        1, MAX_BOUNDARY_SHARE * check["rows"]
    ):
        boundary = float32_boundary_rows(cand.model, x, contract, twin, bad, atol, rtol)
        if len(boundary) == len(bad):
            check["ok"] = True
            check["float32_boundary_rows"] = boundary
    cand.metadata["onnx"] = {
        "file": ONNX_FILE,
        "opset": TARGET_OPSET,
        "inputs": [
            {"name": i.name, "type": i.type, "shape": [None, 1]} for i in session.get_inputs()
        ],
        "outputs": [o.name for o in session.get_outputs()],
        "parity": check,
    }
    onnx_path = cand.folder / ONNX_FILE
    if not check["ok"]:
        onnx_path.unlink(missing_ok=True)
        cand.save_metadata()
        raise MLError(
            f"ONNX parity failed: {check['rows_out_of_tolerance']} of {check['rows']} holdout rows "
            f"differ (max |diff| {check['max_abs_diff']:.3g}, tolerance {check['tolerance']}); "
            "the ONNX model was not kept. Check the converter versions or the estimator."
        )
    _write_bytes(onnx_path, blob)
    cand.metadata.update(package_features(lay, cand.folder))
    tracker = tracker_for(cfg)
    model_uri = tracker.log_onnx_model(cand.run_id, onnx_path)
    cand.metadata["tracking"]["model_uri"] = model_uri
    tracker.log_metrics(cand.run_id, {"onnx_parity_max_abs_diff": check["max_abs_diff"]})
    cand.save_metadata()
    return {"model_version": cand.metadata["model_version"], "path": str(onnx_path), **check}


def package_features(lay: Layout, folder: Path, code: Path = FEATURE_CODE) -> dict[str, Any]:
    """Copy the feature code and gold's entity feature table into ``folder``; returns what
    ``metadata.json`` records of them (``feature_code``, ``entity_table``) and of gold's raw
    columns (``inputs``, ``derived``, ``entity_features``, ``main_table``).

    A project without the feature module (no data phase) or without per-entity features
    packages none (``null``): the model is then served on its features as sent."""
    out: dict[str, Any] = {}
    try:
        contract = json.loads(lay.contract.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MLError(
            f"{lay.contract}: cannot be read ({exc}); rebuild gold with `make data`"
        ) from None
    for key in CONTRACT_KEYS:
        if key in contract:
            out[key] = contract[key]
    target = folder / FEATURE_CODE_FILE
    if code.is_file():
        _copy(code, target)
        out["feature_code"] = {
            "file": FEATURE_CODE_FILE,
            "sha256": sha256_file(target),
            "copied_from": _relative(code, lay.root),
        }
    else:
        target.unlink(missing_ok=True)
        out["feature_code"] = None
    table = lay.gold / ENTITY_FILE
    target = folder / ENTITY_FILE
    if table.is_file() and contract.get("entity_features"):
        added = _entity_table(lay, table, target, contract)
        out["entity_table"] = {
            "file": ENTITY_FILE,
            "sha256": sha256_file(target),
            "rows": pq.read_metadata(target).num_rows,
            "id_column": contract.get("id_column"),
            "copied_from": _relative(table, lay.root),
            "ids_from_gold": added,
        }
    else:
        target.unlink(missing_ok=True)
        out["entity_table"] = None
    return out


def _entity_table(lay: Layout, table: Path, target: Path, contract: dict[str, Any]) -> int:
    """Write the model's entity table: gold's ``entity_features.parquet`` plus, for every id of
    gold's rows that it lacks (an entity without history, which ``build_features`` filled), the
    values gold trained on, so every id the model was trained on is served as it was trained.
    Returns how many ids came from gold."""
    id_column = contract.get("id_column")
    names = [n for n in contract.get("entity_features") or [] if isinstance(n, str)]
    entity = pd.read_parquet(table)
    if not id_column or id_column not in entity.columns:
        raise MLError(
            f"{table}: has no id column {id_column!r} (gold contract id_column); rebuild gold "
            "with `make data`"
        )
    trained = pd.read_parquet(lay.features)
    if not set(names) <= set(trained.columns) or id_column not in trained.columns:
        _copy(table, target)
        return 0
    missing = trained.loc[~trained[id_column].isin(entity[id_column]), [id_column, *names]]
    if missing.empty:
        _copy(table, target)
        return 0
    whole = pd.concat([entity, missing.drop_duplicates(id_column)], ignore_index=True)
    tmp = target.with_name(f".{target.name}.tmp")
    whole.to_parquet(tmp, index=False)
    tmp.replace(target)
    return int(len(missing))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _copy(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(target)


def _write_bytes(path: Path, blob: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(blob)
    tmp.replace(path)
