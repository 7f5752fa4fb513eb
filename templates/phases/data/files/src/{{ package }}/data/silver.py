"""Silver: bronze rows validated against the contract, typed, deduplicated, imputed, clipped and
PII-masked. Rows that break the contract go to ``quarantine.parquet`` with a ``_reason``; the
counts of everything done land in ``reports/data-quality.json`` and ``.md``.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import polars as pl

from ..common.config import resolve
from ..common.lineage import record, utc_now
from . import contracts
from .engines import Engine, run_step
from .errors import DataError
from .ingest import check_bronze
from .storage import (
    bronze_partitions,
    check_versioning,
    commit_version,
    lineage_file,
    relative,
    staged,
    write_json,
    write_parquet,
)
from .tables import main_table, silver_files, sources, table_config

log = logging.getLogger(__name__)

#: environments where a missing salt falls back to DEV_SALT (with a warning)
DEV_ENVIRONMENTS = frozenset({"dev", "development", "local", "test"})
DEV_SALT = "dev-only-salt-not-secret"
#: rows of bronze read to infer the contract of csv, parquet and sql sources
SAMPLE_ROWS = 200_000
#: silver's fill values and fences, for gold's contract (and so for serving)
IMPUTATION_FILE = "imputation.json"


def pii_salt(cfg: dict[str, Any]) -> str:
    """The salt for PII hashing, from the environment variable named by data.pii_salt_env."""
    var = cfg["data"].get("pii_salt_env") or "MLOPS_PII_SALT"
    salt = os.environ.get(var, "")
    if salt:
        return salt
    env = cfg.get("environment", "dev")
    if env in DEV_ENVIRONMENTS:
        log.warning(
            "%s is not set: masking PII with the fixed development salt (never use this "
            "outside %s)",
            var,
            env,
        )
        return DEV_SALT
    raise DataError(
        f"environment variable {var} is not set (data.pii_salt_env); PII cannot be masked in "
        f"environment {env!r} without a secret salt. Set {var} from your secret store."
    )


def load_bronze(cfg: dict[str, Any]) -> tuple[list[Path], pl.DataFrame]:
    """Bronze partitions (oldest first) and a sample frame of them to build the contract."""
    check_bronze(cfg)  # a corrupt partition is quarantined and named (exit 2), never parsed
    bronze = resolve(cfg, "bronze")
    parts = bronze_partitions(bronze)
    root = Path(cfg["root"])
    if not parts:
        raise DataError(
            f"no bronze partitions in {relative(bronze, root)}; run "
            "`python -m <package>.data ingest` (or `make data`) first"
        )
    first_cols = pl.read_parquet_schema(str(parts[0]))
    for part in parts[1:]:
        cols = pl.read_parquet_schema(str(part))
        if list(cols) != list(first_cols):
            raise DataError(
                f"{relative(part, root)}: columns {list(cols)} differ from "
                f"{relative(parts[0], root)} {list(first_cols)}"
            )
    if cfg["data"]["source"]["kind"] == "synthetic":
        return parts, pl.DataFrame(schema=first_cols)  # declared contract: names are enough
    scans = [pl.scan_parquet(str(p)) for p in parts]
    return parts, pl.concat(scans, how="vertical_relaxed").head(SAMPLE_ROWS).collect()


def plan(
    contract: contracts.Contract, stats: Any, iqr_factor: float
) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
    """Fill values (median / most frequent) and clip bounds (IQR fences) from the statistics."""
    fills: dict[str, Any] = {}
    bounds: dict[str, tuple[Any, Any]] = {}
    for col in contract.features:
        if col.kind == "numeric":
            median = stats.median[col.name]
            if median is None:
                raise DataError(
                    f"column {col.name!r} has no values in bronze: nothing to impute "
                    "from; fix the source or drop the column"
                )
            fills[col.name] = math.floor(median + 0.5) if col.dtype == "Int64" else median
            q1, q3 = stats.q1[col.name], stats.q3[col.name]
            iqr = q3 - q1
            if iqr > 0:
                lo, hi = q1 - iqr_factor * iqr, q3 + iqr_factor * iqr
                if col.dtype == "Int64":
                    bounds[col.name] = (math.ceil(lo), math.floor(hi))
                else:
                    bounds[col.name] = (lo, hi)
        elif col.kind == "categorical" or col.kind in contracts.DATE_KINDS:
            mode = stats.mode[col.name]
            if mode is None:
                raise DataError(
                    f"column {col.name!r} has no values in bronze: nothing to impute "
                    "from; fix the source or drop the column"
                )
            fills[col.name] = mode
    return fills, bounds


def imputation_record(fills: dict[str, Any], bounds: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """``imputation.json``: the fill value of every feature and the IQR fences of the numeric ones.

    Gold copies both into its contract (``fill``, ``fences``), so the model's metadata carries
    them and serving fills a missing feature with the value silver used, and flags a value
    beyond the fences silver clips at (docs/data-contracts.md)."""
    return {
        # numbers and categories only: a date's fill stays in silver (gold expands dates)
        "fills": {c: v for c, v in fills.items() if isinstance(v, (str, int, float))},
        "fences": {c: [lo, hi] for c, (lo, hi) in bounds.items()},
    }


def run(cfg: dict[str, Any], engine_name: str | None = None) -> dict[str, Any]:
    """Every table through silver on one engine; the main table's report, with the other
    tables' under ``tables``."""
    return run_step(_run_all, cfg, engine_name)


