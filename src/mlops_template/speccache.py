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
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # pragma: no cover
    from mlops_template.phases import Phase
    from mlops_template.spec import Spec

#: format of the entries; bump when their layout changes
FORMAT = 1
#: largest entry read or written (a spec file is at most 1 MiB: limits.MAX_INPUT_BYTES)
MAX_ENTRY_BYTES = 4 * 1024 * 1024
#: entries kept in the folder; past this, new outcomes are not stored
MAX_ENTRIES = 512
#: the libraries whose versions are part of the key (their dist-info folder names)
LIBRARIES = ("pydantic", "pydantic_core", "pyyaml")


def enabled() -> bool:
    return os.environ.get("MLOPS_NO_CACHE", "") in ("", "0")


def folder() -> Path | None:
    """``~/.cache/mlops-template/specs-<tool version>`` (created), or None when not writable."""
    from mlops_template import __version__

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "mlops-template" / f"specs-{__version__}"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


# ------------------------------------------------------------------------------------------
# the code key: everything besides the input that decides what validation gives
# ------------------------------------------------------------------------------------------

_code_key: list[str | None] = []


def code_key() -> str | None:
    """sha256 over this package's code, the installed phase manifests, Python and the
    libraries' versions; None when a library's version cannot be found (then nothing is
    cached)."""
    if not _code_key:
        _code_key.append(_compute_code_key())
    return _code_key[0]


def _compute_code_key() -> str | None:
    import hashlib

    from mlops_template.phases import templates_dir

    digest = hashlib.sha256()

    def add(label: str, data: bytes) -> None:
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    add("python", f"{sys.version}|{sys.implementation.cache_tag}".encode())
    package = Path(__file__).resolve().parent
    for dirpath, dirnames, filenames in os.walk(package):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if d != "__pycache__" and not (here == package and d == "templates")
        )
        for name in sorted(filenames):
            if name.endswith(".py"):
                path = here / name
                add(path.relative_to(package).as_posix(), path.read_bytes())
    try:
        templates = templates_dir()
    except Exception:
        return None
    add("templates", str(templates).encode())
    phases = templates / "phases"
    for child in sorted(phases.iterdir()) if phases.is_dir() else ():
        manifest = child / "phase.yaml"
        if manifest.is_file():
            add(f"phase:{child.name}", manifest.read_bytes())
    versions = _library_versions()
    if versions is None:
        return None
    add("libraries", "|".join(versions).encode())
    return digest.hexdigest()


def _library_versions() -> list[str] | None:
    found = [library_version(library) for library in LIBRARIES]
    return None if None in found else cast("list[str]", found)


_versions: dict[str, str | None] = {}


def library_version(library: str) -> str | None:
    """The dist-info folder name of an installed library (``pyyaml-6.0.2.dist-info``), found
    without importing it; None when there is none, or more than one next to it."""
    if library not in _versions:
        _versions[library] = _find_version(library)
    return _versions[library]


def _find_version(library: str) -> str | None:
    import re
    from importlib.machinery import PathFinder

    module = "yaml" if library == "pyyaml" else library
    spec = PathFinder.find_spec(module)
    if spec is None or not spec.origin:
        return None
    site = Path(spec.origin).parent.parent
    pattern = re.compile(rf"{re.escape(library)}-[^-]+\.dist-info", re.IGNORECASE)
    try:
        names = sorted(n for n in os.listdir(site) if pattern.fullmatch(n))
    except OSError:
        return None
    if len(names) != 1:
        return None  # none, or two installs side by side: cannot tell which one is used
    return names[0].lower()


# ------------------------------------------------------------------------------------------
# entries
# ------------------------------------------------------------------------------------------


def _entry_path(kind: str, key: str, code: str) -> Path | None:
    import hashlib

    base = folder()
    if base is None:
        return None
    name = hashlib.sha256(f"{FORMAT}\0{kind}\0{code}\0{key}".encode()).hexdigest()
    return base / f"{kind}-{name[:40]}.json"


def _read(kind: str, key: str) -> dict[str, Any] | None:
    if not enabled():
        return None
    code = code_key()
    path = _entry_path(kind, key, code) if code else None
    if path is None:
        return None
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_ENTRY_BYTES:
        return None
    try:
        entry = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if (
        not isinstance(entry, dict)
        or entry.get("format") != FORMAT
        or entry.get("kind") != kind
        or entry.get("key") != key
        or entry.get("code") != code
    ):
        return None
    return entry


def _write(kind: str, key: str, payload: dict[str, Any]) -> None:
    """Store ``payload`` under ``key``; any failure only costs the next run time."""
    if not enabled():
        return
    code = code_key()
    path = _entry_path(kind, key, code) if code else None
    if path is None:
        return
    import tempfile

    entry = {"format": FORMAT, "kind": kind, "key": key, "code": code, **payload}
    try:
        data = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return
    if len(data) > MAX_ENTRY_BYTES:
        return
    try:
        if not path.exists() and sum(1 for _ in os.scandir(path.parent)) >= MAX_ENTRIES:
            return
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".entry-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)  # a reader sees no entry or a whole one
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass


