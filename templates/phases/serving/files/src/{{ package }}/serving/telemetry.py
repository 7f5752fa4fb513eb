"""Telemetry and access control of the REST service.

- ``Metrics``: the Prometheus series ``GET /metrics`` serves (prometheus-client, one registry per
  app): requests by route, method and status, a latency histogram per route, errors, and the
  predictions per class (classification) or per value bucket (regression), with the model version;
  the records each model scored (answering or in shadow), shadow disagreements, the aliases served
  and the reloads of models/aliases.json.
  One uvicorn worker holds one set of counters (with several workers each answers for itself).
- ``Guard``: an ASGI middleware that counts every response and, when ``serving.auth.enabled``,
  refuses with 401 a request without the key or with a wrong one (constant-time comparison);
  ``/health`` and ``/ready`` stay open for probes. The key is never logged.
- ``JsonFormatter`` / ``log_config()``: the service's own events (and uvicorn's) as one JSON
  object per line on stderr.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as METRICS_CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..common.config import ConfigError
from .request_log import _finite_only

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: endpoints that answer without a key (liveness and readiness probes)
OPEN_PATHS = frozenset({"/health", "/ready"})
#: the routes metrics are labelled with; any other path is counted as "other" (bounded labels)
ROUTES = frozenset(
    {"/predict", "/feedback", "/health", "/ready", "/metadata", "/metrics", "/reload", "/docs"}
    | {"/openapi.json", "/docs/oauth2-redirect", "/redoc"}
)
DEFAULT_KEY_ENV = "SERVING_API_KEY"
EVENTS = logging.getLogger(__package__ or "serving")
#: latency buckets in seconds: sub-millisecond to a few seconds
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def event(name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event of the service (``fields`` become keys of the JSON line)."""
    EVENTS.log(level, name, extra={"fields": fields})


class JsonFormatter(logging.Formatter):
    """One strict JSON object per record: timestamp, level, logger, event/message, fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        try:
            return json.dumps(line, default=str, allow_nan=False)
        except ValueError:  # a NaN/Infinity field: null, as in the request log (strict JSON)
            return json.dumps(_finite_only(line), default=str, allow_nan=False)


def log_config(level: str = "info") -> dict[str, Any]:
    """``logging.config.dictConfig`` for uvicorn and the service: JSON lines on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    logger = {"handlers": ["json"], "level": level.upper(), "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": logger,
            "uvicorn.error": {**logger, "handlers": []} | {"propagate": True},
            "uvicorn.access": logger,
            EVENTS.name: logger,
        },
    }


@dataclass(frozen=True)
class Access:
    """serving.auth and serving.cors_origins from conf/, checked; ``key`` is the secret itself."""

    key: str | None
    key_env: str
    cors_origins: tuple[str, ...]

    @property
    def enabled(self) -> bool:
        return self.key is not None


def access_settings(serving: dict[str, Any], environ: MutableMapping[str, str] | None = None
                    ) -> Access:  # fmt: skip
    """Read serving.auth / serving.cors_origins; auth on without its key is a ConfigError."""
    environ = os.environ if environ is None else environ
    auth = serving.get("auth") or {}
    if not isinstance(auth, dict):
        raise ConfigError(
            f"conf: serving.auth = {auth!r} must be a mapping "
            f"(enabled: true|false, key_env: {DEFAULT_KEY_ENV})"
        )
    enabled = auth.get("enabled", False)
    if not isinstance(enabled, bool):
        raise ConfigError(f"conf: serving.auth.enabled = {enabled!r} must be true or false")
    key_env = auth.get("key_env", DEFAULT_KEY_ENV)
    if not isinstance(key_env, str) or not key_env.strip():
        raise ConfigError(
            f"conf: serving.auth.key_env = {key_env!r} must name an environment variable "
            f"(e.g. {DEFAULT_KEY_ENV})"
        )
    origins = serving.get("cors_origins") or []
    if not isinstance(origins, list) or not all(isinstance(o, str) and o for o in origins):
        raise ConfigError(
            f"conf: serving.cors_origins = {origins!r} must be a list of origins such as "
            "'https://app.example.org' (empty: no CORS)"
        )
    key: str | None = None
    if enabled:
        key = environ.get(key_env, "")
        if not key.strip():
            raise ConfigError(
                f"conf: serving.auth.enabled is true but the environment variable {key_env} "
                f"(serving.auth.key_env) is not set or empty; export {key_env}=<secret> "
                "(from your secret store) or set serving.auth.enabled: false"
            )
    return Access(key=key, key_env=key_env, cors_origins=tuple(origins))


def _quantile_buckets(values: Iterable[float]) -> tuple[float, ...]:
    ordered = sorted(v for v in values if isinstance(v, (int, float)))
    if len(ordered) < 10:
        return ()
    cuts = {round(float(ordered[int(len(ordered) * q / 10)]), 6) for q in range(1, 10)}
    return tuple(sorted(cuts))


