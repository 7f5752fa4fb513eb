"""The REST inference service: FastAPI + onnxruntime.

``create_app()`` reads ``models/blessed/metadata.json`` (to build the request schema) and loads the
ONNX session at start-up (lifespan). Endpoints:

- ``POST /predict``  one record (a JSON object) or a list of records -> predictions
- ``GET /health``    liveness: the process answers
- ``GET /ready``     readiness: 503 until the model is loaded, then 200
- ``GET /metadata``  model version, training data version, metric and score, features

Every scored record is logged to ``logs/requests.jsonl`` (``serving.log_requests``) and every
rejected payload to ``logs/schema-errors.jsonl``, both off the request path (see request_log.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..common.config import load_config, resolve
from .model import ModelMetadata, OnnxModel, read_metadata
from .request_log import JsonlWriter, utc_timestamp
from .schemas import (
    REQUEST_ID,
    PayloadError,
    RequestSchema,
    build_response_model,
    build_schema,
)

REQUEST_LOG = "requests.jsonl"
SCHEMA_ERROR_LOG = "schema-errors.jsonl"


@dataclass
class ServingState:
    """What the app holds at run time; ``model`` is None until start-up has loaded it."""

    model_dir: Path
    metadata: ModelMetadata
    schema: RequestSchema
    log_dir: Path
    log_requests: bool
    model: OnnxModel | None = None
    requests: JsonlWriter | None = None
    schema_errors: JsonlWriter | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"predicted": 0, "rejected": 0})


def _metadata_view(metadata: ModelMetadata) -> dict[str, Any]:
    raw = metadata.raw
    return {
        "model_version": metadata.model_version,
        "trained_at": raw.get("trained_at"),
        "task": metadata.task,
        "target": metadata.target,
        "framework": raw.get("framework"),
        "metric": raw.get("metric"),
        "score": raw.get("score"),
        "greater_is_better": raw.get("greater_is_better"),
        "training_data": raw.get("training_data"),
        "classes": list(metadata.classes),
        "features": [
            {
                "name": f.name,
                "kind": f.kind,
                **({"categories": list(f.categories)} if f.categories else {}),
            }
            for f in metadata.features
        ],
    }


def _openapi_body(schema: RequestSchema) -> dict[str, Any]:
    record = schema.record.model_json_schema()
    if "$defs" in record:  # nested definitions would need components; keep the docs simple
        record = {"type": "object"}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"anyOf": [record, {"type": "array", "items": record}]}
                }
            },
        }
    }


def create_app(
    model_dir: Path | None = None, log_dir: Path | None = None, log_requests: bool | None = None
) -> FastAPI:
    """Build the app. Defaults come from conf/ (``paths.models``/blessed, ``paths.logs``)."""
    config = load_config()
    model_dir = model_dir or resolve(config, "models") / "blessed"
    metadata = read_metadata(model_dir)
    schema = build_schema(
        metadata,
        pii_columns=config["data"].get("pii_columns") or [],
        id_column=config["data"].get("id_column"),
    )
    state = ServingState(
        model_dir=model_dir,
        metadata=metadata,
        schema=schema,
        log_dir=log_dir or resolve(config, "logs"),
        log_requests=(
            bool(config["serving"].get("log_requests", True))
            if log_requests is None
            else log_requests
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.schema_errors = JsonlWriter(state.log_dir / SCHEMA_ERROR_LOG).start()
        if state.log_requests:
            state.requests = JsonlWriter(state.log_dir / REQUEST_LOG).start()
        try:
            state.model = await asyncio.to_thread(OnnxModel, state.model_dir, state.metadata)
            yield
        finally:
            state.model = None
            for writer in (state.requests, state.schema_errors):
                if writer is not None:
                    writer.close()

    app = FastAPI(
        title=f"{config['project']['name']} inference",
        version=metadata.model_version,
        lifespan=lifespan,
    )
    app.state.serving = state

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if state.model is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": metadata.model_version})

    @app.get("/metadata")
    async def model_metadata() -> dict[str, Any]:
        view = _metadata_view(metadata)
        view["logging"] = {
            "requests": state.log_requests,
            "dropped": sum(w.dropped for w in (state.requests, state.schema_errors) if w),
        }
        return view

    response_model = build_response_model(metadata)

    @app.post(
        "/predict",
        openapi_extra=_openapi_body(schema),
        responses={
            200: {"model": response_model, "description": "one prediction per record"},
            422: {"description": "the payload does not match the schema; `detail` names fields"},
            503: {"description": "the model is not loaded yet"},
        },
    )
    async def predict(request: Request) -> JSONResponse:
        started = time.perf_counter()
        model = state.model
        if model is None:
            return JSONResponse({"detail": "the model is not loaded yet"}, status_code=503)
        body = await request.body()
        try:
            records, _single = schema.parse(body)
        except PayloadError as exc:
            state.stats["rejected"] += 1
            if state.schema_errors is not None:
                state.schema_errors.write({"timestamp": utc_timestamp(), "errors": exc.errors})
            return JSONResponse({"detail": exc.errors}, status_code=422)
        outputs = model.predict_columns(schema.columns(records))
        request_ids = [getattr(r, REQUEST_ID) or uuid.uuid4().hex for r in records]
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        if state.requests is not None:
            timestamp = utc_timestamp()
            for record, request_id, output in zip(records, request_ids, outputs, strict=True):
                state.requests.write(
                    {
                        "request_id": request_id,
                        "timestamp": timestamp,
                        "model_version": metadata.model_version,
                        "features": schema.features(record),
                        **output,
                        "latency_ms": latency_ms,
                    }
                )
        state.stats["predicted"] += len(records)
        predictions = [
            {"request_id": rid, **out} for rid, out in zip(request_ids, outputs, strict=True)
        ]
        return JSONResponse({"model_version": metadata.model_version, "predictions": predictions})

    return app
