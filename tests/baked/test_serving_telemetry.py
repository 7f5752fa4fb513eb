"""Baked project: the churn example's service under a bounded concurrent load, with auth on.

Generate churn, turn `serving.auth` on in its conf/base.yaml, `make pipeline`, then run
`python -m <pkg>.serving` on a free 127.0.0.1 port with the key in `SERVING_API_KEY` and:

- no key -> 401, wrong key -> 401, right key -> 200; `/health` and `/ready` open;
- 4 clients x 500 single-record requests (bounded in count, and each client in time), then
  `GET /metrics`: every request is logged exactly once, every log line is strict JSON, and the
  Prometheus counters (requests by route and status, predictions per class) match the log;
- the observed churn of 400 of those requests posted to `POST /feedback` (an unknown request id is
  a 404); `make monitor`'s report then scores the model on exactly those labels;
- the service's own log (stderr) is JSON lines and never holds the key.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

from .conftest import Baked, BakeFn, wait_until_ready
from .test_serving_monitoring import free_port, gold_rows

KEY = "baked-telemetry-key-5f1c2a9e7d"
CLIENTS = 4
PER_CLIENT = 500
LABELLED = 400
CLIENT_SECONDS = 120  # a bound on the load (a hung server fails the test), not a speed check


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict(line: str) -> Any:
    return json.loads(line, parse_constant=_no_constant)


def request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    payload: Any = None,
    key: str | None = KEY,
) -> tuple[int, str]:
    headers = {"content-type": "application/json"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    body = None if payload is None else json.dumps(payload)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response.status, response.read().decode("utf-8")


@dataclass
class Traffic:
    """What the scenario saw: responses, metrics, feedback answers, logs after shutdown."""

    baked: Baked
    target: str
    statuses: dict[str, int] = field(default_factory=dict)
    served: list[tuple[str, Any, Any]] = field(default_factory=list)  # id, prediction, truth
    errors: list[str] = field(default_factory=list)
    metrics: str = ""
    feedback: dict[str, tuple[int, Any]] = field(default_factory=dict)
    server_log: str = ""


@pytest.fixture(scope="module")
def churn(bake: BakeFn) -> Baked:
    baked = bake("churn", sets=["ml.tracking=none"])
    conf = baked.path / "conf" / "base.yaml"
    text = conf.read_text(encoding="utf-8")
    assert "  auth:\n    enabled: false\n    key_env: SERVING_API_KEY\n" in text
    conf.write_text(text.replace("    enabled: false\n", "    enabled: true\n", 1), "utf-8")
    baked.make("pipeline")
    return baked


def _load(port: int, rows: list[dict[str, Any]], target: str, offset: int, out: Traffic) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    deadline = time.monotonic() + CLIENT_SECONDS
    try:
        for i in range(PER_CLIENT):
            if time.monotonic() > deadline:
                out.errors.append(f"client {offset}: not done within {CLIENT_SECONDS} s")
                return
            row = rows[(offset * PER_CLIENT + i) % len(rows)]
            status, text = request(
                conn, "POST", "/predict", {k: v for k, v in row.items() if k != target}
            )
            if status != 200:
                out.errors.append(f"{status}: {text[:300]}")
                continue
            [prediction] = json.loads(text)["predictions"]
            out.served.append((prediction["request_id"], prediction["prediction"], row[target]))
    except OSError as exc:
        out.errors.append(f"client {offset}: {exc!r}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def traffic(churn: Baked) -> Traffic:
    metadata = json.loads((churn.path / "models/blessed/metadata.json").read_text())
    target = metadata["target"]
    rows = gold_rows(churn, 300)
    out = Traffic(churn, target)
    port = free_port()
    env = {**os.environ, "MLOPS_PII_SALT": "baked-test-salt", "SERVING_API_KEY": KEY}
    for name in ("VIRTUAL_ENV", "MLOPS_PROJECT_ROOT", "MLOPS_ENV"):
        env.pop(name, None)
    log = churn.path / "server-telemetry.log"
    python = str(churn.path / ".venv" / "bin" / "python")
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [python, "-m", f"{churn.package}.serving", "--port", str(port)],
            cwd=churn.path,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_ready(
                server,
                log,
                lambda: (
                    request(
                        http.client.HTTPConnection("127.0.0.1", port, timeout=5),
                        "GET",
                        "/ready",
                        key=None,
                    )[0]
                    == 200
                ),
            )
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            record = {k: v for k, v in rows[0].items() if k != target}
            out.statuses["predict without key"] = request(conn, "POST", "/predict", record, None)[0]
            out.statuses["predict wrong key"] = request(
                conn, "POST", "/predict", record, "x" + KEY
            )[0]
            out.statuses["health without key"] = request(conn, "GET", "/health", key=None)[0]
            out.statuses["ready without key"] = request(conn, "GET", "/ready", key=None)[0]
            out.statuses["metrics without key"] = request(conn, "GET", "/metrics", key=None)[0]

            clients = [
                threading.Thread(target=_load, args=(port, rows, target, c, out))
                for c in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            for client in clients:
                client.join(CLIENT_SECONDS + 30)

            conn.close()  # idle through the load: past uvicorn's keep-alive, so a new one
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            status, out.metrics = request(conn, "GET", "/metrics")
            out.statuses["metrics with key"] = status
            for request_id, _, truth in out.served[:LABELLED]:
                answer = request(
                    conn, "POST", "/feedback", {"request_id": request_id, "label": truth}
                )
                out.feedback[request_id] = (answer[0], json.loads(answer[1]))
            unknown = {"request_id": "never-served", "label": rows[0][target]}
            answer = request(conn, "POST", "/feedback", unknown)
            out.feedback["never-served"] = (answer[0], json.loads(answer[1]))
            problem = {"request_id": out.served[0][0], "problem": "this customer never churns"}
            answer = request(conn, "POST", "/feedback", problem)
            out.feedback["problem"] = (answer[0], json.loads(answer[1]))
            conn.close()
        finally:
            server.send_signal(signal.SIGINT)  # graceful shutdown flushes the logs
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    out.server_log = log.read_text(encoding="utf-8")
    assert server.returncode == 0, out.server_log[-4000:]
    return out


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text exposition -> {(sample name, labels): value}, parsed here by hand."""
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, number = line.rpartition(" ")
        name, _, labels = head.partition("{")
        pairs = []
        for part in labels.rstrip("}").split('",') if labels else []:
            key, _, val = part.partition("=")
            pairs.append((key.strip(), val.strip().strip('"')))
        found[(name, frozenset(pairs))] = float(number)
    return found


