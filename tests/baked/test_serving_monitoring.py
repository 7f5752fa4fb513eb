"""Baked project: serve the churn example's blessed model over real HTTP, then monitor it.

The project reads two sources of its own (customers from a CSV file, their orders from JSON
lines) and joins them in its own data/features.py. Generate it, `make pipeline`, start uvicorn
on a free 127.0.0.1 port, send valid and invalid requests, check the responses and the request
log (no PII), check `make monitor` stays healthy on traffic like the training data, then send a
shifted sample and check it reports drift and signals retraining (exit code 3). The server is
always stopped.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .conftest import Baked, BakeFn, wait_until_ready
from .two_sources import SOURCES, own_data

PII_EMAIL = "someone.private@example.org"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    port: int, method: str, path: str, payload: Any = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """One HTTP request to the local server: (status, decoded JSON body)."""
    data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@contextmanager
def serving(baked: Baked) -> Iterator[int]:
    """Run `python -m <pkg>.serving` on a free port until the block ends (always stopped)."""
    port = free_port()
    env = baked.env()  # the project's own environment, with the test salt
    log = baked.path / "server-test.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [
                str(baked.path / ".venv" / "bin" / "python"),
                "-m",
                f"{baked.package}.serving",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=baked.path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(server, log, lambda: call(port, "GET", "/ready")[0] == 200)
            yield port
        finally:
            server.send_signal(signal.SIGINT)  # graceful shutdown flushes the request log
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    assert server.returncode == 0, log.read_text()[-4000:]


def champion_metadata(baked: Baked) -> tuple[Path, dict[str, Any]]:
    """The folder and metadata of the model `make serve` answers with (the registry's champion,
    or models/blessed/ in a project from before the registry)."""
    models = baked.path / "models"
    aliases = models / "aliases.json"
    folder = models / "blessed"
    if aliases.is_file():
        folder = models / "versions" / json.loads(aliases.read_text())["champion"]
    return folder, json.loads((folder / "metadata.json").read_text())


def gold_rows(baked: Baked, count: int, shift: bool = False) -> list[dict[str, Any]]:
    """Rows of the project's own gold data: the id (the service looks per-entity features up by
    it), the features plus the true target (last column), optionally with every numeric feature
    shifted far from what the model was trained on."""
    folder, _ = champion_metadata(baked)
    code = f"""
import json, polars as pl
meta = json.load(open("{folder / "metadata.json"}"))
names = [f["name"] for f in meta["features"]] + [meta["target"]]
names = ([meta["id_column"]] if meta.get("id_column") else []) + names
frame = pl.read_parquet("data/gold/features.parquet").sample({count}, seed=3).select(names)
if {shift}:
    frame = frame.with_columns(
        [(pl.col(f["name"]) * 2 + 40) for f in meta["features"] if f["kind"] == "numeric"]
    )
