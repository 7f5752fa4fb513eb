"""Validated specs and the phase catalogue, kept across runs so the hot commands skip pydantic
and PyYAML when nothing changed.

Validating a spec is cheap; *importing* pydantic and building the spec's models is not (about a
third of a `mlops new`, and most of a `mlops lint`). So the outcome of a successful validation is
stored, and a later run with the same input gets it back without importing
:mod:`mlops_template.spec` at all:

* **The key is exact.** An entry is found under the sha256 of (a) the input: the spec file's
  bytes (read once, and those same bytes are what is validated), ``--name``, every ``--set`` as
  typed, ``--phases``; and (b) the code that decides the outcome: every ``.py`` file of this
  package, every phase manifest of the installed templates and where they live, the Python
  version, and the installed pydantic, pydantic-core and PyYAML versions. Any change to any of
  them is a new key. The entry repeats both keys and is used only when they match.
* **Only successes are stored.** A spec with any issue is validated again on every run, so every
  message comes from pydantic and the rules, located as always.
* **What is stored is what validation gave.** The spec's attribute values, model by model (every
  field and every property of the models, whatever fields other code adds), its JSON dump, the
  ``mlops.yaml`` text written into a project and its hash. A spec holding a value that cannot be
  stored exactly (anything but None, bool, int, float, str, list, dict and the models) is not
  stored at all.
* **Bounded and safe to read.** Entries are JSON (never pickle), at most :data:`MAX_ENTRY_BYTES`
  each and :data:`MAX_ENTRIES` in the folder; a missing, unreadable, oversized, malformed or
  mismatching entry is ignored (the spec is validated as if there were no cache). A cache folder
  that cannot be written only costs time. ``MLOPS_NO_CACHE=1`` turns these caches off (and the
  compiled-template caches of :mod:`mlops_template.codecache`).

:class:`SpecView` is what a hit returns: a read-only object with the same attributes as the
validated :class:`~mlops_template.spec.Spec` (``spec.ml.metric``, ``spec.package``,
``spec.model_dump(mode="json")``), which is all that rendering, the report and lint read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlops_template import cachestore

if TYPE_CHECKING:  # pragma: no cover
    from mlops_template.spec import Spec


class SpecView:
    """A validated spec, rebuilt from a cache entry: the same attribute values as the
    :class:`~mlops_template.spec.Spec` it was stored from (nested models are views too, mappings
    stay dicts, lists stay lists), read-only."""

    __slots__ = ("_extra", "_values")

    def __init__(self, values: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_extra", extra or {})

    def __getattr__(self, name: str) -> Any:
        values: dict[str, Any] = object.__getattribute__(self, "_values")
        try:
            return values[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__} has no attribute {name!r} (a cached spec holds the "
                "spec's fields and properties only)"
            ) from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a cached spec is read-only (setting {name!r})")

    def __repr__(self) -> str:
        return f"SpecView({object.__getattribute__(self, '_values')!r})"

    def model_dump(self, *, mode: str = "json") -> dict[str, Any]:
        """What ``Spec.model_dump(mode="json")`` gave, as a fresh copy."""
        if mode != "json":
            raise ValueError("a cached spec keeps its JSON dump only (mode='json')")
        dumped: dict[str, Any] = json.loads(object.__getattribute__(self, "_extra")["dump"])
        return dumped

    def extra(self, name: str) -> Any:
        return object.__getattribute__(self, "_extra")[name]


def _templates() -> Path:
    from mlops_template.phases import templates_dir

    return templates_dir()


def _encode(value: Any) -> Any:
    """A JSON value that :func:`_decode` turns back into ``value`` (models: their attributes)."""
    from pydantic import BaseModel

    if value is None or type(value) in (bool, str):
        return value
    if type(value) in (int, float):
        if isinstance(value, float) and value != value:  # NaN: JSON cannot hold it exactly
            raise cachestore.Uncacheable("NaN")
        return ["f", value] if isinstance(value, float) else value
    if type(value) is list:
        return ["l", [_encode(v) for v in value]]
    if type(value) is dict:
        if not all(type(k) is str for k in value):
            raise cachestore.Uncacheable("a mapping with non-string keys")
        return ["d", {k: _encode(v) for k, v in value.items()}]
    if isinstance(value, BaseModel):
        return ["m", _model_values(value)]
    raise cachestore.Uncacheable(f"a {type(value).__name__} value")


def _model_values(model: Any) -> dict[str, Any]:
    """Every field, computed field and property (plain or cached) of the model's own classes."""
    import functools

    from pydantic import BaseModel

    cls = type(model)
    names = [*cls.model_fields, *cls.model_computed_fields]
    for klass in cls.__mro__:
        if klass is BaseModel or not issubclass(klass, BaseModel):
            break
        names += [
            name
            for name, attr in vars(klass).items()
            if isinstance(attr, property | functools.cached_property) and not name.startswith("__")
        ]
    return {name: _encode(getattr(model, name)) for name in dict.fromkeys(names)}


