"""Where the ML pipeline reads and writes, errors it raises, and small atomic-write helpers."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..common import registry
from ..common.config import resolve


class MLError(RuntimeError):
    """A usage, configuration or data problem. The message says what is wrong and how to fix it."""


class GateRejected(RuntimeError):
    """The candidate did not pass the acceptance gate (the message is the one-line reason)."""


@dataclass(frozen=True)
class Layout:
    """The files of the ML pipeline, all under the project root."""

    root: Path
    gold: Path
    models: Path
    reports: Path

    @property
    def features(self) -> Path:
        return self.gold / "features.parquet"

    @property
    def contract(self) -> Path:
        return self.gold / "contract.json"

    @property
    def candidate(self) -> Path:
        return self.models / "candidate"

    @property
    def versions(self) -> Path:
        """Every blessed model's folder: ``models/versions/<version>/`` (common/registry.py)."""
        return registry.versions_root(self.models)

    @property
    def registry(self) -> Path:
        return self.models / registry.HISTORY_FILE

    def alias_dir(self, alias: str) -> Path | None:
        """The folder ``alias`` (champion, challenger) points to, or None when it is unset.
        A layout from before the registry, or an alias to a deleted folder, is an MLError."""
        try:
            if registry.aliases(self.models).get(alias) is None:
                return None
            return registry.model_dir(self.models, alias)
        except registry.RegistryError as exc:
            raise MLError(str(exc)) from None

    @property
    def champion(self) -> Path | None:
        """The champion's folder (the model that answers), or None before the first blessing."""
        return self.alias_dir("champion")

    @property
    def blessed(self) -> Path:
        """The champion's folder; ``models/versions/`` itself when there is none yet (so
        ``lay.blessed / "metadata.json"`` is simply missing). Kept for code written before the
        registry: prefer :attr:`champion`."""
        return self.champion or self.versions

    @property
    def model_card(self) -> Path:
        """The card the pipeline writes: an artefact of the run, like the other reports."""
        return self.reports / "model-card.md"

    @property
    def model_card_source(self) -> Path:
        """The team's own sections of the card (intended use, ...): read, never written."""
        return self.root / "docs" / "model-card.md"

    def report(self, name: str) -> Path:
        return self.reports / name


def layout(cfg: dict[str, Any]) -> Layout:
    return Layout(
        root=Path(cfg["root"]),
        gold=resolve(cfg, "gold"),
        models=resolve(cfg, "models"),
        reports=resolve(cfg, "reports"),
    )


_REQUIRED: Any = object()


def ml_setting(cfg: dict[str, Any], dotted: str, default: Any = _REQUIRED) -> Any:
    """``ml_setting(cfg, "search.n_iter")`` -> cfg["ml"]["search"]["n_iter"] (or the default)."""
    node: Any = cfg.get("ml", {})
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _REQUIRED:
                raise MLError(f"conf: missing key ml.{dotted}; add it to conf/base.yaml")
            return default
        node = node[part]
    return node


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON atomically (temporary file + rename): readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(_clean(data), handle, indent=2, sort_keys=False)
            handle.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_json(path: Path, hint: str) -> dict[str, Any]:
    """Read a JSON object; a missing or broken file is an MLError carrying ``hint``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MLError(f"{path} not found; {hint}") from None
    except json.JSONDecodeError as exc:
        raise MLError(f"{path}: not valid JSON ({exc}); {hint}") from None
    if not isinstance(data, dict):
        raise MLError(f"{path}: expected a JSON object; {hint}")
    return data


def replace_dir(staging: Path, target: Path, archive: Path | None = None) -> None:
    """Move a fully written ``staging`` folder into place as ``target``.

    The previous ``target`` is moved to ``archive`` (when given) or deleted, so a crash leaves
    either the old or the new folder, never a mix.
    """
    if target.exists():
        if archive is not None:
            archive.parent.mkdir(parents=True, exist_ok=True)
            if archive.exists():
                shutil.rmtree(archive)
            os.replace(target, archive)
        else:
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            shutil.rmtree(old)
    os.replace(staging, target)


def staging_dir(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    folder.chmod(0o755)
    return folder
