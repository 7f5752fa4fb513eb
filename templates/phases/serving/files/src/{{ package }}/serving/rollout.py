"""Champion and challenger: which model answers a request (``serving.strategy``, ``rollout``).

The models come from the registry (``common/registry.py``): ``models/aliases.json`` names the
``champion`` and the ``challenger`` (or null), each a folder ``models/versions/<version>/``.

- ``single``: the champion answers every request (a challenger is not loaded).
- ``shadow``: the champion answers; the challenger scores the same records too and the request
  log holds both (``shadow``: its version and prediction). Clients only ever see champion answers.
- ``canary`` / ``ab``: a record whose key falls in the first ``challenger_share`` of the hash space
  is answered by the challenger. The key is the request field ``serving.rollout.key`` (e.g. the id
  column) hashed with SHA-256 together with the challenger's version, so the same customer gets the
  same model for the whole experiment and the next challenger gets a fresh sample. A record without
  the key (or ``key: null``) is routed by its request id (random: no stickiness).

Without a challenger every strategy serves the champion alone. The environment variables
``SERVING_STRATEGY`` and ``SERVING_CHALLENGER_SHARE`` override conf/ (the deploy pipeline sets them
per environment).

Hot reload: :meth:`Models.refresh` looks at ``aliases.json`` (inode, mtime, size); when it changed
it loads the models it names (reusing the sessions of versions already loaded) and swaps the whole
:class:`Lineup` at once. A request in flight finishes with the lineup it started with, so a reload
drops no request and never answers with half of each. A champion that cannot be loaded keeps the
current lineup (event ``reload_refused``); a challenger that cannot be loaded (missing folder, a
different task, a feature the champion's request schema does not carry) is left out with its reason
(``challenger_error`` in ``GET /metadata``) and the champion answers alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import threading
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..common.config import ConfigError
from ..common.registry import ALIASES_FILE, RegistryError, aliases, model_dir
from .model import ModelError, ModelMetadata, OnnxModel, read_metadata
from .schemas import Checked, RequestSchema

STRATEGIES = ("single", "shadow", "canary", "ab")
STRATEGY_ENV = "SERVING_STRATEGY"
SHARE_ENV = "SERVING_CHALLENGER_SHARE"
DEFAULT_SHARE = {"single": 0.0, "shadow": 1.0, "canary": 0.1, "ab": 0.5}
DEFAULT_RELOAD_SECONDS = 5.0

SchemaBuilder = Callable[[ModelMetadata], RequestSchema]
ModelLoader = Callable[[Path, ModelMetadata], OnnxModel]


@dataclass(frozen=True)
class Rollout:
    """serving.strategy and serving.rollout from conf/ (and the environment), checked."""

    strategy: str = "single"
    challenger_share: float = 0.0
    key: str | None = None
    reload_seconds: float = DEFAULT_RELOAD_SECONDS

    @property
    def routes(self) -> bool:
        """canary / ab: requests are split between the two models."""
        return self.strategy in ("canary", "ab")


def _share(value: Any, where: str) -> float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise ConfigError(
            f"{where} = {value!r} must be a number from 0 to 1 (the challenger's share of the "
            "traffic, e.g. 0.1 for a 10% canary)"
        )
    return float(value)


def rollout_settings(
    serving: dict[str, Any], environ: MutableMapping[str, str] | None = None
) -> Rollout:
    """Read serving.strategy / serving.rollout; a bad value is a ConfigError naming its key."""
    environ = os.environ if environ is None else environ
    strategy: Any = serving.get("strategy", "single")
    where = "conf: serving.strategy"
    if environ.get(STRATEGY_ENV, "").strip():
        strategy, where = environ[STRATEGY_ENV].strip(), f"environment {STRATEGY_ENV}"
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"{where} = {strategy!r} is not one of {', '.join(STRATEGIES)} (single: the champion "
            "answers; shadow: the challenger is scored and logged beside it; canary/ab: a share "
            "of the traffic is answered by the challenger)"
        )
    rollout = serving.get("rollout") or {}
    if not isinstance(rollout, dict):
        raise ConfigError(
            f"conf: serving.rollout = {rollout!r} must be a mapping (challenger_share, key, "
            "reload_seconds)"
        )
    unknown = sorted(set(rollout) - {"challenger_share", "key", "reload_seconds"})
    if unknown:
        raise ConfigError(
            f"conf: serving.rollout.{unknown[0]} is not a setting; the settings are "
            "challenger_share, key and reload_seconds"
        )
    if environ.get(SHARE_ENV, "").strip():
        share = _share(environ[SHARE_ENV].strip(), f"environment {SHARE_ENV}")
    elif "challenger_share" in rollout:
        share = _share(rollout["challenger_share"], "conf: serving.rollout.challenger_share")
    else:
        share = DEFAULT_SHARE[strategy]
    key = rollout.get("key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ConfigError(
            f"conf: serving.rollout.key = {key!r} must name a request field (e.g. the id column) "
            "or be null (route by request id)"
        )
    seconds = rollout.get("reload_seconds", DEFAULT_RELOAD_SECONDS)
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not math.isfinite(seconds)
        or seconds < 0
    ):
        raise ConfigError(
            f"conf: serving.rollout.reload_seconds = {seconds!r} must be a number of seconds >= 0 "
            "(0: reload only on POST /reload)"
        )
    return Rollout(strategy, share, key, float(seconds))


def bucket(salt: str, key: Any) -> float:
    """The stable position of ``key`` in [0, 1): SHA-256 of ``salt`` and the key's text."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class Served:
    """One loaded model: its version, folder, metadata, request schema and ONNX session.
    ``columns_from``: the champion's schema when this challenger's features are computed exactly
    as the champion's (same feature code, entity table, inputs, fills), so the features the
    champion's schema computed while parsing are scored as they are instead of computed again."""

    version: str
    path: Path
    metadata: ModelMetadata
    schema: RequestSchema
    model: OnnxModel
    columns_from: RequestSchema | None = None

    def score(self, records: Sequence[BaseModel]) -> tuple[list[dict[str, Any]], list[Checked]]:
        """Predictions for ``records`` (parsed by the champion's schema) and what was imputed or
        out of range, by this model's own fills and fences."""
        schema = self.columns_from or self.schema
        outputs = self.model.predict_columns(schema.columns(records))
        return outputs, [self.schema.check(r) for r in records]


