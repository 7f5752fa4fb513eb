"""The Spark engine: the same steps and contracts as the polars and duckdb engines, on PySpark.

Rows stay in Spark from bronze to the parquet files: Spark reads and casts bronze, checks the
contract, deduplicates, computes the statistics, imputes, clips, hashes PII, checks silver's and
gold's contracts, builds the gold features and aggregates, and writes silver and gold from its
executors. The driver only receives counts, statistics, the distinct categories, the aggregates
and the rows that break the bronze contract (those get their exact reasons from the same pandera
contract the other engines use, so the quarantine and the report are the same).

The rules are the polars engine's, so both write equal silver and gold:

- casts: text is trimmed then parsed (a bad value becomes null and is reported in
  ``_cast_errors``); a float becomes an integer only when it is whole;
- duplicates: exact duplicate rows keep the first (lowest bronze ``_row``), repeated ids the latest;
- statistics: exact medians and quartiles with linear interpolation (``percentile``), the most
  frequent value with ties broken by the smallest;
- PII: ``sha2(salt || value, 256)`` as lowercase hex, the digest of the polars engine.

Runs on Spark 3.5 (the managed runtimes: EMR 7, Dataproc Serverless 2.2, Databricks 14-16) and 4.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import narwhals as nw
import polars as pl

from ..common.spark import get_spark
from . import contracts
from .contracts import HASH_PATTERN, Contract
from .engines import Stats, _empty_aggregates, quarantine_rows
from .errors import DataError
from .storage import move, parquet_rows, relative, remove_tree

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

#: contract dtype -> Spark SQL type
SPARK_TYPES = {"Int64": "bigint", "Float64": "double", "String": "string"}
#: at most this many bronze rows may break the contract (they are collected to the driver)
MAX_SUSPECT_ROWS = 1_000_000
#: text that parses as a number the way polars parses it (Java also takes "12d", "0x1p3", ...)
NUMBER = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)$"
#: the largest magnitude an Int64 holds, as a float bound
INT64_LIMIT = 2.0**63


class SparkEngine:
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

    def columns(self, frame: DataFrame) -> list[str]:
        return list(frame.columns)

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

    def violations(self, typed: DataFrame, contract: Contract) -> pl.DataFrame:
        """The rows any rule may reject are found in Spark; only those reach the driver, where
        the pandera contract gives their exact reasons."""
        from pyspark.sql import functions as F

        suspects = self._keep(
            typed.where(F.col("_cast_errors").isNotNull() | _any(_breaks(contract)))
        )
        count = self.height(suspects)
        if count > MAX_SUSPECT_ROWS:
            raise DataError(
                f"{count} of the {self.height(typed)} bronze rows break the {contract.dataset} "
                f"contract (more than {MAX_SUSPECT_ROWS} to quarantine): the source or the "
                "contract is wrong; check a sample with the polars engine (--engine polars)"
            )
        return contracts.violations(_to_polars(suspects), contract)

    def drop_rows(self, typed: DataFrame, rows: pl.Series) -> DataFrame:
        from pyspark.sql import functions as F

        valid = typed.drop("_cast_errors")
        if rows.len():
            valid = valid.join(F.broadcast(self._rows(rows.to_list())), on="_row", how="left_anti")
        return valid

    def dedupe(self, frame: DataFrame, id_column: str | None) -> tuple[DataFrame, int, int]:
        from pyspark.sql import functions as F

        columns = [c for c in frame.columns if c != "_row"]
        # exact duplicates: the grouping keys are the row itself; keep its first bronze row
        exact = self._keep(frame.groupBy(*columns).agg(F.min("_row").alias("_row")))
        by_id = exact
        if id_column:
            latest = exact.groupBy(id_column).agg(F.max("_row").alias("_row")).select("_row")
            by_id = exact.join(latest, on="_row", how="left_semi")
        by_id = self._keep(by_id.select(*frame.columns))
        rows, exact_rows, out = self.height(frame), self.height(exact), self.height(by_id)
        exact.unpersist()
        return by_id, rows - exact_rows, exact_rows - out

    def stats(self, frame: DataFrame, numeric: list[str], categorical: list[str]) -> Stats:
        from pyspark.sql import functions as F

        aggs: list[Column] = []
        for c in numeric:
            x = F.col(c).cast("double")
            # exact, linearly interpolated: the polars engine's median and quantiles
            aggs.append(F.percentile(x, F.array(*map(F.lit, (0.5, 0.25, 0.75)))).alias(f"p:{c}"))
        aggs += [
            F.sum(F.col(c).isNull().cast("bigint")).alias(f"n:{c}") for c in numeric + categorical
        ]
        row = frame.agg(*aggs).first().asDict() if aggs else {}  # type: ignore[union-attr]
        modes: dict[str, str | None] = {}
        for c in categorical:
            top = (
                frame.where(F.col(c).isNotNull())
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
        self, frame: DataFrame, bounds: dict[str, tuple[float, float]]
    ) -> dict[str, int]:
        from pyspark.sql import functions as F

        if not bounds:
            return {}
        aggs = [
            F.sum(((F.col(c) < F.lit(lo)) | (F.col(c) > F.lit(hi))).cast("bigint")).alias(c)
            for c, (lo, hi) in bounds.items()
        ]
        row = frame.agg(*aggs).first().asDict()  # type: ignore[union-attr]
        return {c: int(v or 0) for c, v in row.items()}

    def transform(
        self,
        frame: DataFrame,
        fills: dict[str, Any],
        bounds: dict[str, tuple[float, float]],
        pii: list[str],
        salt: str,
    ) -> DataFrame:
        from pyspark.sql import functions as F

        types = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        select: list[Column] = []
        for c in frame.columns:
            if c == "_row":
                continue
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
        return self._keep(frame.orderBy("_row").select(*select))

    def check_silver(self, cleaned: DataFrame, contract: Contract) -> None:
        """silver_schema's rules as one Spark aggregation."""
        from pyspark.sql import functions as F

        rules: dict[str, Column] = {}
        for c in contract.columns:
            x = F.col(c.name)
            if c.role == "pii":
                rules[f"{c.name}: not a salted SHA-256"] = x.isNotNull() & ~x.rlike(HASH_PATTERN)
                continue
            if c.role in ("feature", "id") or not c.nullable:
                rules[f"{c.name}: missing"] = _missing(x, c.dtype == "Float64")
            if c.role != "feature" or c.kind == "categorical" or c.kind in contracts.DATE_KINDS:
                for reason, broken in _rules(c):
                    rules[f"{c.name}: {reason}"] = broken
        what = "silver output breaks its own contract"
        _check(cleaned, contract.names, rules, what, contract.id_column)

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

    def scan(self, path: Path) -> nw.LazyFrame[Any]:
        return nw.from_native(self.spark.read.parquet(str(path)))

    def materialize(self, frame: nw.LazyFrame[Any]) -> DataFrame:
        native: DataFrame = frame.to_native()
        return self._keep(native)

    def distinct(self, frame: DataFrame, column: str) -> list[Any]:
        from pyspark.sql import functions as F

        values = frame.where(F.col(column).isNotNull()).select(column).distinct().collect()
        return sorted(row[0] for row in values)

    def check_gold(self, features: DataFrame, gold: dict[str, Any]) -> None:
        """gold_schema's rules as one Spark aggregation."""
        from pyspark.sql import functions as F

        names: list[str] = []
        rules: dict[str, Column] = {}
        if gold["id_column"]:
            names.append(gold["id_column"])
            rules[f"{gold['id_column']}: missing"] = F.col(gold["id_column"]).isNull()
        for f in gold["features"]:
            x = F.col(f["name"])
            names.append(f["name"])
            rules[f"{f['name']}: missing"] = _missing(x, f["kind"] == "numeric")
            if f["kind"] == "numeric":
                inf = F.lit(float("inf"))
                rules[f"{f['name']}: not finite"] = F.isnan(x) | (x == inf) | (x == -inf)
            else:
                rules[f"{f['name']}: not one of the categories"] = ~x.isin(*f["categories"])
        names.append(gold["target"])
        target = dict(features.dtypes)[gold["target"]]
        rules[f"{gold['target']}: missing"] = _missing(F.col(gold["target"]), target == "double")
        # ids: gold is a row-for-row select of silver, whose ids were checked unique
        _check(features, names, rules, "gold features break their contract", None)

    def aggregates(
        self, features: DataFrame, dimensions: list[str], numeric: list[str], target: str
    ) -> pl.DataFrame:
        from pyspark.sql import functions as F

        sdf = features
        total = self.height(features)
        y = F.col(target).cast("double")
        groups = dimensions
        if not dimensions and numeric:
            probes = F.array(*map(F.lit, (0.25, 0.5, 0.75)))
            edges = sdf.agg(*[F.percentile(F.col(c), probes).alias(c) for c in numeric]).first()
            assert edges is not None
            buckets = []
            for c in numeric:
                rank = F.lit(1)
                for edge in edges[c]:
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
        return _to_polars(union.orderBy("dimension", "value"))


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


