"""The REST inference service: FastAPI + onnxruntime.

``create_app()`` reads the champion's ``metadata.json`` (``models/aliases.json`` names it; its
folder is ``models/versions/<version>/``) to build the request schema, and loads the ONNX sessions
at start-up (lifespan): the champion, and the challenger too when ``serving.strategy`` is
``shadow``, ``canary`` or ``ab`` (see rollout.py: who answers, hot reload of the aliases).
Endpoints:

- ``POST /predict``  one record (a JSON object) or a list of records -> predictions
- ``GET /health``    liveness: the process answers
- ``GET /ready``     readiness: 503 until the model is loaded, then 200
- ``GET /metadata``  model version, training data version, metric and score, features
- ``POST /feedback`` the observed label of a served request (joined by ``make monitor``) or a
  free-text problem report
- ``GET /metrics``   Prometheus text format (see telemetry.py; ``serving.metrics``)
- ``POST /reload``   re-read ``models/aliases.json`` now (it is also checked every
  ``serving.rollout.reload_seconds``) and answer with the models served

``serving.auth`` (off by default) makes every endpoint but ``/health`` and ``/ready`` need the key
held by the environment variable ``serving.auth.key_env``; ``serving.cors_origins`` (empty by
default: no CORS headers) lists the browser origins allowed to call the API.

Every scored record is logged to ``logs/requests.jsonl`` (``serving.log_requests``) and every
rejected payload to ``logs/schema-errors.jsonl``, both off the request path (see request_log.py).

``POST /predict`` takes ``application/json`` only (anything else: 415) and at most
``serving.max_body_bytes`` (larger: 413, told by ``Content-Length`` before anything is read, or
counted while a chunked body streams in). A record whose prediction is not a finite number (inputs
so large the model's float32 arithmetic overflows) gets a 422 naming its fields: the response and
the log stay valid JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..common.config import ConfigError, load_config, resolve
from .model import REFERENCE_FILE, ModelMetadata, OnnxModel
from .request_log import JsonlWriter, csv_line, utc_timestamp
from .rollout import Lineup, Models, ReloadError, Rollout, Served, rollout_settings, routing_keys
from .schemas import (
    MAX_RECORDS,
    OUT_OF_RANGE_POLICIES,
    REQUEST_ID,
    Checked,
    PayloadError,
    RequestSchema,
    build_response_model,
    build_schema,
)
from .telemetry import METRICS_CONTENT_TYPE, Guard, Metrics, access_settings, event

REQUEST_LOG = "requests.jsonl"
SCHEMA_ERROR_LOG = "schema-errors.jsonl"
#: every POST /feedback item (labels and problem reports), strict JSON lines, in paths.logs
FEEDBACK_LOG = "feedback.jsonl"
#: the labels of POST /feedback, in the format make monitor reads from data/labels/ (request_id,
#: target CSV)
FEEDBACK_LABELS = "feedback.csv"
#: request ids /feedback accepts: those served since start-up plus those in the request log, the
#: most recent ones when there are more
MAX_KNOWN_IDS = 1_000_000
MAX_PROBLEM_CHARS = 10_000
#: default of serving.max_body_bytes: 4 MiB holds MAX_RECORDS records of a few dozen features
MAX_BODY_BYTES = 4 * 1024 * 1024
JSON_MEDIA_TYPE = "application/json"


class BodyError(ValueError):
    """The body is refused before it is parsed (413 too large, 415 not JSON, 400 bad length)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == JSON_MEDIA_TYPE or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (``BodyError``) when it is not JSON or larger than ``limit``.

    A ``Content-Length`` above the limit is refused before a byte is read; without one (chunked)
    the body is counted as it streams in and refused as soon as it passes the limit, so a large
    body never sits in memory whole."""
    content_type = request.headers.get("content-type", "")
    if not _is_json(content_type):
        raise BodyError(
            415,
            f"send the records as JSON with `Content-Type: {JSON_MEDIA_TYPE}` "
            f"(got {content_type or 'no Content-Type'!r})",
        )
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BodyError(400, f"Content-Length {declared!r} is not a number of bytes")
        if int(declared) > limit:
            raise BodyError(413, _too_large(limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, _too_large(limit))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> str:
    return (
        f"the body is larger than {limit} bytes (serving.max_body_bytes); send at most "
        f"{MAX_RECORDS} records per request in smaller batches, or use batch scoring"
    )


def _finite(output: dict[str, Any]) -> bool:
    values = [output["prediction"], *output.get("probabilities", {}).values()]
    return all(math.isfinite(v) for v in values if isinstance(v, float))


@dataclass
class ServingState:
    """What the app holds at run time; ``lineup`` (the models serving) is None until start-up
    has loaded it, and is replaced as a whole when models/aliases.json changes."""

    models: Models
    metadata: ModelMetadata
    log_dir: Path
    log_requests: bool
    max_body_bytes: int = MAX_BODY_BYTES
    lineup: Lineup | None = None
    requests: JsonlWriter | None = None
    schema_errors: JsonlWriter | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"predicted": 0, "rejected": 0})
    labels_dir: Path | None = None
    metrics: Metrics | None = None
    feedback: JsonlWriter | None = None
    labels: JsonlWriter | None = None
    #: request id -> the version of the model that answered it (None: not known)
    known_ids: dict[str, str | None] = field(default_factory=dict)
    pii_key: bool = False
    pii_salt: str | None = None

    @property
    def model(self) -> OnnxModel | None:
        """The champion's session (None until start-up)."""
        return None if self.lineup is None else self.lineup.champion.model

    def served(self, request_ids: list[str], versions: list[str | None] | None = None) -> None:
        """Remember ``request_ids`` (and who answered) for /feedback (the oldest forgotten past
        MAX_KNOWN_IDS)."""
        known = self.known_ids
        for i, request_id in enumerate(request_ids):
            known[request_id] = versions[i] if versions is not None else None
        while len(known) > MAX_KNOWN_IDS:
            del known[next(iter(known))]

    def reload(self, force: bool = False) -> tuple[Lineup, bool]:
        """Serve the models aliases.json names now, if it changed (or ``force``); returns the
        lineup and whether the models served changed. ReloadError keeps the current ones."""
        current = self.lineup
        if current is None:
            raise ReloadError("the models are not loaded yet (start-up)")
        try:
            new = self.models.refresh(current, force=force)
        except ReloadError as exc:
            if self.metrics is not None:
                self.metrics.reloads.labels("refused").inc()
            event("reload_refused", logging.WARNING, reason=str(exc), **current.versions())
            raise
        if new is current:
            return current, False
        changed = new.versions() != current.versions() or (
            new.challenger_error != current.challenger_error
        )
        self.lineup = new  # one reference swap: requests in flight keep the lineup they read
        if changed:
            if self.metrics is not None:
                self.metrics.reloads.labels("reloaded").inc()
                self.metrics.lineup(new.versions())
            event("models_reloaded", previous=current.versions(), **new.view())
            _challenger_event(new)
        return new, changed

    def routing_key_logged(self, value: Any) -> Any:
        """The routing key as the request log holds it: masked (salted SHA-256, as silver) when
        the key is a PII column, dropped when no salt is set; in clear otherwise."""
        if value is None or not self.pii_key:
            return value
        if self.pii_salt is None:
            return None
        return hashlib.sha256((self.pii_salt + str(value)).encode("utf-8")).hexdigest()


