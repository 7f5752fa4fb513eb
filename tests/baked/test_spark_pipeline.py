"""Baked Spark project: `examples/spark` with two named sources (customers from a CSV file, their
orders from JSON lines) and a join written in the project's own `data/features.py`; `make
pipeline` on local Spark, and check from outside that gold keeps its contract, PII never reaches
silver or gold, and the polars and duckdb engines write the same silver and gold, row for row,
from the same bronze. Needs Java 17+ (skipped with the reason otherwise).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .champion import champion_dir
from .conftest import Baked, BakeFn
from .test_serving_monitoring import call, serving
from .two_sources import DERIVED, ENTITY_FEATURES, SOURCES, own_data

PII = ("name", "email", "phone")


def _java_major() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    found = re.search(r'version "(\d+)(?:\.(\d+))?', proc.stderr + proc.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def _json(project: Baked, code: str) -> Any:
    proc = project.python("import json\n" + code)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def spark_project(bake: BakeFn) -> tuple[Baked, subprocess.CompletedProcess[str]]:
    major = _java_major()
    if major is None or major < 17:
        pytest.skip(f"Spark 4 needs Java 17+ (found: {major or 'no java on PATH'})")
    project = bake("spark", sets=SOURCES)
    own_data(project)
    return project, project.make("pipeline")


def test_pipeline_runs_on_spark(spark_project: tuple[Baked, Any]) -> None:
    project, proc = spark_project
    assert "gold:" in proc.stdout and "silver:" in proc.stdout
    assert "ingest orders:" in proc.stdout and "silver orders:" in proc.stdout
    report = json.loads((project.path / "reports/data-quality.json").read_text(encoding="utf-8"))
    assert report["engine"] == "spark"
    assert report["quarantined"]["rows"] > 0  # the source's defects were caught
    orders = json.loads((project.path / "reports/data-quality-orders.json").read_text("utf-8"))
    assert orders["bronze"]["rows"] > 10_000 and orders["duplicates"]["exact_rows_removed"] > 0
    contract = json.loads((project.path / "data/gold/contract.json").read_text(encoding="utf-8"))
    assert contract["main_table"] == "customers"
    assert contract["entity_features"] == ENTITY_FEATURES
    assert contract["derived"] == DERIVED
    manifests = list((project.path / "data/bronze/orders").glob("ingest_date=*/*.manifest.json"))
    assert json.loads(manifests[0].read_text())["source"]["files"] == ["data/raw/orders.jsonl"]
    assert (project.path / "models/candidate/model.onnx").is_file()
    lineage = (project.path / "data/lineage.jsonl").read_text(encoding="utf-8").splitlines()
    assert any(json.loads(line).get("engine") == "spark" for line in lineage if line.strip())


def test_gold_keeps_its_contract(spark_project: tuple[Baked, Any]) -> None:
    project, _ = spark_project
    problems = _json(
        project,
        """
import polars as pl
contract = json.load(open('data/gold/contract.json'))
features = pl.read_parquet('data/gold/features.parquet')
problems = []
expected = [contract['id_column']] + [f['name'] for f in contract['features']] + [
    contract['target']]
if features.columns != expected:
    problems.append(f'columns {features.columns} != {expected}')
for f in contract['features']:
    dtype = str(features.schema[f['name']])
    want = 'Float64' if f['kind'] == 'numeric' else 'String'
    if (f['dtype'], dtype) != (want, want):
        problems.append(f"{f['name']}: {f['dtype']} / {dtype}")
    if f['kind'] == 'categorical':
        extra = set(features[f['name']].unique().to_list()) - set(f['categories'])
        if extra:
            problems.append(f"{f['name']}: values outside categories {extra}")
if str(features.schema[contract['target']]) != 'Int64':
    problems.append(f"target {features.schema[contract['target']]}")
if features.null_count().sum_horizontal().item():
    problems.append('missing values in gold')