def _pattern(pattern: str) -> str:
    """pandera's ``str_matches``: the value must start with a match of ``pattern``. ``(?U)``
    gives Java's ``\\d``, ``\\w`` and ``\\s`` the Unicode meaning they have in Rust's regex."""
    return "(?U)" + (pattern if pattern.startswith("^") else f"^{pattern}")


def _missing(x: Column, is_float: bool) -> Column:
    """Null, and NaN in a float column: what pandera counts as missing."""
    from pyspark.sql import functions as F

    return (x.isNull() | F.isnan(x)) if is_float else x.isNull()


def _rules(col: contracts.Column) -> list[tuple[str, Column]]:
    """The value rules of ``col`` (range, categories, pattern) as ``(reason, broken)``, where
    ``broken`` is true for a non-null value that breaks the rule (as pandera's checks)."""
    from pyspark.sql import functions as F

    x = F.col(col.name)
    rules: list[tuple[str, Column]] = []
    if col.ge is not None:
        rules.append((f"below {col.ge}", x < F.lit(col.ge)))
    if col.le is not None:
        # NaN is above every number in Spark, as in polars: it breaks an upper bound
        rules.append((f"above {col.le}", x > F.lit(col.le)))
    if col.categories is not None:
        rules.append(("not one of the categories", ~x.isin(*col.categories)))
    if col.pattern:
        # Java's `$` also matches before a final line break, Rust's does not: any line break in
        # the value makes the row a suspect, and pandera decides
        broken = ~x.rlike(_pattern(col.pattern)) | x.rlike("[\\r\\n\\u0085\\u2028\\u2029]")
        rules.append((f"does not match {col.pattern}", broken))
    return [(reason, x.isNotNull() & broken) for reason, broken in rules]


