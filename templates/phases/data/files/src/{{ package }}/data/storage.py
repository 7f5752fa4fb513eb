"""Files of the data lake: atomic writes, bronze partitions and their manifests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

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

    Yields ``{target: temporary path}``; write each temporary file, and on a clean exit every
    one is renamed over its target (``os.replace`` is atomic on one filesystem).
    """
    temps = {t: t.with_name(f".{t.name}.tmp-{os.getpid()}") for t in targets}
    for target in temps:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield temps
    except BaseException:
        for temp in temps.values():
            temp.unlink(missing_ok=True)
        raise
    for target, temp in temps.items():
        if not temp.exists():
            raise DataError(f"internal error: {target.name} was staged but never written")
    for target, temp in temps.items():
        os.replace(temp, target)


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """Silver and gold files: zstd at a low level (hashes do not compress; speed matters)."""
    frame.write_parquet(path, compression="zstd", compression_level=1, statistics=True)


def write_json(payload: Any, path: Path) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
