"""Entries kept across runs (validated specs, the phase catalogue) under exact keys.

The storage under :mod:`mlops_template.speccache` and the phase catalogue cache: where entries
live, the key of the code that decides them, reading and writing them safely. Standard library
only, so the lowest layers can use it. What the key covers and why it is exact is described in
:mod:`mlops_template.speccache`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

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

    return private_folder(f"specs-{__version__}")


def private_folder(name: str) -> Path | None:
    """``~/.cache/mlops-template/<name>`` (``$XDG_CACHE_HOME``), created for this user alone;
    None when it cannot be written, or when it or ``mlops-template`` is a symlink or belongs to
    another user (their entries would decide specs unvalidated, their compiled code would run).
    A folder of ours that others may write is made private (as Jinja does with its own)."""
    import stat

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    parent = Path(base) / "mlops-template"
    path = parent / name
    try:
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        for item in (parent, path):
            info = os.lstat(item)
            if not stat.S_ISDIR(info.st_mode):
                return None  # a symlink (or a file) put in its place
            if hasattr(os, "getuid"):
                if info.st_uid != os.getuid():
                    return None
                if info.st_mode & 0o077:
                    os.chmod(item, 0o700)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


# ------------------------------------------------------------------------------------------
# the code key: everything besides the input that decides what validation gives
# ------------------------------------------------------------------------------------------

_code_keys: dict[Path, str | None] = {}


def code_key(templates: Path) -> str | None:
    """sha256 over this package's code, the phase manifests under ``templates`` (the installed
    templates), Python and the libraries' versions; None when a library's version cannot be
    found (then nothing is cached)."""
    if templates not in _code_keys:
        _code_keys[templates] = _compute_code_key(templates)
    return _code_keys[templates]


def _compute_code_key(templates: Path) -> str | None:
    import hashlib

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


def read_entry(kind: str, key: str, templates: Path) -> dict[str, Any] | None:
    """The entry stored under ``key`` with this code, or None (missing, damaged, foreign)."""
    if not enabled():
        return None
    code = code_key(templates)
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


def write_entry(kind: str, key: str, payload: dict[str, Any], templates: Path) -> None:
    """Store ``payload`` under ``key``; any failure only costs the next run time."""
    if not enabled():
        return
    code = code_key(templates)
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


class Uncacheable(Exception):
    """A value cannot be stored exactly."""


def encode_plain(value: Any, module: str) -> Any:
    """Dataclasses of ``module``, tuples, lists, dicts, paths, scalars as JSON values that
    :func:`decode_plain` turns back into them (raises :class:`Uncacheable` for anything else)."""
    import dataclasses

    if value is None or type(value) in (bool, str, int):
        return value
    if type(value) is float:
        return ["f", value]
    if type(value) is tuple:
        return ["t", [encode_plain(v, module) for v in value]]
    if type(value) is list:
        return ["l", [encode_plain(v, module) for v in value]]
    if type(value) is dict and all(type(k) is str for k in value):
        return ["d", {k: encode_plain(v, module) for k, v in value.items()}]
    if isinstance(value, Path):
        return ["p", str(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if cls.__module__ != module or "." in cls.__qualname__:
            raise Uncacheable(cls.__qualname__)
        fields = {}
        for item in dataclasses.fields(value):
            if not item.init:
                raise Uncacheable(f"{cls.__qualname__}.{item.name}")
            fields[item.name] = encode_plain(getattr(value, item.name), module)
        return ["c", [cls.__qualname__, fields]]
    raise Uncacheable(type(value).__name__)


def is_dataclass(cls: type) -> bool:
    return "__dataclass_fields__" in vars(cls)


def decode_plain(value: Any, classes: Mapping[str, Any]) -> Any:
    """The value :func:`encode_plain` encoded; dataclasses looked up by name in ``classes``."""
    if not isinstance(value, list):
        return value
    tag, body = value
    if tag == "f":
        return float(body)
    if tag == "t":
        return tuple(decode_plain(v, classes) for v in body)
    if tag == "l":
        return [decode_plain(v, classes) for v in body]
    if tag == "d":
        return {k: decode_plain(v, classes) for k, v in body.items()}
    if tag == "p":
        return Path(body)
    if tag == "c":
        cls = classes[body[0]]
        if not (isinstance(cls, type) and is_dataclass(cls)):
            raise ValueError(f"{body[0]!r} is not a dataclass of mlops_template.phases")
        return cls(**{k: decode_plain(v, classes) for k, v in body[1].items()})
    raise ValueError(f"unknown tag {tag!r}")


def cached_catalogue(templates: Path, classes: Mapping[str, Any]) -> dict[str, Any] | None:
    """The phase catalogue of ``templates`` as :func:`store_catalogue` stored it, or None;
    ``classes``: the namespace of :mod:`mlops_template.phases`."""
    entry = read_entry("catalogue", "installed", templates)
    if entry is None:
        return None
    try:
        decoded = decode_plain(entry["phases"], classes)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None
    phase = classes["Phase"]
    if not isinstance(decoded, dict) or not all(
        isinstance(p, phase) and p.name == n for n, p in decoded.items()
    ):
        return None
    return decoded


def store_catalogue(templates: Path, catalogue: Mapping[str, Any], module: str) -> None:
    if not enabled():
        return
    try:
        encoded = encode_plain(dict(catalogue), module)
    except Uncacheable:
        return
    write_entry("catalogue", "installed", {"phases": encoded}, templates)
