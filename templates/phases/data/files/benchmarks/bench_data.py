"""Time bronze -> silver -> gold on the synthetic customers and their orders: every engine of the
pipeline beside a straightforward pandas version of the same work.

    python benchmarks/bench_data.py                        (make bench-data: 1,000,000 orders)
    python benchmarks/bench_data.py --rows 1000000 --rows-of customers
    python benchmarks/bench_data.py --rows 3000 --engines polars,pandas --check

``--rows`` counts the rows of the history table the join aggregates (``--rows-of orders``, the
default) or of the main table (``--rows-of customers``); the other table gets the synthetic
generator's own ratio. A project whose synthetic source has no orders table is measured on its
one table (``--rows`` customers, no join).

Each measured run is a fresh child process working on the same bronze partitions in a throw-away
project folder: wall and CPU seconds of silver + gold (the real pipeline: ``silver.run`` and
``gold.run``, so gold is ``data/features.py``'s ``build_features``; imports, pandera's first
validation and the Spark session's start excluded, alike for every mode) and the peak RSS of the
child's process tree (its own ``getrusage`` high-water mark, and the tree, the JVM of Spark
included, sampled every 50 ms with psutil or /proc). The pandas baseline is the same work
written the way a pandas user would (pandera's pandas API for the same contract,
``drop_duplicates``, ``fillna``, ``clip``, a salted SHA-256 per value, ``groupby().agg`` +
``merge`` for the join, the same derived features, parquet writes). Spark runs when pyspark and
Java are there. Ingestion (generating the rows) is timed once and reported apart. ``--check``
compares every engine's silver and gold with the pandas baseline's and exits 1 when they differ.
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SALT = "benchmark-salt"
CUSTOMERS, ORDERS = "customers", "orders"
#: the pipeline's engines in the order they are run, and the baseline
ENGINES = ("polars", "duckdb", "spark")
BASELINE = "pandas"
#: relative tolerance of --check on floating-point values (sums in another order)
TOLERANCE = 1e-9


def package() -> str:
    conf = yaml.safe_load((ROOT / "conf" / "base.yaml").read_text(encoding="utf-8"))
    return str(conf["project"]["package"])


def module(name: str) -> Any:
    return importlib.import_module(f"{package()}.{name}")


# ------------------------------------------------------------------------------------------
# the throw-away project and its synthetic source
# ------------------------------------------------------------------------------------------


def has_orders() -> bool:
    """Whether this project's pipeline takes named sources and its synthetic generator the
    orders table."""
    synthetic = module("data.synthetic")
    named = importlib.util.find_spec(f"{package()}.data.tables") is not None
    return named and getattr(synthetic, "generate_orders", None) is not None


def orders_per_customer(seed: int) -> float:
    """The synthetic generator's orders per customer (duplicates included), measured on 20,000
    customers."""
    customers = 20_000
    return float(module("data.synthetic").generate_orders(customers, seed).height) / customers


def source_conf(rows: int, rows_of: str, seed: int) -> dict[str, Any]:
    """conf ``data`` for ``rows`` of ``rows_of``: the synthetic customers and their orders (or,
    without named sources, the customers alone)."""
    data: dict[str, Any] = {
        "id_column": "customer_id",
        "pii_columns": ["name", "email", "phone"],
        "date_columns": [],
        "keep_features": [],
    }
    if not has_orders():
        return {**data, "source": {"kind": "synthetic", "rows": rows, "seed": seed}}
    customers = rows
    if rows_of == ORDERS:
        customers = max(10, round(rows / orders_per_customer(seed)))
    main = {"kind": "synthetic", "table": CUSTOMERS, "rows": customers, "seed": seed}
    orders = {"kind": "synthetic", "table": ORDERS, "rows": customers, "seed": seed}
    return {
        **data,
        "source": main,
        "sources": {CUSTOMERS: main, ORDERS: {**orders, "id_column": "order_id"}},
        "main_table": CUSTOMERS,
    }


def make_project(data: dict[str, Any], workdir: Path | None) -> Path:
    """A throw-away project folder: this project's conf with its data sources replaced by the
    synthetic ones (``data`` keys replace base.yaml's: a deep merge could not drop a source)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-data-", dir=workdir))
    shutil.copytree(ROOT / "conf", folder / "conf")
    base_file = folder / "conf" / "base.yaml"
    base = yaml.safe_load(base_file.read_text(encoding="utf-8"))
    base["data"] = {**base["data"], **data}
    if "sources" not in data:
        base["data"].pop("sources", None)
    base_file.write_text(yaml.safe_dump(base, sort_keys=False), encoding="utf-8")
    bench = {"ml": {"task": "classification", "target": "churned"}}
    (folder / "conf" / "bench.yaml").write_text(yaml.safe_dump(bench), encoding="utf-8")
    return folder


def child_env(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MLOPS_PROJECT_ROOT": str(project),
        "MLOPS_ENV": "bench",
        "MLOPS_PII_SALT": SALT,
    }


def spark_available() -> bool:
    """pyspark importable and a Java runtime to run it on."""
    java = shutil.which("java") or (
        os.environ.get("JAVA_HOME") and Path(os.environ["JAVA_HOME"], "bin", "java").is_file()
    )
    return bool(java) and importlib.util.find_spec("pyspark") is not None


# ------------------------------------------------------------------------------------------
# what a child process runs
# ------------------------------------------------------------------------------------------


def own_features() -> bool:
    """Whether this project's data/features.py is written for the synthetic customers and
    orders (the default project's). Another project's is written for its own tables: the
    benchmark then runs gold without it (:class:`PassThrough`), and pandas without the join."""
    features = module("data.features")
    return getattr(features, "MAIN_TABLE", None) == CUSTOMERS and hasattr(features, "ORDERS")


class PassThrough:
    """A data/features.py for the synthetic customers that adds nothing (no join, no feature)."""

    MAIN_TABLE = CUSTOMERS

    @staticmethod
    def aggregate_features(tables: Mapping[str, Any]) -> None:
        return None

    @staticmethod
    def derive_features(frame: Any) -> Any:
        return frame

    @staticmethod
    def build_features(tables: Mapping[str, Any]) -> Any:
        return tables[CUSTOMERS]


def run_child(mode: str) -> dict[str, Any]:
    cfg = module("common.config").load_config()
    if mode == "ingest":
        ingest = module("data.ingest")
        started = time.perf_counter()
        ingest.run(cfg, force=True)
        seconds = time.perf_counter() - started
        rows = {name: sum(map(table_rows, parts)) for name, parts in bronze_tables(cfg).items()}
        return {"seconds": seconds, "bronze_rows": rows}
    warm_up(mode)
    if mode == BASELINE:
        contracts = module("data.contracts")
        join = own_features()
        started, cpu = time.perf_counter(), time.process_time()
        pandas_pipeline(cfg, contracts, join)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
        return {"seconds": seconds, "cpu_seconds": cpu_seconds}
    silver, gold = module("data.silver"), module("data.gold")
    engines = module("data.engines")
    if not own_features():
        gold.user_features = PassThrough
    # the Spark session (or duckdb connection) starts before the clock does
    engines.get_engine(mode, cfg).release()
    started, cpu = time.perf_counter(), time.process_time()
    silver.run(cfg, mode)
    silver_done = time.perf_counter()
    gold.run(cfg, mode)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "cpu_seconds": time.process_time() - cpu,
        "silver_seconds": silver_done - started,
        "gold_seconds": done - silver_done,
    }


