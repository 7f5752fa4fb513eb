"""Data contracts: which columns each layer holds, their types and rules, as pandera schemas.

A :class:`Contract` is built from the configuration and the data: the synthetic customer source
and the scikit-learn datasets have declared columns; csv, parquet and sql sources have their
contract inferred from bronze (numbers -> numeric, text with few distinct values -> categorical).
The configuration decides the roles: ``ml.target``, ``data.id_column`` and ``data.pii_columns``.

Inferred contracts also screen the columns once, at silver, and say so in the data-quality report:
- a feature name that is not an identifier (``mean radius``) is renamed (``mean_radius``), the
  bronze name kept in the column's ``source`` (two names that end up equal are an error);
- a likely row identifier (unique integers in row order or a dense range, or a name like
  ``id`` / ``*_id`` / ``*Id`` unique in almost every row) and high-cardinality text are
  excluded from the features, unless ``data.keep_features`` names them;
- ISO dates and date-times (``data.date_columns``, or text whose every value is one) are features
  of kind ``date`` / ``datetime``: gold expands them into numeric parts (year, month, ...).

Three pandera (polars) schemas come out of one contract:
- :func:`bronze_schema`: what a row must satisfy to enter silver (failures go to quarantine);
- :func:`silver_schema`: the cleaned layer (no missing features, PII masked, unique ids);
- :func:`gold_schema`: the model-ready features (Float64 numbers, categories from a closed set).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl

from ..common.config import origin
from . import synthetic
from .dates import DATE_KINDS, DATE_PARTS, DATE_PATTERN, DATETIME_PATTERN
from .errors import DataError

DTYPES: dict[str, pl.DataType] = {"Int64": pl.Int64(), "Float64": pl.Float64(), "String": pl.Utf8()}
ROLES = ("id", "pii", "feature", "target", "excluded")
#: a text column with more distinct values than this share of its rows is not a category
HIGH_CARDINALITY = 0.5
#: a column named like an identifier is one when at least this share of its values is distinct
ID_NAME_UNIQUE = 0.9
#: the ratio rules (identifier names, high-cardinality text) need at least this many rows
SCREEN_MIN_ROWS = 10
ID_NAME = re.compile(r"^(id|ID|Id)$|[_ .-](id|ID|Id)$|[a-z0-9](Id|ID)$")
SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HASH_PATTERN = r"^[0-9a-f]{64}$"
#: text columns with at most this many distinct values are categorical features (inferred sources)
MAX_CATEGORIES = 50
#: a text column is numeric when at least this share of its values parse as numbers
NUMERIC_SHARE = 0.98


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # a key of DTYPES
    role: str  # a member of ROLES
    kind: str | None = None  # "numeric" | "categorical" for features
    nullable: bool = True
    ge: float | None = None
    le: float | None = None
    categories: tuple[str, ...] | None = None
    pattern: str | None = None
    description: str = ""
    source: str | None = None  # the bronze name when silver renamed the column

    @property
    def bronze(self) -> str:
        """The column's name in bronze (and in the quarantine file)."""
        return self.source or self.name

    def checks_text(self) -> str:
        parts = []
        if not self.nullable:
            parts.append("required")
        if self.ge is not None and self.le is not None:
            parts.append(f"{_num(self.ge)} to {_num(self.le)}")
        elif self.ge is not None:
            parts.append(f">= {_num(self.ge)}")
        elif self.le is not None:
            parts.append(f"<= {_num(self.le)}")
        if self.categories is not None:
            parts.append("one of " + ", ".join(f"`{c}`" for c in self.categories))
        if self.pattern:
            parts.append(f"matches `{self.pattern}`")
        return "; ".join(parts) or "-"


