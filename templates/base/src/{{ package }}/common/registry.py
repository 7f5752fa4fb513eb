"""The local model registry: every blessed model's folder, the champion/challenger aliases, and
the log of every move. Standard library only, so serving and monitoring import it without
scikit-learn (or MLflow).

Layout under ``paths.models`` (``models/``)::

    versions/<version>/   every blessed model (model.onnx, metadata.json, reference.parquet, ...),
                          kept until someone deletes it by hand
    aliases.json          {"champion": "<version>" | null, "challenger": "<version>" | null},
                          replaced atomically (readers never see half a file)
    registry.jsonl        one JSON object a line per event: bless, promote, rollback, move,
                          migrate; each with who, when (UTC), why, the alias changes and the
                          aliases after it

``champion`` is the model that answers; ``challenger`` is the one under test (shadow, canary or
A/B serving) and may be null. Moves are serialised by an advisory lock on ``models/.registry.lock``
(where the platform has ``fcntl``).

A project generated before the registry kept its model in ``models/blessed/`` (and the replaced
ones in ``models/archive/<version>/``); :func:`aliases` refuses that layout with
:class:`LegacyLayoutError` naming the command that migrates it (``python -m <package>.ml migrate``,
which moves the folders into ``versions/`` and makes the blessed model the champion).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ALIASES = ("champion", "challenger")
VERSIONS_DIR = "versions"
ALIASES_FILE = "aliases.json"
HISTORY_FILE = "registry.jsonl"
LOCK_FILE = ".registry.lock"
METADATA_FILE = "metadata.json"
LEGACY_BLESSED = "blessed"
LEGACY_ARCHIVE = "archive"
EVENTS = ("bless", "promote", "rollback", "move", "migrate")

_PACKAGE = __name__.partition(".")[0]
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RegistryError(RuntimeError):
    """A registry problem; the message names the file or alias and says how to fix it."""


class LegacyLayoutError(RegistryError):
    """``models/`` still has the layout from before the registry (``models/blessed/``)."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def versions_root(models_dir: Path) -> Path:
    return Path(models_dir) / VERSIONS_DIR


def check_version(version: str) -> str:
    """A version is one safe path segment (``20261203T101500Z-1a2b3c4d``)."""
    if not isinstance(version, str) or not _VERSION.match(version) or version in {".", ".."}:
        raise RegistryError(
            f"{version!r} is not a model version (letters, digits, '.', '_', '-'; "
            f"e.g. 20261203T101500Z-1a2b3c4d); `python -m {_PACKAGE}.ml list` lists them"
        )
    return version


def version_path(models_dir: Path, version: str) -> Path:
    """The folder of ``version`` (whether or not it exists)."""
    return versions_root(models_dir) / check_version(version)


def versions(models_dir: Path) -> list[str]:
    """The versions kept in ``models/versions/`` (folders holding a metadata.json), oldest first
    (version names start with their UTC training time)."""
    root = versions_root(models_dir)
    if not root.is_dir():
        return []
    return sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / METADATA_FILE).is_file()
    )  # fmt: skip


def is_legacy(models_dir: Path) -> bool:
    """True when ``models/`` has a ``blessed/`` model but no ``aliases.json`` yet."""
    models_dir = Path(models_dir)
    return (models_dir / LEGACY_BLESSED / METADATA_FILE).is_file() and not (
        models_dir / ALIASES_FILE
    ).is_file()


def _legacy_error(models_dir: Path) -> LegacyLayoutError:
    return LegacyLayoutError(
        f"{Path(models_dir) / LEGACY_BLESSED}/ is the model layout from before the model registry; "
        f"run `python -m {_PACKAGE}.ml migrate` (or `make pipeline`, which migrates it) to move it "
        f"to {Path(models_dir) / VERSIONS_DIR}/<version>/ and make it the champion"
    )