class Metrics:
    """The service's Prometheus series (a registry of its own, so apps never share counters)."""

    def __init__(
        self,
        model_version: str,
        task: str,
        reference_predictions: Iterable[float] = (),
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.model_version = model_version
        self.task = task
        self.requests = Counter(
            "serving_http_requests",
            "HTTP requests answered, by route, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "serving_http_request_duration_seconds",
            "time from the request's arrival to its response's start, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.errors = Counter(
            "serving_http_errors",
            "responses with a 4xx or 5xx status, by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.feedback = Counter(
            "serving_feedback",
            "POST /feedback items accepted, by kind (label or problem)",
            ["kind"],
            registry=self.registry,
        )
        self.info = Gauge(
            "serving_model_info",
            "the models this process serves (value 1)",
            ["model_version", "task"],
            registry=self.registry,
        )
        self.info.labels(model_version, task).set(1)
        self.aliases = Gauge(
            "serving_model_alias",
            "the version each alias (champion, challenger) points to in this process (value 1)",
            ["alias", "model_version"],
            registry=self.registry,
        )
        self.aliases.labels("champion", model_version).set(1)
        self.scored = Counter(
            "serving_scored_records",
            "records scored, by model version, alias and role (answer: returned to the client; "
            "shadow: scored beside the champion and only logged)",
            ["model_version", "alias", "role"],
            registry=self.registry,
        )
        self.disagreements = Counter(
            "serving_shadow_disagreements",
            "shadow records whose challenger prediction differs from the champion's answer "
            "(classification: another class; regression: more than 10% of the answer apart)",
            ["model_version"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "serving_reloads",
            "checks of models/aliases.json that changed the models served (reloaded) or were "
            "refused (the models in service stayed)",
            ["outcome"],
            registry=self.registry,
        )
        if task == "classification":
            self.classes = Counter(
                "serving_predictions",
                "records scored, by model version and predicted class",
                ["model_version", "class"],
                registry=self.registry,
            )
        else:
            buckets = _quantile_buckets(reference_predictions) or Histogram.DEFAULT_BUCKETS
            self.values = Histogram(
                "serving_prediction_value",
                "predicted values (buckets: deciles of the training reference's predictions)",
                ["model_version"],
                buckets=buckets,
                registry=self.registry,
            )

    def predicted(self, predictions: Iterable[Any], model_version: str | None = None) -> None:
        """Count answered predictions of ``model_version`` (default: the first champion's)."""
        version = model_version or self.model_version
        if self.task == "classification":
            for value in predictions:
                self.classes.labels(version, str(value)).inc()
        else:
            histogram = self.values.labels(version)
            for value in predictions:
                histogram.observe(float(value))

    def served(self, model_version: str, alias: str, role: str, records: int) -> None:
        """``records`` scored by ``model_version`` (``alias``) as the answer or in shadow."""
        if records:
            self.scored.labels(model_version, alias, role).inc(records)

    def shadowed(self, model_version: str, answers: Iterable[Any], shadows: Iterable[Any]) -> None:
        """Count the shadow predictions of ``model_version`` that disagree with the answers."""
        differ = 0
        for answer, shadow in zip(answers, shadows, strict=True):
            if self.task == "classification":
                differ += str(answer) != str(shadow)
            elif isinstance(answer, (int, float)) and isinstance(shadow, (int, float)):
                differ += abs(float(shadow) - float(answer)) > 0.1 * max(abs(float(answer)), 1e-9)
        if differ:
            self.disagreements.labels(model_version).inc(differ)

    def lineup(self, versions: dict[str, str | None]) -> None:
        """The aliases now served (after a reload): the info and alias gauges follow them."""
        self.info.clear()
        self.aliases.clear()
        for alias, version in versions.items():
            if version is not None:
                self.info.labels(version, self.task).set(1)
                self.aliases.labels(alias, version).set(1)

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if status >= 400:
            self.errors.labels(route, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def presented_key(scope: Scope) -> str | None:
    """The key a request carries: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    authorization = _header(scope, b"authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = _header(scope, b"x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


class Guard:
    """ASGI middleware: counts every HTTP response in ``metrics`` and enforces ``access``."""

    def __init__(self, app: ASGIApp, access: Access, metrics: Metrics | None) -> None:
        self.app = app
        self.access = access
        self.metrics = metrics
        self._key = access.key.encode("utf-8") if access.key is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = str(scope.get("path", ""))
        route = path if path in ROUTES else "other"
        status = 500
        answered: float | None = None

        async def counted(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = int(message["status"])
                answered = time.perf_counter()
            await send(message)

        try:
            refusal = self._refusal(scope, path)
            if refusal is not None:
                await self._unauthorized(counted, refusal)
            else:
                await self.app(scope, receive, counted)
        finally:
            if self.metrics is not None:  # latency: until the response starts
                seconds = (answered or time.perf_counter()) - started
                self.metrics.answered(route, str(scope.get("method", "")), status, seconds)

    def _refusal(self, scope: Scope, path: str) -> str | None:
        """Why the request is refused (None: let it through)."""
        if self._key is None or path in OPEN_PATHS or scope.get("method") == "OPTIONS":
            return None
        given = presented_key(scope)
        if given is None:
            reason = "missing"
        elif hmac.compare_digest(given.encode("utf-8"), self._key):
            return None
        else:
            reason = "wrong"
        client = scope.get("client")
        event(
            "auth_refused",
            logging.WARNING,
            path=path,
            reason=reason,
            client=client[0] if client else None,
        )
        return reason

    async def _unauthorized(self, send: Send, reason: str) -> None:
        detail = (
            "this endpoint needs the API key: send `Authorization: Bearer <key>` or "
            "`X-API-Key: <key>` (serving.auth; the key is in the service's "
            f"{self.access.key_env} environment variable)"
            if reason == "missing"
            else "the API key is wrong (serving.auth)"
        )
        body = json.dumps({"detail": detail}).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="serving"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


__all__ = [
    "METRICS_CONTENT_TYPE",
    "Access",
    "Guard",
    "JsonFormatter",
    "Metrics",
    "access_settings",
    "event",
    "log_config",
]