#: metadata.json keys that decide how a model's features are computed from a request
FEATURE_KEYS = ("inputs", "derived", "entity_features", "id_column")


def same_features(champion: ModelMetadata, challenger: ModelMetadata) -> bool:
    """True when ``challenger``'s features come out of a request exactly as ``champion``'s: the
    same packaged feature code and entity table (sha256), inputs and computed features, and each
    of its features a champion feature of the same kind, fill and origin."""

    def digest(meta: ModelMetadata, key: str) -> Any:
        entry = meta.raw.get(key)
        return entry.get("sha256") if isinstance(entry, dict) else entry

    for key in ("feature_code", "entity_table"):
        if digest(champion, key) != digest(challenger, key):
            return False
    if any(champion.raw.get(k) != challenger.raw.get(k) for k in FEATURE_KEYS):
        return False
    known = {f.name: f for f in champion.features}
    return all(
        f.name in known
        and (known[f.name].kind, known[f.name].fill, known[f.name].source, known[f.name].part)
        == (f.kind, f.fill, f.source, f.part)
        for f in challenger.features
    )


@dataclass(frozen=True)
class Lineup:
    """The models serving right now; replaced as a whole on reload (never mutated)."""

    strategy: str
    champion: Served
    challenger: Served | None = None
    share: float = 0.0
    key: str | None = None
    challenger_error: str | None = None
    stamp: tuple[int, int, int] | None = None

    @property
    def schema(self) -> RequestSchema:
        """The request schema: the champion's (the service's published contract)."""
        return self.champion.schema

    @property
    def shadow(self) -> Served | None:
        return self.challenger if self.strategy == "shadow" else None

    @property
    def routes(self) -> bool:
        """canary / ab with a challenger: records are split between the two models."""
        return self.challenger is not None and self.strategy in ("canary", "ab")

    def answering(self, keys: Sequence[Any]) -> list[Served]:
        """The model answering each record, given its routing key (canary / ab)."""
        challenger = self.challenger
        if challenger is None or self.strategy not in ("canary", "ab") or self.share <= 0:
            return [self.champion] * len(keys)
        salt = challenger.version
        return [challenger if bucket(salt, k) < self.share else self.champion for k in keys]

    def versions(self) -> dict[str, str | None]:
        return {
            "champion": self.champion.version,
            "challenger": self.challenger.version if self.challenger else None,
        }

    def view(self) -> dict[str, Any]:
        """What ``GET /metadata`` and ``POST /reload`` say about the lineup."""
        return {
            "strategy": self.strategy,
            **self.versions(),
            "challenger_share": self.share if self.strategy in ("canary", "ab") else None,
            "key": self.key if self.strategy in ("canary", "ab") else None,
            **({"challenger_error": self.challenger_error} if self.challenger_error else {}),
        }


class ReloadError(RuntimeError):
    """The new aliases cannot be served; the current lineup stays."""


