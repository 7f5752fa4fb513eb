"""Engines, one pipeline: polars (lazy API), duckdb (SQL over parquet) and, in projects generated
with ``data.engine: spark``, Spark (``spark_engine.py``).

Each engine does the heavy lifting of a step on its own frames: polars and duckdb hand polars
frames to the pipeline, Spark keeps its DataFrames on the cluster and only hands back counts,
statistics, the few rows that break the contract and the aggregates. The pipeline around them
(contract rules, quarantine, reports, lineage) is shared, so every engine produces the same
outputs. Generated tests check that they agree on the example data.

Every method takes plain values decided by the pipeline (fill values, clip bounds, the salt), so
both engines apply exactly the same rules; only the statistics are computed by the engine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import narwhals as nw
import polars as pl

from . import contracts
from .contracts import DTYPES, Contract
from .errors import DataError
from .storage import is_local, relative, write_parquet

try:  # optional accelerator for PII hashing: registers the ``.chash`` expression namespace
    import polars_hash as _plh
except ImportError:  # pragma: no cover - hashlib gives the same digests
    _plh = None  # type: ignore[assignment]

ENGINES = ("polars", "duckdb", "spark")

#: a frame of an engine: a polars DataFrame (polars, duckdb) or a Spark DataFrame (spark)
Frame = Any


@dataclass(frozen=True)
class Stats:
    """Per numeric column: median, first and third quartile; per categorical: the mode."""

    median: dict[str, float | None]
    q1: dict[str, float | None]
    q3: dict[str, float | None]
    mode: dict[str, str | None]
    nulls: dict[str, int]


class Engine(Protocol):
    name: str

    def load(self, parts: list[Path], contract: Contract) -> Frame:
        """Bronze partitions -> contract columns cast to their types, plus ``_row`` (bronze row
        number across partitions) and ``_cast_errors`` (columns whose value could not be cast)."""
        ...

    def violations(self, typed: Frame, contract: Contract) -> pl.DataFrame:
        """``_row`` and ``_reason`` of every broken rule (:func:`contracts.violations`)."""
        ...

    def drop_rows(self, typed: Frame, rows: pl.Series) -> Frame:
        """``typed`` without the rows whose ``_row`` is in ``rows`` and without ``_cast_errors``."""
        ...

    def height(self, frame: Frame) -> int: ...

    def columns(self, frame: Frame) -> list[str]: ...

    def dedupe(self, frame: Frame, id_column: str | None) -> tuple[Frame, int, int]:
        """Drop exact duplicate rows (keep the first), then repeated ids (keep the latest)."""
        ...

    def stats(self, frame: Frame, numeric: list[str], categorical: list[str]) -> Stats: ...

    def count_outside(
        self, frame: Frame, bounds: dict[str, tuple[float, float]]
    ) -> dict[str, int]: ...

    def transform(
        self,
        frame: Frame,
        fills: dict[str, Any],
        bounds: dict[str, tuple[float, float]],
        pii: list[str],
        salt: str,
    ) -> Frame:
        """Impute, clip and mask PII; rows stay in ``_row`` order, ``_row`` is dropped."""
        ...

    def check_silver(self, cleaned: Frame, contract: Contract) -> None:
        """Raise :class:`DataError` when silver breaks its own contract (a pipeline bug)."""
        ...

    def quarantine(
        self, parts: list[Path], bad: pl.DataFrame, contract: Contract, salt: str, root: Path
    ) -> pl.DataFrame:
        """The raw bronze rows of ``bad`` (PII masked) with ``_row``, ``_source``, ``_reason``:
        few rows, on the driver for every engine."""
        ...

    @property
    def delta_session(self) -> Any:
        """The Spark session Delta tables are written through, None for delta-rs."""
        ...

    def scan(self, path: Path) -> nw.LazyFrame[Any]:
        """A silver parquet file as a narwhals lazy frame of the engine (nothing read yet)."""
        ...

    def materialize(self, frame: nw.LazyFrame[Any]) -> Frame:
        """``frame`` computed into an engine frame (kept on the cluster by Spark)."""
        ...

    def distinct(self, frame: Frame, column: str) -> list[Any]:
        """The sorted distinct non-null values of ``column``."""
        ...

    def check_gold(self, features: Frame, gold: dict[str, Any]) -> None:
        """Raise :class:`DataError` when gold breaks the gold contract (a pipeline bug)."""
        ...

    def aggregates(
        self, features: Frame, dimensions: list[str], numeric: list[str], target: str
    ) -> pl.DataFrame:
        """Rows, share and target mean per value of each dimension (long format)."""
        ...

    def write_parquet(self, frame: Frame, path: Path) -> None:
        """Write ``frame`` as one parquet file at ``path`` (rows in frame order)."""
        ...

    def release(self) -> None:
        """Free what the engine kept for the step's frames (the end of a step, or its failure)."""
        ...