def aliases(models_dir: Path) -> dict[str, str | None]:
    """``{"champion": version | None, "challenger": version | None}`` from ``aliases.json``
    (both None when no model was blessed yet)."""
    path = Path(models_dir) / ALIASES_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if is_legacy(models_dir):
            raise _legacy_error(models_dir) from None
        return dict.fromkeys(ALIASES)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(
            f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); restore it from the "
            f"last 'aliases' of {Path(models_dir) / HISTORY_FILE}"
        ) from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: expected a JSON object with keys {', '.join(ALIASES)}")
    out: dict[str, str | None] = dict.fromkeys(ALIASES)
    for key, value in data.items():
        if key not in ALIASES:
            raise RegistryError(
                f"{path}: unknown alias {key!r}; the aliases are {', '.join(ALIASES)}"
            )
        if value is not None and not isinstance(value, str):
            raise RegistryError(f"{path}: {key} must be a version string or null, not {value!r}")
        out[key] = value
    return out


def resolve(models_dir: Path, alias_or_version: str) -> str:
    """The version an alias points to (or the version itself), checked to exist on disk."""
    models_dir = Path(models_dir)
    if alias_or_version in ALIASES:
        version = aliases(models_dir)[alias_or_version]
        if version is None:
            if alias_or_version == "champion":
                raise RegistryError(
                    f"{models_dir / ALIASES_FILE}: no champion model yet; run `make pipeline` "
                    "to train and bless one"
                )
            raise RegistryError(
                f"{models_dir / ALIASES_FILE}: no challenger model; bless a new candidate with "
                f"serving.strategy shadow, canary or ab, or `python -m {_PACKAGE}.ml promote "
                "--to challenger <version>`"
            )
        if not (version_path(models_dir, version) / METADATA_FILE).is_file():
            raise RegistryError(
                f"{models_dir / ALIASES_FILE}: {alias_or_version} points to {version}, but "
                f"{version_path(models_dir, version)}/ is missing; restore the folder or move the "
                f"alias (`python -m {_PACKAGE}.ml rollback`)"
            )
        return version
    folder = version_path(models_dir, alias_or_version)
    if not (folder / METADATA_FILE).is_file():
        known = versions(models_dir)
        listed = ", ".join(known[-5:]) if known else "none"
        raise RegistryError(
            f"model version {alias_or_version!r} not found: {folder}/ has no {METADATA_FILE} "
            f"(kept versions: {listed}; `python -m {_PACKAGE}.ml list` lists them all)"
        )
    return alias_or_version


def model_dir(models_dir: Path, alias_or_version: str) -> Path:
    """The folder of the model an alias (champion, challenger) or a version names."""
    return version_path(models_dir, resolve(models_dir, alias_or_version))