if features[contract['id_column']].n_unique() != features.height:
    problems.append('repeated ids in gold')
if 'lifetime_value' in features.columns:
    problems.append('the other target leaked into gold')
print(json.dumps(problems))
""",
    )
    assert problems == []


def test_pii_never_reaches_silver_or_gold(spark_project: tuple[Baked, Any]) -> None:
    project, _ = spark_project
    leaks = _json(
        project,
        f"""
import glob
import polars as pl
pii = {list(PII)!r}
bronze = pl.concat([pl.read_parquet(p) for p in glob.glob('data/bronze/*/*.parquet')])
raw = {{v for c in pii for v in bronze[c].drop_nulls().to_list()}}
assert len(raw) > 1000, len(raw)
leaks = {{}}
for path in ['data/silver/customers.parquet', 'data/silver/quarantine.parquet',
             'data/gold/features.parquet', 'data/gold/aggregates.parquet']:
    frame = pl.read_parquet(path)
    text = {{v for c, t in frame.schema.items() if t == pl.String
            for v in frame[c].drop_nulls().to_list()}}
    if raw & text:
        leaks[path] = sorted(raw & text)[:3]
silver = pl.read_parquet('data/silver/customers.parquet')
for c in pii:
    if not silver[c].drop_nulls().str.contains('^[0-9a-f]{{64}}$').all():
        leaks[c] = 'not a sha-256 digest in silver'
print(json.dumps(leaks))
""",
    )
    assert leaks == {}


@pytest.mark.parametrize("engine", ["polars", "duckdb"])
def test_every_engine_writes_the_same_silver_and_gold_from_the_same_bronze(
    spark_project: tuple[Baked, Any], tmp_path: Path, engine: str
) -> None:
    """One implementation of the steps: polars and duckdb give Spark's silver (both tables, the
    quarantine) and gold (features, the per-customer table) row for row, to the last bit."""
    project, _ = spark_project
    if engine == "duckdb":  # a Spark project does not install duckdb: add it to this venv
        project.run(str(project.path / ".venv" / "bin" / "uv"), "pip", "install", "-q",
                    "--python", str(project.path / ".venv" / "bin" / "python"), "duckdb>=1.1")  # fmt: skip
    copy = tmp_path / f"{engine}-run"
    shutil.copytree(project.path / "conf", copy / "conf")
    shutil.copytree(project.path / "data" / "bronze", copy / "data" / "bronze")
    python = str(project.path / ".venv" / "bin" / "python")
    twin = Baked(copy, project.package)
    for step in ("silver", "gold"):
        twin.run(python, "-m", f"{project.package}.data", step, "--engine", engine)
    report = json.loads((copy / "reports/data-quality.json").read_text(encoding="utf-8"))
    assert report["engine"] == engine
    diff = _json(
        project,
        f"""
import polars as pl
from polars.testing import assert_frame_equal
problems = []
for name in ['silver/customers.parquet', 'silver/orders.parquet', 'silver/quarantine.parquet',
             'silver/orders.quarantine.parquet', 'gold/features.parquet',
             'gold/entity_features.parquet', 'gold/aggregates.parquet']:
    spark = pl.read_parquet('data/' + name)
    other = pl.read_parquet({str(copy)!r} + '/data/' + name)
    try:
        # orders' inferred contract has no value rule: its quarantine may be empty
        assert spark.height > 0 or name.endswith('orders.quarantine.parquet')
        assert_frame_equal(spark, other, check_exact=not name.endswith('aggregates.parquet'),
                           rel_tol=1e-12)
    except AssertionError as exc:
        problems.append(f'{{name}}: {{exc}}')
for name in ['gold/contract.json']:
    if json.load(open('data/' + name)) != json.load(open({str(copy)!r} + '/data/' + name)):
        problems.append(name)
