"""Baked project on real data with gaps: palmerpenguins as the CSV source, served and attacked.

The penguins data (palmerpenguins' `load_penguins()`) has a string target (`species`) and missing
values in `sex` and in the measurements, which silver imputes. After `make pipeline` the service
(started with `make serve PORT=...`) must serve a record with a missing feature the way training
saw it, flag numbers beyond the range training saw in the response, the request log and `make
monitor`, refuse numbers that overflow float32 (422), oversized bodies (413, with and without
Content-Length) and non-JSON bodies (415), keep every log line strict JSON, survive schemathesis
on the real model's OpenAPI schema, and say which port is taken. A corrupt bronze partition is
named and quarantined (exit 2), and the next run goes on without it.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .champion import champion_dir
from .conftest import Baked, BakeFn, wait_until_ready
from .test_serving_monitoring import call, free_port

SETS = [
    "project.name=Penguin Species",
    "data.source=csv:data/raw/penguins.csv",
    "ml.target=species",
    "ml.metric=accuracy",
    "ml.min_score=0.8",
    "ml.tracking=none",  # no MLflow to install: this module is about serving
]
PHASES = ["data", "training", "serving", "monitoring"]
FEATURES = ["island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
FEATURES += ["sex", "year"]


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON-lines log, parsed strictly (NaN / Infinity are errors)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line, parse_constant=_no_constant) for line in lines]


@pytest.fixture(scope="module")
def penguins(bake: BakeFn) -> Baked:
    palmerpenguins = pytest.importorskip("palmerpenguins")
    baked = bake("minimal", sets=SETS, phases=PHASES)
    source = baked.path / "data" / "raw" / "penguins.csv"
    source.parent.mkdir(parents=True, exist_ok=True)
    palmerpenguins.load_penguins().to_csv(source, index=False)
    baked.make("pipeline")
    return baked


@pytest.fixture(scope="module")
def served(penguins: Baked) -> Iterator[int]:
    """`make serve PORT=<free port>` for the whole module (always stopped, log flushed)."""
    port = free_port()
    env = {**os.environ, "MLOPS_PII_SALT": "baked-test-salt"}
    for key in ("VIRTUAL_ENV", "MLOPS_PROJECT_ROOT", "MLOPS_ENV"):
        env.pop(key, None)
    log = penguins.path / "server-test.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            ["make", "--no-print-directory", "serve", f"PORT={port}"],
            cwd=penguins.path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # make and its python child get the signal together
        )
        try:
            wait_until_ready(server, log, lambda: call(port, "GET", "/ready")[0] == 200)
            yield port
        finally:
            os.killpg(server.pid, signal.SIGINT)  # graceful shutdown flushes the request log
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


def source_rows(penguins: Baked) -> list[dict[str, Any]]:
    """The source CSV's rows (features and species), NaN as None."""
    import pandas as pd

    frame = pd.read_csv(penguins.path / "data" / "raw" / "penguins.csv")
    rows = frame.to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        for row in rows
    ]


def metadata(penguins: Baked) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (champion_dir(penguins.path) / "metadata.json").read_text(encoding="utf-8")
    )
    return loaded


def test_the_model_carries_silvers_fill_values_and_fences(penguins: Baked) -> None:
    import pandas as pd

    features = {f["name"]: f for f in metadata(penguins)["features"]}
    assert list(features) == FEATURES
    frame = pd.read_csv(penguins.path / "data" / "raw" / "penguins.csv")
    # silver imputes the most frequent category and the median: the same values reach the model
    assert features["sex"]["fill"] == frame["sex"].mode()[0]
    assert features["body_mass_g"]["fill"] == pytest.approx(frame["body_mass_g"].median())
    lower, upper = features["body_mass_g"]["fences"]
    assert lower < frame["body_mass_g"].min() and frame["body_mass_g"].max() < upper
    imputation = json.loads((penguins.path / "data/silver/imputation.json").read_text())
    assert imputation["fills"]["sex"] == features["sex"]["fill"]


