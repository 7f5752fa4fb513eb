"""Experiment tracking: MLflow (local ``sqlite:///mlflow.db`` unless MLFLOW_TRACKING_URI) or none.

``import mlflow`` happens only inside the methods of :class:`MlflowTracker`, so ``tracking: none``
projects and steps that track nothing never pay for it. With ``tracking: none`` the same evidence
is on disk anyway: parameters in ``reports/train.json``, metrics in ``reports/metrics.json``, the
explanation in ``reports/explanation.json``, models under ``models/versions/`` and the champion /
challenger aliases in ``models/aliases.json`` (every move in ``models/registry.jsonl``).
With MLflow, a blessed model is also registered, and the registry's aliases ``champion`` and
``challenger`` mirror the local ones after every move (``blessed`` follows the champion, as it did
before the local registry). The local files stay the source of truth: serving reads them.

One MLflow run spans the steps of one candidate: ``train`` opens it and records its id in the
candidate's metadata; ``evaluate``, ``explain``, ``package`` and ``gate`` resume it.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from .store import MLError, ml_setting


class Tracker:
    """No tracking (``ml.tracking: none``): every method is a no-op returning None."""

    enabled = False

    def start(self, run_name: str, tags: dict[str, str]) -> str | None:
        return None

    def log_params(self, run_id: str | None, params: dict[str, Any]) -> None:
        return None

    def log_metrics(self, run_id: str | None, metrics: dict[str, float]) -> None:
        return None

    def log_artifacts(self, run_id: str | None, paths: list[Path]) -> None:
        return None

    def log_onnx_model(self, run_id: str | None, model_path: Path) -> str | None:
        return None

    def register(self, model_uri: str | None, tags: dict[str, str]) -> dict[str, Any] | None:
        return None

    def mirror_aliases(self, aliases: dict[str, str | None]) -> dict[str, Any] | None:
        return None


class MlflowTracker(Tracker):
    """Tracking and registry in MLflow; the registry's aliases mirror models/aliases.json."""

    enabled = True

    def __init__(self, root: Path, experiment: str, model_name: str) -> None:
        self.root = root
        self.experiment = experiment
        self.model_name = model_name
        self.uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{root / 'mlflow.db'}"

    def _mlflow(self) -> Any:
        try:
            import mlflow
        except ImportError:
            raise MLError(
                "ml.tracking is 'mlflow' but mlflow is not installed; run `make setup` "
                "(or set ml.tracking: none in conf/)"
            ) from None
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        mlflow.set_tracking_uri(self.uri)
        if mlflow.get_experiment_by_name(self.experiment) is None:
            artifacts = None
            if self.uri.startswith("sqlite:"):
                artifacts = (self.root / "mlartifacts").as_uri()
            mlflow.create_experiment(self.experiment, artifact_location=artifacts)
        mlflow.set_experiment(self.experiment)
        return mlflow

    def start(self, run_name: str, tags: dict[str, str]) -> str | None:
        mlflow = self._mlflow()
        with mlflow.start_run(run_name=run_name, tags=tags) as run:
            return str(run.info.run_id)

    def log_params(self, run_id: str | None, params: dict[str, Any]) -> None:
        mlflow = self._mlflow()
        with mlflow.start_run(run_id=run_id):
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})

    def log_metrics(self, run_id: str | None, metrics: dict[str, float]) -> None:
        mlflow = self._mlflow()
        with mlflow.start_run(run_id=run_id):
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})

    def log_artifacts(self, run_id: str | None, paths: list[Path]) -> None:
        mlflow = self._mlflow()
        with mlflow.start_run(run_id=run_id):
            for path in paths:
                if path.is_file():
                    mlflow.log_artifact(str(path))

    def log_onnx_model(self, run_id: str | None, model_path: Path) -> str | None:
        """Log the ONNX file as an MLflow model (registration needs a logged model)."""
        mlflow = self._mlflow()
        import onnx
        from mlflow import onnx as mlflow_onnx

        model = onnx.load(str(model_path))
        with mlflow.start_run(run_id=run_id):
            info = mlflow_onnx.log_model(model, name="model", signature=_signature(model))
        return str(info.model_uri)

    def register(self, model_uri: str | None, tags: dict[str, str]) -> dict[str, Any] | None:
        if model_uri is None:
            raise MLError(
                "no logged MLflow model for the candidate; run `python -m <package>.ml package` "
                "with ml.tracking: mlflow before the gate"
            )
        mlflow = self._mlflow()
        from mlflow import MlflowClient

        version = mlflow.register_model(model_uri, self.model_name, tags=tags)
        client = MlflowClient(tracking_uri=self.uri)
        for key, value in tags.items():  # register_model's tags may land on the run only
            client.set_model_version_tag(self.model_name, version.version, key, value)
        return {"name": self.model_name, "version": str(version.version)}

    def mirror_aliases(self, aliases: dict[str, str | None]) -> dict[str, Any] | None:
        """Point the registered model's aliases champion / challenger (and ``blessed``, the
        champion) at the versions models/aliases.json names; a cleared alias is deleted."""
        self._mlflow()
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.uri)
        try:
            found = list(client.search_model_versions(f"name='{self.model_name}'"))
        except MlflowException:
            found = []
        by_version = {mv.tags.get("model_version"): str(mv.version) for mv in found}
        wanted = {**aliases, "blessed": aliases.get("champion")}
        mirrored: dict[str, str | None] = {}
        for alias, local in wanted.items():
            number = by_version.get(local) if local else None
            if number is not None:
                client.set_registered_model_alias(self.model_name, alias, number)
            elif found:
                with contextlib.suppress(MlflowException):  # it was not set
                    client.delete_registered_model_alias(self.model_name, alias)
            mirrored[alias] = number
        return {"name": self.model_name, "aliases": mirrored}


def _signature(model: Any) -> Any:
    """MLflow signature of the ONNX graph: one column per feature in, tensors out."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from onnx import TensorProto

    columns = {TensorProto.FLOAT: "float", TensorProto.STRING: "string"}
    tensors = {TensorProto.FLOAT: np.float32, TensorProto.INT64: np.int64,
               TensorProto.DOUBLE: np.float64}  # fmt: skip
    inputs = Schema(
        [
            ColSpec(columns.get(i.type.tensor_type.elem_type, "string"), i.name)
            for i in model.graph.input
        ]  # fmt: skip
    )
    outputs: list[ColSpec | TensorSpec] = []
    for out in model.graph.output:
        dtype = tensors.get(out.type.tensor_type.elem_type)
        if dtype is None:  # string labels have no tensor dtype in MLflow: leave outputs out
            return ModelSignature(inputs=inputs)
        dims = out.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.dim_value > 0 else -1 for d in dims)
        outputs.append(TensorSpec(np.dtype(dtype), shape, out.name))
    return ModelSignature(inputs=inputs, outputs=Schema(outputs))


def tracker_for(cfg: dict[str, Any]) -> Tracker:
    kind = ml_setting(cfg, "tracking")
    if kind == "none":
        return Tracker()
    if kind == "mlflow":
        package = cfg.get("project", {}).get("package", "model")
        return MlflowTracker(Path(cfg["root"]), experiment=package, model_name=package)
    raise MLError(f"conf: ml.tracking = {kind!r}; use mlflow or none")