print(json.dumps(problems))
""",
    )
    assert diff == []


def test_every_run_is_a_delta_version_that_reads_back(spark_project: tuple[Baked, Any]) -> None:
    """data.versioning: delta: silver and gold are Delta tables too; the version of a run reads
    back equal to the parquet that run wrote (time travel)."""
    project, _ = spark_project
    history = project.run(
        str(project.path / ".venv" / "bin" / "python"), "-m", f"{project.package}.data",
        "delta-history",
    )  # fmt: skip
    assert "silver: data/silver/_delta/customers" in history.stdout
    assert "gold: data/gold/_delta/features" in history.stdout
    same = _json(
        project,
        f"""
import polars as pl
from {project.package}.data import delta
table = 'data/gold/_delta/features'
version = delta.versions(table)[-1]
print(json.dumps(delta.read_version(table, version).equals(pl.read_parquet(
    'data/gold/features.parquet'))))
""",
    )
    assert same is True


def test_the_spark_projects_own_spark_tests_pass(spark_project: tuple[Baked, Any]) -> None:
    """Spark vs polars layers, lake URLs through fsspec, the cluster job's entry file on a lake,
    Delta commits and time travel: the generated project's tests of its Spark parts."""
    project, _ = spark_project
    files = ["test_spark_engine.py", "test_spark_job.py", "test_lake_urls.py", "test_delta.py"]
    proc = project.run(
        str(project.path / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-rs",
        "-p", "no:cacheprovider", *[f"tests/data/{f}" for f in files],
    )  # fmt: skip
    assert " passed" in proc.stdout and " failed" not in proc.stdout, proc.stdout[-2000:]
    # the cluster job's bundle carries conf/ only: this project's CSV/JSON files stay here
    skips = [line for line in proc.stdout.splitlines() if line.startswith("SKIPPED")]
    assert all("not in the job bundle" in line for line in skips), proc.stdout[-2000:]


def test_the_spark_project_serves_raw_records_and_monitors_them(
    spark_project: tuple[Baked, Any],
) -> None:
    """The model Spark's gold trained is served: raw customer records (the packaged feature code
    looks the per-customer order aggregates up by id) get answers, an unknown id a 422; the
    late labels of those requests go through `make monitor`, which judges drift and performance
    and finds the service healthy."""
    project, _ = spark_project
    folder = champion_dir(project.path)
    metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    assert metadata["entity_features"] == ENTITY_FEATURES and (folder / "features.py").is_file()
    target, id_column = metadata["target"], metadata["id_column"]
    records = _json(
        project,
        f"""
import polars as pl
meta = json.load(open({str(folder / "metadata.json")!r}))
inputs = [i['name'] for i in meta['inputs']]
silver = pl.read_parquet('data/silver/customers.parquet').sample(300, seed=13)
print(json.dumps(silver.select([meta['id_column'], *inputs, meta['target']]).to_dicts()))
""",
    )
    with serving(project) as port:
        for start in range(0, len(records), 100):
            batch = [
                {**{k: v for k, v in r.items() if k != target}, "request_id": f"s-{start + i}"}
                for i, r in enumerate(records[start : start + 100])
            ]
            status, body = call(port, "POST", "/predict", batch)
            assert status == 200, body
        unknown = {k: v for k, v in records[0].items() if k != target} | {id_column: "C-none"}
        status, body = call(port, "POST", "/predict", unknown)
        assert status == 422 and body["detail"][0]["type"] == "unknown_id", body
    labels = project.path / "data" / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    rows = [f"s-{i},{r[target]}" for i, r in enumerate(records)]
    (labels / "spark.csv").write_text(f"request_id,{target}\n" + "\n".join(rows) + "\n")
    done = project.make("monitor", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((project.path / "reports/monitoring.json").read_text(encoding="utf-8"))
    assert report["data_drift"]["judged"] and report["data_drift"]["drifted_features"] == []
    assert report["performance"]["judged"] and report["performance"]["labelled"] == len(records)
    assert not report["performance"]["degraded"]
