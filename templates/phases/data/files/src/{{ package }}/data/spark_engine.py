"""The Spark engine: the same steps and contracts as the polars and duckdb engines, on PySpark.

Spark does the heavy work of every step (reading and casting bronze, deduplication, statistics,
imputation, clipping, PII hashing, gold features and aggregates). The pipeline around the engines
(contracts, quarantine, reports, writing) works on polars frames, so frames cross the engine
boundary as Arrow tables; a frame this engine handed out is recognised when it comes back and its
Spark twin is reused instead of being converted again.

The rules are the polars engine's, so both write equal silver and gold:

- casts: text is trimmed then parsed (``try_cast``: a bad value becomes null and is reported in
  ``_cast_errors``); a float becomes an integer only when it is whole;
- duplicates: exact duplicate rows keep the first (lowest bronze ``_row``), repeated ids the latest;
- statistics: exact medians and quartiles with linear interpolation (``percentile``), the most
  frequent value with ties broken by the smallest;
- PII: ``sha2(salt || value, 256)`` as lowercase hex, the digest of the polars engine.

``data.versioning: delta`` also commits silver and gold to Delta tables (``data/<layer>/_delta/``)
when delta-spark and its jars are available, and records the table version in
``data/lineage.jsonl`` so a run can be reproduced with time travel (``versionAsOf``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow.parquet as pq

from ..common.config import load_config
from ..common.lineage import record
from ..common.spark import get_spark
from .contracts import Contract
from .engines import Stats, _empty_aggregates

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: contract dtype -> Spark SQL type
SPARK_TYPES = {"Int64": "bigint", "Float64": "double", "String": "string"}


class SparkEngine:
    name = "spark"

    def __init__(self, cfg: dict[str, Any] | None = None) -> None:
        self.cfg = cfg if cfg is not None else load_config()
        self.spark: SparkSession = get_spark(self.cfg)
        # the last polars frame handed out and the Spark frame it came from
        self._twin: tuple[pl.DataFrame, DataFrame] | None = None

    # -- crossing the boundary ------------------------------------------------------------

    def _to_spark(self, frame: pl.DataFrame) -> DataFrame:
        if self._twin is not None and self._twin[0] is frame:
            return self._twin[1]
        # the oldest Arrow layout (large_string, no views) is the one Spark reads
        table = frame.to_arrow(compat_level=pl.CompatLevel.oldest())
        return self.spark.createDataFrame(table)

    def _to_polars(self, sdf: DataFrame, keep: bool = False) -> pl.DataFrame:
        out = pl.from_arrow(sdf.toArrow())
        assert isinstance(out, pl.DataFrame)
        if keep:
            if self._twin is not None:
                self._twin[1].unpersist()
            self._twin = (out, sdf)
        return out

    # -- silver -----------------------------------------------------------------------------

    def load(self, parts: list[Path], contract: Contract) -> pl.DataFrame:
        from pyspark.sql import functions as F

        scans: list[DataFrame] = []
        offset = 0
        for part in parts:
            raw = self.spark.read.parquet(str(part))
            kinds = {f.name: f.dataType.simpleString() for f in raw.schema.fields}
            typed: list[Column] = [
                (F.col("_metadata.row_index") + F.lit(offset)).cast("bigint").alias("_row")
            ]
            errors: list[Column] = []
            for col in contract.columns:
                want = SPARK_TYPES[col.dtype]
                expr = _cast(F.col(col.name), kinds[col.name], want)
                typed.append(expr.alias(col.name))
                if kinds[col.name] != want:
                    bad = F.col(col.name).isNotNull() & expr.isNull()
                    errors.append(F.when(bad, F.lit(col.name)))
            joined = F.concat_ws(",", *errors) if errors else F.lit(None).cast("string")
            cast_errors = F.when(joined != "", joined).otherwise(F.lit(None).cast("string"))
            scans.append(raw.select(*typed, cast_errors.alias("_cast_errors")))
            offset += pq.ParquetFile(part).metadata.num_rows
        union = scans[0]
        for scan in scans[1:]:
            union = union.unionByName(scan)
        return self._to_polars(union.orderBy("_row"))

    def dedupe(self, frame: pl.DataFrame, id_column: str | None) -> tuple[pl.DataFrame, int, int]:
        from pyspark.sql import functions as F

        sdf = self._to_spark(frame)
        columns = [c for c in frame.columns if c != "_row"]
        # exact duplicates: the grouping keys are the row itself; keep its first bronze row
        exact = sdf.groupBy(*columns).agg(F.min("_row").alias("_row")).persist()
        exact_rows = exact.count()
        by_id = exact
        if id_column:
            latest = exact.groupBy(id_column).agg(F.max("_row").alias("_row")).select("_row")
            by_id = exact.join(latest, on="_row", how="left_semi")
        by_id = by_id.select(*frame.columns).orderBy("_row").persist()
        out = self._to_polars(by_id, keep=True)
        exact.unpersist()
        return out, frame.height - exact_rows, exact_rows - out.height

    def stats(self, frame: pl.DataFrame, numeric: list[str], categorical: list[str]) -> Stats:
        from pyspark.sql import functions as F

        sdf = self._to_spark(frame)
        aggs: list[Column] = []
        for c in numeric:
            x = F.col(c).cast("double")
            # exact, linearly interpolated: the polars engine's median and quantiles
            aggs.append(F.percentile(x, F.array(*map(F.lit, (0.5, 0.25, 0.75)))).alias(f"p:{c}"))
        aggs += [
            F.sum(F.col(c).isNull().cast("bigint")).alias(f"n:{c}") for c in numeric + categorical
        ]
        row = sdf.agg(*aggs).first().asDict() if aggs else {}  # type: ignore[union-attr]
        modes: dict[str, str | None] = {}
        for c in categorical:
            top = (
                sdf.where(F.col(c).isNotNull())
                .groupBy(c)
                .count()
                .orderBy(F.col("count").desc(), F.col(c).asc())
                .first()
            )
            modes[c] = None if top is None else top[c]
        quantiles = {c: row[f"p:{c}"] or [None, None, None] for c in numeric}
        return Stats(
            median={c: quantiles[c][0] for c in numeric},
            q1={c: quantiles[c][1] for c in numeric},
            q3={c: quantiles[c][2] for c in numeric},
            mode=modes,
            nulls={c: int(row[f"n:{c}"] or 0) for c in numeric + categorical},
        )

    def count_outside(
        self, frame: pl.DataFrame, bounds: dict[str, tuple[float, float]]
    ) -> dict[str, int]:
        from pyspark.sql import functions as F

        if not bounds:
            return {}
        sdf = self._to_spark(frame)
        aggs = [
            F.sum(((F.col(c) < F.lit(lo)) | (F.col(c) > F.lit(hi))).cast("bigint")).alias(c)
            for c, (lo, hi) in bounds.items()
        ]
        row = sdf.agg(*aggs).first().asDict()  # type: ignore[union-attr]
        return {c: int(v or 0) for c, v in row.items()}

    def transform(
        self,
        frame: pl.DataFrame,
        fills: dict[str, Any],
        bounds: dict[str, tuple[float, float]],
        pii: list[str],
        salt: str,
    ) -> pl.DataFrame:
        from pyspark.sql import functions as F

        sdf = self._to_spark(frame)
        types = {f.name: f.dataType.simpleString() for f in sdf.schema.fields}
        select: list[Column] = []
        for c in frame.columns:
            expr = F.col(c)
            if c in fills:
                expr = F.coalesce(expr, F.lit(fills[c]).cast(types[c]))
            if c in bounds:
                lo, hi = bounds[c]
                clipped = F.least(F.greatest(expr, F.lit(lo)), F.lit(hi)).cast(types[c])
                keep = expr.isNull()
                if types[c] == "double":
                    keep = keep | F.isnan(expr)  # NaN stays NaN, as in polars
                expr = F.when(keep, expr).otherwise(clipped)
            if c in pii:
                expr = F.sha2(F.concat(F.lit(salt), expr.cast("string")), 256)
            select.append(expr.alias(c))
        out = self._to_polars(sdf.select(*select).orderBy("_row"))
        if self._twin is not None:
            self._twin[1].unpersist()
            self._twin = None
        return out

    # -- gold -------------------------------------------------------------------------------

    def features(self, silver: Path, contract: Contract) -> pl.DataFrame:
        from pyspark.sql import functions as F

        source = self.spark.read.parquet(str(silver))
        select: list[Column] = []
        if contract.id_column:
            select.append(F.col(contract.id_column))
        for c in contract.features:
            select.append(F.col(c.name).cast("double" if c.kind == "numeric" else "string"))
        for d in contract.derived:
            num = F.col(d.numerator).cast("double")
            den = F.greatest(F.col(d.denominator).cast("double"), F.lit(1.0))
            select.append((num * F.lit(d.scale) / den).alias(d.name))
        target = F.col(contract.target)
        if contract.task == "regression":
            target = target.cast("double").alias(contract.target)
        select.append(target)
        # a plain file scan keeps the file's row order: gold rows are in silver order
        gold = source.select(*select)
        self._commit_delta("silver", source, silver)
        out = self._to_polars(gold, keep=True)
        return out

    def aggregates(
        self, features: pl.DataFrame, dimensions: list[str], numeric: list[str], target: str
    ) -> pl.DataFrame:
        from pyspark.sql import functions as F

        sdf = self._to_spark(features)
        self._commit_delta("gold", sdf, None)
        total = features.height
        y = F.col(target).try_cast("double")
        groups = dimensions
        if not dimensions and numeric:
            probes = F.array(*map(F.lit, (0.25, 0.5, 0.75)))
            edges = sdf.agg(*[F.percentile(F.col(c), probes).alias(c) for c in numeric]).first()
            assert edges is not None
            buckets = []
            for c in numeric:
                q = edges[c]
                rank = F.lit(1)
                for edge in q:
                    rank = rank + (F.col(c) > F.lit(edge)).cast("int")
                buckets.append(F.concat(F.lit("q"), rank.cast("string")).alias(f"{c}_quartile"))
            sdf = sdf.select("*", *buckets)
            groups = [f"{c}_quartile" for c in numeric]
        frames: list[DataFrame] = []
        for g in groups:
            frames.append(
                sdf.groupBy(g)
                .agg(F.count(F.lit(1)).alias("rows"), F.avg(y).alias("target_mean"))
                .select(
                    F.lit(g).alias("dimension"),
                    F.col(g).cast("string").alias("value"),
                    F.col("rows").cast("bigint").alias("rows"),
                    (F.col("rows") / F.lit(float(total))).alias("share"),
                    F.col("target_mean").cast("double").alias("target_mean"),
                )
            )
        if not frames:
            return _empty_aggregates()
        union = frames[0]
        for frame in frames[1:]:
            union = union.unionByName(frame)
        out = self._to_polars(union.orderBy("dimension", "value"))
        self._twin = None
        return out

    # -- Delta tables (data.versioning: delta) ----------------------------------------------

    def _commit_delta(self, layer: str, sdf: DataFrame, source: Path | None) -> None:
        """Overwrite the layer's Delta table with ``sdf`` and log the new table version."""
        if self.cfg["data"].get("versioning") != "delta":
            return
        root = Path(self.cfg["root"])
        table = root / "data" / layer / "_delta" / ("features" if layer == "gold" else "silver")
        try:
            sdf.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
                str(table)
            )
            version = (
                self.spark.sql(f"DESCRIBE HISTORY delta.`{table}`")
                .selectExpr("max(version) AS v")
                .first()
            )
        except Exception as exc:  # no delta jars in this session: parquet stays the store
            log.warning(
                "data.versioning is delta but the Delta table %s could not be written (%s); "
                "silver and gold stay plain parquet. Add the delta-spark jars to the session "
                "(spark.jars.packages in conf/<env>.yaml spark.config)",
                table,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
            return
        number = None if version is None else int(version["v"])
        record(
            root / "data" / "lineage.jsonl",
            f"{layer}-delta",
            [source] if source is not None else [],
            [],
            root,
            {"engine": self.name, "delta_table": str(table.relative_to(root)), "version": number},
        )


def _cast(expr: Column, raw: str, want: str) -> Column:
    """``expr`` (of Spark type ``raw``) as ``want``; values that do not fit become null."""
    from pyspark.sql import functions as F

    if raw == want:
        return expr
    if raw == "string":
        stripped = F.regexp_replace(expr, r"^\s+|\s+$", "")
        if want == "bigint":
            as_float = stripped.try_cast("double")
            whole = (as_float == F.round(as_float)) & ~F.isnan(as_float)
            return F.when(whole, as_float.try_cast("bigint"))
        return stripped.try_cast(want)
    if raw in ("double", "float") and want == "bigint":
        whole = (expr == F.round(expr)) & ~F.isnan(expr)
        return F.when(whole, expr.try_cast("bigint"))
    return expr.try_cast(want)
