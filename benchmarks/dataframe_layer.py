"""Narwhals or ibis for the generated project's one-implementation data steps (issue 17, item 3).

    python benchmarks/dataframe_layer.py [--rows 1000000] [--spark] [--runs 3]

Run it with an interpreter that has ``narwhals``, ``ibis-framework[duckdb,polars]``, ``polars``,
``duckdb``, ``pyarrow`` and ``numpy`` (plus ``pyspark`` and Java 17 for ``--spark``); a scratch venv
is enough, nothing here touches the tool's own ``.venv``::

    python3 -m venv /tmp/dfvenv && /tmp/dfvenv/bin/pip install uv
    /tmp/dfvenv/bin/uv pip install --python /tmp/dfvenv/bin/python \\
        narwhals 'ibis-framework[duckdb,polars,pyspark]' polars duckdb pyarrow numpy pyspark
    /tmp/dfvenv/bin/python benchmarks/dataframe_layer.py --spark

The step is the shape of a silver + gold step with a join: two tables (customers, ``rows / 10``,
age as text; events, ``rows``), cast age to an integer and drop rows where it does not parse,
deduplicate customers by id, keep the purchase events, aggregate them per customer (sum, count),
left-join them onto the customers and derive ``avg_spend``; sorted by id. The step is written once
per layer (one narwhals function, one ibis function) and run on each backend; every result must
equal polars' own result row for row, or the script stops with exit 2 instead of timing different
work. It prints the best of ``--runs`` wall times per (layer, backend) and each layer's cumulative
import cost in a fresh interpreter (``python -X importtime -c "import <layer>"``). Nothing is
asserted about time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_tables(folder: Path, rows: int) -> tuple[str, str]:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    n_customers = max(rows // 10, 1)
    ages = rng.integers(18, 90, n_customers).astype(str).astype(object)
    ages[rng.random(n_customers) < 0.01] = "n/a"  # text that does not parse: dropped by the step
    customers = pl.DataFrame(
        {
            "customer_id": np.concatenate([np.arange(n_customers), np.arange(100)]),  # duplicates
            "age": np.concatenate([ages, ages[:100]]).tolist(),
            "plan": rng.choice(["basic", "pro", "max"], n_customers + 100),
        }
    )
    events = pl.DataFrame(
        {
            "customer_id": rng.integers(0, n_customers, rows),
            "amount": rng.normal(50, 20, rows).round(2),
            "kind": rng.choice(["buy", "refund"], rows),
        }
    )
    c_path, e_path = str(folder / "customers.parquet"), str(folder / "events.parquet")
    customers.write_parquet(c_path)
    events.write_parquet(e_path)
    return c_path, e_path


def narwhals_step(customers: Any, events: Any) -> Any:
    import narwhals as nw

    c = nw.from_native(customers)
    e = nw.from_native(events)
    # narwhals' cast is strict on every backend that has a strict cast (polars): text that is not
    # a whole number is turned into null first, with a regex every backend evaluates the same way
    whole = nw.col("age").str.contains(r"^\s*-?[0-9]+\s*$")
    c = c.with_columns(nw.when(whole).then(nw.col("age").str.strip_chars()).alias("age"))
    c = c.with_columns(nw.col("age").cast(nw.Int64))
    c = c.filter(~nw.col("age").is_null()).unique(["customer_id"], keep="any")
    spend = (
        e.filter(nw.col("kind") == "buy")
        .group_by("customer_id")
        .agg(nw.col("amount").sum().alias("spend"), nw.col("amount").len().alias("n"))
    )
    joined = c.join(spend, on="customer_id", how="left")
    derived = joined.with_columns(
        (nw.col("spend").fill_null(0.0) / nw.col("n").fill_null(1)).alias("avg_spend")
    )
    return derived.select("customer_id", "age", "plan", "avg_spend").sort("customer_id")


def ibis_step(customers: Any, events: Any) -> Any:
    c = customers.mutate(age=customers.age.try_cast("int64"))
    c = c.filter(c.age.notnull())
    c = c.distinct(on="customer_id", keep="first")
    bought = events.filter(events.kind == "buy")
    spend = bought.group_by("customer_id").aggregate(
        spend=bought.amount.sum(), n=bought.amount.count()
    )
    joined = c.left_join(spend, "customer_id")
    derived = joined.mutate(avg_spend=joined.spend.fill_null(0.0) / joined.n.fill_null(1))
    return derived.select("customer_id", "age", "plan", "avg_spend").order_by("customer_id")


def reference(c_path: str, e_path: str) -> Any:
    """The same step in plain polars: what every layer and backend must return."""
    import polars as pl

    c = pl.scan_parquet(c_path).with_columns(pl.col("age").cast(pl.Int64, strict=False))
    c = c.filter(pl.col("age").is_not_null()).unique(["customer_id"], keep="any")
    spend = (
        pl.scan_parquet(e_path)
        .filter(pl.col("kind") == "buy")
        .group_by("customer_id")
        .agg(pl.col("amount").sum().alias("spend"), pl.len().alias("n"))
    )
    out = c.join(spend, on="customer_id", how="left").with_columns(
        (pl.col("spend").fill_null(0.0) / pl.col("n").fill_null(1)).alias("avg_spend")
    )
    return out.select("customer_id", "age", "plan", "avg_spend").sort("customer_id").collect()


def to_polars(result: Any) -> Any:
    import polars as pl

    native = result.to_native() if hasattr(result, "to_native") else result
    if isinstance(native, pl.LazyFrame):
        return native.collect()
    if hasattr(native, "to_polars"):  # an ibis expression
        return native.to_polars()
    if hasattr(native, "pl"):  # a duckdb relation
        return native.pl()
    if hasattr(native, "toArrow"):  # a Spark frame (Spark 4)
        return pl.from_arrow(native.toArrow())
    return pl.from_pandas(native.toPandas())


def same(expected: Any, got: Any) -> bool:
    import polars as pl

    got = got.with_columns(pl.col("age").cast(pl.Int64), pl.col("customer_id").cast(pl.Int64))
    exp = expected.with_columns(pl.col("customer_id").cast(pl.Int64))
    if got.columns != exp.columns or got.height != exp.height:
        return False
    return bool(
        (got["customer_id"] == exp["customer_id"]).all()
        and (got["age"] == exp["age"]).all()
        and ((got["avg_spend"] - exp["avg_spend"]).abs() < 1e-6).all()
    )


def best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def import_ms(module: str) -> float:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(rf"\|\s*(\d+)\s*\|\s*{re.escape(module)}\s*$", proc.stderr, re.MULTILINE)
    return int(match.group(1)) / 1000 if match else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--spark", action="store_true", help="also run on local PySpark")
    args = parser.parse_args()
    try:
        import duckdb
        import ibis
        import narwhals
        import polars as pl
    except ImportError as exc:
        print(f"error: {exc.name} is missing; see the docstring for the venv to run this in")
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        c_path, e_path = write_tables(Path(tmp), args.rows)
        expected = reference(c_path, e_path)
        cases: list[tuple[str, str, Callable[[], Any]]] = []
        con = duckdb.connect()
        icon_duck = ibis.duckdb.connect()
        icon_pl = ibis.polars.connect()
        cases += [
            ("polars", "(reference)", lambda: reference(c_path, e_path)),
            (
                "narwhals",
                "polars lazy",
                lambda: to_polars(narwhals_step(pl.scan_parquet(c_path), pl.scan_parquet(e_path))),
            ),
            (
                "narwhals",
                "duckdb",
                lambda: to_polars(
                    narwhals_step(con.read_parquet(c_path), con.read_parquet(e_path))
                ),
            ),
            (
                "ibis",
                "duckdb",
                lambda: to_polars(
                    ibis_step(icon_duck.read_parquet(c_path), icon_duck.read_parquet(e_path))
                ),
            ),
            (
                "ibis",
                "polars",
                lambda: to_polars(
                    ibis_step(icon_pl.read_parquet(c_path), icon_pl.read_parquet(e_path))
                ),
            ),
        ]
        if args.spark:
            from pyspark.sql import SparkSession

            spark = (
                SparkSession.builder.master("local[*]")
                .config("spark.ui.enabled", "false")
                .config("spark.ui.showConsoleProgress", "false")
                .getOrCreate()
            )
            spark.sparkContext.setLogLevel("ERROR")
            icon_spark = ibis.pyspark.connect(spark)
            cases += [
                (
                    "narwhals",
                    "pyspark",
                    lambda: to_polars(
                        narwhals_step(spark.read.parquet(c_path), spark.read.parquet(e_path))
                    ),
                ),
                (
                    "ibis",
                    "pyspark",
                    lambda: to_polars(
                        ibis_step(icon_spark.read_parquet(c_path), icon_spark.read_parquet(e_path))
                    ),
                ),
            ]
        print(
            f"{args.rows:,} events, {expected.height:,} customers after the step; "
            f"narwhals {narwhals.__version__}, ibis {ibis.__version__}, "
            f"polars {pl.__version__}, duckdb {duckdb.__version__}"
        )
        print(f"{'layer':10} {'backend':12} {'best of ' + str(args.runs):>10}")
        for layer, backend, fn in cases:
            seconds, out = best_of(args.runs, fn)
            if not same(expected, out):
                print(f"error: {layer} on {backend} returned a different result than polars")
                return 2
            print(f"{layer:10} {backend:12} {seconds:9.3f}s")
    for module in ("narwhals", "ibis"):
        print(f"import {module}: {import_ms(module):.0f} ms cumulative (fresh interpreter)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
