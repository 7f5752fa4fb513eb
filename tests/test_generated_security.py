"""Generated repositories are secure by default: no secrets, bandit clean, sensitive paths ignored."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_template.apply import apply_new
from mlops_template.render import render
from mlops_template.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/mlops.yaml"))
BIN = Path(sys.executable).parent


def generate(example: str, tmp_path: Path) -> Path:
    dest = tmp_path / example
    apply_new(render(load_spec(REPO / "examples" / example / "mlops.yaml")), dest)
    return dest


@pytest.mark.parametrize("example", EXAMPLES)
def test_detect_secrets_finds_nothing(example: str, tmp_path: Path) -> None:
    dest = generate(example, tmp_path)
    files = [str(p) for p in dest.rglob("*") if p.is_file() and ".mlops" not in p.parts]
    proc = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", *files], capture_output=True, text=True, check=True
    )
    results = json.loads(proc.stdout)["results"]
    assert results == {}, json.dumps(results, indent=1)[:2000]


@pytest.mark.parametrize("example", EXAMPLES)
def test_bandit_is_clean(example: str, tmp_path: Path) -> None:
    dest = generate(example, tmp_path)
    proc = subprocess.run(
        [str(BIN / "bandit"), "-q", "-r", str(dest / "src"), "-f", "json", "-ll"],
        capture_output=True,
        text=True,
    )
    report = json.loads(proc.stdout)
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}"
        for r in report["results"]
    ]
    assert findings == [], "\n".join(findings)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to ask what is ignored")
def test_gitignore_covers_data_models_secrets_and_state(tmp_path: Path) -> None:
    dest = generate("churn", tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    must_ignore = [
        "data/bronze/ingest_date=2026-01-01/part-1.parquet",
        "data/silver/customers.parquet",
        "data/gold/features.parquet",
        "models/versions/20261203T101500Z-1a2b3c4d/model.onnx",
        "models/aliases.json",
        "models/registry.jsonl",
        "reports/gate.json",
        "logs/requests.jsonl",
        ".env",
        ".env.production",
        "infra/terraform/envs/dev/terraform.tfstate",
        "infra/terraform/envs/dev/.terraform/providers.lock",
        "mlflow.db",
        ".venv/bin/python",
    ]
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", *must_ignore],
        cwd=dest,
        capture_output=True,
        text=True,
    )
    ignored = set(proc.stdout.split())
    assert ignored == set(must_ignore), sorted(set(must_ignore) - ignored)
    kept = subprocess.run(
        ["git", "check-ignore", "--no-index", "data/bronze/README.md"],
        cwd=dest,
        capture_output=True,
    )
    assert kept.returncode == 1, "the layer READMEs must stay in git"