def _challenger_event(lineup: Lineup) -> None:
    if lineup.challenger_error:
        event(
            "challenger_unavailable",
            logging.WARNING,
            strategy=lineup.strategy,
            reason=lineup.challenger_error,
            champion=lineup.champion.version,
        )


class Feedback(BaseModel):
    """``POST /feedback``: the observed label of a served request, or a problem report."""

    model_config = ConfigDict(extra="forbid")

    request_id: str | None = Field(
        None, min_length=1, max_length=200, description="as returned by POST /predict"
    )
    label: str | int | float | bool | None = Field(
        None, description="the observed outcome (the target's true value) for request_id"
    )
    problem: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PROBLEM_CHARS,
        description="a free-text report of a bad or unexpected result",
    )


def _seed_known_ids(path: Path, state: ServingState) -> None:
    """The request ids of the request log, so labels of requests served before a restart join."""
    if not path.is_file():
        return
    ids: list[str] = []
    versions: list[str | None] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            try:
                logged = json.loads(line)
                request_id = logged.get("request_id")
                version = logged.get("model_version")
            except (ValueError, AttributeError):
                continue
            if isinstance(request_id, str):
                ids.append(request_id)
                versions.append(version if isinstance(version, str) else None)
                if len(ids) >= 2 * MAX_KNOWN_IDS:
                    ids, versions = ids[-MAX_KNOWN_IDS:], versions[-MAX_KNOWN_IDS:]
    state.served(ids[-MAX_KNOWN_IDS:], versions[-MAX_KNOWN_IDS:])