@dataclass(frozen=True)
class Contract:
    dataset: str
    source: str
    task: str
    target: str | None  # None: a table other than the main one (data.sources)
    id_column: str | None
    columns: tuple[Column, ...]

    @property
    def label(self) -> str:
        """The target column (the main table's contract has one)."""
        if self.target is None:
            raise DataError(f"the {self.dataset} contract has no target: it is not the main table")
        return self.target

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def by_role(self, role: str) -> list[Column]:
        return [c for c in self.columns if c.role == role]

    @property
    def features(self) -> list[Column]:
        return self.by_role("feature")

    @property
    def numeric_features(self) -> list[str]:
        return [c.name for c in self.features if c.kind == "numeric"]

    @property
    def categorical_features(self) -> list[str]:
        return [c.name for c in self.features if c.kind == "categorical"]

    @property
    def date_features(self) -> list[str]:
        return [c.name for c in self.features if c.kind in DATE_KINDS]

    @property
    def renamed(self) -> dict[str, str]:
        """Bronze name -> silver name of every renamed column."""
        return {c.source: c.name for c in self.columns if c.source}

    @property
    def excluded(self) -> dict[str, str]:
        """Column -> why it is not a feature, for the columns the screening excluded."""
        return {c.name: c.description for c in self.by_role("excluded")}

    @property
    def pii(self) -> list[str]:
        return [c.name for c in self.by_role("pii")]

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "source": self.source,
            "task": self.task,
            "target": self.target,
            "id_column": self.id_column,
            "columns": [asdict(c) for c in self.columns],
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Contract:
        columns = []
        for raw in payload["columns"]:
            cats = raw.get("categories")
            columns.append(
                Column(**{**raw, "categories": tuple(cats) if cats is not None else None})
            )
        return cls(
            dataset=payload["dataset"],
            source=payload["source"],
            task=payload["task"],
            target=payload["target"],
            id_column=payload["id_column"],
            columns=tuple(columns),
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Contract:
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise DataError(f"{path} not found; run `silver` before `gold`") from None
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise DataError(f"{path}: not a silver contract ({exc}); rerun `silver`") from None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def safe_name(name: str) -> str:
    """A column name as an identifier, case kept: 'mean radius' -> 'mean_radius' (ONNX input
    names, request fields and Python attributes all need one)."""
    if SAFE_NAME.match(name):
        return name
    out = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_")
    return out if out and not out[0].isdigit() else f"c_{out}"


def normalize_name(name: str) -> str:
    """A column name as a snake_case identifier: 'sepal length (cm)' -> 'sepal_length_cm'."""
    out = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    return out if out and not out[0].isdigit() else f"c_{out}"


# ------------------------------------------------------------------------------------------
# declared contracts
# ------------------------------------------------------------------------------------------

CUSTOMER_COLUMNS: tuple[Column, ...] = (
    Column(
        "customer_id",
        "String",
        "feature",
        nullable=False,
        pattern=r"^C\d{7,}$",
        description="customer identifier",
    ),
    Column("name", "String", "feature", description="full name (PII)"),
    Column("email", "String", "feature", description="e-mail address (PII)"),
    Column("phone", "String", "feature", description="phone number (PII)"),
    Column("age", "Int64", "feature", "numeric", ge=18, le=100, description="age in years"),
    Column(
        "region",
        "String",
        "feature",
        "categorical",
        categories=synthetic.REGIONS,
        description="sales region",
    ),
    Column(
        "tenure_months",
        "Int64",
        "feature",
        "numeric",
        ge=0,
        le=1200,
        description="months as a customer",
    ),
    Column(
        "contract",
        "String",
        "feature",
        "categorical",
        categories=synthetic.CONTRACT_TYPES,
        description="contract type",
    ),
    Column(
        "internet_service",
        "String",
        "feature",
        "categorical",
        categories=synthetic.INTERNET_SERVICES,
        description="internet service",
    ),
    Column(
        "payment_method",
        "String",
        "feature",
        "categorical",
        categories=synthetic.PAYMENT_METHODS,
        description="payment method",
    ),
    Column(
        "paperless_billing",
        "String",
        "feature",
        "categorical",
        categories=synthetic.YES_NO,
        description="paperless billing",
    ),
    Column(
        "monthly_charges",
        "Float64",
        "feature",
        "numeric",
        ge=0,
        description="current monthly charge",
    ),
    Column("total_charges", "Float64", "feature", "numeric", ge=0, description="charges to date"),
    Column(
        "support_calls",
        "Int64",
        "feature",
        "numeric",
        ge=0,
        description="support calls in the last year",
    ),
    Column(
        "churned",
        "Int64",
        "feature",
        "categorical",
        ge=0,
        le=1,
        description="1 when the customer cancelled the next month",
    ),
    Column(
        "lifetime_value",
        "Float64",
        "feature",
        "numeric",
        ge=0,
        description="revenue over the customer's lifetime",
    ),
)


#: the synthetic orders table (synthetic.generate_orders)
ORDER_COLUMNS: tuple[Column, ...] = (
    Column("order_id", "String", "feature", pattern=r"^O[0-9]{8}$", description="order id"),
    Column("customer_id", "String", "excluded", description="the customer (the join key)"),
    Column(
        "order_date",
        "String",
        "feature",
        "date",
        pattern=DATE_PATTERN,
        description="day the order was placed (ISO date)",
    ),
    Column("amount", "Float64", "feature", "numeric", ge=0, description="order amount"),
    Column(
        "channel",
        "String",
        "feature",
        "categorical",
        categories=synthetic.CHANNELS,
        description="where the order was placed",
    ),
)


def _with_roles(columns: list[Column], cfg: dict[str, Any], where: str) -> list[Column]:
    """Apply the configuration's roles: target, id column, PII columns; other targets excluded."""
    data, ml = cfg["data"], cfg["ml"]
    target, id_col = ml["target"], data.get("id_column")
    pii = set(data.get("pii_columns") or [])
    names = {c.name for c in columns}
    for name, key in [(target, "ml.target"), (id_col, "data.id_column")] + [
        (p, "data.pii_columns") for p in sorted(pii)
    ]:
        if name is not None and name not in names:
            raise DataError(
                f"{where}: no column {name!r} ({key} in {origin(cfg, key)}); columns are: "
                f"{', '.join(sorted(names))}. Fix {key} or the source."
            )
    out = []
    for col in columns:
        if col.name == target:
            kind = "categorical" if ml["task"] == "classification" else "numeric"
            col = Column(
                col.name,
                col.dtype,
                "target",
                kind,
                False,
                col.ge,
                col.le,
                None,
                col.pattern,
                col.description,
            )
            if ml["task"] == "regression" and col.dtype == "String":
                raise DataError(
                    f"{where}: target {target!r} is text; a regression target must "
                    "be numeric (set ml.task: classification or fix the column)"
                )
        elif col.name == id_col:
            col = Column(
                col.name,
                col.dtype,
                "id",
                None,
                False,
                pattern=col.pattern,
                description=col.description,
            )
        elif col.name in pii:
            col = Column(col.name, "String", "pii", description=col.description)
        elif col.name in synthetic.TARGETS and cfg["data"]["source"]["kind"] == "synthetic":
            # the other target would leak the answer: kept in silver, never a gold feature
            note = f"{col.description} (the other target: not a feature)"
            col = Column(
                col.name, col.dtype, "excluded", None, True, col.ge, col.le, description=note
            )
        elif col.role == "feature" and col.kind is None:
            col = Column(col.name, "String", "excluded", description=col.description)
        out.append(col)
    return out


def build(cfg: dict[str, Any], bronze: pl.DataFrame, where: str) -> Contract:
    """The contract for this configuration and these bronze rows (``where`` names them)."""
    source = cfg["data"]["source"]
    kind = source["kind"]
    if kind == "synthetic":
        orders = source.get("table") == "orders"
        dataset = "orders" if orders else "customers"
        columns = list(ORDER_COLUMNS if orders else CUSTOMER_COLUMNS)
        extra = [c for c in bronze.columns if c not in {col.name for col in columns}]
        if extra:
            raise DataError(f"{where}: unexpected columns {extra} for the synthetic source")
    else:
        dataset = str(source["dataset"]) if kind == "sklearn" else _dataset_name(source)
        dates = _listed(cfg, "date_columns", bronze.columns, where)
        columns = [_infer(bronze, name, name in dates, where) for name in bronze.columns]
    columns = _with_roles(columns, cfg, where)
    if kind != "synthetic":
        keep = _listed(cfg, "keep_features", bronze.columns, where)
        columns = _rename(
            [_screen(bronze, c) if c.name not in keep else c for c in columns], cfg, where
        )
    return Contract(
        dataset=cfg.get("table") or dataset,
        source=kind,
        task=cfg["ml"]["task"],
        target=cfg["ml"]["target"],
        id_column=cfg["data"].get("id_column"),
        columns=tuple(columns),
    )


def _dataset_name(source: dict[str, Any]) -> str:
    if source["kind"] in ("csv", "parquet", "json") and source.get("path"):
        stem = Path(str(source["path"])).name.split(".")[0].replace("*", "")
        return normalize_name(stem or "records")
    return "records"


def _listed(cfg: dict[str, Any], key: str, names: list[str], where: str) -> set[str]:
    """The bronze names of the columns ``data.<key>`` lists (by bronze or renamed name)."""
    listed = cfg["data"].get(key) or []
    by_safe = {safe_name(n): n for n in names}
    out: set[str] = set()
    for name in listed:
        found = name if name in names else by_safe.get(str(name))
        if found is None:
            raise DataError(
                f"{where}: no column {name!r} (data.{key} in {origin(cfg, 'data.' + key)}); "
                f"columns are: {', '.join(sorted(names))}. Fix data.{key} or the source."
            )
        out.add(found)
    return out


def _date_kind(text: pl.Series) -> str | None:
    """``date`` / ``datetime`` when every value of ``text`` (no nulls) is an ISO one."""
    if text.len() == 0:
        return None
    stripped = text.str.strip_chars()
    if stripped.str.contains(DATE_PATTERN).all():
        return "date"
    if stripped.str.contains(DATETIME_PATTERN).all():
        return "datetime"
    return None


def _date_column(name: str, kind: str) -> Column:
    pattern = DATE_PATTERN if kind == "date" else DATETIME_PATTERN
    parts = ", ".join(DATE_PARTS[kind])
    return Column(
        name,
        "String",
        "feature",
        kind,
        pattern=pattern,
        description=f"ISO {kind}; gold features: {parts}",
    )


def _infer(frame: pl.DataFrame, name: str, date: bool = False, where: str = "bronze") -> Column:
    series = frame.get_column(name)
    dtype = series.dtype
    if dtype in (pl.Date, pl.Datetime):
        return _date_column(name, "date" if dtype == pl.Date else "datetime")
    if date:
        kind = None
        if dtype in (pl.Utf8, pl.Categorical):
            kind = _date_kind(series.cast(pl.Utf8).drop_nulls())
        if kind is None:
            raise DataError(
                f"{where}: column {name!r} is listed in data.date_columns but not every value is "
                "an ISO date (YYYY-MM-DD) or date-time (YYYY-MM-DDTHH:MM[:SS]); fix the source "
                "or remove the column from data.date_columns"
            )
        return _date_column(name, kind)
    if dtype.is_integer():
        return Column(name, "Int64", "feature", "numeric")
    if dtype.is_numeric():
        return Column(name, "Float64", "feature", "numeric")
    if dtype == pl.Boolean:
        return Column(name, "String", "feature", "categorical")
    if dtype in (pl.Utf8, pl.Categorical):
        text = series.cast(pl.Utf8).drop_nulls()
        if text.len() > 0:
            parsed = text.str.strip_chars().cast(pl.Float64, strict=False)
            if parsed.is_not_null().sum() >= NUMERIC_SHARE * text.len():
                return Column(name, "Float64", "feature", "numeric")
            date_kind = _date_kind(text)
            if date_kind is not None:
                return _date_column(name, date_kind)
            if text.n_unique() <= MAX_CATEGORIES:
                return Column(name, "String", "feature", "categorical")
    return Column(name, "String", "feature", None, description="free text or other type")


def _screen(frame: pl.DataFrame, col: Column) -> Column:
    """``col`` excluded (the reason in its description) when it looks like a row identifier or
    is high-cardinality text; any other column as it is."""
    if col.role not in ("feature", "excluded") or col.kind in DATE_KINDS:
        return col
    series = frame.get_column(col.name)
    rows = series.len()
    values = series.drop_nulls()
    distinct = values.n_unique() if values.len() else 0
    reason = None
    if (
        col.kind == "numeric"
        and series.dtype.is_integer()
        and rows > 1
        and values.len() == rows
        and distinct == rows
    ):
        dense = int(values.max()) - int(values.min()) + 1 == rows  # type: ignore[arg-type]
        if dense or values.is_sorted() or values.is_sorted(descending=True):
            how = "a dense range" if dense else "in row order"
            reason = f"looks like a row identifier: unique integers, {how}"
    if reason is None and rows >= SCREEN_MIN_ROWS and values.len():
        share = distinct / values.len()
        if ID_NAME.search(col.name) and share >= ID_NAME_UNIQUE:
            reason = f"looks like an identifier: named like one, {share:.0%} of values distinct"
        elif series.dtype in (pl.Utf8, pl.Categorical) and (
            col.kind is None or share > HIGH_CARDINALITY
        ):
            reason = (
                f"high-cardinality text: {distinct} distinct values in {values.len()} rows "
                "(free text or an identifier, not a category)"
            )
    if reason is None:
        if col.role == "excluded":
            return Column(col.name, col.dtype, "excluded", description="not a number or category")
        return col
    keep = "; set data.keep_features to keep it as a feature"
    return Column(col.name, col.dtype, "excluded", None, True, description=reason + keep)


def _rename(columns: list[Column], cfg: dict[str, Any], where: str) -> list[Column]:
    """Features and excluded columns renamed to identifiers (``source`` keeps the bronze name);
    two columns ending up with one name are an error."""
    out: list[Column] = []
    for col in columns:
        if col.role in ("feature", "excluded") and not SAFE_NAME.match(col.name):
            col = replace(col, name=safe_name(col.name), source=col.name)
        out.append(col)
    taken: dict[str, str] = {}
    for col in out:
        names = [col.name] + [f"{col.name}_{p}" for p in DATE_PARTS.get(col.kind or "", ())]
        for name in names:
            if name in taken:
                raise DataError(
                    f"{where}: columns {taken[name]!r} and {col.bronze!r} both become "
                    f"{name!r} in silver/gold (names are made identifiers, dates expand into "
                    f"<column>_<part>); rename one of them in the source, then run "
                    f"`python -m {__package__} reset-bronze` and ingest again"
                )
            taken[name] = col.bronze
    return out


# ------------------------------------------------------------------------------------------
# pandera schemas
# ------------------------------------------------------------------------------------------


def _checks(col: Column) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if col.ge is not None and col.le is not None:
        checks.append(pa.Check.in_range(col.ge, col.le))
    elif col.ge is not None:
        checks.append(pa.Check.ge(col.ge))
    elif col.le is not None:
        checks.append(pa.Check.le(col.le))
    if col.categories is not None:
        checks.append(pa.Check.isin(list(col.categories)))
    if col.pattern:
        checks.append(pa.Check.str_matches(col.pattern))
    return checks


def bronze_schema(contract: Contract) -> pa.DataFrameSchema:
    """What a typed bronze row must satisfy to enter silver (missing features are allowed)."""
    return pa.DataFrameSchema(
        {
            c.name: pa.Column(DTYPES[c.dtype], _checks(c), nullable=c.nullable)
            for c in contract.columns
        },
        name=f"{contract.dataset} (bronze -> silver)",
    )


def silver_schema(contract: Contract) -> pa.DataFrameSchema:
    columns: dict[str, pa.Column] = {}
    for c in contract.columns:
        if c.role == "pii":
            columns[c.name] = pa.Column(pl.Utf8, pa.Check.str_matches(HASH_PATTERN), nullable=True)
        elif c.role == "feature":
            checks = _checks(c) if c.kind == "categorical" or c.kind in DATE_KINDS else []
            columns[c.name] = pa.Column(DTYPES[c.dtype], checks, nullable=False)
        elif c.role == "id":
            columns[c.name] = pa.Column(DTYPES[c.dtype], _checks(c), nullable=False, unique=True)
        else:
            columns[c.name] = pa.Column(DTYPES[c.dtype], _checks(c), nullable=c.nullable)
    return pa.DataFrameSchema(columns, strict=True, name=f"{contract.dataset} (silver)")


def gold_features(contract: Contract) -> list[dict[str, Any]]:
    """The ``features`` list of gold/contract.json, without categories (filled from the data)."""
    out: list[dict[str, Any]] = []
    for c in contract.features:
        source = {"source": c.source} if c.source else {}
        if c.kind == "numeric":
            out.append({"name": c.name, "kind": "numeric", "dtype": "Float64", **source})
        elif c.kind in DATE_KINDS:
            out += [
                {
                    "name": f"{c.name}_{part}",
                    "kind": "numeric",
                    "dtype": "Float64",
                    "source": c.bronze,
                    "part": part,
                }
                for part in DATE_PARTS[c.kind]
            ]
        else:
            out.append({"name": c.name, "kind": "categorical", "dtype": "String", **source})
    return out


def _finite(data: Any) -> pl.LazyFrame:
    return data.lazyframe.select(pl.col(data.key).is_finite())


def gold_schema(gold: dict[str, Any], target_dtype: pl.DataType) -> pa.DataFrameSchema:
    """The schema of gold/features.parquet from the gold contract (contract.json content)."""
    columns: dict[str, pa.Column] = {}
    if gold["id_column"]:
        columns[gold["id_column"]] = pa.Column(nullable=False, unique=True)
    for f in gold["features"]:
        if f["kind"] == "numeric":
            columns[f["name"]] = pa.Column(
                pl.Float64, pa.Check(_finite, name="finite"), nullable=False
            )
        else:
            columns[f["name"]] = pa.Column(pl.Utf8, pa.Check.isin(f["categories"]), nullable=False)
    columns[gold["target"]] = pa.Column(target_dtype, nullable=False)
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="gold features")


