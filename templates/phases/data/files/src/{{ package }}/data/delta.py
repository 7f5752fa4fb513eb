"""Delta tables of silver and gold (``data.versioning: delta``): every run is a table version.

``commit`` makes the Delta table of a layer (``data/<layer>/_delta/<name>``) hold exactly the
parquet data the step just wrote, as a new table version, and records that version in
``data/lineage.jsonl`` (steps ``silver-delta`` and ``gold-delta``). ``read_version`` reads an old
version back (time travel) to reproduce a run.

Two writers make the same table:

- **Spark** (delta-spark), when the session has Delta: ``spark.sql.extensions`` names
  ``io.delta.sql.DeltaSparkSessionExtension`` (Databricks, Synapse and EMR sessions ship it), or a
  trial write finds the ``delta`` data source. The version comes from ``DESCRIBE HISTORY``.
- **delta-rs** (the ``deltalake`` package, no JVM and no jars) otherwise: the parquet is streamed
  in Arrow batches into data files (a folder of parts is never loaded whole), rows in source
  order, and committed as one version. The version comes from ``DeltaTable.version()``.

Old versions stay readable until their files are vacuumed (``VACUUM`` / ``DeltaTable.vacuum``)
or their log entries expire (``delta.logRetentionDuration``, 30 days by default).

``python -m <package>.data delta-history [silver|gold]`` prints the versions of the tables with
the lineage entry (time, code version, writer) of each.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from ..common.lineage import record
from .errors import DataError
from .storage import lineage_file, on_this_machine, relative

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: the SQL extension a Delta-enabled Spark session lists in ``spark.sql.extensions``
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
#: what Spark says when the ``delta`` data source is not on the classpath
MISSING_SOURCE = ("DATA_SOURCE_NOT_FOUND", "Failed to find the data source: delta")
#: rows per Arrow batch read from the source, and at most per data file of the delta-rs writer
BATCH_ROWS = 131_072
FILE_ROWS = 4_000_000
LAYERS = ("silver", "gold")

Writer = Literal["spark", "delta-rs"]


def spark_has_delta(spark: Any) -> bool:
    """True when the session is configured with Delta's SQL extension."""
    try:
        extensions = spark.conf.get("spark.sql.extensions", None)
    except Exception:  # a closed or remote session that cannot answer: assume no Delta
        return False
    names = {name.strip() for name in str(extensions or "").split(",")}
    return DELTA_EXTENSION in names


def choose_writer(spark: Any) -> Literal["spark", "try-spark", "delta-rs"]:
    """``spark`` when the session has Delta's extension, ``try-spark`` when only a trial write
    can tell (Delta's jars work without the extension), ``delta-rs`` without a session."""
    if spark is None:
        return "delta-rs"
    return "spark" if spark_has_delta(spark) else "try-spark"


def check_writer(folder: Path, spark: Any) -> None:
    """Raise :class:`DataError` unless a writer can commit the tables of ``folder``: delta-rs on
    this machine, in the lake only a Spark session with Delta (checked before a step writes)."""
    if on_this_machine(folder) is not None or (spark is not None and spark_has_delta(spark)):
        return
    raise DataError(
        f"{folder}: data.versioning is delta, but in the lake only a Spark session with "
        "Delta can commit tables (Databricks, Synapse and EMR sessions have it; elsewhere add "
        "delta-spark's jars and spark.sql.extensions: io.delta.sql.DeltaSparkSessionExtension to "
        "spark.config in conf/<env>.yaml), and this one has none"
    )


