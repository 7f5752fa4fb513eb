"""The Spark engine: the steps of :mod:`.frames` (written once over narwhals) on PySpark.

Rows stay in Spark from bronze to the parquet files: Spark reads and casts bronze, checks the
contract, deduplicates, computes the statistics, imputes, clips, hashes PII, checks silver's and
gold's contracts, builds the gold features and aggregates, and writes silver and gold from its
executors. The driver only receives counts, statistics, the distinct categories, the aggregates
and the rows that break the bronze contract (those get their exact reasons from the same pandera
contract the other engines use, so the quarantine and the report are the same).

What is Spark's own here is what really differs from polars and duckdb:

- casts: text is trimmed then parsed the way polars parses it (a bad value becomes null and is
  reported in ``_cast_errors``); a float becomes an integer only when it is whole;
- exact medians and quartiles with linear interpolation (``percentile``, where narwhals would
  use the approximate one);
- PII: ``sha2(salt || value, 256)`` as lowercase hex, the digest of the polars engine;
- frames kept on the cluster (``persist``), parquet written by the executors, Java regexes.

Runs on Spark 3.5 (the managed runtimes: EMR 7, Dataproc Serverless 2.2, Databricks 14-16) and 4.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import narwhals as nw
import polars as pl

from ..common.spark import get_spark
from .contracts import Contract
from .errors import DataError
from .frames import LINE_BREAK, Engine, quarantine_rows
from .storage import move, parquet_rows, relative, remove_tree

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: contract dtype -> Spark SQL type
SPARK_TYPES = {"Int64": "bigint", "Float64": "double", "String": "string"}
#: text that parses as a number the way polars parses it (Java also takes "12d", "0x1p3", ...)
NUMBER = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)$"
#: the largest magnitude an Int64 holds, as a float bound
INT64_LIMIT = 2.0**63


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.spark: SparkSession = get_spark(self.cfg)
        # row counts of the frames handed out (kept with the frame: an id alone may be reused)
        self._counts: dict[int, tuple[DataFrame, int]] = {}
        self._kept: list[DataFrame] = []
        # the first bronze row number of each partition, per list of partitions (footers are
        # read once, for load and quarantine alike)
        self._offsets: dict[tuple[str, ...], list[int]] = {}

    # -- frames -----------------------------------------------------------------------------

    def height(self, frame: DataFrame) -> int:
        known = self._counts.get(id(frame))
        if known is None or known[0] is not frame:  # frames handed out are kept: counting is cheap
            known = self._counts[id(frame)] = (frame, frame.count())
        return known[1]

    def _keep(self, frame: DataFrame) -> DataFrame:
        """``frame``, computed once and kept (memory, spilling to disk) for the next steps."""
        kept = frame.persist()  # MEMORY_AND_DISK_DESER: rows kept as objects, spilled when short
        self._kept.append(kept)
        return kept

    def release(self) -> None:
        """Drop the frames this engine kept (the end of a step, or its failure)."""
        for frame in self._kept:
            frame.unpersist()
        self._kept.clear()
        self._counts.clear()

    def write_parquet(self, frame: DataFrame, path: Path) -> None:
        """One parquet file at ``path``: the executors write the rows in frame order through one
        task (no row passes through the driver), then the file is moved into place."""
        parts = path.with_name(path.name + ".parts")
        remove_tree(parts)
        try:
            frame.coalesce(1).write.mode("overwrite").option("compression", "zstd").parquet(
                str(parts)
            )
            files = sorted(parts.glob("part-*.parquet"))
            if len(files) != 1:
                raise DataError(f"Spark wrote {len(files)} files for {path.name}, expected 1")
            move(files[0], path)
        finally:
            remove_tree(parts)

    def _numbered(self, parts: list[Path]) -> list[tuple[Path, DataFrame, Column]]:
        """Each bronze partition as read, with the expression of ``_row``: the row's number
        across the partitions in order, as the polars engine counts them."""
        from pyspark.sql import functions as F

        key = tuple(str(p) for p in parts)
        if key not in self._offsets:
            sizes = [parquet_rows(p) for p in parts]
            self._offsets[key] = [sum(sizes[:i]) for i in range(len(parts))]
        return [
            (
                part,
                self.spark.read.parquet(str(part)),
                (F.col("_metadata.row_index") + F.lit(offset)).cast("bigint").alias("_row"),
            )
            for part, offset in zip(parts, self._offsets[key], strict=True)
        ]

    def _rows(self, rows: list[Any]) -> DataFrame:
        """A one-column frame of bronze row numbers, to join against."""
        return self.spark.createDataFrame([(int(r),) for r in rows], "_row bigint")

    # -- silver -----------------------------------------------------------------------------

    def load(self, parts: list[Path], contract: Contract) -> DataFrame:
        from pyspark.sql import functions as F

        scans: list[DataFrame] = []
        for _, raw, row in self._numbered(parts):
            kinds = {f.name: f.dataType.simpleString() for f in raw.schema.fields}
            typed: list[Column] = [row]
            errors: list[Column] = []
            for col in contract.columns:
                # renamed columns (contract.Column.source) take their silver name here, once
                want, raw_col = SPARK_TYPES[col.dtype], F.col(_quoted(col.bronze))
                expr = _cast(raw_col, kinds[col.bronze], want)
                typed.append(expr.alias(col.name))
                if kinds[col.bronze] != want:
                    bad = raw_col.isNotNull() & expr.isNull()
                    errors.append(F.when(bad, F.lit(col.name)))
            joined = F.concat_ws(",", *errors) if errors else F.lit(None).cast("string")
            cast_errors = F.when(joined != "", joined).otherwise(F.lit(None).cast("string"))
            scans.append(raw.select(*typed, cast_errors.alias("_cast_errors")))
        union = scans[0]
        for scan in scans[1:]:
            union = union.unionByName(scan)
        return self._keep(union)

    def remove(self, frame: nw.LazyFrame[Any], rows: pl.Series) -> DataFrame:
        from pyspark.sql import functions as F

        native: DataFrame = frame.to_native()
        if not rows.len():
            return native
        # a broadcast anti-join: a long list of row numbers in the plan is slow to plan
        return native.join(F.broadcast(self._rows(rows.to_list())), on="_row", how="left_anti")

    def quarantine(
        self, parts: list[Path], bad: pl.DataFrame, contract: Contract, salt: str, root: Path
    ) -> pl.DataFrame:
        """The bronze rows of ``bad`` are picked in Spark; only they reach the driver."""
        from pyspark.sql import functions as F

        wanted = self._rows(bad.get_column("_row").unique().to_list())
        scans = [
            raw.select(row, *raw.columns, F.lit(relative(part, root)).alias("_source"))
            for part, raw, row in self._numbered(parts)
        ]
        union = scans[0]
        for scan in scans[1:]:
            union = union.unionByName(scan, allowMissingColumns=True)
        picked = _to_polars(union.join(F.broadcast(wanted), on="_row", how="left_semi"))
        return quarantine_rows(picked.lazy(), bad, contract, salt)

    # -- gold -------------------------------------------------------------------------------

    @property
    def delta_session(self) -> SparkSession:
        return self.spark

    def keep(self, frame: nw.LazyFrame[Any]) -> DataFrame:
        return self._keep(frame.to_native())

    def quantiles(
        self, frame: nw.LazyFrame[Any], columns: list[str], probes: tuple[float, ...]
    ) -> dict[str, list[float | None]]:
        """Exact, linearly interpolated (``percentile``, not the approximate one narwhals
        would use): the quantiles of the polars and duckdb engines."""
        from pyspark.sql import functions as F

        if not columns:
            return {}
        at = F.array(*map(F.lit, probes))
        sdf: DataFrame = frame.to_native()
        aggs = [F.percentile(F.col(_quoted(c)).cast("double"), at).alias(c) for c in columns]
        row = sdf.agg(*aggs).first()
        assert row is not None
        return {c: list(row[c] or [None] * len(probes)) for c in columns}

    def matches(self, expr: nw.Expr, pattern: str) -> nw.Expr:
        # (?U): Java's \\d, \\w and \\s get the Unicode meaning they have in Rust's regex. Java's
        # `$` also matches before a final line break and its `.` stops at \\r and \\u2028 too:
        # a value with a line break never matches here, so it is a suspect and pandera decides
        anchored = pattern if pattern.startswith("^") else f"^{pattern}"
        return super().matches(expr, "(?U)" + anchored) & ~expr.str.contains(LINE_BREAK)

    def mask(self, frame: nw.LazyFrame[Any], pii: list[str], salt: str) -> nw.LazyFrame[Any]:
        from pyspark.sql import functions as F

        sdf: DataFrame = frame.to_native()
        hashed = [
            F.sha2(F.concat(F.lit(salt), F.col(_quoted(c)).cast("string")), 256).alias(c)
            if c in pii
            else F.col(_quoted(c))
            for c in sdf.columns
        ]
        return nw.from_native(sdf.select(*hashed))

    def scan(self, path: Path) -> nw.LazyFrame[Any]:
        return nw.from_native(self.spark.read.parquet(str(path)))


def _quoted(name: str) -> str:
    """A column name for ``F.col``: backquoted, so dots and spaces are part of the name."""
    return "`" + name.replace("`", "``") + "`"


def _to_polars(sdf: DataFrame) -> pl.DataFrame:
    """A (small) Spark frame on the driver as polars, through Arrow (Spark 3.5 and 4)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    to_arrow: Any = getattr(type(sdf), "toArrow", None)  # the class: not a column named so
    if to_arrow is not None:  # Spark 4
        table = to_arrow(sdf)
    else:  # Spark 3.5: the Arrow batches its toPandas() is built from
        collect: Any = getattr(type(sdf), "_collect_as_arrow")  # noqa: B009
        batches = collect(sdf)
        schema = to_arrow_schema(sdf.schema)
        table = pa.Table.from_batches(batches) if batches else schema.empty_table()
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out