def warm_up(mode: str) -> None:
    """Library start-up before the clock, alike for every mode: the imports, and pandera's
    first validation (it registers its backends then: about 0.1 s, pandas' or polars')."""
    if mode == BASELINE:
        import pandas as pd
        import pandera.pandas as ppa

        ppa.DataFrameSchema({"x": ppa.Column(int, ppa.Check.ge(0))}).validate(
            pd.DataFrame({"x": [1]})
        )
    elif mode in ENGINES:
        import pandera.polars as ppl
        import polars as pl

        ppl.DataFrameSchema({"x": ppl.Column(pl.Int64, ppl.Check.ge(0))}).validate(
            pl.DataFrame({"x": [1]})
        )


def bronze_tables(cfg: dict[str, Any]) -> dict[str, list[Path]]:
    """The bronze partitions of every table: ``bronze/<name>/`` per source, or the one table
    of a single-source bronze (named ``customers`` here)."""
    storage = module("data.storage")
    bronze = module("common.config").resolve(cfg, "bronze")
    tables = {CUSTOMERS: storage.bronze_partitions(bronze)}
    for folder in sorted(bronze.iterdir()):
        if folder.is_dir() and not folder.name.startswith(("_", ".", "ingest_date=")):
            tables[folder.name] = storage.bronze_partitions(folder)
    return {name: parts for name, parts in tables.items() if parts}


