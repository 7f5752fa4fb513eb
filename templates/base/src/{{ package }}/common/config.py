"""Configuration: conf/base.yaml deep-merged with conf/<env>.yaml (env from MLOPS_ENV)."""

from __future__ import annotations

import os
from copy import deepcopy
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import yaml

ENV_VAR = "MLOPS_ENV"
ROOT_VAR = "MLOPS_PROJECT_ROOT"
DEFAULT_ENV = "dev"


class ConfigError(RuntimeError):
    """The configuration is missing or invalid; the message says which file and key."""


def project_root(start: Path | None = None) -> Path:
    """The folder holding conf/base.yaml: MLOPS_PROJECT_ROOT, else the nearest parent of cwd."""
    if os.environ.get(ROOT_VAR):
        return Path(os.environ[ROOT_VAR]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "conf" / "base.yaml").is_file():
            return folder
    raise ConfigError(
        f"conf/base.yaml not found in {here} or its parents; run from the project folder "
        f"or set {ROOT_VAR}"
    )


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = deepcopy(value)
    return out


def _read(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: must be a mapping")
    return loaded


@lru_cache(maxsize=8)
def _load(root: str, env: str) -> dict[str, Any]:
    conf = Path(root) / "conf"
    config = _read(conf / "base.yaml")
    env_file = conf / f"{env}.yaml"
    if env_file.is_file():
        config = deep_merge(config, _read(env_file))
    config["environment"] = env
    config["root"] = root
    return config


def load_config(env: str | None = None, root: Path | None = None) -> dict[str, Any]:
    """The effective configuration (a fresh copy: callers may modify it)."""
    env = env or os.environ.get(ENV_VAR, DEFAULT_ENV)
    return deepcopy(_load(str(root or project_root()), env))


def _env_keys(root: str, env: str) -> frozenset[str]:
    """The dotted keys conf/<env>.yaml sets (every level: ``data``, ``data.source``, ...); read
    afresh (only error messages ask), so it always matches the file."""
    env_file = Path(root) / "conf" / f"{env}.yaml"
    if not env_file.is_file():
        return frozenset()
    keys: set[str] = set()

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, value in node.items():
            dotted = f"{prefix}{key}"
            keys.add(dotted)
            if isinstance(value, dict):
                walk(value, dotted + ".")

    walk(_read(env_file), "")
    return frozenset(keys)


def origin(config: dict[str, Any], key: str) -> str:
    """The file a configuration value comes from, for messages: ``conf/<env>.yaml`` when that
    file sets the dotted ``key`` (``data.id_column``), else ``conf/base.yaml``."""
    env = str(config.get("environment", DEFAULT_ENV))
    root = config.get("root")
    if root and key in _env_keys(str(root), env):
        return f"conf/{env}.yaml"
    return "conf/base.yaml"


def resolve(config: dict[str, Any], key: str, default: str | None = None) -> Path:
    """An entry of `paths:` as an absolute path (relative paths are taken from the project root).

    A storage URL (``s3://bucket/bronze``, ``gs://...``, ``abfss://container@account.dfs...``,
    ``file:///...``) is returned as a ``upath.UPath``: the pathlib interface over fsspec, so the
    data pipeline reads and writes the cloud lake with the same code (the cloud's fsspec package,
    s3fs, gcsfs or adlfs, must be installed: the project's ``cloud`` extra).
    """
    value = str(config["paths"].get(key, default) if default else config["paths"][key])
    if "://" in value:
        try:
            from upath import UPath
        except ImportError:  # pragma: no cover - a dependency of the project
            raise ConfigError(
                f"paths.{key} is a storage URL ({value}) but universal-pathlib is not installed; "
                "run `make setup`"
            ) from None
        # UPath offers the pathlib methods the pipeline uses (/, name, glob, open, ...)
        return cast(Path, UPath(value))
    path = Path(value)
    return path if path.is_absolute() else Path(config["root"]) / path