def _run_all(cfg: dict[str, Any], engine: Engine) -> dict[str, Any]:
    names = list(sources(cfg))
    reports = {name: _run(table_config(cfg, name), engine) for name in names}
    return {**reports[names[0]], "tables": {n: reports[n] for n in names[1:]}}


def _run(cfg: dict[str, Any], engine: Engine) -> dict[str, Any]:
    root = Path(cfg["root"])
    files = silver_files(cfg, cfg.get("table") or main_table(cfg))
    parts, sample = load_bronze(cfg)
    where = f"bronze ({relative(parts[0].parents[1], root)}, {len(parts)} partition(s))"
    contract = contracts.build(cfg, sample, where)
    salt = pii_salt(cfg) if contract.pii else ""  # a table without PII needs no salt
    del sample

    typed = engine.load(parts, contract)
    bad = engine.violations(typed, contract)
    bad_rows = bad.get_column("_row").unique()
    valid = engine.drop_rows(typed, bad_rows)
    bronze_rows = engine.height(typed)
    reasons = (
        bad.get_column("_reason")
        .value_counts(name="rows")
        .sort(["rows", "_reason"], descending=[True, False])
    )

    silver_dir, reports = resolve(cfg, "silver"), resolve(cfg, "reports")
    silver_file = silver_dir / f"{contract.dataset}.parquet"
    check_versioning(cfg, engine.delta_session, silver_file)
    report: dict[str, Any] = {
        "generated_at": utc_now(),
        "dataset": contract.dataset,
        "engine": engine.name,
        "bronze": {"partitions": len(parts), "rows": bronze_rows},
        "quarantined": {
            "rows": bad_rows.len(),
            "by_reason": {r: int(n) for r, n in reasons.iter_rows()},
            "path": relative(silver_dir / files["quarantine"], root),
        },
    }
    if bronze_rows == bad_rows.len():
        _write_report(report, reports, files["report"])
        raise DataError(
            f"every one of the {bronze_rows} bronze rows breaks the {contract.dataset} "
            f"contract; see {relative(reports, root)}/data-quality.md"
        )

    deduped, exact, repeated = engine.dedupe(
        valid, contract.id_column, bronze_rows - bad_rows.len()
    )
    stats = engine.stats(
        deduped, contract.numeric_features, contract.categorical_features + contract.date_features
    )
    fills, bounds = plan(contract, stats, float(cfg["data"].get("outlier_iqr_factor", 3.0)))
    clipped = engine.count_outside(deduped, bounds)
    cleaned = engine.transform(deduped, fills, bounds, contract.pii, salt)
    engine.check_silver(cleaned, contract, fills)
    silver_rows = engine.height(cleaned)

    quarantine = engine.quarantine(parts, bad, contract, salt, root)
    report.update(
        duplicates={"exact_rows_removed": exact, "repeated_ids_removed": repeated},
        imputed={
            c: {"count": stats.nulls[c], "value": v} for c, v in fills.items() if stats.nulls[c]
        },
        clipped={
            c: {"count": n, "lower": bounds[c][0], "upper": bounds[c][1]}
            for c, n in clipped.items()
            if n
        },
        pii_masked=contract.pii,
        columns=columns_report(contract),
        silver={
            "rows": silver_rows,
            "columns": len(engine.columns(cleaned)),
            "path": relative(silver_file, root),
        },
    )
    contract_file = silver_dir / files["contract"]
    quarantine_file = silver_dir / files["quarantine"]
    imputation_file = silver_dir / files["imputation"]
    outputs = [silver_file, quarantine_file, contract_file, imputation_file]
    with staged(outputs) as temps:
        engine.write_parquet(cleaned, temps[silver_file])
        write_parquet(quarantine, temps[quarantine_file])
        contract.save(temps[contract_file])
        write_json(imputation_record(fills, bounds), temps[imputation_file])
    _write_report(report, reports, files["report"])
    record(
        lineage_file(cfg),
        "silver",
        parts,
        outputs,
        root,
        {
            "table": contract.dataset,
            "engine": engine.name,
            "rows": silver_rows,
            "quarantined": bad_rows.len(),
        },
    )
    commit_version(cfg, engine.delta_session, "silver", silver_file, contract.dataset)
    return report


