"""Time bronze -> silver -> gold on synthetic customers: polars, duckdb and a pandas baseline.

    python benchmarks/bench_data.py --rows 1000000        (make bench-data)

Each measured run is a fresh child process working on the same bronze partition, in a throw-away
project folder: wall seconds of silver + gold (imports excluded) and the child's peak RSS. The
pandas baseline is a straightforward pandas version of the same steps (same contract rules,
deduplication, imputation, clipping, salted SHA-256 of PII, features and aggregates). Ingestion
(generating the rows) is timed once and reported apart. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SALT = "benchmark-salt"


def package() -> str:
    conf = yaml.safe_load((ROOT / "conf" / "base.yaml").read_text(encoding="utf-8"))
    return str(conf["project"]["package"])


def make_project(rows: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-data-"))
    shutil.copytree(ROOT / "conf", folder / "conf")
    bench = {
        "data": {
            "source": {"kind": "synthetic", "rows": rows, "seed": 7},
            "id_column": "customer_id",
            "pii_columns": ["name", "email", "phone"],
        },
        "ml": {"task": "classification", "target": "churned"},
    }
    (folder / "conf" / "bench.yaml").write_text(yaml.safe_dump(bench), encoding="utf-8")
    return folder


def child_env(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MLOPS_PROJECT_ROOT": str(project),
        "MLOPS_ENV": "bench",
        "MLOPS_PII_SALT": SALT,
    }


# ------------------------------------------------------------------------------------------
# what a child process runs
# ------------------------------------------------------------------------------------------


def run_child(mode: str) -> dict[str, Any]:
    pkg = package()
    config = importlib.import_module(f"{pkg}.common.config")
    cfg = config.load_config()
    if mode == "ingest":
        ingest = importlib.import_module(f"{pkg}.data.ingest")
        started = time.perf_counter()
        ingest.run(cfg, force=True)
        return {"seconds": time.perf_counter() - started}
    if mode == "pandas":
        import pandas  # noqa: F401  (imports are not timed)

        contracts = importlib.import_module(f"{pkg}.data.contracts")
        started, cpu = time.perf_counter(), time.process_time()
        rows = pandas_pipeline(cfg, contracts)
        return {
            "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu,
            "silver_rows": rows,
        }
    silver = importlib.import_module(f"{pkg}.data.silver")
    gold = importlib.import_module(f"{pkg}.data.gold")
    importlib.import_module(f"{pkg}.data.engines").get_engine(mode)
    started, cpu = time.perf_counter(), time.process_time()
    report = silver.run(cfg, mode)
    gold.run(cfg, mode)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu,
        "silver_rows": report["silver"]["rows"],
    }


def pandas_pipeline(cfg: dict[str, Any], contracts: Any) -> int:
    """The same steps written the way a pandas user would: pandera (pandas API) for the same
    contract, ``drop_duplicates``, ``fillna``, ``clip`` and a per-value salted SHA-256."""
    import pandas as pd
    import pandera.pandas as ppa

    root = Path(cfg["root"])
    out = root / "data" / "pandas"
    out.mkdir(parents=True, exist_ok=True)
    parts = sorted((root / "data" / "bronze").glob("ingest_date=*/part-*.parquet"))
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    target, id_col, pii = "churned", "customer_id", ["name", "email", "phone"]
    numeric = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
    categorical = ["region", "contract", "internet_service", "payment_method", "paperless_billing"]

    def checks(col: Any) -> list[Any]:
        out: list[Any] = []
        if col.ge is not None and col.le is not None:
            out.append(ppa.Check.in_range(col.ge, col.le))
        elif col.ge is not None:
            out.append(ppa.Check.ge(col.ge))
        if col.categories is not None:
            out.append(ppa.Check.isin(list(col.categories)))
        if col.pattern:
            out.append(ppa.Check.str_matches(col.pattern))
        return out

    # contract on the raw rows: failures -> quarantine with their reasons
    bronze = ppa.DataFrameSchema(
        {
            c.name: ppa.Column(nullable=c.name not in (target, id_col), checks=checks(c))
            for c in contracts.CUSTOMER_COLUMNS
        }
    )
    try:
        bronze.validate(df, lazy=True)
        bad = pd.DataFrame({"index": [], "reason": []})
    except ppa.errors.SchemaErrors as exc:
        cases = exc.failure_cases.dropna(subset=["index"])
        bad = pd.DataFrame(
            {"index": cases["index"].astype(int), "reason": cases["column"] + ": " + cases["check"]}
        )
    reasons = bad.groupby("index")["reason"].agg("; ".join)
    quarantine = df.loc[reasons.index].assign(_reason=reasons.values)
    df = df.drop(index=reasons.index)

    # duplicates, then repeated ids (latest kept)
    df = df.drop_duplicates(keep="first")
    df = df.drop_duplicates(subset=[id_col], keep="last")

    # impute and clip
    for c in numeric:
        q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
        df[c] = df[c].fillna(df[c].median())
        if q3 > q1:
            df[c] = df[c].clip(q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1))
    for c in categorical:
        df[c] = df[c].fillna(df[c].mode().iloc[0])

    # PII: salted SHA-256 per value
    def digest(value: Any) -> Any:
        if not isinstance(value, str):
            return None
        return hashlib.sha256((SALT + value).encode("utf-8")).hexdigest()

    for c in pii:
        df[c] = df[c].map(digest)
        quarantine[c] = quarantine[c].map(digest)
    silver = ppa.DataFrameSchema(
        {
            **{c: ppa.Column(str, ppa.Check.str_matches(r"^[0-9a-f]{64}$")) for c in pii},
            **{c: ppa.Column(nullable=False) for c in numeric + categorical + [target]},
            id_col: ppa.Column(str, unique=True),
        }
    )
    silver.validate(df)
    df.to_parquet(out / "customers.parquet", index=False)
    quarantine.astype(str).to_parquet(out / "quarantine.parquet", index=False)

    # gold: features, derived ratios, aggregates
    features = df[[id_col, *numeric, *categorical, target]].copy()
    for c in numeric:
        features[c] = features[c].astype("float64")
    tenure = features["tenure_months"].clip(lower=1)
    features["avg_monthly_spend"] = features["total_charges"] / tenure
    features["support_calls_per_year"] = 12 * features["support_calls"] / tenure
    gold = ppa.DataFrameSchema(
        {
            **{c: ppa.Column(float, nullable=False) for c in numeric},
            **{c: ppa.Column(str, nullable=False) for c in categorical},
        }
    )
    gold.validate(features)
    features.to_parquet(out / "features.parquet", index=False)
    aggregates = []
    for c in categorical:
        g = features.groupby(c)[target].agg(["size", "mean"]).reset_index()
        g.columns = ["value", "rows", "target_mean"]
        g.insert(0, "dimension", c)
        g["share"] = g["rows"] / len(features)
        aggregates.append(g)
    pd.concat(aggregates).to_parquet(out / "aggregates.parquet", index=False)
    return len(df)


# ------------------------------------------------------------------------------------------
# the parent: run each mode in a child and report
# ------------------------------------------------------------------------------------------


def measure(project: Path, mode: str) -> dict[str, Any]:
    code = (
        "import json, resource, sys; sys.path.insert(0, 'benchmarks'); import bench_data; "
        f"r = bench_data.run_child({mode!r}); "
        "u = resource.getrusage(resource.RUSAGE_SELF); r['peak_rss_mib'] = u.ru_maxrss / 1024; "
        "print('RESULT ' + json.dumps(r))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=child_env(project),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return dict(json.loads(line.removeprefix("RESULT ")), mode=mode)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="polars,duckdb,pandas")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args()
    project = make_project(args.rows)
    try:
        print(
            f"bench-data: {args.rows:,} synthetic rows, {os.cpu_count()} CPU(s), project {project}"
        )
        ingest = measure(project, "ingest")
        print(
            f"  ingest (generate + write bronze): {ingest['seconds']:.2f} s, "
            f"peak RSS {ingest['peak_rss_mib']:.0f} MiB"
        )
        results = [measure(project, mode) for mode in args.engines.split(",")]
    finally:
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)
    baseline = next((r for r in results if r["mode"] == "pandas"), None)
    print(
        f"  {'bronze -> gold':<16}{'wall s':>8}{'CPU s':>8}{'peak RSS MiB':>14}"
        f"{'silver rows':>13}{'speed-up vs pandas (wall / CPU)':>33}"
    )
    for r in results:
        speedup = "-"
        if baseline:
            speedup = (
                f"{baseline['seconds'] / r['seconds']:.1f}x / "
                f"{baseline['cpu_seconds'] / r['cpu_seconds']:.1f}x"
            )
        print(
            f"  {r['mode']:<16}{r['seconds']:>8.2f}{r['cpu_seconds']:>8.2f}"
            f"{r['peak_rss_mib']:>14.0f}{r['silver_rows']:>13,}{speedup:>33}"
        )
    print(
        "  (CPU s = user + system time of the process: steadier than wall time on a busy machine;"
        " polars and duckdb use every core, so their CPU time may exceed their wall time)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
