"""The data steps, written once over narwhals for every engine (polars, duckdb, Spark).

An engine (``engines.py``, ``spark_engine.py``) keeps its frames in its own form (polars
frames, duckdb tables, Spark DataFrames on the cluster) and adds only what really differs
between them: reading and casting bronze (no engine casts text the same way), exact quantiles,
salted hashing, keeping a computed frame, writing parquet. Every other step (contract checks,
deduplication, statistics, imputation, clipping, aggregates) is here, once; the driver only
receives counts, statistics, distinct categories, aggregates and the few rows that break the
contract (those get their exact reasons from the pandera contract, :func:`contracts.violations`).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl

from . import contracts
from .contracts import HASH_PATTERN, Contract
from .errors import DataError

try:  # optional accelerator for PII hashing: registers the ``.chash`` expression namespace
    import polars_hash as _plh
except ImportError:  # pragma: no cover - hashlib gives the same digests
    _plh = None  # type: ignore[assignment]

#: a frame of an engine: a polars DataFrame, a duckdb relation or a Spark DataFrame
Frame = Any
#: at most this many bronze rows may break the contract (they are brought to the driver)
MAX_SUSPECT_ROWS = 1_000_000
#: a line break of any kind (the characters themselves, not regex escapes): the regex dialects
#: of duckdb (RE2) and Spark (Java) read `\s`, `$` or `.` around one otherwise than Rust's, which
#: polars and pandera run, so there a value with one never matches: a suspect pandera decides on
LINE_BREAK = "[\r\n\u0085\u2028\u2029]"


@dataclass(frozen=True)
class Stats:
    """Per numeric column: median, first and third quartile; per categorical: the mode."""

    median: dict[str, float | None]
    q1: dict[str, float | None]
    q3: dict[str, float | None]
    mode: dict[str, str | None]
    nulls: dict[str, int]


class Engine(ABC):
    """The steps over narwhals; subclasses add the engine-specific ones (see the module doc)."""

    name = "engine"

    # -- engine-specific --------------------------------------------------------------------

    @abstractmethod
    def load(self, parts: list[Path], contract: Contract) -> Frame:
        """Bronze partitions -> contract columns cast to their types, plus ``_row`` (bronze row
        number across partitions) and ``_cast_errors`` (columns whose value could not be cast)."""

    @abstractmethod
    def quarantine(
        self, parts: list[Path], bad: pl.DataFrame, contract: Contract, salt: str, root: Path
    ) -> pl.DataFrame:
        """The raw bronze rows of ``bad`` (PII masked) with ``_row``, ``_source``, ``_reason``."""

    @abstractmethod
    def keep(self, frame: nw.LazyFrame[Any]) -> Frame:
        """``frame`` computed once and kept for the next steps (an engine frame)."""

    @abstractmethod
    def scan(self, path: Path) -> nw.LazyFrame[Any]:
        """A silver parquet file as a narwhals lazy frame of the engine (nothing read yet)."""

    @abstractmethod
    def mask(self, frame: nw.LazyFrame[Any], pii: list[str], salt: str) -> nw.LazyFrame[Any]:
        """``frame`` with the ``pii`` columns replaced by ``sha256(salt + value)`` (hex)."""

    @abstractmethod
    def write_parquet(self, frame: Frame, path: Path) -> None:
        """Write ``frame`` as one parquet file at ``path`` (rows in frame order)."""

    def quantiles(
        self, frame: nw.LazyFrame[Any], columns: list[str], probes: tuple[float, ...]
    ) -> dict[str, list[float | None]]:
        """Exact, linearly interpolated quantiles ``probes`` of each column."""
        exprs = [
            nw.col(c).cast(nw.Float64).quantile(q, interpolation="linear").alias(f"{c}:{i}")
            for c in columns
            for i, q in enumerate(probes)
        ]
        row = _row(frame.select(exprs)) if exprs else {}
        return {c: [row[f"{c}:{i}"] for i in range(len(probes))] for c in columns}

    def matches(self, expr: nw.Expr, pattern: str) -> nw.Expr:
        """True where the text starts with a match of ``pattern`` (:func:`rust_matches`: exact
        on polars; see :data:`LINE_BREAK` for the other engines)."""
        return rust_matches(expr, pattern)

    @property
    def delta_session(self) -> Any:
        """The Spark session Delta tables are written through, None for delta-rs."""
        return None

    def release(self) -> None:  # noqa: B027 - a hook: an engine that keeps nothing frees nothing
        """Free what the engine kept for the step's frames (the end of a step, or its failure)."""

    # -- the steps, once --------------------------------------------------------------------

    def lazy(self, frame: Frame) -> nw.LazyFrame[Any]:
        """An engine frame as a narwhals lazy frame."""
        native = nw.from_native(frame)
        return native.lazy() if isinstance(native, nw.DataFrame) else native

    def materialize(self, frame: nw.LazyFrame[Any]) -> Frame:
        return self.keep(frame)

    def materialize_all(
        self, frames: list[nw.LazyFrame[Any]], order: str | None = None
    ) -> list[Frame]:
        """``frames`` computed (rows sorted by ``order`` when given), what they share computed
        once where the engine can."""
        return [self.keep(f.sort(order) if order else f) for f in frames]

    def height(self, frame: Frame) -> int:
        return int(_row(self.lazy(frame).select(nw.len().alias("n")))["n"])

    def columns(self, frame: Frame) -> list[str]:
        return list(self.lazy(frame).collect_schema().names())

    def violations(self, typed: Frame, contract: Contract) -> pl.DataFrame:
        """``_row`` and ``_reason`` of every broken rule: the rows any rule may reject are found
        by the engine; only those reach the driver, where the pandera contract gives their
        exact reasons (:func:`contracts.violations`)."""
        lazy = self.lazy(typed)
        broken = [b for c in contract.columns for _, b in self.rules(c, bronze=True)]
        suspect = ~nw.col("_cast_errors").is_null()
        for condition in broken:
            suspect = suspect | condition.fill_null(value=False)
        suspects = self.keep(lazy.filter(suspect))
        count = self.height(suspects)
        if count > MAX_SUSPECT_ROWS:
            raise DataError(
                f"{count} of the {self.height(typed)} bronze rows break the {contract.dataset} "
                f"contract (more than {MAX_SUSPECT_ROWS} to quarantine): the source or the "
                "contract is wrong; check a sample with the polars engine (--engine polars)"
            )
        return contracts.violations(self.collect(suspects), contract)

    def drop_rows(self, typed: Frame, rows: pl.Series) -> Frame:
        """``typed`` without the rows whose ``_row`` is in ``rows`` and without ``_cast_errors``
        (not computed yet: deduplication reads it once)."""
        return self.remove(self.lazy(typed).drop("_cast_errors"), rows)

    def remove(self, frame: nw.LazyFrame[Any], rows: pl.Series) -> Frame:
        """``frame`` without the rows whose ``_row`` is in ``rows`` (in their order on polars;
        transform sorts by ``_row`` for every engine)."""
        return frame.filter(~nw.col("_row").is_in(rows.to_list())) if rows.len() else frame

    def dedupe(self, frame: Frame, id_column: str | None, rows: int) -> tuple[Frame, int, int]:
        """Drop exact duplicate rows (keep the first), then repeated ids (keep the latest) of the
        ``rows`` rows of ``frame``. Two equal rows have the same id, so with an id column only the
        rows of a repeated id are compared whole: one window over the id for every row, then the
        full-row and latest-row windows over those few, whose losers are removed."""
        lazy = self.lazy(frame)
        columns = [c for c in lazy.collect_schema().names() if c != "_row"]
        first = nw.col("_row") == nw.col("_row").min().over(*columns)
        if not id_column:
            exact = self.keep(_where(lazy, first))
            return exact, rows - self.height(exact), 0
        repeated = self.keep(_where(lazy, nw.col("_row").count().over(id_column) > 1))
        exact = self.keep(_where(self.lazy(repeated), first))
        latest = _where(self.lazy(exact), nw.col("_row") == nw.col("_row").max().over(id_column))
        losers = self.lazy(repeated).select("_row").join(latest.select("_row"), on="_row",
                                                         how="anti")  # fmt: skip
        dropped = self.collect(losers).get_column("_row")
        kept = self.keep(self.lazy(self.remove(lazy, dropped)))
        repeated_rows, exact_rows = self.height(repeated), self.height(exact)
        latest_rows = repeated_rows - dropped.len()
        return kept, repeated_rows - exact_rows, exact_rows - latest_rows

    def stats(self, frame: Frame, numeric: list[str], categorical: list[str]) -> Stats:
        lazy = self.lazy(frame)
        quantiles = self.quantiles(lazy, numeric, (0.5, 0.25, 0.75))
        counts = [nw.col(c).null_count().alias(c) for c in numeric + categorical]
        nulls = _row(lazy.select(counts)) if counts else {}
        modes: dict[str, str | None] = {}
        for c in categorical:
            top = (
                lazy.filter(~nw.col(c).is_null())
                .group_by(c)
                .agg(nw.len().alias("_n"))
                .sort(["_n", c], descending=[True, False])
                .head(1)
                .collect("polars")
            )
            modes[c] = top.item(0, c) if len(top) else None
        return Stats(
            median={c: quantiles[c][0] for c in numeric},
            q1={c: quantiles[c][1] for c in numeric},
            q3={c: quantiles[c][2] for c in numeric},
            mode=modes,
            nulls={c: int(nulls[c] or 0) for c in numeric + categorical},
        )

    def count_outside(self, frame: Frame, bounds: dict[str, tuple[float, float]]) -> dict[str, int]:
        if not bounds:
            return {}
        outside = [
            ((nw.col(c) < lo) | (nw.col(c) > hi)).cast(nw.Int64).sum().alias(c)
            for c, (lo, hi) in bounds.items()
        ]
        return {c: int(v or 0) for c, v in _row(self.lazy(frame).select(outside)).items()}

    def transform(
        self,
        frame: Frame,
        fills: dict[str, Any],
        bounds: dict[str, tuple[float, float]],
        pii: list[str],
        salt: str,
    ) -> Frame:
        """Impute, clip and mask PII; rows stay in ``_row`` order, ``_row`` is dropped."""
        lazy = self.lazy(frame)
        schema = lazy.collect_schema()
        exprs: list[nw.Expr] = []
        for c in schema.names():
            expr = nw.col(c)
            if c in fills:
                expr = expr.fill_null(nw.lit(fills[c], dtype=schema[c]))
            if c in bounds:
                lo, hi = bounds[c]
                clipped = expr.clip(nw.lit(lo, dtype=schema[c]), nw.lit(hi, dtype=schema[c]))
                # NaN stays NaN on every engine (SQL's LEAST/GREATEST would clip it)
                expr = (
                    nw.when(expr.is_nan()).then(expr).otherwise(clipped)
                    if (schema[c] == nw.Float64)
                    else clipped
                )
            exprs.append(expr.alias(c))
        cleaned = self.mask(lazy.select(exprs), pii, salt) if pii else lazy.select(exprs)
        return self.keep(cleaned.sort("_row").drop("_row"))

    def check_silver(self, cleaned: Frame, contract: Contract, fills: dict[str, Any]) -> None:
        """Raise :class:`DataError` when silver breaks its own contract (a pipeline bug).

        What is checked is what silver wrote: every PII value a salted SHA-256, no feature, id or
        required column missing after imputation, each fill value within its column's rules. The
        values silver left as they were passed the same rules in :meth:`violations` (the rows
        that broke one are in the quarantine), and the id is unique by :meth:`dedupe`'s
        construction (gold checks the main table's again): neither is checked a second time."""
        rules: dict[str, nw.Expr] = {}
        for c in contract.columns:
            x = nw.col(c.name)
            if c.role == "pii":
                hashed = self.matches(x, HASH_PATTERN)
                rules[f"{c.name}: not a salted SHA-256"] = ~x.is_null() & ~hashed
            elif c.role in ("feature", "id") or not c.nullable:
                rules[f"{c.name}: missing"] = _missing(x, c.dtype == "Float64")
        what = "silver output breaks its own contract"
        self.check(cleaned, contract.names, rules, what, None)
        # the fill values are checked on the driver (a polars row, Rust's regex)
        filled = [contract.column(name) for name in fills]
        one_row = pl.DataFrame(
            {c.name: [fills[c.name]] for c in filled},
            schema={c.name: contracts.DTYPES[c.dtype] for c in filled},
        )
        breaks = [(f"{c.name}: fill value {fills[c.name]!r} {reason}", broken)
                  for c in filled for reason, broken in value_rules(c, rust_matches)]  # fmt: skip
        if breaks:
            row = _row(nw.from_native(one_row).lazy().select(
                [broken.alias(f"b{i}") for i, (_, broken) in enumerate(breaks)]))  # fmt: skip
            broken = [reason for i, (reason, _) in enumerate(breaks) if row[f"b{i}"]]
            if broken:
                raise DataError(f"{what} (a pipeline bug): {'; '.join(broken)}")

    def check_gold(self, features: Frame, gold: dict[str, Any]) -> None:
        """Raise :class:`DataError` when gold breaks the gold contract (a pipeline bug)."""
        names: list[str] = []
        rules: dict[str, nw.Expr] = {}
        if gold["id_column"]:
            names.append(gold["id_column"])
            rules[f"{gold['id_column']}: missing"] = nw.col(gold["id_column"]).is_null()
        for f in gold["features"]:
            x = nw.col(f["name"])
            names.append(f["name"])
            rules[f"{f['name']}: missing"] = _missing(x, f["kind"] == "numeric")
            if f["kind"] == "numeric":
                rules[f"{f['name']}: not finite"] = ~x.is_finite()
            else:
                rules[f"{f['name']}: not one of the categories"] = ~x.is_in(f["categories"])
        names.append(gold["target"])
        target = self.lazy(features).collect_schema()[gold["target"]]
        rules[f"{gold['target']}: missing"] = _missing(nw.col(gold["target"]),
                                                       target == nw.Float64)  # fmt: skip
        self.check(features, names, rules, "gold features break their contract",
                   gold["id_column"])  # fmt: skip

    def rules(self, col: contracts.Column, bronze: bool = False) -> list[tuple[str, nw.Expr]]:
        """:func:`value_rules` of ``col`` in this engine's regex dialect."""
        return value_rules(col, self.matches, bronze)

    def check(
        self, frame: Frame, names: list[str], rules: dict[str, nw.Expr], what: str,
        key: str | None,
    ) -> None:  # fmt: skip
        """Check that ``frame`` has exactly the columns ``names`` in order, then count the rows
        breaking each rule (and repeated ``key`` values) in one pass; raise a :class:`DataError`
        naming the broken rules."""
        lazy = self.lazy(frame)
        columns = list(lazy.collect_schema().names())
        if columns != names:
            raise DataError(f"{what} (a pipeline bug): columns {columns}, expected {names}")
        counts = [
            rule.fill_null(value=False).cast(nw.Int64).sum().alias(f"r{i}")
            for i, rule in enumerate(rules.values())
        ]
        if key:
            counts += [nw.len().alias("_rows"), nw.col(key).n_unique().alias("_ids")]
        row = _row(lazy.select(counts)) if counts else {}
        broken = [
            f"{reason} ({row[f'r{i}']} rows)" for i, reason in enumerate(rules) if row.get(f"r{i}")
        ]
        if key and row["_ids"] != row["_rows"]:
            broken.append(f"{key}: not unique ({row['_rows'] - row['_ids']} repeated)")
        if broken:
            raise DataError(f"{what} (a pipeline bug): {'; '.join(broken)}")

    def distinct(self, frame: Frame, column: str) -> list[Any]:
        """The sorted distinct non-null values of ``column`` (few: categories, classes)."""
        values = (
            self.lazy(frame)
            .select(column)
            .filter(~nw.col(column).is_null())
            .unique()
            .sort(column)
            .collect("polars")
        )
        return list(values.get_column(column).to_list())

    def aggregates(
        self, features: Frame, dimensions: list[str], numeric: list[str], target: str
    ) -> pl.DataFrame:
        """Rows, share and target mean per value of each dimension (long format); with no
        dimension, per quartile of each numeric feature."""
        lazy = self.lazy(features)
        total = self.height(features)
        numeric_target = lazy.collect_schema()[target].is_numeric()
        # a text target (species, yes/no) has no mean: its target_mean is null
        mean = nw.col(target).cast(nw.Float64).mean().alias("target_mean")
        means = [mean] if numeric_target else []
        target_mean = (
            nw.col("target_mean").cast(nw.Float64)
            if numeric_target
            else nw.lit(None, nw.Float64).alias("target_mean")
        )
        groups = dimensions
        if not dimensions and numeric:
            edges = self.quantiles(lazy, numeric, (0.25, 0.5, 0.75))
            buckets = []
            for c in numeric:
                rank = nw.lit(1)
                for edge in edges[c]:
                    rank = rank + (nw.col(c) > edge).cast(nw.Int64)
                text = nw.concat_str([nw.lit("q"), rank.cast(nw.String)])
                buckets.append(text.alias(f"{c}_quartile"))
            lazy = lazy.with_columns(buckets)
            groups = [f"{c}_quartile" for c in numeric]
        frames = [
            lazy.group_by(g)
            .agg(nw.len().alias("rows"), *means)
            .select(
                nw.lit(g).alias("dimension"),
                nw.col(g).cast(nw.String).alias("value"),
                nw.col("rows").cast(nw.Int64),
                (nw.col("rows") / total).alias("share"),
                target_mean,
            )
            for g in groups
        ]
        if not frames:
            return empty_aggregates()
        out = nw.concat(frames, how="vertical").sort("dimension", "value").collect("polars")
        return out.to_native()

    def collect(self, frame: Frame) -> pl.DataFrame:
        """A (small) engine frame on the driver, as polars."""
        return self.lazy(frame).collect("polars").to_native()


