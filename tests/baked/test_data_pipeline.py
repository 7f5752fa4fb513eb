"""Baked data phase: generate the examples, `make data`, and check the layers from outside.

Each case is a generated project with the data phase alone (the phase must stand on its own; the
other phases have their own baked tests), installed into its own .venv. The checks read the
files the pipeline wrote with the project's polars, independently of the pipeline's code.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import Baked, BakeFn

CASES = {
    "churn-polars": ("churn", []),
    "diabetes-polars": ("diabetes", []),
    "churn-duckdb": ("churn", ["data.engine=duckdb"]),
}

#: rules of the synthetic customer contract, restated here so the test does not trust the code
BROKEN_CUSTOMER = """
import polars as pl
bronze = pl.concat([pl.read_parquet(p) for p in sorted(__import__('glob').glob(
    'data/bronze/ingest_date=*/part-*.parquet'))])
broken = (
    ~pl.col('age').is_between(18, 100) | ~pl.col('tenure_months').is_between(0, 1200)
    | ~pl.col('contract').is_in(['month-to-month', 'one-year', 'two-year'])
    | (pl.col('monthly_charges') < 0) | (pl.col('total_charges') < 0)
    | (pl.col('support_calls') < 0) | pl.col('customer_id').is_null() | pl.col('churned').is_null()
)
bad = bronze.filter(broken.fill_null(False))
good = bronze.filter(~broken.fill_null(False))
exact = good.height - good.unique().height
print(json.dumps({'rows': bronze.height, 'broken': bad.height, 'exact_duplicates': exact}))
"""


def _json(project: Baked, code: str) -> Any:
    proc = project.python("import json\n" + code)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module", params=list(CASES))
def made(request: pytest.FixtureRequest, bake: BakeFn) -> tuple[str, Baked]:
    example, sets = CASES[request.param]
    project = bake(example, sets=sets, phases=["data"])
    result = project.make("data")
    assert "gold:" in result.stdout
    return request.param, project


def test_gold_matches_its_contract(made: tuple[str, Baked]) -> None:
    case, project = made
    check = _json(project, """
import polars as pl
contract = json.load(open('data/gold/contract.json'))
features = pl.read_parquet('data/gold/features.parquet')
problems = []
if set(contract) != {'target', 'task', 'id_column', 'main_table', 'features', 'inputs',
                     'derived', 'entity_features'}:
    problems.append(f'keys {sorted(contract)}')
expected = ([contract['id_column']] if contract['id_column'] else []) + [
    f['name'] for f in contract['features']] + [contract['target']]
if features.columns != expected:
    problems.append(f'columns {features.columns} != {expected}')
for f in contract['features']:
    dtype = str(features.schema[f['name']])
    if f['kind'] == 'numeric' and (f['dtype'], dtype) != ('Float64', 'Float64'):
        problems.append(f"{f['name']}: {dtype}")
    if f['kind'] == 'categorical':
        if (f['dtype'], dtype) != ('String', 'String'):
            problems.append(f"{f['name']}: {dtype}")
        extra = set(features[f['name']].unique().to_list()) - set(f['categories'])
        if extra:
            problems.append(f"{f['name']}: values outside categories {extra}")
nulls = features.null_count().sum_horizontal().item()
if nulls:
    problems.append(f'{nulls} missing values')
print(json.dumps({'problems': problems, 'rows': features.height, 'task': contract['task'],
                  'target': contract['target'], 'n_features': len(contract['features'])}))
""")  # fmt: skip
    assert check["problems"] == []
    if case.startswith("churn"):
        assert (check["task"], check["target"]) == ("classification", "churned")
        assert check["rows"] > 19_000
    else:
        assert (check["task"], check["target"], check["rows"]) == ("regression", "target", 442)
        assert check["n_features"] == 10


def test_no_pii_value_from_bronze_in_silver_or_gold(made: tuple[str, Baked]) -> None:
    case, project = made
    found = _json(project, """
