"""Files of the data lake: atomic writes, bronze partitions and their manifests."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from ..common.config import resolve
from .errors import DataError

PARTITION_GLOB = "ingest_date=*/part-*.parquet"


def bronze_partitions(bronze: Path) -> list[Path]:
    """Every bronze partition file, oldest first (names sort by ingestion time)."""
    return sorted(bronze.glob(PARTITION_GLOB), key=lambda p: (p.parent.name, p.name))


def manifest_path(partition: Path) -> Path:
    return partition.with_name(partition.name.removesuffix(".parquet") + ".manifest.json")


def read_manifest(partition: Path) -> dict[str, Any]:
    path = manifest_path(partition)
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(
            f"{path}: manifest missing for bronze partition {partition.name}; bronze is "
            "append-only: restore the manifest or move the partition out of data/bronze"
        ) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    return loaded


def relative(path: Path, root: Path) -> str:
    """``path`` relative to the project root when it is inside it (for messages and lineage)."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


@contextmanager
def staged(targets: Iterable[Path]) -> Iterator[dict[Path, Path]]:
    """Stage several outputs and publish them together: all of them, or none on an error.

    Yields ``{target: path to write}``. Here each is a temporary file, renamed over its target on
    a clean exit (atomic on one filesystem). In the lake (storage URLs) each is the target itself:
    an object appears whole when its upload completes, so the outputs appear one after the other,
    and nothing needs a copy or the right to delete (the bronze layer is append-only).
    """
    targets = list(targets)
    temps = {t: t.with_name(f".{t.name}.tmp-{os.getpid()}") if is_local(t) else t for t in targets}
    for target in temps:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps
    except BaseException:
        for target, temp in temps.items():
            if temp is not target:
                temp.unlink(missing_ok=True)
        raise
    for target, temp in temps.items():
        if not temp.exists():
            raise DataError(f"internal error: {target.name} was staged but never written")
    for target, temp in temps.items():
        if temp is not target:
            move(temp, target)


def is_local(path: Path) -> bool:
    """True for a path of this machine, False for a storage URL (see ``common.config.resolve``):
    a ``upath.UPath`` has a ``protocol``, a pathlib path has not."""
    return isinstance(path, Path) and not hasattr(path, "protocol")


def on_this_machine(path: Path) -> Path | None:
    """``path`` as a pathlib path when it is on this machine (a ``file://`` URL too), else None."""
    if is_local(path):
        return path
    if getattr(path, "protocol", None) in ("file", "local"):
        return Path(path.path)  # type: ignore[attr-defined]
    return None


def move(source: Path, target: Path) -> None:
    """Move a file over ``target``: an atomic rename here, fsspec's move in the lake."""
    if is_local(source):
        source.replace(target)
    else:
        source.rename(target)


def lineage_file(cfg: dict[str, Any]) -> Path:
    """The lineage log: ``paths.lineage`` (default ``data/lineage.jsonl``)."""
    return resolve(cfg, "lineage", default="data/lineage.jsonl")


def parquet_rows(path: Path) -> int:
    """The row count of a parquet file, from its footer."""
    import pyarrow.parquet as pq

    with path.open("rb") as handle:
        return int(pq.ParquetFile(handle).metadata.num_rows)


def remove_tree(path: Path) -> None:
    """Remove a folder and its content, if it exists (local or in the lake)."""
    if is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.fs.rm(path.path, recursive=True)  # type: ignore[attr-defined]


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Silver and gold files: zstd at a low level (hashes do not compress; speed matters)."""
    if is_local(path):
        frame.write_parquet(path, compression="zstd", compression_level=1, statistics=True)
        return
    with path.open("wb") as handle:
        frame.write_parquet(handle, compression="zstd", compression_level=1, statistics=True)


def write_json(payload: Any, path: Path) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _delta(cfg: dict[str, Any]) -> Any:
    """``delta.py`` with ``data.versioning: delta`` (the only projects that ship it), else None."""
    if cfg["data"].get("versioning") != "delta":
        return None
    import importlib

    return importlib.import_module(f"{__package__}.delta")


def check_versioning(cfg: dict[str, Any], spark: Any, source: Path) -> None:
    """With ``data.versioning: delta``, fail before anything is written when no writer can
    commit the Delta tables next to ``source`` (see :func:`commit_version`)."""
    delta = _delta(cfg)
    if delta is not None:
        delta.check_writer(source.parent / "_delta", spark)


def commit_version(cfg: dict[str, Any], spark: Any, layer: str, source: Path, name: str) -> None:
    """With ``data.versioning: delta``, commit ``source`` (just written) as the next version of
    the Delta table ``<layer folder>/_delta/<name>`` (``delta.py``); otherwise nothing."""
    delta = _delta(cfg)
    if delta is not None:
        table = source.parent / "_delta" / name
        delta.commit(layer, source, table, spark, Path(cfg["root"]), lineage_file(cfg))