def rust_matches(expr: nw.Expr, pattern: str) -> nw.Expr:
    """True where the text starts with a match of ``pattern`` in Rust's regex, as pandera's
    str_matches (its polars backend) tests it."""
    return expr.str.contains(pattern if pattern.startswith("^") else f"^{pattern}")


def value_rules(
    col: contracts.Column, matches: Callable[[nw.Expr, str], nw.Expr], bronze: bool = False
) -> list[tuple[str, nw.Expr]]:
    """The value rules of ``col`` (range, categories, pattern tested by ``matches``) as
    ``(reason, broken)``, where ``broken`` is true for a non-null value that breaks the rule (as
    pandera's checks); with ``bronze``, a missing value of a column that must have one too."""
    x = nw.col(col.name)
    rules: list[tuple[str, nw.Expr]] = []
    if col.ge is not None:
        rules.append((f"below {col.ge}", x < col.ge))
    if col.le is not None:
        rules.append((f"above {col.le}", x > col.le))
    if col.categories is not None:
        rules.append(("not one of the categories", ~x.is_in(list(col.categories))))
    if col.pattern:
        rules.append((f"does not match {col.pattern}", ~matches(x, col.pattern)))
    out = [(reason, ~x.is_null() & broken) for reason, broken in rules]
    if bronze and not col.nullable:
        out.append(("missing", _missing(x, col.dtype == "Float64")))
    return out