def _reference_predictions(model_dir: Path) -> list[float]:
    """The training reference's predictions (regression buckets of /metrics); [] without one."""
    path = model_dir / REFERENCE_FILE
    if not path.is_file():
        return []
    try:
        import polars as pl

        column = pl.read_parquet(path, columns=["prediction"])["prediction"]
        return [float(v) for v in column.drop_nulls().to_list()]
    except Exception:  # the buckets are a convenience: fall back to the default ones
        return []


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
        # what a client sends (the raw columns) and what the model's feature code computes
        "inputs": [
            {
                "name": i.name,
                "kind": i.kind,
                **({"categories": list(i.categories)} if i.categories else {}),
            }
            for i in metadata.inputs
        ],
        "derived": list(metadata.derived),
        "entity_features": list(metadata.entity_features),
        "feature_code": raw.get("feature_code"),
    }


def _openapi_body(schema: RequestSchema) -> dict[str, Any]:
    record = schema.record.model_json_schema()
    if "$defs" in record:  # nested definitions would need components; keep the docs simple
        record = {"type": "object"}
    # what parse() accepts: one record, or a list of 1..MAX_RECORDS records (`[]` is a 422)
    many = {"type": "array", "items": record, "minItems": 1, "maxItems": MAX_RECORDS}
    return {
        "requestBody": {
            "required": True,
            "content": {JSON_MEDIA_TYPE: {"schema": {"anyOf": [record, many]}}},
        }
    }


def _serving_settings(config: dict[str, Any]) -> tuple[str, int]:
    """serving.out_of_range and serving.max_body_bytes from conf/, checked (serving.metrics too)."""
    serving = config.get("serving") or {}
    policy = serving.get("out_of_range", "flag")
    if policy not in OUT_OF_RANGE_POLICIES:
        raise ConfigError(
            f"conf: serving.out_of_range = {policy!r} is not one of "
            f"{', '.join(OUT_OF_RANGE_POLICIES)} (flag: score and mark values beyond the range "
            "seen in training; reject: answer 422)"
        )
    limit = serving.get("max_body_bytes", MAX_BODY_BYTES)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigError(
            f"conf: serving.max_body_bytes = {limit!r} must be a positive number of bytes "
            f"(default {MAX_BODY_BYTES})"
        )
    metrics = serving.get("metrics", True)
    if not isinstance(metrics, bool):
        raise ConfigError(
            f"conf: serving.metrics = {metrics!r} must be true (serve GET /metrics) or false"
        )
    return policy, limit


def _routing_key(rollout: Rollout, schema: RequestSchema) -> None:
    """serving.rollout.key must be a field of the request (or request_id) when it routes."""
    key = rollout.key
    if not rollout.routes or key is None or key == REQUEST_ID:
        return
    fields = schema.record.model_fields
    if key not in fields:
        names = ", ".join(sorted(n for n in fields if not n.startswith("raw_date_")))
        raise ConfigError(
            f"conf: serving.rollout.key = {key!r} is not a field of the request ({names}); name "
            f"the id column or another field every client sends, or null (route by {REQUEST_ID})"
        )