def _cast(expr: Column, raw: str, want: str) -> Column:
    """``expr`` (of Spark type ``raw``) as ``want``; values that do not fit become null."""
    from pyspark.sql import functions as F

    if raw == want:
        return expr
    if raw == "string":
        stripped = F.regexp_replace(expr, r"(?U)^\s+|\s+$", "")  # Unicode spaces, as polars
        number = F.when(stripped.rlike(NUMBER), stripped)
        if want == "bigint":
            return _whole(_try_cast(number, "double"))
        return _try_cast(number, want) if want == "double" else _try_cast(stripped, want)
    if raw in ("double", "float") and want == "bigint":
        return _whole(expr)
    return _try_cast(expr, want)


def _whole(x: Column) -> Column:
    """A float as bigint when it is a whole number an Int64 holds, else null (never saturated)."""
    from pyspark.sql import functions as F

    fits = ~F.isnan(x) & (F.abs(x) < F.lit(INT64_LIMIT)) & (x == F.round(x))
    return F.when(fits, _try_cast(x, "bigint"))


def _try_cast(expr: Column, want: str) -> Column:
    """``expr`` cast to ``want``, null where the value does not fit. Spark 4 has ``try_cast``;
    Spark 3.5's ``cast`` gives null too as long as ANSI mode is off (its default)."""
    if hasattr(type(expr), "try_cast"):  # on the class: a Column answers any attribute name
        return expr.try_cast(want)  # type: ignore[no-any-return]
    return expr.cast(want)