def _compatible(champion: Served, challenger: Served) -> str | None:
    """Why ``challenger`` cannot score requests parsed by the champion's schema (None: it can)."""
    a, b = champion.metadata, challenger.metadata
    if (a.task, a.target) != (b.task, b.target):
        return (
            f"challenger {challenger.version} is a {b.task} model of {b.target!r}, the champion "
            f"{champion.version} a {a.task} model of {a.target!r}"
        )
    fields = champion.schema.record.model_fields
    kinds = {f.name: f.kind for f in a.features}
    missing = [
        f.name for f in b.features if f.name not in fields or kinds.get(f.name, f.kind) != f.kind
    ]
    if missing:
        return (
            f"challenger {challenger.version} needs {', '.join(missing)}, which the champion "
            f"{champion.version}'s request schema does not carry (or carries as another kind); "
            "a challenger must take the champion's inputs"
        )
    return None


@dataclass
class Models:
    """Loads the lineup from the registry (``models_dir``) or one fixed folder (``fixed``)."""

    rollout: Rollout
    build_schema: SchemaBuilder
    models_dir: Path | None = None
    fixed: Path | None = None
    load: ModelLoader = OnnxModel
    _cache: dict[str, Served] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def aliases_file(self) -> Path | None:
        return None if self.models_dir is None else self.models_dir / ALIASES_FILE

    def _stamp(self) -> tuple[int, int, int] | None:
        path = self.aliases_file
        if path is None:
            return None
        try:
            info = path.stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _served(self, version: str, folder: Path) -> Served:
        cached = self._cache.get(version)
        if cached is not None and cached.path == folder:
            return cached
        metadata = read_metadata(folder)
        served = Served(
            version, folder, metadata, self.build_schema(metadata), self.load(folder, metadata)
        )
        return served

    def metadata(self) -> ModelMetadata:
        """The champion's metadata, read without loading a session (to build the app)."""
        if self.fixed is not None:
            return read_metadata(self.fixed)
        assert self.models_dir is not None
        try:
            return read_metadata(model_dir(self.models_dir, "champion"))
        except RegistryError as exc:
            raise ModelError(str(exc)) from None

    def _build(self, stamp: tuple[int, int, int] | None) -> Lineup:
        rollout = self.rollout
        if self.fixed is not None:
            version = read_metadata(self.fixed).model_version
            return Lineup("single", self._served(version, self.fixed))
        assert self.models_dir is not None
        try:
            names = aliases(self.models_dir)
            champion_dir = model_dir(self.models_dir, "champion")
        except RegistryError as exc:
            raise ModelError(str(exc)) from None
        champion = self._served(champion_dir.name, champion_dir)
        challenger: Served | None = None
        problem: str | None = None
        if rollout.strategy != "single" and names.get("challenger") is not None:
            try:
                folder = model_dir(self.models_dir, "challenger")
                challenger = self._served(folder.name, folder)
                problem = _compatible(champion, challenger)
            except (RegistryError, ModelError) as exc:
                problem = str(exc)
            if problem is not None:
                challenger = None
            elif challenger is not None:
                shared = same_features(champion.metadata, challenger.metadata)
                challenger = replace(challenger, columns_from=champion.schema if shared else None)
        lineup = Lineup(
            rollout.strategy,
            champion,
            challenger,
            rollout.challenger_share,
            rollout.key,
            problem,
            stamp,
        )
        self._cache = {
            s.version: replace(s, columns_from=None) for s in (champion, challenger) if s
        }
        return lineup

    def first(self) -> Lineup:
        """The lineup at start-up; a champion that cannot be loaded is a ModelError."""
        with self._lock:
            return self._build(self._stamp())

    def refresh(self, current: Lineup, force: bool = False) -> Lineup:
        """``current`` when aliases.json has not changed (and not ``force``), else the new lineup;
        ReloadError (the current lineup stays) when the new champion cannot be served."""
        with self._lock:
            stamp = self._stamp()
            if self.fixed is not None or (stamp == current.stamp and not force):
                return current
            try:
                lineup = self._build(stamp)
            except ModelError as exc:
                raise ReloadError(str(exc)) from None
            except Exception as exc:  # any failure to load keeps the models that work
                raise ReloadError(f"{type(exc).__name__}: {exc}") from None
            return lineup


def routing_keys(
    lineup: Lineup, records: Sequence[BaseModel], request_ids: Sequence[str]
) -> list[Any]:
    """The value each record is routed by: its ``key`` field, else its request id."""
    key = lineup.key
    out: list[Any] = []
    for record, request_id in zip(records, request_ids, strict=True):
        value = getattr(record, key, None) if key else None
        out.append(request_id if value is None else value)
    return out


__all__ = [
    "DEFAULT_SHARE",
    "SHARE_ENV",
    "STRATEGIES",
    "STRATEGY_ENV",
    "Lineup",
    "Models",
    "ReloadError",
    "Rollout",
    "Served",
    "bucket",
    "rollout_settings",
    "routing_keys",
]