print(json.dumps(frame.to_dicts()))
"""
    return json.loads(baked.python(code).stdout)


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def churn(bake: BakeFn) -> Baked:
    """The churn example on two sources of its own (customers from a CSV file, their orders from
    JSON lines) joined in its own data/features.py: tests/baked/two_sources.py."""
    baked = bake("churn", sets=SOURCES)
    own_data(baked)
    baked.make("pipeline")
    return baked


def test_serve_log_and_monitor_drift(churn: Baked) -> None:
    _, metadata = champion_metadata(churn)
    names = [f["name"] for f in metadata["features"]]
    numeric = [f["name"] for f in metadata["features"] if f["kind"] == "numeric"]
    # the model's feature code computes these from the raw inputs: a value sent is ignored
    computed = {*metadata.get("derived", []), *metadata.get("entity_features", [])}
    sent = [name for name in numeric if name not in computed]
    categorical = next(f for f in metadata["features"] if f["kind"] == "categorical")
    target = metadata["target"]
    truth = gold_rows(churn, 300)
    normal = [{k: v for k, v in row.items() if k != target} for row in truth]
    logs = churn.path / "logs"

    with serving(churn) as port:
        assert call(port, "GET", "/health") == (200, {"status": "ok"})
        status, ready = call(port, "GET", "/ready")
        assert status == 200 and ready["model_version"] == metadata["model_version"]
        status, meta = call(port, "GET", "/metadata")
        assert status == 200 and [f["name"] for f in meta["features"]] == names
        assert meta["training_data"] == metadata["training_data"]

        # one record, carrying PII the caller happened to include: accepted, scored, not logged
        status, body = call(
            port, "POST", "/predict", {**normal[0], "email": PII_EMAIL, "request_id": "first"}
        )
        assert status == 200, body
        [first] = body["predictions"]
        assert first["request_id"] == "first"
        assert first["prediction"] in metadata["classes"]
        assert sum(first["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        # the rest as lists of records
        for start in range(1, len(normal), 100):
            batch = [
                {**row, "request_id": f"n-{start + i}"}
                for i, row in enumerate(normal[start : start + 100])
            ]
            status, body = call(port, "POST", "/predict", batch)
            assert status == 200 and len(body["predictions"]) == len(normal[start : start + 100])

        # invalid payloads: 422 naming the field (a missing feature is imputed as silver did:
        # test_serving_hardening.py covers it; a number beyond float32 is refused)
        for payload, field in [
            ({**normal[1], sent[0]: 1e308}, sent[0]),
            ({**normal[1], sent[-1]: "lots"}, sent[-1]),
            ({**normal[1], categorical["name"]: "no-such-category"}, categorical["name"]),
            ({**normal[1], "unexpected_column": 1}, "unexpected_column"),
        ]:
            status, body = call(port, "POST", "/predict", payload)
            assert status == 422, (field, body)
            assert any(e["loc"][-1] == field and field in e["msg"] for e in body["detail"]), body
        status, body = call(port, "POST", "/predict", raw=b"{not json")
        assert status == 422

    requests_log = read_log(logs / "requests.jsonl")
    assert len(requests_log) == 300
    assert requests_log[0]["request_id"] == "first"
    assert {r["model_version"] for r in requests_log} == {metadata["model_version"]}
    assert all(set(r["features"]) == set(names) and r["latency_ms"] >= 0 for r in requests_log)
    assert PII_EMAIL not in (logs / "requests.jsonl").read_text()
    assert "email" not in (logs / "requests.jsonl").read_text()
    assert len(read_log(logs / "schema-errors.jsonl")) == 5

    # ground truth arrives for the normal traffic: performance is scored with the spec's metric
    labels = churn.path / "data" / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    rows = [f"n-{i},{truth[i][target]}" for i in range(1, len(truth))]
    (labels / "week-1.csv").write_text(f"request_id,{target}\n" + "\n".join(rows) + "\n")

    healthy = churn.make("monitor", check=False)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    report = json.loads((churn.path / "reports/monitoring.json").read_text())
    assert report["data_drift"]["judged"] and report["data_drift"]["drifted_features"] == []
    assert report["schema"]["rejected_requests"] == 5
    performance = report["performance"]
    assert performance["judged"] and performance["labelled"] == 299
    assert performance["metric"] == metadata["metric"]
    assert performance["value"] > performance["min_score"] and not performance["degraded"]

    shifted = [{k: v for k, v in row.items() if k != target} for row in gold_rows(churn, 600, True)]
    with serving(churn) as port:
        for start in range(0, len(shifted), 200):
            status, _ = call(port, "POST", "/predict", shifted[start : start + 200])
            assert status == 200

    # make turns any failing recipe into its own exit code 2 and names the recipe's code
    drifted = churn.make("monitor", check=False)
    assert drifted.returncode == 2 and "Error 3" in drifted.stderr, drifted.stdout + drifted.stderr
    assert "RETRAINING DUE" in drifted.stdout
    # schedulers and the monitor workflow run the module to tell "retrain" (3) from errors (2)
    direct = churn.run(".venv/bin/python", "-m", f"{churn.package}.monitoring", check=False)
    assert direct.returncode == 3, direct.stdout + direct.stderr
    report = json.loads((churn.path / "reports/monitoring.json").read_text())
    assert report["retraining_due"] and report["exit_code"] == 3
    assert set(numeric) & set(report["data_drift"]["drifted_features"])
    assert report["window"]["requests"] == 900
    page = (churn.path / "reports/monitoring.html").read_text()
    assert "retraining due" in page and "<svg" in page


def test_the_default_phases_project_passes_its_own_tests_linters_and_types(churn: Baked) -> None:
    """The churn example has every default phase (data, training, serving, monitoring, infra):
    its own suite (the serving TestClient tests, the drift tests, ...), ruff and mypy pass."""
    for target in ("test", "lint", "typecheck"):
        done = churn.make(target, check=False)
        assert done.returncode == 0, f"make {target}:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"
        if target == "test":
            assert " passed" in done.stdout and " failed" not in done.stdout


def test_the_running_service_scores_raw_silver_records(churn: Baked) -> None:
    """Raw records of the main silver table (no derived feature, no per-entity feature) posted to
    a running `make serve` get the predictions the model gives their gold rows: the packaged copy
    of data/features.py computes the rest. Batch scoring takes the same raw file."""
    folder, metadata = champion_metadata(churn)
    assert (folder / "features.py").is_file() and metadata["feature_code"]["sha256"]
    inputs = [i["name"] for i in metadata["inputs"]]
    computed = [*metadata["derived"], *metadata["entity_features"]]
    assert metadata["derived"] and not set(computed) & set(inputs)
    id_column, target = metadata["id_column"], metadata["target"]
    code = f"""