import glob, polars as pl
pii = json.load(open('data/silver/contract.json'))
pii = [c['name'] for c in pii['columns'] if c['role'] == 'pii']
bronze = pl.concat([pl.read_parquet(p) for p in glob.glob('data/bronze/*/part-*.parquet')])
values = set()
for c in pii:
    values |= set(bronze[c].drop_nulls().cast(pl.Utf8).to_list())
leaks = {}
for path in glob.glob('data/silver/*.parquet') + glob.glob('data/gold/*.parquet'):
    frame = pl.read_parquet(path)
    for name, dtype in frame.schema.items():
        hit = values & set(frame[name].drop_nulls().cast(pl.Utf8).to_list())
        if hit:
            leaks[f'{path}:{name}'] = sorted(hit)[:3]
for path in glob.glob('reports/*') + ['data/lineage.jsonl']:
    text = open(path).read()
    hit = [v for v in values if v in text]
    if hit:
        leaks[path] = hit[:3]
print(json.dumps({'pii': pii, 'values': len(values), 'leaks': leaks}))
""")  # fmt: skip
    assert found["leaks"] == {}
    if case.startswith("churn"):
        assert found["pii"] == ["name", "email", "phone"] and found["values"] > 19_000
    else:
        assert found["pii"] == []


def test_quality_report_counts_the_injected_bad_rows(made: tuple[str, Baked]) -> None:
    case, project = made
    report = json.loads((project.path / "reports" / "data-quality.json").read_text())
    assert (project.path / "reports" / "data-quality.md").is_file()
    engine = "duckdb" if case.endswith("duckdb") else "polars"
    assert report["engine"] == engine
    if case.startswith("diabetes"):
        assert report["quarantined"]["rows"] == 0 and report["silver"]["rows"] == 442
        return
    expected = _json(project, BROKEN_CUSTOMER)
    assert expected["broken"] > 0 and expected["exact_duplicates"] > 0
    assert report["bronze"]["rows"] == expected["rows"] == 20_000
    assert report["quarantined"]["rows"] == expected["broken"]
    assert report["duplicates"]["exact_rows_removed"] == expected["exact_duplicates"]
    by_reason = report["quarantined"]["by_reason"]
    for reason in ("age: in_range(18, 100)", "customer_id: missing", "churned: missing",
                   "monthly_charges: greater_than_or_equal_to(0)"):  # fmt: skip
        assert by_reason.get(reason, 0) > 0, by_reason
    quarantine = _json(project, """
import polars as pl
q = pl.read_parquet('data/silver/quarantine.parquet')
print(json.dumps({'rows': q.height, 'reasons': q['_reason'].null_count()}))
""")  # fmt: skip
    assert quarantine == {"rows": expected["broken"], "reasons": 0}


def test_bad_source_fails_clearly_and_writes_nothing(made: tuple[str, Baked]) -> None:
    case, project = made
    if case != "churn-polars":
        pytest.skip("checked once")
    layers = sorted((project.path / "data").glob("[sg]*/*.parquet"))
    before = {p: p.read_bytes() for p in layers}
    dev = project.path / "conf" / "dev.yaml"
    original = dev.read_text(encoding="utf-8")
    dev.write_text(original + "data:\n  source:\n    kind: csv\n    path: data/raw/missing.csv\n",
                   encoding="utf-8")  # fmt: skip
    try:
        proc = project.make("data", check=False)
    finally:
        dev.write_text(original, encoding="utf-8")
    assert proc.returncode != 0
    assert "source file data/raw/missing.csv does not exist" in proc.stderr
    assert sorted((project.path / "data").glob("[sg]*/*.parquet")) == layers
    assert all(p.read_bytes() == content for p, content in before.items())


def test_generated_tests_and_linters_pass(made: tuple[str, Baked]) -> None:
    _, project = made
    tests = project.make("test")
    assert " passed" in tests.stdout and " failed" not in tests.stdout
    ours = [f"src/{project.package}/data", "tests/data", "benchmarks/bench_data.py"]
    project.run(".venv/bin/ruff", "check", *ours)
    project.run(".venv/bin/ruff", "format", "--check", *ours)
    project.make("lint")