def test_a_missing_feature_is_served_as_training_imputed_it(penguins: Baked, served: int) -> None:
    rows = source_rows(penguins)
    fill = {f["name"]: f.get("fill") for f in metadata(penguins)["features"]}
    gap = next(r for r in rows if r["sex"] is None and r["body_mass_g"] is not None)
    missing = {k: v for k, v in gap.items() if k in FEATURES and k != "sex"}
    status, body = call(served, "POST", "/predict", {**missing, "request_id": "gap"})
    assert status == 200, body
    [got] = body["predictions"]
    assert got["imputed"] == ["sex"] and got["out_of_range"] == []
    status, body = call(served, "POST", "/predict", {**missing, "sex": fill["sex"]})
    assert status == 200, body
    [want] = body["predictions"]
    assert want["imputed"] == []
    assert (got["prediction"], got["probabilities"]) == (want["prediction"], want["probabilities"])
    assert got["prediction"] == gap["species"]  # and it is right on this real record


def test_values_far_outside_the_training_range_are_flagged(penguins: Baked, served: int) -> None:
    record = {k: v for k, v in source_rows(penguins)[0].items() if k in FEATURES}
    absurd = {**record, "body_mass_g": -5000, "year": 1e9, "request_id": "absurd"}
    status, body = call(served, "POST", "/predict", [record, absurd])
    assert status == 200, body
    normal, flagged = body["predictions"]
    assert normal["out_of_range"] == []
    assert flagged["out_of_range"] == ["body_mass_g", "year"]


def test_numbers_that_overflow_get_422_naming_the_field(penguins: Baked, served: int) -> None:
    record = {k: v for k, v in source_rows(penguins)[0].items() if k in FEATURES}
    status, body = call(served, "POST", "/predict", {**record, "body_mass_g": 1e308})
    assert status == 422, body
    [error] = body["detail"]
    assert error["loc"] == ["body", "body_mass_g"] and "body_mass_g" in error["msg"]
    # float32-sized, but the model's arithmetic overflows on them: still a 422, never a 500
    huge = {**record, **{n: 3e38 for n in FEATURES[1:5]}, "year": -3e38}
    status, body = call(served, "POST", "/predict", huge)
    assert status in (200, 422), body
    if status == 422:
        assert "not a finite number" in body["detail"][0]["msg"]