def parquet_files(source: Path) -> list[Path]:
    """The parquet data at ``source``: the file itself, or the parts of a folder (files whose
    names start with ``_`` or ``.`` are Spark's and Hadoop's markers, not data)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise DataError(f"{source}: no parquet file or folder to commit to Delta")
    parts = sorted(
        p
        for p in source.rglob("*.parquet")
        if not any(s.startswith(("_", ".")) for s in p.relative_to(source).parts)
    )
    if not parts:
        raise DataError(f"{source}: the folder holds no parquet parts to commit to Delta")
    return parts


def commit(
    layer: str,
    source: str | Path,
    table: str | Path,
    spark: SparkSession | None,
    root: Path,
    lineage: Path,
) -> int | None:
    """Overwrite the Delta table ``table`` with the parquet data at ``source`` (a file or a
    folder of parts) as a new table version, log it in ``lineage`` and return the version."""
    source = Path(source) if isinstance(source, str) else source
    table = Path(table) if isinstance(table, str) else table
    inputs = parquet_files(source)
    choice = choose_writer(spark)
    writer: Writer = "delta-rs"
    version: int | None = None
    if spark is not None and choice != "delta-rs":
        try:
            version = _write_spark(spark, source, table)
            writer = "spark"
        except Exception as exc:
            if choice == "spark" or not any(m in str(exc) for m in MISSING_SOURCE):
                raise
            log.info("the Spark session has no Delta data source: delta-rs writes %s", table)
    if writer == "delta-rs":
        check_writer(table.parent, None)  # delta-rs writes on this machine only
        source, table = on_this_machine(source) or source, on_this_machine(table) or table
        version = _write_delta_rs(source, table)
    log.info(
        "%s: %s committed to Delta table %s as version %s (writer: %s)",
        layer,
        relative(source, root),
        relative(table, root),
        version,
        writer,
    )
    record(
        lineage,
        f"{layer}-delta",
        inputs,
        [],
        root,
        {
            "layer": layer,
            "delta_table": relative(table, root),
            "version": version,
            "writer": writer,
        },
    )
    return version


def _write_spark(spark: SparkSession, source: Path, table: Path) -> int | None:
    frame = spark.read.parquet(str(source))
    frame.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(str(table))
    from delta.tables import DeltaTable as SparkDeltaTable  # delta-spark: no SQL extension needed

    row = SparkDeltaTable.forPath(spark, str(table)).history(1).select("version").first()
    return None if row is None else int(row["version"])


def _write_delta_rs(source: Path, table: Path) -> int:
    """Stream ``source`` into new data files of ``table`` and commit them as one version.

    ``write_deltalake`` would shuffle the Arrow batches across its writer threads (the rows of a
    version would come back in another order), so the files are written here in source order
    and committed with delta-rs's transaction API: the table is created (version 0) or
    overwritten, its schema replaced by the source's.
    """
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import DeltaTable, Schema
    from deltalake.transaction import create_table_with_add_actions

    # hive partitioning: key=value folders become columns, as spark.read.parquet makes them
    partitioning = "hive" if source.is_dir() else None
    dataset = ds.dataset(str(source), format="parquet", partitioning=partitioning)
    schema = Schema.from_arrow(dataset.schema)
    arrow_schema = pa.schema(schema.to_arrow())  # the Arrow types the Delta schema reads back
    table.mkdir(parents=True, exist_ok=True)
    batches = dataset.to_batches(batch_size=BATCH_ROWS, use_threads=True)
    actions = _write_files(batches, arrow_schema, table)
    if DeltaTable.is_deltatable(str(table)):
        DeltaTable(str(table)).create_write_transaction(actions, mode="overwrite", schema=schema)
    else:
        create_table_with_add_actions(str(table), schema, actions, mode="overwrite")
    return int(DeltaTable(str(table)).version())


def _write_files(batches: Iterator[Any], schema: Any, table: Path) -> list[Any]:
    """Parquet data files of ``FILE_ROWS`` rows at most, in batch order, as Delta add actions."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    actions: list[AddAction] = []
    pending = next(batches, None)
    while pending is not None or not actions:  # an empty source still gets one (empty) file
        name = f"part-{len(actions):05d}-{uuid.uuid4()}-c000.zstd.parquet"
        rows, nulls = 0, dict.fromkeys(schema.names, 0)
        with pq.ParquetWriter(table / name, schema, compression="zstd") as writer:
            while pending is not None and (rows == 0 or rows + pending.num_rows <= FILE_ROWS):
                chunk = pa.Table.from_batches([pending]).cast(schema)
                writer.write_table(chunk)
                rows += chunk.num_rows
                for column, array in zip(schema.names, chunk.columns, strict=True):
                    nulls[column] += array.null_count
                pending = next(batches, None)
        stat = (table / name).stat()
        stats = {"numRecords": rows, "nullCount": nulls}
        actions.append(
            AddAction(name, stat.st_size, {}, int(stat.st_mtime * 1000), True, json.dumps(stats))
        )
    return actions


def versions(table: str | Path) -> list[int]:
    """The versions of the Delta table that can still be read, oldest first."""
    from deltalake import DeltaTable

    path = str(table)  # a local path or a storage URL, as delta-rs takes them
    if not DeltaTable.is_deltatable(path):
        raise DataError(f"{path} is not a Delta table (no _delta_log); run the pipeline first")
    return sorted(int(entry["version"]) for entry in DeltaTable(path).history())


def read_version(table: str | Path, version: int) -> pl.DataFrame:
    """The Delta table ``table`` as it was at ``version`` (time travel)."""
    known = versions(table)
    if version not in known:
        raise DataError(
            f"{table} has no version {version}; its versions are {known[0]}..{known[-1]}"
            if known
            else f"{table} has no versions"
        )
    return pl.read_delta(str(table), version=version)


def tables(layer_dir: Path) -> list[Path]:
    """The Delta tables of a layer folder (``<layer>/_delta/<name>``)."""
    folder = layer_dir / "_delta"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if (p / "_delta_log").is_dir())


def history(table: Path, root: Path, lineage: Path) -> list[dict[str, Any]]:
    """Every version of ``table`` (newest first) with its commit time and lineage entry."""
    from deltalake import DeltaTable

    name = relative(table, root)
    logged: dict[int, dict[str, Any]] = {}
    if lineage.is_file():
        for line in lineage.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash: the other entries still count
            if not isinstance(entry, dict) or entry.get("delta_table") != name:
                continue
            if isinstance(entry.get("version"), int):
                logged[entry["version"]] = entry
    out = []
    for commit_info in DeltaTable(str(table)).history():
        version = int(commit_info["version"])
        stamp = commit_info.get("timestamp")
        committed = (
            datetime.fromtimestamp(stamp / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            if isinstance(stamp, int)
            else None
        )
        entry = logged.get(version, {})
        out.append(
            {
                "table": name,
                "version": version,
                "committed": committed,
                "operation": commit_info.get("operation"),
                "lineage_at": entry.get("at"),
                "code_version": entry.get("code_version"),
                "writer": entry.get("writer"),
            }
        )
    return sorted(out, key=lambda row: -row["version"])


def history_text(cfg: dict[str, Any], layer: str | None = None) -> str:
    """``delta-history``: the versions of the layers' Delta tables with their lineage times."""
    from ..common.config import resolve

    root = Path(cfg["root"])
    lineage = lineage_file(cfg)
    lines = []
    for name in [layer] if layer else LAYERS:
        found = tables(resolve(cfg, name))
        if not found:
            lines.append(f"{name}: no Delta table yet (run the pipeline)")
        for table in found:
            lines.append(f"{name}: {relative(table, root)}")
            for row in history(table, root, lineage):
                lines.append(
                    f"  version {row['version']:>3}  committed {row['committed'] or '-'}  "
                    f"lineage {row['lineage_at'] or '-'}  code {row['code_version'] or '-'}  "
                    f"writer {row['writer'] or '-'}"
                )
    return "\n".join(lines) + "\n"