def history(models_dir: Path) -> list[dict[str, Any]]:
    """Every event of ``registry.jsonl``, oldest first (lines from before the registry, which
    only listed blessed versions, come back as ``bless`` events)."""
    path = Path(models_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RegistryError(
                f"{path}:{number}:{exc.colno}: not valid JSON ({exc.msg}); fix or delete that line"
            ) from None
        if not isinstance(entry, dict):
            raise RegistryError(f"{path}:{number}: expected a JSON object")
        if "event" not in entry:  # a line of the list the gate kept before the registry
            entry = {"event": "bless", "when": entry.get("blessed_at"), **entry}
        out.append(entry)
    return out


def who(explicit: str | None = None) -> str:
    """Who makes a move: ``explicit`` (--who), else $MLOPS_WHO, else git's
    user.name <user.email>, else $GITHUB_ACTOR (CI), else the login name."""
    for given in (explicit, os.environ.get("MLOPS_WHO")):
        if given and given.strip():
            return given.strip()
    try:
        found = []
        for key in ("user.name", "user.email"):
            result = subprocess.run(
                ["git", "config", key], capture_output=True, text=True, timeout=5, check=False
            )
            found.append(result.stdout.strip())
        if found[0]:
            return f"{found[0]} <{found[1]}>" if found[1] else found[0]
    except (OSError, subprocess.SubprocessError):
        pass
    if os.environ.get("GITHUB_ACTOR"):
        return f"{os.environ['GITHUB_ACTOR']} (GitHub Actions)"
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@contextlib.contextmanager
def locked(models_dir: Path) -> Iterator[None]:
    """Hold the registry's advisory lock (no-op where fcntl is missing)."""
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with (models_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _append(models_dir: Path, entry: Mapping[str, Any]) -> None:
    with (Path(models_dir) / HISTORY_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(dict(entry), sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _update_unlocked(
    models_dir: Path,
    changes: Mapping[str, str | None],
    *,
    who: str,
    why: str,
    event: str,
    extra: Mapping[str, Any] | None,
) -> dict[str, Any]:
    if event not in EVENTS:
        raise RegistryError(f"unknown registry event {event!r}; use one of {', '.join(EVENTS)}")
    if not why or not why.strip():
        raise RegistryError("a registry move needs a reason (why); pass --why '...'")
    before = aliases(models_dir)
    after = dict(before)
    for alias, version in changes.items():
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; the aliases are {', '.join(ALIASES)}")
        if version is None:
            if alias == "champion":
                raise RegistryError(
                    "the champion cannot be cleared: roll back to a kept version instead "
                    f"(`python -m {_PACKAGE}.ml rollback --to <version>`)"
                )
        else:
            resolve(models_dir, check_version(version))
        after[alias] = version
    if after["challenger"] is not None and after["challenger"] == after["champion"]:
        after["challenger"] = None  # a model does not challenge itself
    moved = [
        {"alias": alias, "from": before[alias], "to": after[alias]}
        for alias in ALIASES
        if before[alias] != after[alias]
    ]
    if not moved:
        raise RegistryError(f"nothing moves: the aliases already are {after}")
    entry: dict[str, Any] = {
        "event": event,
        "when": utc_now(),
        "who": who,
        "why": why.strip(),
        "changes": moved,
        "aliases": after,
        **(extra or {}),
    }
    path = Path(models_dir) / ALIASES_FILE
    _write_atomic(path, json.dumps(after, indent=2) + "\n")
    _append(models_dir, entry)
    return entry


def update(
    models_dir: Path,
    changes: Mapping[str, str | None],
    *,
    who: str,
    why: str,
    event: str = "move",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Move several aliases in one recorded event (e.g. promote: champion <- challenger,
    challenger <- None). Every named version must exist. Returns the recorded entry."""
    with locked(models_dir):
        return _update_unlocked(models_dir, changes, who=who, why=why, event=event, extra=extra)


def move(
    models_dir: Path,
    alias: str,
    version: str | None,
    *,
    who: str,
    why: str,
    event: str = "move",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Point ``alias`` at ``version`` (None clears the challenger), atomically, and record it."""
    return update(models_dir, {alias: version}, who=who, why=why, event=event, extra=extra)


def install(models_dir: Path, staging: Path, version: str) -> Path:
    """Move a fully written ``staging`` folder to ``versions/<version>/`` (refused if that
    version is already kept: versions are immutable)."""
    target = version_path(models_dir, version)
    if target.exists():
        raise RegistryError(
            f"{target}/ already exists: version {version} was blessed before; versions are never "
            "overwritten (train a new candidate)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)
    return target


def migrate(models_dir: Path, *, who: str) -> dict[str, Any] | None:
    """Move the pre-registry layout (``blessed/``, ``archive/<version>/``) into ``versions/`` and
    make the blessed model the champion. None when there is nothing to migrate."""
    models_dir = Path(models_dir)
    with locked(models_dir):
        if not is_legacy(models_dir):
            return None
        blessed = models_dir / LEGACY_BLESSED
        try:
            meta = json.loads((blessed / METADATA_FILE).read_text(encoding="utf-8"))
            champion = check_version(str(meta["model_version"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise RegistryError(
                f"{blessed / METADATA_FILE}: cannot read model_version ({exc}); restore it or "
                "delete the folder and run `make pipeline`"
            ) from None
        moved: list[str] = []
        archive = models_dir / LEGACY_ARCHIVE
        if archive.is_dir():
            for folder in sorted(archive.iterdir()):
                kept = folder.is_dir() and (folder / METADATA_FILE).is_file()
                if kept and not version_path(models_dir, folder.name).exists():
                    install(models_dir, folder, folder.name)
                    moved.append(folder.name)
            with contextlib.suppress(OSError):
                archive.rmdir()  # only when empty
        if version_path(models_dir, champion).exists():
            raise RegistryError(
                f"{blessed}/ holds {champion}, but {version_path(models_dir, champion)}/ exists "
                "too; remove one of them and run the migration again"
            )
        install(models_dir, blessed, champion)
        moved.append(champion)
        return _update_unlocked(
            models_dir,
            {"champion": champion},
            who=who,
            why="migrated models/blessed and models/archive to the model registry",
            event="migrate",
            extra={"versions": moved},
        )