def _raw(port: int, headers: dict[str, str], chunks: list[bytes]) -> tuple[int, Any]:
    """Send headers, then as many chunks as the server reads; the status and the JSON answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("POST", "/predict")
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        try:
            for chunk in chunks:
                conn.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_oversized_and_non_json_bodies_are_refused(served: int) -> None:
    limit = 4 * 1024 * 1024
    # a Content-Length above the limit is refused before the body is read: send only 1 KiB of it
    status, body = _raw(
        served,
        {"Content-Type": "application/json", "Content-Length": str(100 * 1024 * 1024)},
        [b"[" + b" " * 1024],
    )
    assert status == 413, body
    assert "serving.max_body_bytes" in body["detail"][0]["msg"]
    # chunked, no Content-Length: counted while it streams in
    piece = b" " * 65536
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(limit // len(piece) + 4)]
    status, body = _raw(
        served,
        {"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        [*chunks, b"0\r\n\r\n"],
    )
    assert status == 413, body
    status, body = _raw(served, {"Content-Type": "text/plain", "Content-Length": "2"}, [b"{}"])
    assert status == 415, body
    assert "application/json" in body["detail"][0]["msg"]
    status, body = call(served, "POST", "/predict", [])
    assert status == 422 and "at least one record" in body["detail"][0]["msg"]


def test_a_taken_port_is_named_with_how_to_choose_another(penguins: Baked, served: int) -> None:
    done = penguins.make("serve", f"PORT={served}", check=False)
    assert done.returncode != 0
    assert f"port {served}" in done.stderr and "PORT=" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_schemathesis_finds_no_server_error_on_the_real_model(penguins: Baked) -> None:
    """schemathesis' coverage cases (every schema boundary) and fuzzed bodies, in-process
    against the real penguins model (the generated project's own schemathesis tests, on its
    fixture model, run in the churn project's `make test`)."""
    code = f"""
import json
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from {penguins.package}.serving.app import create_app

app = create_app(log_dir=__import__("pathlib").Path("logs-fuzz"))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
operation = schema["/predict"]["POST"]
modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
statuses = {{}}

def check(case):
    response = case.call()
    assert response.status_code < 500, (response.status_code, case.body)
    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

with TestClient(app):
    config = schema.config.generation_for(operation=operation)
    for case in schema.iter_coverage_cases(
        operation, generation_modes=modes, generation_config=config
    ):
        check(case)
    for mode in modes:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=50, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            check(case)
        fuzz()
print(json.dumps(statuses))
"""
    done = penguins.python(code)
    statuses = {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
    assert statuses.get(200) and statuses.get(422), statuses
    assert all(status < 500 for status in statuses), statuses
    for name in ("requests.jsonl", "schema-errors.jsonl"):
        assert strict_lines(penguins.path / "logs-fuzz" / name)


def test_logs_stay_strict_json_and_monitor_counts_flagged_requests(
    penguins: Baked, served: int
) -> None:
    record = {k: v for k, v in source_rows(penguins)[1].items() if k in FEATURES}
    far = [{**record, "body_mass_g": -5000, "request_id": f"far-{i}"} for i in range(3)]
    # and one with a feature missing (imputed), so this test does not lean on another's request
    gap = {**{k: v for k, v in record.items() if k != "sex"}, "request_id": "gap-logged"}
    status, _ = call(served, "POST", "/predict", [*far, gap])
    assert status == 200
    logs = penguins.path / "logs"
    deadline = time.monotonic() + 10  # the writer flushes in the background
    while time.monotonic() < deadline:
        logged = strict_lines(logs / "requests.jsonl")
        if any(r["request_id"] == "gap-logged" for r in logged):
            break
        time.sleep(0.2)
    assert next(r for r in logged if r["request_id"] == "gap-logged")["imputed"] == ["sex"]
    flagged = [r for r in logged if r.get("out_of_range")]
    assert {"absurd", "far-0", "far-1", "far-2"} <= {r["request_id"] for r in flagged}
    strict_lines(logs / "schema-errors.jsonl")
    penguins.make("monitor", check=False)
    report = json.loads((penguins.path / "reports" / "monitoring.json").read_text())
    assert report["flagged"]["out_of_range_requests"] == len(flagged)
    assert report["flagged"]["out_of_range_by_feature"]["body_mass_g"] == len(flagged)
    imputed = [r for r in logged if r.get("imputed")]
    assert report["flagged"]["imputed_requests"] == len(imputed) >= 1
    assert any("flagged out of range" in alert for alert in report["alerts"])


def test_a_corrupt_bronze_partition_is_named_quarantined_and_skipped(penguins: Baked) -> None:
    bronze = penguins.path / "data" / "bronze"
    [part] = sorted(bronze.glob("ingest_date=*/part-*.parquet"))
    part.write_bytes(part.read_bytes()[:500])  # truncated: no parquet footer
    done = penguins.make("data", check=False)
    assert done.returncode != 0
    assert "exited 2" in done.stderr or "Error 2" in done.stderr, done.stderr
    name = str(part.relative_to(penguins.path))
    assert name in done.stderr and "Traceback" not in done.stderr, done.stderr
    moved = bronze / "_quarantine" / part.parent.name / part.name
    assert moved.is_file() and not part.exists()
    assert (moved.parent / part.name.replace(".parquet", ".manifest.json")).is_file()
    penguins.make("data")  # goes on without it: ingest appends the source again
    assert len(list(bronze.glob("ingest_date=*/part-*.parquet"))) == 1