# ------------------------------------------------------------------------------------------
# the spec
# ------------------------------------------------------------------------------------------


class Uncacheable(Exception):
    """A validated spec holds a value :func:`encode_spec` cannot store exactly."""


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


def _encode(value: Any) -> Any:
    """A JSON value that :func:`_decode` turns back into ``value`` (models: their attributes)."""
    from pydantic import BaseModel

    if value is None or type(value) in (bool, str):
        return value
    if type(value) in (int, float):
        if isinstance(value, float) and value != value:  # NaN: JSON cannot hold it exactly
            raise Uncacheable("NaN")
        return ["f", value] if isinstance(value, float) else value
    if type(value) is list:
        return ["l", [_encode(v) for v in value]]
    if type(value) is dict:
        if not all(type(k) is str for k in value):
            raise Uncacheable("a mapping with non-string keys")
        return ["d", {k: _encode(v) for k, v in value.items()}]
    if isinstance(value, BaseModel):
        return ["m", _model_values(value)]
    raise Uncacheable(f"a {type(value).__name__} value")


def _model_values(model: Any) -> dict[str, Any]:
    from pydantic import BaseModel

    cls = type(model)
    out = {name: _encode(getattr(model, name)) for name in cls.model_fields}
    for klass in cls.__mro__:
        if klass is BaseModel or not issubclass(klass, BaseModel):
            break
        for name, attr in vars(klass).items():
            if isinstance(attr, property) and name not in out and not name.startswith("__"):
                out[name] = _encode(getattr(model, name))
    return out


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
    entry = _read("spec", key)
    return decode_spec(entry) if entry is not None else None


def store_spec(key: str, spec: Spec) -> None:
    if not enabled() or isinstance(spec, SpecView):
        return
    try:
        payload = encode_spec(spec)
    except Uncacheable:
        return
    _write("spec", key, payload)


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
    usable = enabled() and (path is None or raw is not None)
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


# ------------------------------------------------------------------------------------------
# the phase catalogue
# ------------------------------------------------------------------------------------------


def _encode_plain(value: Any) -> Any:
    """Dataclasses of :mod:`mlops_template.phases`, tuples, lists, dicts, paths, scalars."""
    import dataclasses

    if value is None or type(value) in (bool, str, int):
        return value
    if type(value) is float:
        return ["f", value]
    if type(value) is tuple:
        return ["t", [_encode_plain(v) for v in value]]
    if type(value) is list:
        return ["l", [_encode_plain(v) for v in value]]
    if type(value) is dict and all(type(k) is str for k in value):
        return ["d", {k: _encode_plain(v) for k, v in value.items()}]
    if isinstance(value, Path):
        return ["p", str(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if cls.__module__ != "mlops_template.phases" or "." in cls.__qualname__:
            raise Uncacheable(cls.__qualname__)
        fields = {}
        for item in dataclasses.fields(value):
            if not item.init:
                raise Uncacheable(f"{cls.__qualname__}.{item.name}")
            fields[item.name] = _encode_plain(getattr(value, item.name))
        return ["c", [cls.__qualname__, fields]]
    raise Uncacheable(type(value).__name__)


def is_dataclass(cls: type) -> bool:
    return "__dataclass_fields__" in vars(cls)


def _decode_plain(value: Any, classes: Mapping[str, Any]) -> Any:
    if not isinstance(value, list):
        return value
    tag, body = value
    if tag == "f":
        return float(body)
    if tag == "t":
        return tuple(_decode_plain(v, classes) for v in body)
    if tag == "l":
        return [_decode_plain(v, classes) for v in body]
    if tag == "d":
        return {k: _decode_plain(v, classes) for k, v in body.items()}
    if tag == "p":
        return Path(body)
    if tag == "c":
        cls = classes[body[0]]
        if not (isinstance(cls, type) and is_dataclass(cls)):
            raise ValueError(f"{body[0]!r} is not a dataclass of mlops_template.phases")
        return cls(**{k: _decode_plain(v, classes) for k, v in body[1].items()})
    raise ValueError(f"unknown tag {tag!r}")


def cached_catalogue() -> dict[str, Phase] | None:
    """The installed phase catalogue as stored by :func:`store_catalogue`, or None."""
    entry = _read("catalogue", "installed")
    if entry is None:
        return None
    from mlops_template import phases as module

    try:
        decoded = _decode_plain(entry["phases"], vars(module))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    if not isinstance(decoded, dict) or not all(
        isinstance(p, module.Phase) and p.name == n for n, p in decoded.items()
    ):
        return None
    return decoded


def store_catalogue(catalogue: Mapping[str, Phase]) -> None:
    if not enabled():
        return
    try:
        encoded = _encode_plain(dict(catalogue))
    except Uncacheable:
        return
    _write("catalogue", "installed", {"phases": encoded})
