"""Gold: model-ready features, their contract and business aggregates, from silver only.

- ``features.parquet``: the id column (if any), the features (numeric as Float64, categorical as
  String) and the target. PII columns and the other synthetic target are never features.
- ``contract.json``: ``{"target", "task", "id_column", "features": [{"name", "kind", "dtype",
  "categories"?}]}``, the interface the ML pipeline reads (docs/data-contracts.md).
- ``aggregates.parquet``: rows, share and target mean per value of each categorical feature
  (quartiles of the numeric features when there is none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..common.config import resolve
from ..common.lineage import record
from . import contracts
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


def run(cfg: dict[str, Any], engine_name: str | None = None) -> dict[str, Any]:
    return run_step(_run, cfg, engine_name)


def _run(cfg: dict[str, Any], engine: Engine) -> dict[str, Any]:
    root = Path(cfg["root"])
    silver_dir, gold_dir = resolve(cfg, "silver"), resolve(cfg, "gold")
    contract = contracts.Contract.load(silver_dir / "contract.json")
    if contract.target != cfg["ml"]["target"] or contract.task != cfg["ml"]["task"]:
        raise DataError(
            f"{relative(silver_dir / 'contract.json', root)} was built for target "
            f"{contract.target!r} ({contract.task}) but conf says ml.target {cfg['ml']['target']!r}"
            f" ({cfg['ml']['task']}); rerun `silver`"
        )
    silver_file = silver_dir / f"{contract.dataset}.parquet"
    if not silver_file.is_file():
        raise DataError(f"{relative(silver_file, root)} not found; run `silver` first")
    check_versioning(cfg, getattr(engine, "spark", None), gold_dir / "features.parquet")

    features = engine.features(silver_file, contract)
    present = {c: engine.distinct(features, c) for c in contract.categorical_features}
    gold = gold_contract(contract, present, _imputation(silver_dir))
    if contract.task == "classification":
        classes = engine.distinct(features, contract.target)
        if len(classes) < 2:
            raise DataError(
                f"target {contract.target!r} has a single class ({classes}) in silver: "
                "nothing to learn"
            )
    engine.check_gold(features, gold)
    rows = engine.height(features)
    aggregates = engine.aggregates(
        features,
        contract.categorical_features,
        [f["name"] for f in gold["features"] if f["kind"] == "numeric"],
        contract.target,
    )

    outputs = [
        gold_dir / "features.parquet",
        gold_dir / "contract.json",
        gold_dir / "aggregates.parquet",
    ]
    with staged(outputs) as temps:
        engine.write_parquet(features, temps[outputs[0]])
        write_json(gold, temps[outputs[1]])
        write_parquet(aggregates, temps[outputs[2]])
    record(
        lineage_file(cfg),
        "gold",
        [silver_file, silver_dir / "contract.json"],
        outputs,
        root,
        {"engine": engine.name, "rows": rows},
    )
    commit_version(cfg, getattr(engine, "spark", None), "gold", outputs[0], "features")
    return {
        "rows": rows,
        "features": len(gold["features"]),
        "aggregates": aggregates.height,
        "path": relative(outputs[0], root),
    }


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
) -> dict[str, Any]:
    """contract.json: categories are the declared ones and the values ``present`` in gold.

    A feature silver imputes carries its ``fill`` value and a numeric one silver clips its
    ``fences`` ([lower, upper]), from silver's ``imputation.json``; derived features have
    neither."""
    fills = (imputation or {}).get("fills") or {}
    fences = (imputation or {}).get("fences") or {}
    out: list[dict[str, Any]] = []
    for f in contracts.gold_features(contract):
        if f["kind"] == "categorical":
            declared = contract.column(f["name"]).categories
            f = {**f, "categories": sorted(set(declared or ()) | set(present[f["name"]]))}
        if f["name"] in fills:
            f = {**f, "fill": fills[f["name"]]}
        if f["name"] in fences:
            f = {**f, "fences": list(fences[f["name"]])}
        out.append(f)
    return {
        "target": contract.target,
        "task": contract.task,
        "id_column": contract.id_column,
        "features": out,
    }