class PolarsFrames:
    """The frame side of the engines that hand polars frames to the pipeline (polars, duckdb):
    contracts checked with pandera, files written by polars."""

    def violations(self, typed: pl.DataFrame, contract: Contract) -> pl.DataFrame:
        return contracts.violations(typed, contract)

    def drop_rows(self, typed: pl.DataFrame, rows: pl.Series) -> pl.DataFrame:
        return typed.filter(~pl.col("_row").is_in(rows.implode())).drop("_cast_errors")

    def height(self, frame: pl.DataFrame) -> int:
        return frame.height

    def columns(self, frame: pl.DataFrame) -> list[str]:
        return frame.columns

    def check_silver(self, cleaned: pl.DataFrame, contract: Contract) -> None:
        import pandera.polars as pa

        try:
            contracts.silver_schema(contract).validate(cleaned)
        except pa.errors.SchemaError as exc:
            raise DataError(
                f"silver output breaks its own contract (a pipeline bug): {exc}"
            ) from None

    def quarantine(
        self, parts: list[Path], bad: pl.DataFrame, contract: Contract, salt: str, root: Path
    ) -> pl.DataFrame:
        scans = [
            pl.scan_parquet(str(p)).with_columns(pl.lit(relative(p, root)).alias("_source"))
            for p in parts
        ]
        raw = (
            pl.concat(scans, how="vertical_relaxed")
            .with_row_index("_row")
            .with_columns(pl.col("_row").cast(pl.Int64))
        )
        return quarantine_rows(raw, bad, contract, salt)

    def distinct(self, frame: pl.DataFrame, column: str) -> list[Any]:
        return frame.get_column(column).drop_nulls().unique().sort().to_list()

    def check_gold(self, features: pl.DataFrame, gold: dict[str, Any]) -> None:
        import pandera.polars as pa

        target = features.schema[gold["target"]]
        try:
            contracts.gold_schema(gold, target).validate(features)
        except pa.errors.SchemaError as exc:
            raise DataError(f"gold features break their contract (a pipeline bug): {exc}") from None

    def write_parquet(self, frame: pl.DataFrame, path: Path) -> None:
        write_parquet(frame, path)

    @property
    def delta_session(self) -> Any:
        return None

    def materialize(self, frame: nw.LazyFrame[Any]) -> pl.DataFrame:
        return frame.collect("polars").to_native()

    def release(self) -> None:
        """Nothing is kept: polars frames are freed with their last reference."""


def get_engine(name: str, cfg: dict[str, Any]) -> Engine:
    """The engine ``name``, built from ``cfg`` (the Spark engine's session comes from it)."""
    if name == "polars":
        return PolarsEngine()
    if name == "duckdb":
        try:
            import duckdb  # noqa: F401
        except ImportError:
            raise DataError(
                "data.engine is 'duckdb' but duckdb is not installed; run `make setup` "
                "(or `pip install duckdb`)"
            ) from None
        return DuckDBEngine()
    if name == "spark":
        try:  # only projects generated with data.engine: spark ship the Spark engine
            from .spark_engine import SparkEngine
        except ImportError:
            raise DataError(
                "data.engine 'spark' is not part of this project: set `data: {engine: spark}` in "
                "mlops.yaml and run `mlops update` (it adds the Spark engine and pyspark)"
            ) from None
        return SparkEngine(cfg)
    raise DataError(
        f"data.engine {name!r} is not supported by this pipeline; use one of {', '.join(ENGINES)} "
        "(conf/base.yaml data.engine or --engine)"
    )