def create_app(
    model_dir: Path | None = None,
    log_dir: Path | None = None,
    log_requests: bool | None = None,
    labels_dir: Path | None = None,
    models_dir: Path | None = None,
) -> FastAPI:
    """Build the app. Defaults come from conf/ (the registry in ``paths.models``, ``paths.logs``;
    labels from /feedback go to ``data/labels/``, where ``make monitor`` reads them).
    ``model_dir`` serves that one folder alone (strategy single, no reload); ``models_dir`` is
    the registry folder (default ``paths.models``)."""
    config = load_config()
    serving_conf = config.get("serving") or {}
    access = access_settings(serving_conf)
    rollout = rollout_settings(serving_conf)
    policy, max_body_bytes = _serving_settings(config)
    pii_columns = list(config["data"].get("pii_columns") or [])

    def schema_of(metadata: ModelMetadata) -> RequestSchema:
        return build_schema(
            metadata,
            pii_columns=pii_columns,
            id_column=config["data"].get("id_column"),
            out_of_range=policy,
        )

    models = Models(
        rollout,
        schema_of,
        models_dir=None if model_dir is not None else (models_dir or resolve(config, "models")),
        fixed=model_dir,
        load=lambda folder, metadata: OnnxModel(folder, metadata),
    )
    metadata = models.metadata()
    schema = schema_of(metadata)
    _routing_key(rollout, schema)
    salt_env = str(config["data"].get("pii_salt_env") or "MLOPS_PII_SALT")
    state = ServingState(
        models=models,
        metadata=metadata,
        pii_key=rollout.key in pii_columns,
        pii_salt=os.environ.get(salt_env) or None,
        log_dir=log_dir or resolve(config, "logs"),
        log_requests=(
            bool(config["serving"].get("log_requests", True))
            if log_requests is None
            else log_requests
        ),
        max_body_bytes=max_body_bytes,
        labels_dir=labels_dir or Path(config["root"]) / "data" / "labels",
    )
    if serving_conf.get("metrics", True):
        state.metrics = Metrics(
            metadata.model_version,
            metadata.task,
            _reference_predictions(metadata.path.parent) if metadata.task == "regression" else (),
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.schema_errors = JsonlWriter(state.log_dir / SCHEMA_ERROR_LOG).start()
        state.feedback = JsonlWriter(state.log_dir / FEEDBACK_LOG).start()
        assert state.labels_dir is not None
        columns = ["request_id", metadata.target]
        state.labels = JsonlWriter(
            state.labels_dir / FEEDBACK_LABELS,
            line=csv_line(columns),
            header=csv_line(columns)(dict(zip(columns, columns, strict=True))),
        ).start()
        if state.log_requests:
            await asyncio.to_thread(_seed_known_ids, state.log_dir / REQUEST_LOG, state)
            state.requests = JsonlWriter(state.log_dir / REQUEST_LOG).start()
        poll: asyncio.Task[None] | None = None
        try:
            lineup = await asyncio.to_thread(models.first)
            state.lineup = lineup
            if state.metrics is not None:
                state.metrics.lineup(lineup.versions())
            event(
                "model_loaded",
                model_version=lineup.champion.version,
                task=metadata.task,
                **lineup.view(),
                auth=access.enabled,
                metrics=state.metrics is not None,
                cors_origins=list(access.cors_origins),
                log_requests=state.log_requests,
            )
            _challenger_event(lineup)
            if models.models_dir is not None and rollout.reload_seconds > 0:
                poll = asyncio.create_task(_poll_aliases(state, rollout.reload_seconds))
            yield
        finally:
            if poll is not None:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll
            state.lineup = None
            for writer in (state.requests, state.schema_errors, state.feedback, state.labels):
                if writer is not None:
                    writer.close()
            event(
                "stopped",
                predicted=state.stats["predicted"],
                rejected=state.stats["rejected"],
                dropped=sum(
                    w.dropped
                    for w in (state.requests, state.schema_errors, state.feedback, state.labels)
                    if w
                ),
            )

    app = FastAPI(
        title=f"{config['project']['name']} inference",
        version=metadata.model_version,
        lifespan=lifespan,
    )
    app.state.serving = state
    # Guard (auth, request counting) inside CORS, so a browser sees CORS headers on a 401 too
    app.add_middleware(Guard, access=access, metrics=state.metrics)
    if access.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(access.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-api-key"],
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        lineup = state.lineup
        if lineup is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": lineup.champion.version})

    @app.get("/metadata")
    async def model_metadata() -> JSONResponse:
        lineup = state.lineup
        if lineup is None:
            return JSONResponse({"detail": "the model is not loaded yet"}, status_code=503)
        view = _metadata_view(lineup.champion.metadata)
        view["rollout"] = lineup.view()
        if lineup.challenger is not None:
            view["challenger"] = _metadata_view(lineup.challenger.metadata)
        view["logging"] = {
            "requests": state.log_requests,
            "dropped": sum(w.dropped for w in (state.requests, state.schema_errors) if w),
        }
        return JSONResponse(view)

    @app.post(
        "/reload",
        responses={
            200: {"description": "the models served now (`changed`: whether they changed)"},
            409: {"description": "the new aliases cannot be served; the models in service stay"},
            503: {"description": "the models are not loaded yet"},
        },
    )
    async def reload() -> JSONResponse:
        if state.lineup is None:
            return JSONResponse({"detail": "the model is not loaded yet"}, status_code=503)
        try:
            lineup, changed = await asyncio.to_thread(state.reload, True)
        except ReloadError as exc:
            return JSONResponse({"detail": str(exc), **state.lineup.versions()}, status_code=409)
        return JSONResponse({"changed": changed, **lineup.view()})

    response_model = build_response_model(metadata)

    @app.post(
        "/predict",
        openapi_extra=_openapi_body(schema),
        responses={
            200: {"model": response_model, "description": "one prediction per record"},
            400: {"description": "the Content-Length header is not a number"},
            413: {"description": "the body is larger than serving.max_body_bytes"},
            415: {"description": "the body is not sent as application/json"},
            422: {
                "description": "the payload does not match the schema, or a record's prediction "
                "is not finite; `detail` names the fields"
            },
            503: {"description": "the model is not loaded yet"},
        },
    )
    async def predict(request: Request) -> JSONResponse:
        started = time.perf_counter()
        lineup = state.lineup  # this request is served by this lineup, even across a reload
        if lineup is None:
            return JSONResponse({"detail": "the model is not loaded yet"}, status_code=503)
        schema = lineup.schema
        try:
            body = await read_body(request, state.max_body_bytes)
            records, single = schema.parse(body)
        except BodyError as exc:
            return reject(exc.status, [{"loc": ["body"], "msg": str(exc), "type": "body"}])
        except PayloadError as exc:
            return reject(422, exc.errors)
        request_ids = [getattr(r, REQUEST_ID) or uuid.uuid4().hex for r in records]
        keys = routing_keys(lineup, records, request_ids)
        answering = lineup.answering(keys)
        outputs, checks = _score_routed(answering, records)
        overflow = [
            {
                "loc": ["body"] if single else ["body", i],
                "msg": (
                    f"the prediction is not a finite number for these inputs (numbers this large "
                    f"overflow the model's float32 arithmetic); check "
                    f"{', '.join(check.out_of_range or _numbers(schema, records[i]))}"
                ),
                "type": "non_finite_prediction",
            }
            for i, (output, check) in enumerate(zip(outputs, checks, strict=True))
            if not _finite(output)
        ]
        if overflow:
            return reject(422, overflow)
        outputs = [
            {
                **out,
                "model_version": served.version,
                "imputed": check.imputed,
                "out_of_range": check.out_of_range,
            }
            for out, check, served in zip(outputs, checks, answering, strict=True)
        ]
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        shadows = _shadow(lineup, records)  # after the answer's latency: it is not waited on
        champion = lineup.champion
        if state.requests is not None:
            timestamp = utc_timestamp()
            logged_keys = (
                [state.routing_key_logged(k) for k in keys]
                if lineup.key is not None and lineup.challenger is not None and lineup.routes
                else None
            )
            for i, (record, request_id, output) in enumerate(
                zip(records, request_ids, outputs, strict=True)
            ):
                served = answering[i]
                line: dict[str, Any] = {
                    "request_id": request_id,
                    "timestamp": timestamp,
                    "model_version": served.version,
                    "model_alias": "champion" if served is champion else "challenger",
                    "strategy": lineup.strategy,
                    "features": served.schema.features(record),
                    **output,
                    "latency_ms": latency_ms,
                }
                if logged_keys is not None and logged_keys[i] is not None:
                    line["routing_key"] = logged_keys[i]
                if shadows is not None:
                    line["shadow"] = shadows[i]
                state.requests.write(line)
        state.stats["predicted"] += len(records)
        state.served(request_ids, [out["model_version"] for out in outputs])
        if state.metrics is not None:
            _count(state.metrics, lineup, answering, outputs, shadows)
        predictions = [
            {"request_id": rid, **out} for rid, out in zip(request_ids, outputs, strict=True)
        ]
        versions = {out["model_version"] for out in outputs}
        top = next(iter(versions)) if len(versions) == 1 else champion.version
        return JSONResponse({"model_version": top, "predictions": predictions})

    if state.metrics is not None:
        metrics = state.metrics

        @app.get("/metrics", response_class=Response)
        async def prometheus_metrics() -> Response:
            return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @app.post(
        "/feedback",
        status_code=202,
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON_MEDIA_TYPE: {"schema": Feedback.model_json_schema()}},
            }
        },
        responses={
            202: {"description": "recorded (labels: data/labels/feedback.csv)"},
            404: {"description": "request_id was not served by this service"},
            413: {"description": "the body is larger than serving.max_body_bytes"},
            415: {"description": "the body is not sent as application/json"},
            422: {"description": "not a label or problem report; `detail` names the field"},
        },
    )
    async def feedback(request: Request) -> JSONResponse:
        try:
            body = await read_body(request, state.max_body_bytes)
            item = Feedback.model_validate_json(body or b"null")
        except BodyError as exc:
            return refuse(exc.status, [{"loc": ["body"], "msg": str(exc), "type": "body"}])
        except ValidationError as exc:
            errors = [
                {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
            return refuse(422, errors)
        problems = _feedback_problems(item)
        if problems:
            return refuse(422, problems)
        label: Any = None
        if item.label is not None:
            try:
                label = _observed(item.label)
            except ValueError as exc:
                return refuse(422, [_body_error("label", str(exc))])
        if item.request_id is not None and item.request_id not in state.known_ids:
            return refuse(
                404,
                [
                    _body_error(
                        "request_id",
                        f"request_id {item.request_id!r} was not served by this service (not in "
                        f"{state.log_dir / REQUEST_LOG} nor since start-up); send the request_id "
                        "POST /predict returned",
                        "unknown_request_id",
                    )
                ],
            )
        answered_by = state.known_ids.get(item.request_id) if item.request_id else None
        lineup = state.lineup
        record = {
            "timestamp": utc_timestamp(),
            "request_id": item.request_id,
            "model_version": answered_by
            or (lineup.champion.version if lineup else metadata.model_version),
            **({"label": label} if item.label is not None else {}),
            **({"problem": item.problem} if item.problem is not None else {}),
        }
        if state.feedback is not None:
            state.feedback.write(record)
        if item.label is not None and state.labels is not None:
            state.labels.write({"request_id": item.request_id, metadata.target: label})
        if state.metrics is not None:
            if item.label is not None:
                state.metrics.feedback.labels("label").inc()
            if item.problem is not None:
                state.metrics.feedback.labels("problem").inc()
        return JSONResponse({"status": "recorded", **record}, status_code=202)

    def _observed(value: Any) -> Any:
        """The label checked against the model: one of its classes, or a finite number."""
        current = state.lineup.champion.metadata if state.lineup is not None else metadata
        if metadata.task == "classification":
            for known in current.classes:
                if str(known) == str(value) and not isinstance(value, float):
                    return known
            raise ValueError(
                f"{value!r} is not one of the model's classes "
                f"({', '.join(repr(c) for c in current.classes)})"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                f"{value!r} is not a number; `{metadata.target}` is a regression target"
            )
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return value

    def refuse(status: int, errors: list[dict[str, Any]]) -> JSONResponse:
        """A refused /feedback (not a schema error of the model's callers: not logged as one)."""
        return JSONResponse({"detail": errors}, status_code=status)

    def reject(status: int, errors: list[dict[str, Any]]) -> JSONResponse:
        state.stats["rejected"] += 1
        if state.schema_errors is not None:
            state.schema_errors.write(
                {"timestamp": utc_timestamp(), "status": status, "errors": errors}
            )
        return JSONResponse({"detail": errors}, status_code=status)

    return app


async def _poll_aliases(state: ServingState, seconds: float) -> None:
    """Re-read models/aliases.json every ``seconds`` (in a thread: loading a model takes a
    while, the requests keep being answered by the current lineup meanwhile)."""
    while True:
        await asyncio.sleep(seconds)
        with contextlib.suppress(ReloadError):  # logged and counted by reload(); models stay
            await asyncio.to_thread(state.reload)


def _score_routed(
    answering: list[Served], records: list[Any]
) -> tuple[list[dict[str, Any]], list[Checked]]:
    """Score each record with the model routed to it (one batch per model), in request order."""
    first = answering[0]
    if all(served is first for served in answering):
        return first.score(records)
    outputs: list[dict[str, Any]] = [{} for _ in records]
    checks: list[Checked] = [Checked([], []) for _ in records]
    for served in {id(s): s for s in answering}.values():
        picked = [i for i, s in enumerate(answering) if s is served]
        outs, chks = served.score([records[i] for i in picked])
        for i, out, check in zip(picked, outs, chks, strict=True):
            outputs[i], checks[i] = out, check
    return outputs, checks


def _shadow(lineup: Lineup, records: list[Any]) -> list[dict[str, Any]] | None:
    """The challenger's predictions in shadow (None: no shadow). A failure of the shadow model
    never fails the request: each record's entry then holds the error."""
    shadow = lineup.shadow
    if shadow is None:
        return None
    try:
        outputs, _ = shadow.score(records)
    except Exception as exc:  # the champion's answer stands; the log says why the shadow failed
        error = f"{type(exc).__name__}: {exc}"[:500]
        event("shadow_failed", logging.WARNING, model_version=shadow.version, reason=error)
        return [{"model_version": shadow.version, "error": error} for _ in records]
    return [{"model_version": shadow.version, **out} for out in outputs]


def _count(
    metrics: Metrics,
    lineup: Lineup,
    answering: list[Served],
    outputs: list[dict[str, Any]],
    shadows: list[dict[str, Any]] | None,
) -> None:
    """The Prometheus counters of one /predict: answers per model, shadow records, disagreements."""
    for served in {id(s): s for s in answering}.values():
        answers = [o["prediction"] for o, s in zip(outputs, answering, strict=True) if s is served]
        alias = "champion" if served is lineup.champion else "challenger"
        metrics.predicted(answers, served.version)
        metrics.served(served.version, alias, "answer", len(answers))
    if shadows is not None and lineup.shadow is not None:
        scored = [(o["prediction"], s) for o, s in zip(outputs, shadows, strict=True)]
        ok = [(answer, s["prediction"]) for answer, s in scored if "prediction" in s]
        metrics.served(lineup.shadow.version, "challenger", "shadow", len(ok))
        metrics.shadowed(lineup.shadow.version, [a for a, _ in ok], [b for _, b in ok])


def _body_error(name: str, msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": ["body", name], "msg": msg, "type": kind}


def _feedback_problems(item: Feedback) -> list[dict[str, Any]]:
    """What makes ``item`` neither a label (request_id + label) nor a problem report."""
    if item.label is None and item.problem is None:
        return [
            _body_error(
                "label",
                "send {'request_id': ..., 'label': <observed value>} or {'problem': '<text>'} "
                "(optionally with request_id)",
                "missing",
            )
        ]
    if item.label is not None and item.request_id is None:
        return [
            _body_error(
                "request_id",
                "a label needs the request_id POST /predict returned, to be joined with it",
                "missing",
            )
        ]
    return []


def _numbers(schema: RequestSchema, record: Any) -> list[str]:
    """The numeric features of ``record`` (named when no value is beyond its fences)."""
    return [
        name for name, value in schema.features(record).items() if isinstance(value, (int, float))
    ]