def columns_report(contract: contracts.Contract) -> dict[str, Any]:
    """What silver decided about the columns: renamed, excluded from the features (and why),
    dates expanded in gold."""
    return {
        "renamed": contract.renamed,
        "excluded": contract.excluded,
        "dates": {
            c.name: [f"{c.name}_{p}" for p in contracts.DATE_PARTS[c.kind or "date"]]
            for c in contract.features
            if c.kind in contracts.DATE_KINDS
        },
    }


def _write_report(report: dict[str, Any], reports: Path, name: str = "data-quality") -> None:
    json_file, md_file = reports / f"{name}.json", reports / f"{name}.md"
    with staged([json_file, md_file]) as temps:
        write_json(report, temps[json_file])
        temps[md_file].write_text(quality_markdown(report), encoding="utf-8")


def quality_markdown(report: dict[str, Any]) -> str:
    q = report["quarantined"]
    lines = [
        f"# Data quality: {report['dataset']}",
        "",
        f"Generated {report['generated_at']} by the `{report['engine']}` engine.",
        "",
        "| step | rows |",
        "|---|---:|",
        f"| bronze rows read ({report['bronze']['partitions']} partition(s)) | "
        f"{report['bronze']['rows']} |",
        f"| quarantined (broke the contract) | {q['rows']} |",
    ]
    dup = report.get("duplicates")
    if dup:
        lines += [
            f"| exact duplicate rows removed | {dup['exact_rows_removed']} |",
            f"| repeated ids removed (latest kept) | {dup['repeated_ids_removed']} |",
            f"| silver rows written | {report['silver']['rows']} |",
        ]
    lines += ["", "## Quarantine reasons", ""]
    if q["by_reason"]:
        lines += ["| reason | rows |", "|---|---:|"]
        lines += [f"| {r} | {n} |" for r, n in q["by_reason"].items()]
        lines += ["", f"Rows and reasons: `{q['path']}` (`_reason`, `_source`, `_row`)."]
    else:
        lines.append("No row broke the contract.")
    if dup:
        lines += ["", "## Missing values imputed", ""]
        if report["imputed"]:
            lines += ["| column | values | filled with |", "|---|---:|---|"]
            lines += [
                f"| {c} | {v['count']} | {_fmt(v['value'])} |" for c, v in report["imputed"].items()
            ]
        else:
            lines.append("None.")
        lines += ["", "## Outliers clipped (IQR fences)", ""]
        if report["clipped"]:
            lines += ["| column | values | lower | upper |", "|---|---:|---:|---:|"]
            lines += [
                f"| {c} | {v['count']} | {v['lower']:.4g} | {v['upper']:.4g} |"
                for c, v in report["clipped"].items()
            ]
        else:
            lines.append("None.")
        masked = ", ".join(report["pii_masked"]) or "none"
        lines += ["", f"PII columns masked (salted SHA-256): {masked}."]
        lines += _columns_markdown(report.get("columns") or {})
    lines.append("")
    return "\n".join(lines)


def _columns_markdown(columns: dict[str, Any]) -> list[str]:
    lines = ["", "## Columns", ""]
    renamed, excluded, dates = (columns.get(k) or {} for k in ("renamed", "excluded", "dates"))
    if not (renamed or excluded or dates):
        return lines + ["Every column kept its name; none was excluded from the features."]
    if renamed:
        lines += ["Renamed to identifiers (model inputs and request fields use the new name):", ""]
        lines += ["| bronze name | silver / gold name |", "|---|---|"]
        lines += [f"| `{old}` | `{new}` |" for old, new in renamed.items()]
        lines.append("")
    if excluded:
        lines += ["Not features (kept in silver):", ""]
        lines += ["| column | reason |", "|---|---|"]
        lines += [f"| `{c}` | {why} |" for c, why in excluded.items()]
        lines.append("")
    if dates:
        lines += ["Dates expanded into numeric gold features:", ""]
        lines += ["| column | gold features |", "|---|---|"]
        lines += [f"| `{c}` | {', '.join(parts)} |" for c, parts in dates.items()]
        lines.append("")
    return lines[:-1] if lines[-1] == "" else lines


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