def quarantine_rows(
    raw: pl.LazyFrame, bad: pl.DataFrame, contract: Contract, salt: str
) -> pl.DataFrame:
    """Bronze rows (``_row``, the bronze columns, ``_source``) that ``bad`` names, as text with
    PII masked and their reasons joined in ``_reason``."""
    reasons = bad.group_by("_row").agg(pl.col("_reason").sort().str.join("; ")).sort("_row")
    rows = (
        raw.join(reasons.lazy(), on="_row", how="inner")
        .sort("_row")
        .with_columns(pl.exclude("_row").cast(pl.Utf8))
        .collect()
    )
    masked = [mask(rows.get_column(c), salt).alias(c) for c in contract.pii if c in rows.columns]
    return rows.with_columns(masked)


def run_step(
    step: Callable[[dict[str, Any], Engine], dict[str, Any]],
    cfg: dict[str, Any],
    engine_name: str | None = None,
) -> dict[str, Any]:
    """Run a layer's ``step`` on the configured engine (or ``engine_name``), then let the engine
    free what it kept, whether the step succeeded or not."""
    engine = get_engine(engine_name or cfg["data"].get("engine", "polars"), cfg)
    try:
        return step(cfg, engine)
    finally:
        engine.release()


def mask_expr(expr: pl.Expr, salt: str) -> pl.Expr | None:
    """``sha256(salt + value)`` as a native polars expression (the polars-hash plugin), or None
    when the plugin is not installed."""
    if _plh is None:
        return None
    salted = pl.concat_str(pl.lit(salt), expr.cast(pl.Utf8))
    return salted.chash.sha2_256()  # type: ignore[attr-defined, no-any-return]


def mask(series: pl.Series, salt: str) -> pl.Series:
    """``sha256(salt + value)`` as hex for each value; nulls stay null.

    Uses the polars-hash plugin (Rust, parallel) when installed, else :mod:`hashlib`, hashing
    each distinct value once for low-cardinality columns (names). Both give the same digests.
    """
    native = mask_expr(pl.col(series.name), salt)
    if native is not None:
        return series.to_frame().select(native.alias(series.name)).to_series()
    text = series.cast(pl.Utf8)
    prefix = salt.encode("utf-8")
    sha256 = hashlib.sha256

    def digests(values: pl.Series) -> pl.Series:
        raw = values.cast(pl.Binary).to_list()
        out = [None if v is None else sha256(prefix + v).digest() for v in raw]
        return pl.Series(out, dtype=pl.Binary).bin.encode("hex")

    distinct = text.unique()
    if distinct.len() * 2 > text.len():
        return digests(text).alias(series.name)
    table = pl.DataFrame({"v": distinct, "h": digests(distinct)})
    joined = text.to_frame("v").join(
        table, on="v", how="left", nulls_equal=True, maintain_order="left"
    )
    return joined.get_column("h").alias(series.name)


# ------------------------------------------------------------------------------------------
# polars
# ------------------------------------------------------------------------------------------


