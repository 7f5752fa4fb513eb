"""Gold: model-ready features, their contract and business aggregates, from silver only.

Written once over narwhals for every engine: ``data/features.py`` (user-owned) joins the silver
tables and adds its features, then the steps here select, cast and expand them.

- ``features.parquet``: the id column (if any), the features (numeric as Float64, categorical as
  String) and the target. PII columns and the other synthetic target are never features.
- ``contract.json``: ``{"target", "task", "id_column", "main_table", "features": [{"name",
  "kind", "dtype", "categories"?, "fill"?, "fences"?}], "inputs", "derived",
  "entity_features"}``, the interface the ML pipeline and serving read (docs/data-contracts.md).
- ``entity_features.parquet``: features.py's per-entity aggregates (when it returns any), one
  row per id, for serving to look up.
- ``aggregates.parquet``: rows, share and target mean per value of each categorical feature
  (quartiles of the numeric features when there is none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl

from ..common.config import resolve
from ..common.lineage import record
from . import contracts
from . import features as user_features
from .engines import Engine, run_step
from .errors import DataError
from .silver import IMPUTATION_FILE
from .storage import (
    check_versioning,
    commit_version,
    lineage_file,
    relative,
    staged,
    write_json,
    write_parquet,
)
from .tables import sources

#: features.py's per-entity aggregates, looked up by id at serving time
ENTITY_FILE = "entity_features.parquet"


def run(cfg: dict[str, Any], engine_name: str | None = None) -> dict[str, Any]:
    return run_step(_run, cfg, engine_name)


def _run(cfg: dict[str, Any], engine: Engine) -> dict[str, Any]:
    root = Path(cfg["root"])
    silver_dir, gold_dir = resolve(cfg, "silver"), resolve(cfg, "gold")
    contract = contracts.Contract.load(silver_dir / "contract.json")
    if contract.label != cfg["ml"]["target"] or contract.task != cfg["ml"]["task"]:
        raise DataError(
            f"{relative(silver_dir / 'contract.json', root)} was built for target "
            f"{contract.label!r} ({contract.task}) but conf says ml.target {cfg['ml']['target']!r}"
            f" ({cfg['ml']['task']}); rerun `silver`"
        )
    inputs = silver_tables(cfg, contract)
    for path in inputs.values():
        if not path.is_file():
            raise DataError(f"{relative(path, root)} not found; run `silver` first")
    check_versioning(cfg, engine.delta_session, gold_dir / "features.parquet")

    tables = {name: engine.scan(path) for name, path in inputs.items()}
    built = build(tables, contract)
    if built.entity is None:
        features, entity = engine.materialize(built.frame), None
    else:
        features, entity = engine.materialize_all([built.frame, built.entity], built.order)
    categorical = contract.categorical_features + [
        n for n in built.entity_names + built.derived if built.kinds[n] == "categorical"
    ]
    extra = built.entity_names + built.derived
    numeric = [f["name"] for f in contracts.gold_features(contract) if f["kind"] == "numeric"]
    numeric += [n for n in extra if built.kinds[n] == "numeric"]
    aggregates = engine.aggregates(features, categorical, numeric, contract.label)
    # the categories present in gold are the values aggregates grouped by (no second pass)
    present = {
        c: aggregates.filter((pl.col("dimension") == c) & pl.col("value").is_not_null())
        .get_column("value")
        .to_list()
        for c in categorical
    }
    gold = gold_contract(
        contract, present, _imputation(silver_dir), built.entity_names, built.derived, built.kinds
    )
    if contract.task == "classification":
        classes = engine.distinct(features, contract.label)
        if len(classes) < 2:
            raise DataError(
                f"target {contract.label!r} has a single class ({classes}) in silver: "
                "nothing to learn"
            )
    engine.check_gold(features, gold)
    rows = engine.height(features)

    outputs = [
        gold_dir / "features.parquet",
        gold_dir / "contract.json",
        gold_dir / "aggregates.parquet",
    ]
    entity_file = gold_dir / ENTITY_FILE
    if entity is not None:
        outputs.append(entity_file)
    with staged(outputs) as temps:
        engine.write_parquet(features, temps[outputs[0]])
        write_json(gold, temps[outputs[1]])
        write_parquet(aggregates, temps[outputs[2]])
        if entity is not None:
            engine.write_parquet(entity, temps[entity_file])
    if entity is None and entity_file.exists():
        entity_file.unlink()  # aggregate_features returns None now: no stale lookup table
    record(
        lineage_file(cfg),
        "gold",
        [*inputs.values(), silver_dir / "contract.json", features_module_file()],
        outputs,
        root,
        {"engine": engine.name, "rows": rows, "tables": list(inputs)},
    )
    commit_version(cfg, engine.delta_session, "gold", outputs[0], "features")
    return {
        "rows": rows,
        "features": len(gold["features"]),
        "aggregates": aggregates.height,
        "entity_rows": None if entity is None else engine.height(entity),
        "path": relative(outputs[0], root),
    }


def silver_tables(cfg: dict[str, Any], contract: contracts.Contract) -> dict[str, Path]:
    """The silver parquet file of every source, the main table (the contract's) first."""
    silver_dir = resolve(cfg, "silver")
    names = [contract.dataset] + [n for n in sources(cfg) if n != contract.dataset]
    return {name: silver_dir / f"{name}.parquet" for name in names}


def features_module_file() -> Path:
    """data/features.py, the code gold ran (lineage records its hash)."""
    return Path(__file__).with_name("features.py")


@dataclass(frozen=True)
class Built:
    """Gold's frame before it is computed, and what features.py added."""

    frame: nw.LazyFrame[Any]
    entity: nw.LazyFrame[Any] | None
    entity_names: list[str]
    derived: list[str]
    kinds: dict[str, str]
    #: the column both frames' rows are sorted by when computed (the id, with an entity table)
    order: str | None = None


def build(tables: dict[str, nw.LazyFrame[Any]], contract: contracts.Contract) -> Built:
    """features.py's ``build_features`` on the silver tables, then the template's steps: the id,
    the features cast (numeric Float64, categorical String), dates expanded, the target. With a
    per-entity table joined, ``order`` is the id: both frames are computed in id order (the same
    rows on every engine)."""
    main = contract.dataset
    declared = getattr(user_features, "MAIN_TABLE", None)
    if declared not in (None, main):
        raise DataError(
            f"data/features.py: MAIN_TABLE is {declared!r} but the silver contract is the "
            f"{main!r} table; make them agree (conf data.main_table, features.py MAIN_TABLE)"
        )
    where = "data/features.py"
    entity = user_features.aggregate_features(tables)
    entity_names: list[str] = []
    if entity is not None:
        id_col = contract.id_column
        schema = entity.collect_schema()
        if id_col is None or id_col not in schema:
            raise DataError(
                f"{where}: aggregate_features must return one row per {id_col or 'id'} with that "
                f"column (conf data.id_column); it returned columns {list(schema)}"
            )
        entity_names = [c for c in schema if c != id_col]
    built = user_features.build_features(tables)
    schema = built.collect_schema()
    main_names = tables[main].collect_schema().names()
    missing = [c for c in contract.names if c not in schema]
    if missing:
        raise DataError(
            f"{where}: build_features dropped the main table's columns {missing}; keep them "
            "(gold selects the features it needs)"
        )
    absent = [c for c in entity_names if c not in schema]
    if absent:
        raise DataError(
            f"{where}: build_features does not join aggregate_features' columns {absent}"
        )
    derived = [c for c in schema if c not in main_names and c not in entity_names]
    kinds = {n: _kind(n, schema[n], where) for n in entity_names + derived}
    frame = built.select(gold_columns(contract, entity_names + derived, kinds))
    order = None
    if entity is not None and contract.id_column:
        order = contract.id_column
        entity = entity.select(
            nw.col(contract.id_column), *[_cast(n, kinds[n]) for n in entity_names]
        )
    return Built(frame, entity, entity_names, derived, kinds, order)


def _kind(name: str, dtype: Any, where: str) -> str:
    if dtype.is_numeric() or dtype == nw.Boolean:
        return "numeric"
    if dtype in (nw.String, nw.Categorical, nw.Enum):
        return "categorical"
    raise DataError(
        f"{where}: feature {name!r} is {dtype}; a feature must be a number or text "
        "(dates: return their parts as numbers)"
    )


def _cast(name: str, kind: str) -> nw.Expr:
    return nw.col(name).cast(nw.Float64 if kind == "numeric" else nw.String)


def gold_columns(
    contract: contracts.Contract, extra: list[str], kinds: dict[str, str]
) -> list[nw.Expr]:
    """The id, the main table's features (dates as their parts), ``extra`` (features.py's
    columns), the target: gold's columns, in the order of its contract."""
    exprs: list[nw.Expr] = []
    if contract.id_column:
        exprs.append(nw.col(contract.id_column))
    for c in contract.features:
        if c.kind in contracts.DATE_KINDS:
            exprs += date_parts(c.name, contracts.DATE_PARTS[c.kind])
        else:
            exprs.append(_cast(c.name, c.kind or "categorical"))
    exprs += [_cast(n, kinds[n]) for n in extra]
    target = nw.col(contract.label)
    exprs.append(target.cast(nw.Float64) if contract.task == "regression" else target)
    return exprs


def date_parts(name: str, parts: tuple[str, ...]) -> list[nw.Expr]:
    """The numeric parts of an ISO date / date-time text column (silver checked its pattern:
    digits at fixed places) by integer arithmetic, alike on every engine; an impossible date
    (``2023-02-30``) gives null, which gold's contract check reports (data/dates.py's rule)."""
    text = nw.col(name).str.strip_chars()
    year = text.str.slice(0, 4).cast(nw.Int64)
    month = text.str.slice(5, 2).cast(nw.Int64)
    day = text.str.slice(8, 2).cast(nw.Int64)
    # a date-only value is at midnight: pad it with a time before reading the clock
    clock = nw.concat_str([text, nw.lit("T00:00")])
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = (
        nw.when(month == 2)
        .then(28 + leap.cast(nw.Int64))
        .otherwise(nw.when(month.is_in([4, 6, 9, 11])).then(30).otherwise(31))
    )
    # days since 1970-01-01 (H. Hinnant's days_from_civil), for the ISO day of the week
    y = year - (month <= 2).cast(nw.Int64)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * nw.when(month > 2).then(month - 3).otherwise(month + 9) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    piece = {
        "year": year,
        "month": month,
        "day": day,
        "day_of_week": (days + 3) % 7 + 1,  # 1970-01-01 was a Thursday; ISO: Monday 1
        "hour": clock.str.slice(11, 2).cast(nw.Int64),
        "minute": clock.str.slice(14, 2).cast(nw.Int64),
    }
    valid = day <= month_days
    return [nw.when(valid).then(piece[p]).cast(nw.Float64).alias(f"{name}_{p}") for p in parts]


def _imputation(silver_dir: Path) -> dict[str, Any]:
    """silver's ``imputation.json`` (fill values and fences); empty when silver predates it."""
    path = silver_dir / IMPUTATION_FILE
    if not path.is_file():
        return {}
    try:
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot be read as JSON ({exc}); rerun `silver`") from None
    return loaded


def gold_contract(
    contract: contracts.Contract,
    present: dict[str, list[Any]],
    imputation: dict[str, Any] | None = None,
    entity: list[str] | None = None,
    derived: list[str] | None = None,
    kinds: dict[str, str] | None = None,
) -> dict[str, Any]:
    """contract.json: categories are the declared ones and the values ``present`` in gold.

    A feature silver imputes carries its ``fill`` value and a numeric one silver clips its
    ``fences`` ([lower, upper]), from silver's ``imputation.json``; the features of features.py
    (``entity`` from aggregate_features, ``derived`` from derive_features, of ``kinds``) have
    neither. ``inputs`` are the main table's raw columns a client sends (no target, no PII)."""
    fills = (imputation or {}).get("fills") or {}
    fences = (imputation or {}).get("fences") or {}
    entity, derived, kinds = entity or [], derived or [], kinds or {}

    def described(f: dict[str, Any]) -> dict[str, Any]:
        if f["kind"] == "categorical":
            declared = contract.column(f["name"]).categories if f["name"] in contract.names else ()
            f = {**f, "categories": sorted(set(declared or ()) | set(present[f["name"]]))}
        if f["name"] in fills:
            f = {**f, "fill": fills[f["name"]]}
        if f["name"] in fences:
            f = {**f, "fences": list(fences[f["name"]])}
        return f

    out = [described(f) for f in contracts.gold_features(contract)]
    for name in entity + derived:
        dtype = "Float64" if kinds[name] == "numeric" else "String"
        out.append(described({"name": name, "kind": kinds[name], "dtype": dtype}))
    inputs = []
    for c in contract.features:
        item: dict[str, Any] = {"name": c.name, "kind": c.kind, "dtype": c.dtype}
        if c.source:
            item["source"] = c.source
        inputs.append(described(item) if c.kind == "categorical" else _filled(item, fills, fences))
    return {
        "target": contract.label,
        "task": contract.task,
        "id_column": contract.id_column,
        "main_table": contract.dataset,
        "features": out,
        "inputs": inputs,
        "derived": list(derived),
        "entity_features": list(entity),
    }


def _filled(item: dict[str, Any], fills: dict[str, Any], fences: dict[str, Any]) -> dict[str, Any]:
    if item["name"] in fills:
        item = {**item, "fill": fills[item["name"]]}
    if item["name"] in fences:
        item = {**item, "fences": list(fences[item["name"]])}
    return item
