"""The candidate model on disk: ``models/candidate/{model.joblib,model.onnx,metadata.json}``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from .dataset import Contract
from .split import Split
from .store import Layout, MLError, read_json, write_json

MODEL_FILE = "model.joblib"
ONNX_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.parquet"


def predict(model: Any, x: pd.DataFrame, task: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Native predictions: (labels, class probabilities) or (values, None)."""
    if task == "classification":
        proba = np.asarray(model.predict_proba(x), dtype=np.float64)
        classes = np.asarray(model.classes_)
        return classes[proba.argmax(axis=1)], proba
    return np.asarray(model.predict(x), dtype=np.float64), None


def contract_from_metadata(metadata: dict[str, Any]) -> Contract:
    return Contract(
        target=metadata["target"],
        task=metadata["task"],
        id_column=metadata.get("id_column"),
        features=metadata["features"],
    )


@dataclass
class Candidate:
    folder: Path
    model: Any
    metadata: dict[str, Any]

    @property
    def contract(self) -> Contract:
        return contract_from_metadata(self.metadata)

    @property
    def run_id(self) -> str | None:
        run_id = self.metadata.get("tracking", {}).get("run_id")
        return str(run_id) if run_id else None

    def save_metadata(self) -> None:
        write_json(self.folder / METADATA_FILE, self.metadata)

    def check_same_gold(self, sha256: str) -> None:
        trained_on = self.metadata["training_data"]["sha256"]
        if trained_on != sha256:
            raise MLError(
                f"data/gold/features.parquet changed since the candidate was trained "
                f"(sha256 {sha256[:12]} != {trained_on[:12]}); run `make train` again"
            )

    def check_same_split(self, split: Split) -> None:
        now = split.fingerprint()["holdout_sha256"]
        then = self.metadata["split"]["holdout_sha256"]
        if now != then:
            raise MLError(
                "the holdout rows differ from the ones set aside at training time (ml.split "
                "changed in conf/?); run `make train` again"
            )


def load_candidate(lay: Layout, cfg: dict[str, Any], folder: Path | None = None) -> Candidate:
    folder = folder or lay.candidate
    metadata = read_json(folder / METADATA_FILE, "run `make train` first")
    model_file = folder / MODEL_FILE
    if not model_file.is_file():
        raise MLError(f"{model_file} not found; run `make train` first")
    try:
        model = joblib.load(model_file)
    except Exception as exc:  # any unpickling problem means: retrain
        raise MLError(f"{model_file}: cannot be loaded ({exc}); run `make train` again") from None
    return Candidate(folder=folder, model=model, metadata=metadata)