class PolarsEngine(PolarsFrames):
    name = "polars"

    def load(self, parts: list[Path], contract: Contract) -> pl.DataFrame:
        # renamed columns (contract.Column.source) take their silver name here, once
        scans = [
            pl.scan_parquet(str(p)).select(
                [pl.col(c.bronze).alias(c.name) for c in contract.columns]
            )
            for p in parts
        ]
        lazy = pl.concat(scans, how="vertical_relaxed").with_row_index("_row")
        schema = lazy.collect_schema()
        typed: list[pl.Expr] = [pl.col("_row").cast(pl.Int64)]
        errors: list[pl.Expr] = []
        for col in contract.columns:
            raw, want = schema[col.name], DTYPES[col.dtype]
            expr = _polars_cast(pl.col(col.name), raw, want)
            typed.append(expr.alias(col.name))
            if raw != want:
                bad = pl.col(col.name).is_not_null() & expr.is_null()
                errors.append(pl.when(bad).then(pl.lit(col.name)))
        cast_errors = (
            pl.concat_str(errors, separator=",", ignore_nulls=True).replace("", None)
            if errors
            else pl.lit(None, dtype=pl.Utf8)
        )
        return lazy.select(*typed, cast_errors.alias("_cast_errors")).collect()

    def dedupe(self, frame: pl.DataFrame, id_column: str | None) -> tuple[pl.DataFrame, int, int]:
        columns = [c for c in frame.columns if c != "_row"]
        # frames arrive in _row order. Only rows whose row hash repeats can be duplicates: the
        # exact comparison runs on those few candidates instead of every row.
        repeated = frame.select(columns).hash_rows().is_duplicated()
        candidates = frame.filter(repeated)
        first = candidates.unique(subset=columns, keep="first", maintain_order=True)
        dropped = candidates.filter(~pl.col("_row").is_in(first.get_column("_row").implode()))
        exact = frame.filter(~pl.col("_row").is_in(dropped.get_column("_row").implode()))
        by_id = exact
        if id_column:
            by_id = exact.unique(subset=[id_column], keep="last", maintain_order=True)
        return by_id, frame.height - exact.height, exact.height - by_id.height

    def stats(self, frame: pl.DataFrame, numeric: list[str], categorical: list[str]) -> Stats:
        exprs: list[pl.Expr] = []
        for c in numeric:
            x = pl.col(c).cast(pl.Float64)
            exprs += [
                x.median().alias(f"median:{c}"),
                x.quantile(0.25, "linear").alias(f"q1:{c}"),
                x.quantile(0.75, "linear").alias(f"q3:{c}"),
            ]
        exprs += [pl.col(c).null_count().alias(f"nulls:{c}") for c in numeric + categorical]
        row = frame.lazy().select(exprs).collect().row(0, named=True) if exprs else {}
        modes: dict[str, str | None] = {}
        for c in categorical:
            counts = (
                frame.lazy()
                .select(c)
                .drop_nulls()
                .group_by(c)
                .len()
                .sort(["len", c], descending=[True, False])
                .head(1)
                .collect()
            )
            modes[c] = counts.item(0, c) if counts.height else None
        return Stats(
            median={c: row[f"median:{c}"] for c in numeric},
            q1={c: row[f"q1:{c}"] for c in numeric},
            q3={c: row[f"q3:{c}"] for c in numeric},
            mode=modes,
            nulls={c: int(row[f"nulls:{c}"]) for c in numeric + categorical},
        )

    def count_outside(
        self, frame: pl.DataFrame, bounds: dict[str, tuple[float, float]]
    ) -> dict[str, int]:
        if not bounds:
            return {}
        exprs = [
            ((pl.col(c) < lo) | (pl.col(c) > hi)).sum().alias(c) for c, (lo, hi) in bounds.items()
        ]
        row = frame.lazy().select(exprs).collect().row(0, named=True)
        return {c: int(v) for c, v in row.items()}

    def transform(
        self,
        frame: pl.DataFrame,
        fills: dict[str, Any],
        bounds: dict[str, tuple[float, float]],
        pii: list[str],
        salt: str,
    ) -> pl.DataFrame:
        exprs: list[pl.Expr] = []
        for c in frame.columns:
            expr = pl.col(c)
            if c in fills:
                expr = expr.fill_null(pl.lit(fills[c], dtype=frame.schema[c]))
            if c in bounds:
                lo, hi = bounds[c]
                expr = expr.clip(
                    pl.lit(lo, dtype=frame.schema[c]), pl.lit(hi, dtype=frame.schema[c])
                )
            if c in pii:
                native = mask_expr(expr, salt)
                if native is not None:
                    expr = native
                else:
                    expr = expr.map_batches(lambda s: mask(s, salt), return_dtype=pl.Utf8)
            exprs.append(expr.alias(c))
        return frame.lazy().select(exprs).sort("_row").drop("_row").collect()

    def scan(self, path: Path) -> nw.LazyFrame[Any]:
        return nw.from_native(pl.scan_parquet(str(path)))

    def aggregates(
        self, features: pl.DataFrame, dimensions: list[str], numeric: list[str], target: str
    ) -> pl.DataFrame:
        lazy = features.lazy()
        y = pl.col(target).cast(pl.Float64, strict=False)
        total = features.height
        frames: list[pl.LazyFrame] = []
        groups = dimensions
        if not dimensions:
            # no categorical feature: quartile buckets of the numeric ones
            edges = (
                lazy.select(
                    [
                        pl.col(c).quantile(q, "linear").alias(f"{c}:{q}")
                        for c in numeric
                        for q in (0.25, 0.5, 0.75)
                    ]
                )
                .collect()
                .row(0, named=True)
            )
            buckets = []
            for c in numeric:
                q = [edges[f"{c}:{p}"] for p in (0.25, 0.5, 0.75)]
                bucket = pl.format(
                    "q{}",
                    1
                    + (pl.col(c) > q[0]).cast(pl.Int32)
                    + (pl.col(c) > q[1]).cast(pl.Int32)
                    + (pl.col(c) > q[2]).cast(pl.Int32),
                )
                buckets.append(bucket.alias(f"{c}_quartile"))
            lazy = lazy.with_columns(buckets)
            groups = [f"{c}_quartile" for c in numeric]
        for g in groups:
            frames.append(
                lazy.group_by(g)
                .agg(pl.len().alias("rows"), y.mean().alias("target_mean"))
                .select(
                    pl.lit(g).alias("dimension"),
                    pl.col(g).cast(pl.Utf8).alias("value"),
                    pl.col("rows").cast(pl.Int64),
                    (pl.col("rows") / total).alias("share"),
                    "target_mean",
                )
            )
        if not frames:
            return _empty_aggregates()
        return pl.concat(pl.collect_all(frames)).sort("dimension", "value")