def _decode(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    tag, body = value
    if tag == "f":
        return float(body)
    if tag == "l":
        return [_decode(v) for v in body]
    if tag == "d":
        return {k: _decode(v) for k, v in body.items()}
    if tag == "m":
        return SpecView({k: _decode(v) for k, v in body.items()})
    raise ValueError(f"unknown tag {tag!r}")


def encode_spec(spec: Spec) -> dict[str, Any]:
    """What an entry stores of a validated spec (raises :class:`Uncacheable`)."""
    from mlops_template.spec import LOWER_IS_BETTER, dump_spec, spec_hash

    return {
        "values": _model_values(spec),
        "dump": json.dumps(spec.model_dump(mode="json")),
        "yaml": dump_spec(spec),
        "hash": spec_hash(spec),
        "lower_is_better": spec.ml.metric in LOWER_IS_BETTER,
    }


def decode_spec(entry: Mapping[str, Any]) -> Spec | None:
    """The view of a stored spec, or None when the entry is not one this code wrote."""
    try:
        values = {k: _decode(v) for k, v in entry["values"].items()}
        extra = {name: entry[name] for name in ("dump", "yaml", "hash", "lower_is_better")}
        if not (
            isinstance(extra["dump"], str)
            and isinstance(extra["yaml"], str)
            and isinstance(extra["hash"], str)
            and isinstance(extra["lower_is_better"], bool)
        ):
            return None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    # a duck-typed stand-in: it has every attribute the spec had
    return cast("Spec", SpecView(values, extra))


def input_key(
    raw: bytes | None,
    name: str | None,
    sets: Sequence[str],
    phases: Sequence[str] | None,
    *,
    purpose: str = "load_spec",
) -> str:
    """The input part of a key. ``purpose`` names the validation: `mlops lint` reads
    ``spec_version`` itself before validating the rest, so its outcomes are kept apart."""
    import hashlib

    return json.dumps(
        {
            "purpose": purpose,
            "file": hashlib.sha256(raw).hexdigest() if raw is not None else None,
            "name": name,
            "sets": list(sets),
            "phases": list(phases) if phases is not None else None,
        },
        sort_keys=True,
    )


def cached_spec(key: str) -> Spec | None:
    entry = cachestore.read_entry("spec", key, _templates())
    return decode_spec(entry) if entry is not None else None


def store_spec(key: str, spec: Spec) -> None:
    if not cachestore.enabled() or isinstance(spec, SpecView):
        return
    try:
        payload = encode_spec(spec)
    except cachestore.Uncacheable:
        return
    cachestore.write_entry("spec", key, payload, _templates())


def read_spec_bytes(path: Path) -> bytes | None:
    """The spec file's bytes when they are under the size limit; None otherwise (the caller
    then validates as usual, which reports why the file cannot be used)."""
    from mlops_template.limits import InputTooLarge, read_capped

    try:
        return read_capped(path, "spec file")
    except (InputTooLarge, OSError):
        return None


def load_spec(
    path: Path | None,
    *,
    name: str | None = None,
    sets: Sequence[str] = (),
    phases: list[str] | None = None,
) -> Spec:
    """:func:`mlops_template.spec.load_spec`, answered from the cache when the same input
    validated before with the same code."""
    raw = read_spec_bytes(path) if path is not None else None
    usable = cachestore.enabled() and (path is None or raw is not None)
    key = input_key(raw, name, sets, phases) if usable else ""
    if usable:
        hit = cached_spec(key)
        if hit is not None:
            return hit
    from mlops_template.spec import load_spec as validate

    spec = validate(path, name=name, sets=list(sets), phases=phases, raw=raw)
    if usable:
        store_spec(key, spec)
    return spec


# helpers for code that takes either a Spec or a SpecView


def spec_yaml(spec: Spec) -> str:
    """The ``mlops.yaml`` text of ``spec`` (:func:`mlops_template.spec.dump_spec`)."""
    if isinstance(spec, SpecView):
        return cast(str, spec.extra("yaml"))
    from mlops_template.spec import dump_spec

    return dump_spec(spec)


def spec_digest(spec: Spec) -> str:
    """:func:`mlops_template.spec.spec_hash` of ``spec``."""
    if isinstance(spec, SpecView):
        return cast(str, spec.extra("hash"))
    from mlops_template.spec import spec_hash

    return spec_hash(spec)


def lower_is_better(spec: Spec) -> bool:
    """Whether the spec's acceptance metric is an error metric (rmse, mae)."""
    if isinstance(spec, SpecView):
        return bool(spec.extra("lower_is_better"))
    from mlops_template.spec import LOWER_IS_BETTER

    return spec.ml.metric in LOWER_IS_BETTER
