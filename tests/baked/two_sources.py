"""A project with two sources of its own, as a user brings them: customers from a CSV file, their
orders from JSON lines, and the join written in the project's own (user-owned) data/features.py.

Used by the baked tests that need the must-show project of issue 17 (two sources, a join) on
every engine: ``bake(example, sets=[*SOURCES, ...])`` then :func:`own_data`.
"""

from __future__ import annotations

import json
from typing import Any

from .conftest import Baked

#: the two sources (data.source is the main table's entry, kept for the one-source shorthand)
SOURCES = [
    "data.source.kind=csv", "data.source.path=data/raw/customers.csv",
    "data.source.rows=10000", "data.source.seed=7",  # the example's synthetic options, made equal
    "data.sources.customers.kind=csv", "data.sources.customers.path=data/raw/customers.csv",
    "data.sources.customers.rows=10000", "data.sources.customers.seed=7",
    "data.sources.orders.kind=json", "data.sources.orders.path=data/raw/orders.jsonl",
    "data.sources.orders.id_column=order_id", "data.id_column=customer_id",
]  # fmt: skip
#: the raw files: the synthetic customers (without the other target) and their orders, written
#: as a CSV file and a JSON-lines file
RAW = """
import json
from pathlib import Path
from {package}.data import synthetic
Path('data/raw').mkdir(parents=True, exist_ok=True)
synthetic.generate({rows}, 7).drop('lifetime_value').write_csv('data/raw/customers.csv')
synthetic.generate_orders({rows}, 7).write_ndjson('data/raw/orders.jsonl')
print(json.dumps('ok'))
"""
#: the user's data/features.py: order aggregates per customer joined onto the customers
FEATURES = '''"""Customers joined with their orders (user-owned)."""

from __future__ import annotations

from collections.abc import Mapping

import narwhals as nw

MAIN_TABLE = "customers"
ID_COLUMN: str | None = "customer_id"


def aggregate_features(tables: Mapping[str, nw.LazyFrame]) -> nw.LazyFrame | None:
    cents = (nw.col("amount") * 100 + 0.5).floor().cast(nw.Int64)
    return (
        tables["orders"]
        .group_by("customer_id")
        .agg(
            nw.len().cast(nw.Float64).alias("orders_count"),
            (cents.sum().cast(nw.Float64) / (cents.count() * 100).cast(nw.Float64)).alias(
                "orders_mean_amount"
            ),
            (nw.col("channel") == "web").cast(nw.Float64).mean().alias("orders_web_share"),
        )
    )


def derive_features(frame: nw.LazyFrame) -> nw.LazyFrame:
    months = nw.max_horizontal(nw.col("tenure_months").cast(nw.Float64), nw.lit(1.0))
    return frame.with_columns(
        (nw.col("total_charges").cast(nw.Float64) / months).alias("avg_monthly_spend")
    )


def build_features(tables: Mapping[str, nw.LazyFrame]) -> nw.LazyFrame:
    entity = aggregate_features(tables)
    assert entity is not None
    names = [c for c in entity.collect_schema().names() if c != "customer_id"]
    joined = tables["customers"].join(entity, on="customer_id", how="left")
    return derive_features(joined.with_columns(nw.col(*names).fill_null(0.0)))
'''
ENTITY_FEATURES = ["orders_count", "orders_mean_amount", "orders_web_share"]
DERIVED = ["avg_monthly_spend"]


def own_data(project: Baked, rows: int = 10_000) -> None:
    """Write the raw CSV and JSON-lines files and the user's features.py into ``project``."""
    proc = project.python(RAW.format(package=project.package, rows=rows))
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == "ok", proc.stdout
    (project.path / "src" / project.package / "data" / "features.py").write_text(
        FEATURES, encoding="utf-8"
    )


def read_json(project: Baked, path: str) -> Any:
    return json.loads((project.path / path).read_text(encoding="utf-8"))
