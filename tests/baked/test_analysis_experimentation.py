"""Baked project: churn with the analysis and experimentation phases.

Generate churn with every phase, `make pipeline`, batch-score gold so the prediction log has
traffic, then run the project's own tests of both phases (they execute the notebooks with
nbclient, build the report from small data and run the dashboard in streamlit's AppTest), and
check from outside: `make report` on the real data gives one self-contained HTML file whose
charts are real SVG, the dashboard shows the real figures and `make dashboard` answers on
127.0.0.1, executing the notebooks changed nothing on disk, and docs/use-case.md carries the
gate's threshold.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET

import pytest

from .champion import champion_dir
from .conftest import Baked, BakeFn

PHASES = ["data", "training", "serving", "monitoring", "infra", "analysis", "experimentation"]
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)
SVG_URI = re.compile(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"')

DASHBOARD_FIGURES = """
import json, sys
from streamlit.testing.v1 import AppTest
app = AppTest.from_file(sys.argv[1], default_timeout=300).run()
print(json.dumps({"exception": [str(e.value) for e in app.exception],
                  "metrics": {m.label: m.value for m in app.metric},
                  "title": app.title[0].value if app.title else None}))
"""


@pytest.fixture(scope="module")
def churn(bake: BakeFn) -> Baked:
    baked = bake("churn", phases=PHASES)
    baked.make("pipeline")
    # traffic for the analysis: batch scoring appends every scored row to logs/requests.jsonl
    baked.run(".venv/bin/python", "-m", f"{baked.package}.serving.batch")
    return baked


def logged_requests(churn: Baked) -> int:
    return len((churn.path / "logs" / "requests.jsonl").read_text(encoding="utf-8").splitlines())


def test_project_tests_of_both_phases_pass(churn: Baked) -> None:
    notebooks = {p.name: p.read_bytes() for p in (churn.path / "notebooks").glob("*.ipynb")}
    assert sorted(notebooks) == ["01-eda.ipynb", "02-baseline.ipynb"]
    result = churn.run(
        ".venv/bin/python", "-m", "pytest", "tests/analysis", "tests/notebooks", "-q", "-rs",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, result.stdout[-3000:]
    assert "failed" not in summary and "error" not in summary
    # executing the notebooks wrote nothing back: they stay stripped
    assert {p.name: p.read_bytes() for p in (churn.path / "notebooks").glob("*.ipynb")} == notebooks
    for name in notebooks:
        churn.run(".venv/bin/nbstripout", "--verify", f"notebooks/{name}")


def test_phase_code_passes_the_projects_linters(churn: Baked) -> None:
    paths = [f"src/{churn.package}/analysis", "tests/analysis", "tests/notebooks"]
    churn.run(".venv/bin/ruff", "check", *paths)
    churn.run(".venv/bin/ruff", "format", "--check", *paths)
    churn.run(".venv/bin/mypy", f"src/{churn.package}/analysis")


def test_make_report_is_self_contained(churn: Baked) -> None:
    out = churn.make("report").stdout
    assert "reports/business-report.html" in out
    page = (churn.path / "reports" / "business-report.html").read_text(encoding="utf-8")
    assert EXTERNAL.search(page) is None, EXTERNAL.search(page)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    charts = SVG_URI.findall(page)
    assert len(charts) >= 4  # one per categorical dimension, volume, prediction distribution
    for encoded in charts:
        root = ET.fromstring(base64.b64decode(encoded))
        assert root.tag.endswith("svg") and len(list(root.iter())) > 10
        assert not re.search(rb"(?:src|href)=\"https?:", base64.b64decode(encoded))
    metadata = json.loads((champion_dir(churn.path) / "metadata.json").read_text())
    assert metadata["model_version"] in page
    assert f"{logged_requests(churn):,} scored records" in page
    for dimension in ("contract", "internet_service", "payment_method"):
        assert f"<h3>{dimension}</h3>" in page
    assert "Latest batch scoring" in page


def test_dashboard_on_the_real_data(churn: Baked) -> None:
    script = f"src/{churn.package}/analysis/dashboard.py"
    shown = json.loads(churn.run(".venv/bin/python", "-c", DASHBOARD_FIGURES, script).stdout)
    assert shown["exception"] == []
    assert shown["title"] == "Churn Prediction: business dashboard"
    metadata = json.loads((champion_dir(churn.path) / "metadata.json").read_text())
    assert shown["metrics"]["model version"] == metadata["model_version"]
    assert shown["metrics"]["scored records"] == f"{logged_requests(churn):,}"
    assert shown["metrics"]["last gate decision"] == "blessed"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_make_dashboard_serves_on_loopback(churn: Baked) -> None:
    port = free_port()
    env = {**os.environ, "DASHBOARD_PORT": str(port)}
    for key in ("VIRTUAL_ENV", "MLOPS_PROJECT_ROOT", "MLOPS_ENV"):
        env.pop(key, None)
    log = churn.path / "dashboard-test.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            ["make", "--no-print-directory", "dashboard"],
            cwd=churn.path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and streamlit in their own group, stopped together
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    pytest.fail(f"dashboard exited {server.returncode}:\n{log.read_text()[-3000:]}")
                try:
                    url = f"http://127.0.0.1:{port}/_stcore/health"
                    with urllib.request.urlopen(url, timeout=5) as response:
                        if response.status == 200 and response.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"dashboard not up after 120 s:\n{log.read_text()[-3000:]}")
                time.sleep(0.5)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
                assert response.status == 200 and b"<html" in response.read().lower()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    assert f"URL: http://127.0.0.1:{port}" in log.read_text()


def test_use_case_links_the_gate_threshold(churn: Baked) -> None:
    page = (churn.path / "docs" / "use-case.md").read_text(encoding="utf-8")
    assert "roc_auc >= 0.75" in page
    assert "](../conf/base.yaml)" in page
    assert "min_score: 0.75" in (churn.path / "conf" / "base.yaml").read_text(encoding="utf-8")
    assert "Predict which customers will cancel next month" in page
    targets = churn.make("help").stdout
    for target in ("report", "dashboard", "notebooks", "strip-notebooks"):
        assert re.search(rf"^\s+{target}\s", targets, re.MULTILINE), targets
