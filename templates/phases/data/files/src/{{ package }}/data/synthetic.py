"""Seeded synthetic customer records for the churn / lifetime-value use case, and their orders.

Realistic enough to exercise every step of the pipeline: PII columns (name, email, phone), a
learnable binary target ``churned`` and a numeric target ``lifetime_value``, plus the defects real
extracts have: missing values, outliers, exact duplicate rows and a few rows that break the
contract (impossible age, unknown contract type, negative charges, missing id, missing targets).
The same ``rows`` and ``seed`` always give the same frame.

:func:`generate_orders` gives the orders of those customers (about three each, fewer for those
who churn), the history table the default project joins in ``data/features.py``, with its own
defects: missing and negative amounts, exact duplicates, orders of unknown customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

CONTRACT_TYPES = ("month-to-month", "one-year", "two-year")
PAYMENT_METHODS = ("bank-transfer", "credit-card", "electronic-check", "mailed-check")
INTERNET_SERVICES = ("dsl", "fiber", "none")
REGIONS = ("east", "north", "south", "west")
YES_NO = ("no", "yes")
TARGETS = ("churned", "lifetime_value")
CHANNELS = ("phone", "store", "web")
#: synthetic orders are placed in these two years
ORDER_DAYS = (np.datetime64("2024-01-01"), 731)

_FIRST_NAMES_TEXT = (
    "Ada Alan Amara Ana Ben Bruno Carla Chen Chloe Dan Dara Elena Emil Eva Farah Felix Grace "
    "Hana Hugo Ines Ivan Jamal Jana Jon Kai Kofi Lara Leo Lina Luca Maya Mei Mila Nadia Noah "
    "Nora Omar Oskar Paula Priya Quinn Rafael Rosa Sami Sara Sven Tara Theo Uma Victor Wen Yara "
    "Yusuf Zoe"
)
FIRST_NAMES = tuple(_FIRST_NAMES_TEXT.split())
_LAST_NAMES_TEXT = (
    "Abbott Alvarez Baker Berg Costa Dubois Eriksen Fischer Garcia Haddad Hansen Ito Jensen "
    "Kaur Khan Kowalski Larsen Lopez Meyer Moreau Nakamura Novak Okafor Olsen Patel Petrov "
    "Quint Rossi Santos Schmidt Silva Smith Tanaka Torres Umar Varga Wagner Weber Xu Yilmaz "
    "Young Zhang"
)
LAST_NAMES = tuple(_LAST_NAMES_TEXT.split())
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")


@dataclass(frozen=True)
class Defects:
    """How many defective rows of each kind :func:`generate` injects for a number of rows."""

    duplicates: int
    per_broken_kind: int
    null_fraction: float = 0.02
    outlier_fraction: float = 0.003

    @property
    def broken_rows(self) -> int:
        """Rows that break the contract: five kinds, disjoint rows (one target is always kept)."""
        return 5 * self.per_broken_kind


def defects_for(rows: int) -> Defects:
    return Defects(duplicates=max(1, rows // 100), per_broken_kind=max(1, rows // 2000))


def generate(rows: int, seed: int = 42) -> pl.DataFrame:
    """``rows`` customer records (duplicates included), deterministic for a seed."""
    if rows < 10:
        raise ValueError(f"rows must be at least 10, got {rows}")
    rng = np.random.default_rng(seed)
    defects = defects_for(rows)
    n = rows - defects.duplicates

    first = rng.integers(0, len(FIRST_NAMES), n)
    last = rng.integers(0, len(LAST_NAMES), n)
    age = np.clip(rng.normal(44, 14, n), 18, 90).round().astype(np.int64)
    tenure = np.clip(rng.gamma(1.6, 16, n), 0, 72).round().astype(np.int64)
    contract = rng.choice(3, n, p=[0.55, 0.25, 0.20])
    internet = rng.choice(3, n, p=[0.35, 0.45, 0.20])
    payment = rng.choice(4, n, p=[0.22, 0.22, 0.34, 0.22])
    paperless = rng.choice(2, n, p=[0.4, 0.6])
    base_charge = np.array([52.0, 82.0, 22.0])[internet]
    monthly = np.clip(base_charge + rng.normal(0, 9, n), 18, 130).round(2)
    total = (monthly * tenure * rng.uniform(0.95, 1.05, n)).round(2)
    support = rng.poisson(0.9 + 0.9 * (internet == 1), n).astype(np.int64)

    logit = (
        -1.1
        + 1.5 * (contract == 0)
        - 1.2 * (contract == 2)
        - 0.045 * tenure
        + 0.40 * support
        + 0.018 * (monthly - 60)
        + 0.55 * (payment == 2)
        + 0.35 * (internet == 1)
        - 0.012 * (age - 44)
    )
    p_churn = 1.0 / (1.0 + np.exp(-logit))
    churned = (rng.random(n) < p_churn).astype(np.int64)
    months_left = (1 - p_churn) * np.array([10.0, 24.0, 36.0])[contract]
    ltv = np.clip((monthly * (tenure + months_left)) * rng.lognormal(0, 0.08, n), 0, None)

    frame = pl.DataFrame(
        {
            "_i": np.arange(1, n + 1, dtype=np.int64),
            "_first": _pick(FIRST_NAMES, first),
            "_last": _pick(LAST_NAMES, last),
            "_domain": _pick(EMAIL_DOMAINS, rng.integers(0, 3, n)),
            "_phone": rng.integers(0, 10_000_000, n),
            "age": age,
            "region": _pick(REGIONS, rng.integers(0, 4, n)),
            "tenure_months": tenure,
            "contract": _pick(CONTRACT_TYPES, contract),
            "internet_service": _pick(INTERNET_SERVICES, internet),
            "payment_method": _pick(PAYMENT_METHODS, payment),
            "paperless_billing": _pick(YES_NO, paperless),
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": support,
            "churned": churned,
            "lifetime_value": ltv.round(2),
        }
    )
    phone = pl.col("_phone").cast(pl.Utf8).str.zfill(7)
    frame = frame.select(
        pl.format("C{}", pl.col("_i").cast(pl.Utf8).str.zfill(7)).alias("customer_id"),
        pl.format("{} {}", "_first", "_last").alias("name"),
        pl.format(
            "{}.{}{}@{}",
            pl.col("_first").str.to_lowercase(),
            pl.col("_last").str.to_lowercase(),
            pl.col("_i"),
            "_domain",
        ).alias("email"),
        pl.format("+1-555-{}-{}", phone.str.slice(0, 3), phone.str.slice(3, 4)).alias("phone"),
        pl.exclude("_i", "_first", "_last", "_domain", "_phone"),
    )
    frame = _inject_defects(frame, rng, defects)
    return frame


def _inject_defects(frame: pl.DataFrame, rng: np.random.Generator, d: Defects) -> pl.DataFrame:
    n = frame.height
    columns = {name: frame.get_column(name) for name in frame.columns}

    # missing values and outliers in feature columns (imputed / clipped in silver)
    for name in ("age", "total_charges", "payment_method", "support_calls", "internet_service"):
        idx = rng.choice(n, int(n * d.null_fraction), replace=False)
        columns[name] = columns[name].scatter(idx, None)
    k = max(1, int(n * d.outlier_fraction))
    idx = rng.choice(n, k, replace=False)
    columns["monthly_charges"] = columns["monthly_charges"].scatter(
        idx, (columns["monthly_charges"].gather(idx).fill_null(50.0) * 12).round(2)
    )
    idx = rng.choice(n, k, replace=False)
    columns["support_calls"] = columns["support_calls"].scatter(idx, rng.integers(40, 90, k))

    # contract-breaking rows: disjoint row sets, one kind each
    per = d.per_broken_kind
    broken = rng.choice(n, 5 * per, replace=False).reshape(5, per)
    columns["age"] = columns["age"].scatter(broken[0], rng.choice([-4, 0, 142, 230], per))
    columns["contract"] = columns["contract"].scatter(broken[1], "weekly")
    columns["monthly_charges"] = columns["monthly_charges"].scatter(broken[2], -abs(19.99))
    columns["customer_id"] = columns["customer_id"].scatter(broken[3], None)
    columns["churned"] = columns["churned"].scatter(broken[4][: (per + 1) // 2], None)
    columns["lifetime_value"] = columns["lifetime_value"].scatter(broken[4][(per + 1) // 2 :], None)

    frame = pl.DataFrame(columns)
    # exact duplicate rows (re-sent records), spread through the extract
    dupes = frame.select(pl.all().gather(rng.choice(n, d.duplicates, replace=False)))
    out = pl.concat([frame, dupes])
    return out.select(pl.all().gather(rng.permutation(out.height)))


def _pick(values: tuple[str, ...] | list[str], codes: np.ndarray) -> pl.Series:
    """``values[codes]`` as a string Series (fast: a gather, not a Python loop)."""
    return pl.Series(values, dtype=pl.Utf8).gather(codes)


def generate_orders(rows: int, seed: int = 42) -> pl.DataFrame:
    """The orders of the customers :func:`generate` gives for ``rows`` and ``seed``."""
    customers = generate(rows, seed).filter(pl.col("customer_id").is_not_null())
    customers = customers.unique("customer_id", keep="first", maintain_order=True)
    rng = np.random.default_rng(seed + 1)
    churned = customers.get_column("churned").fill_null(0).to_numpy()
    monthly = customers.get_column("monthly_charges").fill_null(50.0).abs().to_numpy()
    counts = rng.poisson(np.where(churned == 1, 1.6, 3.6))
    n = int(counts.sum())
    owner = np.repeat(np.arange(customers.height), counts)
    start, days = ORDER_DAYS
    # churners' orders stop earlier: their last order is longer ago
    span = np.where(churned[owner] == 1, days * 0.6, days).astype(np.int64)
    day = start + rng.integers(0, np.maximum(span, 1)).astype("timedelta64[D]")
    amount = np.clip(monthly[owner] * rng.lognormal(-0.2, 0.35, n), 1.0, None).round(2)
    channel = rng.choice(3, n, p=[0.15, 0.35, 0.5])
    frame = pl.DataFrame(
        {
            "order_id": pl.Series(np.arange(1, n + 1), dtype=pl.Int64),
            "customer_id": customers.get_column("customer_id").gather(owner),
            "order_date": pl.Series(day.astype(str)),
            "amount": amount,
            "channel": _pick(CHANNELS, channel),
        }
    )
    frame = frame.with_columns(
        pl.format("O{}", pl.col("order_id").cast(pl.Utf8).str.zfill(8)).alias("order_id")
    )
    return _order_defects(frame, rng)


def _order_defects(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    n = frame.height
    amount = frame.get_column("amount")
    amount = amount.scatter(rng.choice(n, max(1, n // 100), replace=False), None)
    amount = amount.scatter(rng.choice(n, max(1, n // 2000), replace=False), -5.0)
    unknown = rng.choice(n, max(1, n // 1000), replace=False)
    owner = frame.get_column("customer_id").scatter(unknown, "C9999999")
    frame = frame.with_columns(amount.alias("amount"), owner.alias("customer_id"))
    dupes = frame.select(pl.all().gather(rng.choice(n, max(1, n // 100), replace=False)))
    out = pl.concat([frame, dupes])
    return out.select(pl.all().gather(rng.permutation(out.height)))