def _where(frame: nw.LazyFrame[Any], keep: nw.Expr) -> nw.LazyFrame[Any]:
    """The rows of ``frame`` where the window expression ``keep`` is true (computed as a column
    first: SQL engines evaluate no window inside WHERE)."""
    return frame.with_columns(keep.alias("_keep")).filter(nw.col("_keep")).drop("_keep")


def _row(frame: nw.LazyFrame[Any]) -> dict[str, Any]:
    """The one row of an aggregation, as a dict."""
    out = frame.collect("polars").to_native()
    return out.row(0, named=True) if out.height else dict.fromkeys(out.columns)


def _missing(x: nw.Expr, is_float: bool) -> nw.Expr:
    """Null, and NaN in a float column: what pandera counts as missing."""
    return (x.is_null() | x.is_nan()) if is_float else x.is_null()


def empty_aggregates() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "dimension": pl.Utf8,
            "value": pl.Utf8,
            "rows": pl.Int64,
            "share": pl.Float64,
            "target_mean": pl.Float64,
        }
    )


def quarantine_rows(
    raw: pl.LazyFrame, bad: pl.DataFrame, contract: Contract, salt: str
) -> pl.DataFrame:
    """Bronze rows (``_row``, the bronze columns, ``_source``) that ``bad`` names, as text with
    PII masked and their reasons joined in ``_reason``."""
    reasons = bad.group_by("_row").agg(pl.col("_reason").sort().str.join("; ")).sort("_row")
    rows = (
        raw.filter(pl.col("_row").is_in(reasons.get_column("_row").implode()))
        .join(reasons.lazy(), on="_row", how="inner")
        .sort("_row")
        .with_columns(pl.exclude("_row").cast(pl.Utf8))
        .collect()
    )
    masked = [mask(rows.get_column(c), salt).alias(c) for c in contract.pii if c in rows.columns]
    return rows.with_columns(masked)


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