def violations(typed: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """One row per bronze row that breaks the contract: ``_row`` and ``_reason``.

    ``typed`` holds the contract's columns cast to their types, ``_row`` (the bronze row number)
    and ``_cast_errors`` (comma-separated columns whose value could not be cast, or null).
    """
    reasons: list[pl.DataFrame] = []
    cast = typed.filter(pl.col("_cast_errors").is_not_null()).select(
        "_row", pl.col("_cast_errors").str.split(",").alias("_col")
    )
    if cast.height:
        dtypes = {c.name: c.dtype for c in contract.columns}
        reasons.append(
            cast.explode("_col").select(
                "_row",
                pl.format(
                    "{}: not a valid {}",
                    "_col",
                    pl.col("_col").replace_strict(dtypes, default="value"),
                ).alias("_reason"),
            )
        )
    try:
        bronze_schema(contract).validate(typed.select(contract.names), lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.filter(pl.col("index").is_not_null())
        rows = typed.get_column("_row").gather(cases.get_column("index").cast(pl.Int64))
        reasons.append(
            pl.DataFrame({"_row": rows})
            .with_columns(
                pl.format(
                    "{}: {}",
                    cases.get_column("column"),
                    cases.get_column("check").replace({"not_nullable": "missing"}),
                ).alias("_reason")
            )
            .select("_row", "_reason")
        )
        schema_level = exc.failure_cases.filter(pl.col("index").is_null())
        if schema_level.height:
            first = schema_level.row(0, named=True)
            raise DataError(
                f"bronze does not fit the {contract.dataset} contract: column "
                f"{first['column']!r}: {first['check']} ({first['failure_case']})"
            ) from None
    if not reasons:
        return pl.DataFrame(schema={"_row": pl.Int64, "_reason": pl.Utf8})
    return (
        pl.concat(reasons)
        .with_columns(pl.col("_row").cast(pl.Int64))
        .unique()
        .sort("_row", "_reason")
    )


def markdown(contract: Contract) -> str:
    """The contract as Markdown tables (the body of docs/data-contracts.md)."""
    lines = [
        f"Dataset `{contract.dataset}` from the `{contract.source}` source; task "
        f"`{contract.task}`, target `{contract.target}`, id column "
        f"`{contract.id_column or '-'}`.",
        "",
        "### Bronze -> silver (rows that fail go to `data/silver/quarantine.parquet`)",
        "",
        "| column | type | role | rules | description |",
        "|---|---|---|---|---|",
    ]
    for c in contract.columns:
        about = c.description or "-"
        if c.source:
            renamed = f"bronze name `{c.source}`"
            about = f"{renamed}; {about}" if c.description else renamed
        lines.append(f"| `{c.name}` | {c.dtype} | {c.role} | {c.checks_text()} | {about} |")
    lines += [
        "",
        "### Silver (`data/silver/" + contract.dataset + ".parquet`)",
        "",
        "Same columns. PII columns hold `sha256(salt + value)` (64 hex characters); features "
        "have no missing values (median / most frequent value imputed) and numeric features are "
        "clipped to the IQR fences; exact duplicate rows and repeated ids are removed.",
        "",
        "### Gold (`data/gold/features.parquet`, described by `data/gold/contract.json`)",
        "",
        "| column | type | kind |",
        "|---|---|---|",
    ]
    if contract.id_column:
        lines.append(
            f"| `{contract.id_column}` | {contract.column(contract.id_column).dtype} | id |"
        )
    for f in gold_features(contract):
        lines.append(f"| `{f['name']}` | {f['dtype']} | {f['kind']} feature |")
    target_kind = "class label" if contract.task == "classification" else "numeric"
    lines.append(
        f"| `{contract.label}` | {contract.column(contract.label).dtype} | target ({target_kind}) |"
    )
    lines.append("")
    return "\n".join(lines)


BEGIN = "<!-- contract:begin (make data-docs rewrites this section) -->"
END = "<!-- contract:end -->"


def section(text: str) -> str | None:
    """The generated part of docs/data-contracts.md (between BEGIN and END), if any."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start + len(BEGIN) : end].strip("\n") + "\n"


def replace_section(text: str, body: str, where: str) -> str:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise DataError(
            f"{where}: the lines {BEGIN!r} and {END!r} are missing; put them around "
            "the contract tables"
        )
    return text[: start + len(BEGIN)] + "\n" + body.rstrip("\n") + "\n" + text[end:]