def pandas_pipeline(cfg: dict[str, Any], contracts: Any, join: bool = True) -> None:
    """The same steps written the way a pandas user would: pandera (pandas API) for the same
    contracts, ``drop_duplicates``, ``fillna``, ``clip``, a per-value salted SHA-256, the orders
    aggregated per customer with ``groupby().agg`` and ``merge``d onto the customers, the
    derived ratios (``join``: what the default project's data/features.py does)."""
    import pandas as pd
    import pandera.pandas as ppa

    out = Path(cfg["root"]) / "data" / "pandas"
    out.mkdir(parents=True, exist_ok=True)
    bronze = bronze_tables(cfg)
    target, id_col, pii = "churned", "customer_id", ["name", "email", "phone"]
    iqr_factor = float(cfg["data"].get("outlier_iqr_factor", 3.0))

    def read(name: str) -> pd.DataFrame:
        return pd.concat([pd.read_parquet(p) for p in bronze[name]], ignore_index=True)

    def checks(col: Any) -> list[Any]:
        found: list[Any] = []
        if col.ge is not None and col.le is not None:
            found.append(ppa.Check.in_range(col.ge, col.le))
        elif col.ge is not None:
            found.append(ppa.Check.ge(col.ge))
        elif col.le is not None:
            found.append(ppa.Check.le(col.le))
        if col.categories is not None:
            found.append(ppa.Check.isin(list(col.categories)))
        if col.pattern:
            found.append(ppa.Check.str_matches(col.pattern))
        return found

    def quarantine(
        df: pd.DataFrame, columns: Any, required: tuple[str, ...]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rows breaking the contract (``required`` columns missing, checks failed) out, with
        their reasons."""
        schema = ppa.DataFrameSchema(
            {c.name: ppa.Column(nullable=c.name not in required, checks=checks(c)) for c in columns}
        )
        try:
            schema.validate(df, lazy=True)
            return df, df.iloc[:0].assign(_reason=pd.Series(dtype=str))
        except ppa.errors.SchemaErrors as exc:
            cases = exc.failure_cases.dropna(subset=["index"])
            reasons = (
                (cases["column"] + ": " + cases["check"])
                .groupby(cases["index"].astype(int))
                .agg("; ".join)
            )
            bad = df.loc[reasons.index].assign(_reason=reasons.values)
            return df.drop(index=reasons.index), bad

    def clean(df: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
        """Impute (median, most frequent) and clip at the IQR fences (whole numbers for the
        contract's integer columns)."""
        for c in numeric:
            q1, q3 = df[c].quantile(0.25), df[c].quantile(0.75)
            median = df[c].median()
            integer = c in integers
            df[c] = df[c].fillna(math.floor(median + 0.5) if integer else median)
            if q3 > q1:
                lo, hi = q1 - iqr_factor * (q3 - q1), q3 + iqr_factor * (q3 - q1)
                df[c] = df[c].clip(math.ceil(lo), math.floor(hi)) if integer else df[c].clip(lo, hi)
        for c in categorical:
            counts = df[c].value_counts()
            mode = counts[counts == counts.max()].index.sort_values()[0]
            df[c] = df[c].fillna(mode)
        return df

    def digest(value: Any) -> Any:
        if not isinstance(value, str):
            return None
        return hashlib.sha256((SALT + value).encode("utf-8")).hexdigest()

    # silver: customers
    columns = contracts.CUSTOMER_COLUMNS
    numeric = ["age", "tenure_months", "monthly_charges", "total_charges", "support_calls"]
    categorical = ["region", "contract", "internet_service", "payment_method", "paperless_billing"]
    integers = {c.name for c in columns if c.dtype == "Int64"}
    df, bad = quarantine(read(CUSTOMERS), columns, (id_col, target))
    df = df.drop_duplicates(keep="first").drop_duplicates(subset=[id_col], keep="last")
    df = clean(df, numeric, categorical)
    for c in pii:
        df[c] = df[c].map(digest)
        bad[c] = bad[c].map(digest)
    ppa.DataFrameSchema(
        {
            **{c: ppa.Column(str, ppa.Check.str_matches(r"^[0-9a-f]{64}$")) for c in pii},
            **{c: ppa.Column(nullable=False) for c in numeric + categorical + [target]},
            id_col: ppa.Column(str, unique=True),
        }
    ).validate(df)
    df.to_parquet(out / f"{CUSTOMERS}.parquet", index=False)
    bad.astype(str).to_parquet(out / f"{CUSTOMERS}.quarantine.parquet", index=False)

    # silver: orders (when the source has them): the same steps on the history table
    entity = None
    if ORDERS in bronze:
        order_columns = contracts.ORDER_COLUMNS
        orders, bad_orders = quarantine(read(ORDERS), order_columns, ("order_id",))
        orders = orders.drop_duplicates(keep="first")
        orders = orders.drop_duplicates(subset=["order_id"], keep="last")
        orders = clean(orders, ["amount"], ["channel", "order_date"])
        orders.to_parquet(out / f"{ORDERS}.parquet", index=False)
        bad_orders.astype(str).to_parquet(out / f"{ORDERS}.quarantine.parquet", index=False)
        # gold: per-customer aggregates of the orders (data/features.py's aggregate_features)
        # (the mean of whole cents, as features.py takes it: exact whatever the order of the sum)
        orders["cents"] = (orders["amount"] * 100 + 0.5).floordiv(1).astype("int64")
        orders["web"] = (orders["channel"] == "web").astype("float64")
        entity = orders.groupby(id_col).agg(
            orders_count=("amount", "size"),
            orders_mean_amount=("cents", "mean"),
            orders_max_amount=("amount", "max"),
            orders_web_share=("web", "mean"),
            orders_channels=("channel", "nunique"),
        )
        entity = entity.astype("float64").reset_index().sort_values(id_col, ignore_index=True)
        entity["orders_mean_amount"] /= 100.0
        if join:
            entity.to_parquet(out / "entity_features.parquet", index=False)
        else:
            entity = None

    # gold: the features, the join, the derived ratios (features.py's derive_features)
    features = df[[id_col, *numeric, *categorical, target]].copy()
    for c in numeric:
        features[c] = features[c].astype("float64")
    if entity is not None:
        features = features.merge(entity, on=id_col, how="left")
        names = [c for c in entity.columns if c != id_col]
        features[names] = features[names].fillna(0.0)
        features = features.sort_values(id_col, ignore_index=True)
    if join:
        months = features["tenure_months"].clip(lower=1.0)
        features["avg_monthly_spend"] = features["total_charges"] / months
        features["support_calls_per_year"] = features["support_calls"] * 12.0 / months
    ppa.DataFrameSchema(
        {
            **{c: ppa.Column(float, nullable=False) for c in numeric},
            **{c: ppa.Column(str, nullable=False) for c in categorical},
        }
    ).validate(features)
    features.to_parquet(out / "features.parquet", index=False)
    aggregates = []
    for c in categorical:
        g = features.groupby(c)[target].agg(["size", "mean"]).reset_index()
        g.columns = ["value", "rows", "target_mean"]
        g.insert(0, "dimension", c)
        g["share"] = g["rows"] / len(features)
        aggregates.append(g)
    pd.concat(aggregates).to_parquet(out / "aggregates.parquet", index=False)


# ------------------------------------------------------------------------------------------
# --check: every engine's silver and gold against the pandas baseline's
# ------------------------------------------------------------------------------------------


def outputs(project: Path, mode: str) -> dict[str, Path]:
    """The files ``mode`` wrote that --check compares (the pipeline's are overwritten by the
    next engine: copied aside after each run)."""
    if mode == BASELINE:
        base = project / "data" / "pandas"
        names = [p.name for p in base.glob("*.parquet") if "quarantine" not in p.name]
        return {n: base / n for n in names if n != "aggregates.parquet"}
    found = {p.name: p for p in (project / "data" / "silver").glob("*.parquet")}
    found = {n: p for n, p in found.items() if "quarantine" not in n}
    for name in ("features.parquet", "entity_features.parquet"):
        if (project / "data" / "gold" / name).is_file():
            found[name] = project / "data" / "gold" / name
    return found


def keep_outputs(project: Path, mode: str) -> dict[str, Path]:
    kept = project / "data" / f"_bench_{mode}"
    kept.mkdir(parents=True, exist_ok=True)
    copies = {}
    for name, path in outputs(project, mode).items():
        copies[name] = kept / name
        shutil.copyfile(path, copies[name])
    return copies


def differences(ours: Mapping[str, Path], theirs: Mapping[str, Path]) -> list[str]:
    """How an engine's tables differ from the baseline's (nothing: the same work was done)."""
    import polars as pl

    problems = []
    for name in sorted(set(ours) | set(theirs)):
        if name not in ours or name not in theirs:
            problems.append(f"{name}: written by {'one' if name in ours else 'the baseline'} only")
            continue
        a, b = pl.read_parquet(ours[name]), pl.read_parquet(theirs[name])
        if sorted(a.columns) != sorted(b.columns):
            problems.append(f"{name}: columns {sorted(a.columns)} vs {sorted(b.columns)}")
            continue
        if a.height != b.height:
            problems.append(f"{name}: {a.height} rows vs {b.height}")
            continue
        key = [c for c in ("order_id", "customer_id") if c in a.columns][:1] or a.columns
        a, b = a.sort(key, nulls_last=True), b.select(a.columns).sort(key, nulls_last=True)
        for col in a.columns:
            x, y = a.get_column(col), b.get_column(col)
            if x.dtype.is_numeric() and y.dtype.is_numeric():
                x, y = x.cast(pl.Float64), y.cast(pl.Float64)
                close = ((x - y).abs() <= TOLERANCE * (1 + y.abs())) | (x.is_null() & y.is_null())
                same = bool(close.all())
            else:
                same = x.cast(pl.Utf8).equals(y.cast(pl.Utf8))
            if not same:
                problems.append(f"{name}: column {col!r} differs")
    return problems


# ------------------------------------------------------------------------------------------
# the parent: run each mode in a child and report
# ------------------------------------------------------------------------------------------


def tree_rss(pid: int) -> int:
    """Resident bytes of process ``pid`` and its descendants (psutil, else Linux /proc)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            proc = psutil.Process(pid)
            total = proc.memory_info().rss
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            return int(total)
        except psutil.Error:
            return 0
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text(encoding="utf-8")
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def measure(project: Path, mode: str) -> dict[str, Any]:
    code = (
        "import json, resource, sys; sys.path.insert(0, 'benchmarks'); import bench_data; "
        f"r = bench_data.run_child({mode!r}); "
        "r['self_rss_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024; "
        "print('RESULT ' + json.dumps(r))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=child_env(project),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0]
    finished = threading.Event()

    def sample() -> None:
        while not finished.wait(0.05):
            peak[0] = max(peak[0], tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    finished.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"bench-data: the {mode} run failed:\n{stderr[-3000:]}")
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    result = dict(json.loads(line.removeprefix("RESULT ")), mode=mode)
    result["peak_rss_mib"] = max(result["self_rss_mib"], peak[0] / 2**20)
    return result


def table_rows(path: Path) -> int:
    import polars as pl

    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--rows-of",
        choices=(ORDERS, CUSTOMERS),
        default=ORDERS,
        help="the table --rows counts (the other gets the generator's ratio); default orders",
    )
    parser.add_argument(
        "--engines",
        default=None,
        help="comma-separated, of polars, duckdb, spark, pandas (default: all, spark when "
        "pyspark and Java are there)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--check", action="store_true", help="compare outputs with pandas'")
    parser.add_argument("--workdir", type=Path, default=None, help="where the project goes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary project")
    args = parser.parse_args(argv)
    if args.engines:
        modes = [m.strip() for m in args.engines.split(",") if m.strip()]
    else:
        modes = ["polars", "duckdb", *(["spark"] if spark_available() else []), BASELINE]
    unknown = [m for m in modes if m not in (*ENGINES, BASELINE)]
    if unknown:
        parser.error(f"--engines: unknown {unknown}; use {', '.join((*ENGINES, BASELINE))}")
    data = source_conf(args.rows, args.rows_of, args.seed)
    project = make_project(data, args.workdir)
    results: list[dict[str, Any]] = []
    kept: dict[str, dict[str, Path]] = {}
    try:
        ingest = measure(project, "ingest")
        shape = ", ".join(f"{n:,} {table}" for table, n in ingest["bronze_rows"].items())
        join = "orders joined per customer" if ORDERS in ingest["bronze_rows"] else "no join"
        print(
            f"bench-data: bronze {shape} ({join}), {os.cpu_count()} CPU(s), load average "
            f"{os.getloadavg()[0]:.1f}, project {project}"
        )
        print(
            f"  ingest (generate + write bronze): {ingest['seconds']:.2f} s, "
            f"peak RSS {ingest['peak_rss_mib']:.0f} MiB"
        )
        for mode in modes:
            result = measure(project, mode)
            written = outputs(project, mode)
            result["rows"] = {n: table_rows(p) for n, p in written.items()}
            if args.check:
                kept[mode] = keep_outputs(project, mode)
            results.append(result)
        report(results)
        return check(kept) if args.check else 0
    finally:
        if not args.keep:
            shutil.rmtree(project, ignore_errors=True)


def report(results: list[dict[str, Any]]) -> None:
    baseline = next((r for r in results if r["mode"] == BASELINE), None)
    print(
        f"  {'bronze -> gold':<14}{'wall s':>8}{'CPU s':>8}{'silver s':>10}{'gold s':>8}"
        f"{'peak RSS MiB':>14}{'gold rows':>11}   vs pandas (wall / CPU)"
    )
    for r in results:
        ratio = "-"
        if baseline and r is not baseline:
            # Spark's CPU time is its Python driver's only: no CPU ratio for it
            cpu = (
                "-"
                if r["mode"] == "spark"
                else f"{baseline['cpu_seconds'] / r['cpu_seconds']:.1f}x"
            )
            ratio = f"{baseline['seconds'] / r['seconds']:.1f}x / {cpu} faster"
        split = [f"{r[k]:.2f}" if k in r else "-" for k in ("silver_seconds", "gold_seconds")]
        print(
            f"  {r['mode']:<14}{r['seconds']:>8.2f}{r['cpu_seconds']:>8.2f}{split[0]:>10}"
            f"{split[1]:>8}{r['peak_rss_mib']:>14.0f}"
            f"{r['rows'].get('features.parquet', 0):>11,}   {ratio}"
        )
    print(f"  load average after the runs: {os.getloadavg()[0]:.1f} (1 min)")
    polars = next((r for r in results if r["mode"] == "polars"), None)
    if polars and baseline:
        print(
            f"  polars/pandas: {polars['seconds'] / baseline['seconds']:.2f} of pandas' wall "
            f"time, {polars['cpu_seconds'] / baseline['cpu_seconds']:.2f} of its CPU time"
        )
    print(
        "  (CPU s = user + system time of the child process: steadier than wall time on a busy "
        "machine; polars and duckdb use every core, so their CPU time may exceed their wall "
        "time. Spark's CPU s is the Python driver only; its JVM is in the wall time and the RSS)"
    )


def check(kept: dict[str, dict[str, Path]]) -> int:
    if BASELINE not in kept:
        print("  --check: nothing to compare without the pandas baseline")
        return 0
    failed = False
    for mode, files in kept.items():
        if mode == BASELINE:
            continue
        problems = differences(files, kept[BASELINE])
        same = f"same tables ({', '.join(sorted(files))})"
        print(f"  --check {mode} vs pandas: " + (same if not problems else "DIFFERENT"))
        for p in problems:
            print(f"    {p}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