def test_auth_refuses_missing_and_wrong_keys_and_leaves_probes_open(traffic: Traffic) -> None:
    assert traffic.statuses == {
        "predict without key": 401,
        "predict wrong key": 401,
        "health without key": 200,
        "ready without key": 200,
        "metrics without key": 401,
        "metrics with key": 200,
    }
    assert not traffic.errors, traffic.errors[:5]  # every keyed request of the load got a 200
    assert len(traffic.served) == CLIENTS * PER_CLIENT


def test_every_request_is_logged_once_as_strict_json_and_metrics_match(traffic: Traffic) -> None:
    path = traffic.baked.path / "logs" / "requests.jsonl"
    logged = [strict(line) for line in path.read_text(encoding="utf-8").splitlines()]
    ids = Counter(r["request_id"] for r in logged)
    assert set(ids) == {request_id for request_id, _, _ in traffic.served}
    assert set(ids.values()) == {1}
    assert len(logged) == CLIENTS * PER_CLIENT

    found = _samples(traffic.metrics)
    ok = frozenset({("route", "/predict"), ("method", "POST"), ("status", "200")})
    refused = frozenset({("route", "/predict"), ("method", "POST"), ("status", "401")})
    assert found[("serving_http_requests_total", ok)] == len(logged)
    assert found[("serving_http_requests_total", refused)] == 2
    version = {r["model_version"] for r in logged}
    assert len(version) == 1
    per_class = Counter(str(r["prediction"]) for r in logged)
    for label, count in per_class.items():
        key = frozenset({("model_version", next(iter(version))), ("class", label)})
        assert found[("serving_predictions_total", key)] == count
    latency = frozenset({("route", "/predict")})
    assert found[("serving_http_request_duration_seconds_count", latency)] == len(logged) + 2


def test_feedback_labels_are_joined_by_make_monitor(traffic: Traffic) -> None:
    labelled = {rid for rid, (status, _) in traffic.feedback.items() if status == 202}
    assert len(labelled) == LABELLED + 1  # the labels and the problem report ("problem")
    status, body = traffic.feedback["never-served"]
    assert status == 404 and "never-served" in body["detail"][0]["msg"]
    baked = traffic.baked
    labels = (baked.path / "data" / "labels" / "feedback.csv").read_text().splitlines()
    assert labels[0] == f"request_id,{traffic.target}" and len(labels) == LABELLED + 1
    log = [strict(line) for line in (baked.path / "logs/feedback.jsonl").read_text().splitlines()]
    assert len(log) == LABELLED + 1 and log[-1]["problem"] == "this customer never churns"

    done = baked.make("monitor", check=False)
    # healthy, or retraining due (make exits 2 and names the module's exit code 3)
    assert done.returncode == 0 or "Error 3" in done.stderr, done.stdout + done.stderr
    performance = json.loads((baked.path / "reports/monitoring.json").read_text())["performance"]
    assert performance["labelled"] == LABELLED and performance["judged"], performance
    assert isinstance(performance["value"], float)


def test_the_service_logs_json_events_and_never_the_key(traffic: Traffic) -> None:
    lines = [line for line in traffic.server_log.splitlines() if line.strip()]
    events = [strict(line) for line in lines]  # every line of the service's own log is JSON
    names = [e["event"] for e in events]
    assert "model_loaded" in names and "stopped" in names
    refusals = [e for e in events if e["event"] == "auth_refused"]
    assert sorted(e["reason"] for e in refusals) == ["missing", "missing", "wrong"]
    assert KEY not in traffic.server_log
    for name in ("requests.jsonl", "feedback.jsonl", "schema-errors.jsonl"):
        assert KEY not in (traffic.baked.path / "logs" / name).read_text()