def _breaks(contract: Contract) -> list[Column]:
    """bronze_schema's rules: a row is suspect when any of these is true."""
    from pyspark.sql import functions as F

    out: list[Column] = []
    for c in contract.columns:
        if not c.nullable:
            out.append(_missing(F.col(c.name), c.dtype == "Float64"))
        out += [broken for _, broken in _rules(c)]
    return out


def _any(conditions: list[Column]) -> Column:
    from pyspark.sql import functions as F

    out = F.lit(False)
    for condition in conditions:
        out = out | F.coalesce(condition, F.lit(False))
    return out


def _check(
    frame: DataFrame, names: list[str], rules: dict[str, Column], what: str, key: str | None
) -> None:
    """Check that ``frame`` has exactly the columns ``names`` in order, then count the rows
    breaking each rule (and repeated ``key`` values) in one pass; raise a :class:`DataError`
    naming the first broken rule."""
    from pyspark.sql import functions as F

    if list(frame.columns) != names:
        raise DataError(f"{what} (a pipeline bug): columns {list(frame.columns)}, expected {names}")

    aggs = [
        F.sum(F.coalesce(c, F.lit(False)).cast("bigint")).alias(f"r{i}")
        for i, c in enumerate(rules.values())
    ]
    if key:
        aggs += [F.count(F.col(key)).alias("n"), F.countDistinct(F.col(key)).alias("d")]
    if not aggs:
        return
    row = frame.agg(*aggs).first()
    assert row is not None
    for i, reason in enumerate(rules):
        if row[f"r{i}"]:
            raise DataError(f"{what} (a pipeline bug): {reason} in {row[f'r{i}']} row(s)")
    if key and row["n"] != row["d"]:
        raise DataError(f"{what} (a pipeline bug): {key}: {row['n'] - row['d']} repeated value(s)")


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