def _polars_cast(expr: pl.Expr, raw: pl.DataType, want: pl.DataType) -> pl.Expr:
    if raw == want:
        return expr
    if raw == pl.Utf8 and want != pl.Utf8:
        stripped = expr.str.strip_chars()
        if want == pl.Int64:
            return _polars_whole(stripped.cast(pl.Float64, strict=False))
        return stripped.cast(want, strict=False)
    if raw.is_float() and want == pl.Int64:
        return _polars_whole(expr)
    return expr.cast(want, strict=False)


def _polars_whole(x: pl.Expr) -> pl.Expr:
    """A float as Int64 when it is a whole number an Int64 holds (not inf, NaN, 1e20), else null."""
    fits = x.is_not_nan() & (x.abs() < 2.0**63) & (x == x.round())
    return pl.when(fits).then(x.cast(pl.Int64, strict=False))


def _empty_aggregates() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "dimension": pl.Utf8,
            "value": pl.Utf8,
            "rows": pl.Int64,
            "share": pl.Float64,
            "target_mean": pl.Float64,
        }
    )


# ------------------------------------------------------------------------------------------
# duckdb
# ------------------------------------------------------------------------------------------

# SQL text below is built only from identifiers quoted by q() and literals made by lit(); the one
# secret value (the PII salt) travels as a query parameter. Bandit's B608 (SQL built from
# strings) was reviewed for each query and is silenced line by line with `# nosec B608`.
_SQL_TYPES = {"Int64": "BIGINT", "Float64": "DOUBLE", "String": "VARCHAR"}


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: Any) -> str:
    """A SQL literal for a fill value or bound."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    return f"CAST({float(value)!r} AS DOUBLE)"


class DuckDBEngine(PolarsFrames):
    name = "duckdb"

    def __init__(self) -> None:
        import duckdb

        self.con = duckdb.connect()

    def _query(
        self, sql: str, params: dict[str, Any] | None = None, **tables: pl.DataFrame
    ) -> pl.DataFrame:
        for name, frame in tables.items():
            self.con.register(name, frame)
        try:
            return self.con.sql(sql, params=params).pl()
        finally:
            for name in tables:
                self.con.unregister(name)

    def load(self, parts: list[Path], contract: Contract) -> pl.DataFrame:
        import pyarrow.parquet as pq

        _local_only(parts)

        offsets, start = [], 0
        for part in parts:
            offsets.append((str(part), start))
            start += pq.ParquetFile(part).metadata.num_rows
        files = "[" + ", ".join(lit(str(p)) for p in parts) + "]"
        offset_sql = " ".join(f"WHEN {lit(f)} THEN {o}" for f, o in offsets)
        described = self.con.sql(
            f"DESCRIBE SELECT * FROM read_parquet({files}, union_by_name=true)"  # nosec B608
        ).fetchall()
        raw_types = {str(row[0]): str(row[1]).upper() for row in described}
        typed, errors = [], []
        for col in contract.columns:
            # renamed columns (contract.Column.source) take their silver name here, once
            raw, want = raw_types[col.bronze], _SQL_TYPES[col.dtype]
            expr = _sql_cast(q(col.bronze), raw, want)
            typed.append(f"{expr} AS {q(col.name)}")
            if not _same_sql_type(raw, want):
                errors.append(
                    f"CASE WHEN {q(col.bronze)} IS NOT NULL AND {expr} IS NULL "
                    f"THEN {lit(col.name)} END"
                )
        cast_errors = (
            f"NULLIF(concat_ws(',', {', '.join(errors)}), '')" if errors else "NULL::VARCHAR"
        )
        row = f"CAST((CASE filename {offset_sql} END) + file_row_number AS BIGINT) AS _row"
        options = "filename=true, file_row_number=true, union_by_name=true"
        sql = (
            f"SELECT {row}, {', '.join(typed)}, {cast_errors} AS _cast_errors "  # nosec B608
            f"FROM read_parquet({files}, {options}) ORDER BY _row"
        )
        return self._query(sql)

    def dedupe(self, frame: pl.DataFrame, id_column: str | None) -> tuple[pl.DataFrame, int, int]:
        # a hash aggregate (GROUP BY) is about twice as fast as a window over every column
        columns = ", ".join(q(c) for c in frame.columns if c != "_row")
        exact = self._query(
            f"SELECT * FROM t WHERE _row IN (SELECT min(_row) FROM t GROUP BY {columns}) "  # nosec B608
            "ORDER BY _row",
            t=frame,
        )
        by_id = exact
        if id_column:
            by_id = self._query(
                f"SELECT * FROM t WHERE _row IN (SELECT max(_row) FROM t GROUP BY {q(id_column)}) "  # nosec B608
                "ORDER BY _row",
                t=exact,
            )
        return by_id, frame.height - exact.height, exact.height - by_id.height

    def stats(self, frame: pl.DataFrame, numeric: list[str], categorical: list[str]) -> Stats:
        parts = []
        for c in numeric:
            x = f"CAST({q(c)} AS DOUBLE)"
            parts += [f"median({x})", f"quantile_cont({x}, 0.25)", f"quantile_cont({x}, 0.75)"]
        parts += [f"count(*) - count({q(c)})" for c in numeric + categorical]
        values = self._query(f"SELECT {', '.join(parts)} FROM t", t=frame).row(0) if parts else ()  # nosec B608
        n = len(numeric)
        modes: dict[str, str | None] = {}
        for c in categorical:
            top = self._query(
                f"SELECT {q(c)} FROM t WHERE {q(c)} IS NOT NULL GROUP BY {q(c)} "  # nosec B608
                f"ORDER BY count(*) DESC, {q(c)} ASC LIMIT 1",
                t=frame,
            )
            modes[c] = top.item(0, 0) if top.height else None
        return Stats(
            median={c: values[3 * i] for i, c in enumerate(numeric)},
            q1={c: values[3 * i + 1] for i, c in enumerate(numeric)},
            q3={c: values[3 * i + 2] for i, c in enumerate(numeric)},
            mode=modes,
            nulls={c: int(values[3 * n + i]) for i, c in enumerate(numeric + categorical)},
        )

    def count_outside(
        self, frame: pl.DataFrame, bounds: dict[str, tuple[float, float]]
    ) -> dict[str, int]:
        if not bounds:
            return {}
        parts = [
            f"count(*) FILTER (WHERE {q(c)} < {lit(lo)} OR {q(c)} > {lit(hi)}) AS {q(c)}"
            for c, (lo, hi) in bounds.items()
        ]
        row = self._query(f"SELECT {', '.join(parts)} FROM t", t=frame).row(0, named=True)  # nosec B608
        return {c: int(v) for c, v in row.items()}

    def transform(
        self,
        frame: pl.DataFrame,
        fills: dict[str, Any],
        bounds: dict[str, tuple[float, float]],
        pii: list[str],
        salt: str,
    ) -> pl.DataFrame:
        select = []
        for c in frame.columns:
            expr = q(c)
            if c in fills:
                expr = f"COALESCE({expr}, {lit(fills[c])})"
            if c in bounds:
                lo, hi = bounds[c]
                expr = f"LEAST(GREATEST({expr}, {lit(lo)}), {lit(hi)})"
            if c in pii:
                expr = f"sha256($salt || CAST({expr} AS VARCHAR))"
            select.append(f"{expr} AS {q(c)}")
        sql = f"SELECT {', '.join(select)} FROM t ORDER BY _row"  # nosec B608
        out = self._query(sql, {"salt": salt} if pii else None, t=frame)
        # keep the contract's types (duckdb widens nothing here, but be explicit)
        return out.cast({c: frame.schema[c] for c in frame.columns if c not in pii}).drop("_row")

    def scan(self, path: Path) -> nw.LazyFrame[Any]:
        _local_only([path])
        return nw.from_native(self.con.read_parquet(str(path)))

    def aggregates(
        self, features: pl.DataFrame, dimensions: list[str], numeric: list[str], target: str
    ) -> pl.DataFrame:
        y = f"TRY_CAST({q(target)} AS DOUBLE)"
        selects = []
        source = "t"
        groups = dimensions
        if not dimensions:
            buckets = []
            for c in numeric:
                qs = [f"quantile_cont({q(c)}, {p})" for p in (0.25, 0.5, 0.75)]
                edges = self._query(f"SELECT {', '.join(qs)} FROM t", t=features).row(0)  # nosec B608
                cond = " + ".join(f"CAST({q(c)} > {lit(e)} AS INTEGER)" for e in edges)
                buckets.append(f"'q' || CAST(1 + {cond} AS VARCHAR) AS {q(c + '_quartile')}")
            source = f"(SELECT *, {', '.join(buckets)} FROM t)"  # nosec B608
            groups = [f"{c}_quartile" for c in numeric]
        for g in groups:
            selects.append(
                f"SELECT {lit(g)} AS dimension, CAST({q(g)} AS VARCHAR) AS value, "  # nosec B608
                f"CAST(count(*) AS BIGINT) AS rows, count(*) / {features.height}.0 AS share, "
                f"avg({y}) AS target_mean FROM {source} GROUP BY {q(g)}"
            )
        if not selects:
            return _empty_aggregates()
        sql = " UNION ALL ".join(selects) + " ORDER BY dimension, value"
        return self._query(sql, t=features)


def _local_only(paths: list[Path]) -> None:
    for path in paths:
        if not is_local(path):
            raise DataError(
                f"{path}: the duckdb engine reads files of this machine only; use the polars "
                "or spark engine (data.engine, or --engine) for storage URLs in paths:"
            )


def _sql_cast(column: str, raw: str, want: str) -> str:
    if _same_sql_type(raw, want):
        return column
    if raw == "VARCHAR" and want == "BIGINT":
        return _sql_whole(f"TRY_CAST(trim({column}) AS DOUBLE)")
    if raw == "VARCHAR":
        return f"TRY_CAST(trim({column}) AS {want})"
    if raw in ("DOUBLE", "FLOAT") and want == "BIGINT":
        return _sql_whole(column)
    return f"TRY_CAST({column} AS {want})"


def _sql_whole(x: str) -> str:
    """A float as BIGINT when it is a whole number a BIGINT holds (not inf, NaN, 1e20)."""
    fits = f"isfinite({x}) AND abs({x}) < {2.0**63!r} AND {x} = round({x})"
    return f"CASE WHEN {fits} THEN TRY_CAST({x} AS BIGINT) END"


def _same_sql_type(raw: str, want: str) -> bool:
    return raw == want