import json, polars as pl
silver = pl.read_parquet("data/silver/{metadata["main_table"]}.parquet").sample(40, seed=5)
ids = silver["{id_column}"].to_list()
gold = pl.read_parquet("data/gold/features.parquet").filter(pl.col("{id_column}").is_in(ids))
gold = pl.DataFrame({{"{id_column}": ids}}).join(gold, on="{id_column}", maintain_order="left")
raw = silver.select(["{id_column}", *{inputs!r}])
raw.write_parquet("raw-records.parquet")
names = [f["name"] for f in json.load(open("{folder / "metadata.json"}"))["features"]]
gold = gold.select(["{id_column}", *names])
print(json.dumps({{"raw": raw.to_dicts(), "gold": gold.to_dicts()}}))
"""
    rows = json.loads(churn.python(code).stdout)
    raw, gold = rows["raw"], rows["gold"]
    with serving(churn) as port:
        status, schema = call(port, "GET", "/openapi.json")
        body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
        published = set(body["schema"]["anyOf"][0]["properties"])
        assert set(inputs) <= published and not set(computed) & published
        status, from_raw = call(port, "POST", "/predict", raw)
        assert status == 200, from_raw
        status, from_gold = call(port, "POST", "/predict", gold)
        assert status == 200, from_gold
        # a derived feature sent anyway is ignored: the computed value wins
        wrong = [{**r, **{n: 12345.0 for n in metadata["derived"]}} for r in raw]
        status, overridden = call(port, "POST", "/predict", wrong)
        assert status == 200, overridden
        category = next(i for i in metadata["inputs"] if i["kind"] == "categorical")
        status, refused = call(port, "POST", "/predict", {**raw[0], category["name"]: "no-such"})
        assert status == 422 and refused["detail"][0]["loc"] == ["body", category["name"]]
        if metadata["entity_features"]:
            status, unknown = call(port, "POST", "/predict", {**raw[0], id_column: "no-such-id"})
            assert status == 422 and unknown["detail"][0]["loc"] == ["body", id_column], unknown
            assert unknown["detail"][0]["type"] == "unknown_id"
    served = [p["probabilities"] for p in from_raw["predictions"]]
    assert served == [p["probabilities"] for p in from_gold["predictions"]]
    assert served == [p["probabilities"] for p in overridden["predictions"]]
    assert target not in raw[0]

    churn.run(
        ".venv/bin/python", "-m", f"{churn.package}.serving.batch", "--input", "raw-records.parquet",
        "--output", "raw-predictions.parquet", "--no-log",
    )  # fmt: skip
    code = """
import json, polars as pl
frame = pl.read_parquet("raw-predictions.parquet")
print(json.dumps(frame.select([c for c in frame.columns if c.startswith("probability_")]).to_dicts()))
"""
    batch = json.loads(churn.python(code).stdout)
    for row, want in zip(batch, served, strict=True):
        assert {k.removeprefix("probability_"): round(v, 6) for k, v in row.items()} == want
