"""Batch serving's delivery on a generated project (the diabetes example, serving.mode: batch):
`make lock` writes uv.lock and `make setup` installs exactly it (a stale lock is refused, naming
`make lock`); its serving tests, linters and types pass with the batch job in it; after
`make pipeline`, the batch image's command (`python -m <package>.serving.job`) scores gold
through storage URLs (file:// here) the way the scheduled cloud job runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Baked, BakeFn

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def batch(bake: BakeFn) -> Baked:
    project = bake("diabetes", sets=["serving.mode=batch", "infra.cloud=gcp"], install=False)
    project.make("lock")
    project.make("setup")
    return project


def test_setup_installs_the_locked_versions_and_refuses_a_stale_lock(batch: Baked) -> None:
    lock = (batch.path / "uv.lock").read_text()
    installed = batch.python(
        "import json, importlib.metadata as m; "
        "print(json.dumps({n: m.version(n) for n in ('polars', 'onnxruntime', 'gcsfs')}))"
    )
    for name, version in json.loads(installed.stdout).items():
        assert f'name = "{name}"\nversion = "{version}"' in lock, (name, version)
    pyproject = batch.path / "pyproject.toml"
    original = pyproject.read_text()
    pyproject.write_text(original.replace('"pyarrow>=15",', '"pyarrow>=15",\n  "six>=1.16",', 1))
    try:
        stale = batch.make("setup", check=False)
        assert stale.returncode != 0
        assert "uv.lock does not match pyproject.toml: run `make lock`" in stale.stderr
    finally:
        pyproject.write_text(original)
    batch.make("setup")


def test_the_batch_project_passes_its_serving_tests_linters_and_types(batch: Baked) -> None:
    # the serving tests only (the job's among them): the other phases' tests run in the baked
    # modules of the default (REST) project, and are the same here
    tests = batch.run(str(batch.path / ".venv" / "bin" / "python"), "-m", "pytest", "-q",
                      "tests/serving")  # fmt: skip
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    assert (batch.path / "tests" / "serving" / "test_serving_job.py").is_file()
    batch.make("lint")
    batch.make("typecheck")


def test_the_job_scores_gold_through_storage_urls(batch: Baked, tmp_path: Path) -> None:
    batch.make("pipeline")
    gold = batch.path / "data" / "gold" / "features.parquet"
    out = tmp_path / "predictions"
    job = batch.run(
        str(batch.path / ".venv" / "bin" / "python"), "-m", f"{batch.package}.serving.job",
        env={"SCORE_INPUT_URL": f"file://{gold}", "SCORE_OUTPUT_URL": f"file://{out}"},
    )  # fmt: skip
    (written,) = sorted(out.glob("predictions-*.parquet"))
    assert f"predictions uploaded to file://{written}" in job.stdout
    rows = batch.python(
        "import polars as pl, sys; "
        f"print(pl.read_parquet({str(gold)!r}).height, pl.read_parquet({str(written)!r}).height)"
    )
    source_rows, scored_rows = map(int, rows.stdout.split())
    assert scored_rows == source_rows > 0
    missing = batch.run(
        str(batch.path / ".venv" / "bin" / "python"), "-m", f"{batch.package}.serving.job",
        check=False, env={"SCORE_OUTPUT_URL": f"file://{out}"},
    )  # fmt: skip
    assert missing.returncode == 2 and "SCORE_INPUT_URL is not set" in missing.stderr
