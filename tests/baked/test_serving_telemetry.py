"""Baked project: the churn example's service under a bounded concurrent load, with auth on and
two models served as a 50/50 canary.

Generate churn, turn `serving.auth` on and `serving.strategy: canary` (challenger_share 0.5) in its
conf/base.yaml, `make pipeline`, register a second version as the challenger (the registry's own
`install`/`move`), then run `python -m <pkg>.serving` on a free 127.0.0.1 port with the key in
`SERVING_API_KEY` and:

- no key -> 401, wrong key -> 401, right key -> 200; `/health` and `/ready` open;
- 4 clients x 2,000 single-record requests carrying raw PII values (bounded in count, and each
  client in time): the first 1,000 per client with the aliases fixed (each customer id always gets
  the same model, both models answer), the next 1,000 while the aliases are swapped back and forth
  with `registry.move` and `POST /reload` (hot reload: no request refused or lost); then
  `GET /metrics`: every request is logged exactly once with the model version that answered it,
  every log line is strict JSON, and the Prometheus counters (requests by route and status,
  predictions per model version and class, records per model version) match the log;
- the raw PII values appear in no log (requests, schema errors, feedback, the service's stderr);
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
from .test_serving_monitoring import free_port

KEY = "baked-telemetry-key-5f1c2a9e7d"
CLIENTS = 4
PER_CLIENT = 2000
STABLE = 1000  # per client: the requests sent before the aliases start moving
SWAPS = 4  # champion <-> challenger moves during the rest of the load
LABELLED = 400
CLIENT_SECONDS = 900  # a bound on the load (a hung server fails the test), not a speed check
PII_DOMAIN = "@pii-never-logged.example"


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
    versions: tuple[str, str] = ("", "")  # champion, challenger at start
    statuses: dict[str, int] = field(default_factory=dict)
    # request id, prediction, truth, answering model version, customer id, sent while stable
    served: list[tuple[str, Any, Any, str, Any, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reloads: list[dict[str, Any]] = field(default_factory=list)
    metrics: str = ""
    feedback: dict[str, tuple[int, Any]] = field(default_factory=dict)
    server_log: str = ""


def aliases(baked: Baked) -> dict[str, Any]:
    return dict(json.loads((baked.path / "models" / "aliases.json").read_text(encoding="utf-8")))


#: run in the project: the champion copied into the registry as a second version, the challenger
REGISTER_CHALLENGER = """
import json, shutil, tempfile
from pathlib import Path
from {package}.common import registry
models = Path("models")
registry.migrate(models, who="baked test")  # a project whose gate still writes models/blessed
now = registry.aliases(models)
if now["challenger"] is None:  # the gate blessed no challenger: a second version of the champion
    version = now["champion"] + "-c"
    staging = Path(tempfile.mkdtemp(dir=models)) / version
    shutil.copytree(registry.model_dir(models, "champion"), staging)
    meta = json.loads((staging / "metadata.json").read_text())
    meta["model_version"] = version
    (staging / "metadata.json").write_text(json.dumps(meta))
    registry.install(models, staging, version)
    registry.move(models, "challenger", version, who="baked test", why="canary under load")
"""

SWAP = """
from pathlib import Path
from {package}.common import registry
models = Path("models")
now = registry.aliases(models)
registry.update(models, {{"champion": now["challenger"], "challenger": now["champion"]}},
                who="baked test", why="swap under load")
"""


@pytest.fixture(scope="module")
def churn(bake: BakeFn) -> Baked:
    baked = bake("churn", sets=["ml.tracking=none"])
    conf = baked.path / "conf" / "base.yaml"
    text = conf.read_text(encoding="utf-8")
    assert "  auth:\n    enabled: false\n    key_env: SERVING_API_KEY\n" in text
    assert "  strategy: single\n  rollout:\n    challenger_share: 0.1\n" in text
    text = text.replace("    enabled: false\n", "    enabled: true\n", 1)
    text = text.replace(
        "  strategy: single\n  rollout:\n    challenger_share: 0.1\n",
        "  strategy: canary\n  rollout:\n    challenger_share: 0.5\n",
    )
    conf.write_text(text, "utf-8")
    baked.make("pipeline")
    baked.python(REGISTER_CHALLENGER.format(package=baked.package))
    return baked


def request_rows(baked: Baked, count: int) -> tuple[list[dict[str, Any]], str, str | None]:
    """Rows of the project's gold data as clients send them: the id column, the features (the
    service computes its own where its feature code does), the true target; plus the target and
    the id column's names."""
    champion = aliases(baked)["champion"]
    meta_file = baked.path / "models" / "versions" / champion / "metadata.json"
    metadata = json.loads(meta_file.read_text(encoding="utf-8"))
    conf = json.loads(baked.python("import json, yaml; print(json.dumps(yaml.safe_load("
                                   "open('conf/base.yaml'))))").stdout)  # fmt: skip
    id_column = conf["data"].get("id_column")
    names = [f["name"] for f in metadata["features"]] + [metadata["target"]]
    code = f"""
import json, polars as pl
frame = pl.read_parquet("data/gold/features.parquet").sample({count}, seed=3)
keep = [c for c in [{id_column!r}, *{names!r}] if c is not None and c in frame.columns]
print(json.dumps(frame.select(keep).to_dicts()))
"""
    return json.loads(baked.python(code).stdout), metadata["target"], id_column


def _load(
    port: int, rows: list[dict[str, Any]], target: str, id_column: str | None, offset: int,
    out: Traffic, reached: threading.Event, swapping: threading.Event,
) -> None:  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    deadline = time.monotonic() + CLIENT_SECONDS
    try:
        for i in range(PER_CLIENT):
            if time.monotonic() > deadline:
                out.errors.append(f"client {offset}: not done within {CLIENT_SECONDS} s")
                return
            if i == STABLE:
                reached.set()
                swapping.wait(CLIENT_SECONDS)  # every client's stable phase is over
            row = rows[(offset * PER_CLIENT + i) % len(rows)]
            pii = {
                "name": f"Pat Q{offset}x{i}",
                "email": f"pat.q{offset}.{i}{PII_DOMAIN}",
                "phone": f"+1-555-01{offset}{i:04d}",
            }
            record = {**{k: v for k, v in row.items() if k != target}, **pii}
            status, text = request(conn, "POST", "/predict", record)
            if status != 200:
                out.errors.append(f"{status}: {text[:300]}")
                continue
            [prediction] = json.loads(text)["predictions"]
            out.served.append(
                (
                    prediction["request_id"],
                    prediction["prediction"],
                    row[target],
                    prediction["model_version"],
                    row.get(id_column) if id_column else None,
                    i < STABLE,
                )
            )
    except OSError as exc:
        out.errors.append(f"client {offset}: {exc!r}")
    finally:
        reached.set()
        conn.close()


def _swap(baked: Baked, port: int, out: Traffic, stable: list[threading.Event],
          swapping: threading.Event) -> None:  # fmt: skip
    """Once every client is past its stable phase: swap the aliases SWAPS times, each followed
    by POST /reload (the poll would pick it up too), while the clients keep sending."""
    for done in stable:
        done.wait(CLIENT_SECONDS)
    swapping.set()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(SWAPS):
            baked.python(SWAP.format(package=baked.package))
            status, text = request(conn, "POST", "/reload")
            out.reloads.append({"status": status, **json.loads(text)})
            time.sleep(0.5)  # let some traffic through each lineup (not a timing check)
    except OSError as exc:
        out.errors.append(f"swapper: {exc!r}")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def traffic(churn: Baked) -> Traffic:
    rows, target, id_column = request_rows(churn, 300)
    out = Traffic(churn, target)
    start = aliases(churn)
    out.versions = (start["champion"], start["challenger"])
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

            reached = [threading.Event() for _ in range(CLIENTS)]
            swapping = threading.Event()
            clients = [
                threading.Thread(
                    target=_load,
                    args=(port, rows, target, id_column, c, out, reached[c], swapping),
                )
                for c in range(CLIENTS)
            ]
            swapper = threading.Thread(target=_swap, args=(churn, port, out, reached, swapping))
            for thread in [*clients, swapper]:
                thread.start()
            for thread in [*clients, swapper]:
                thread.join(CLIENT_SECONDS + 30)

            conn.close()  # idle through the load: past uvicorn's keep-alive, so a new one
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            status, out.metrics = request(conn, "GET", "/metrics")
            out.statuses["metrics with key"] = status
            for request_id, _, truth, *_ in out.served[:LABELLED]:
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
    assert set(ids) == {served[0] for served in traffic.served}
    assert set(ids.values()) == {1}
    assert len(logged) == CLIENTS * PER_CLIENT
    answered = {served[0]: served[3] for served in traffic.served}
    assert all(r["model_version"] == answered[r["request_id"]] for r in logged)
    assert {r["model_version"] for r in logged} == set(traffic.versions)  # both answered

    found = _samples(traffic.metrics)
    ok = frozenset({("route", "/predict"), ("method", "POST"), ("status", "200")})
    refused = frozenset({("route", "/predict"), ("method", "POST"), ("status", "401")})
    assert found[("serving_http_requests_total", ok)] == len(logged)
    assert found[("serving_http_requests_total", refused)] == 2
    per_version = Counter(r["model_version"] for r in logged)
    for version, count in per_version.items():
        scored = sum(
            value
            for (name, labels), value in found.items()
            if name == "serving_scored_records_total"
            and ("model_version", version) in labels
            and ("role", "answer") in labels
        )  # by alias too: the version was champion and challenger in turn
        assert scored == count, version
        per_class = Counter(str(r["prediction"]) for r in logged if r["model_version"] == version)
        for label, n in per_class.items():
            key = frozenset({("model_version", version), ("class", label)})
            assert found[("serving_predictions_total", key)] == n
    latency = frozenset({("route", "/predict")})
    assert found[("serving_http_request_duration_seconds_count", latency)] == len(logged) + 2


def test_canary_keeps_each_customer_on_one_model_while_the_aliases_stand(
    traffic: Traffic,
) -> None:
    stable = [s for s in traffic.served if s[5]]
    assert len(stable) == CLIENTS * STABLE
    by_customer: dict[Any, set[str]] = {}
    for _, _, _, version, customer, _ in stable:
        by_customer.setdefault(customer, set()).add(version)
    assert None not in by_customer  # routed by the id column
    assert all(len(versions) == 1 for versions in by_customer.values())
    share = Counter(s[3] for s in stable)[traffic.versions[1]] / len(stable)
    assert 0.25 < share < 0.75  # challenger_share 0.5 of 300 customers


def test_aliases_swapped_under_load_drop_no_request(traffic: Traffic) -> None:
    assert len(traffic.reloads) == SWAPS
    champion, challenger = traffic.versions
    for i, reload in enumerate(traffic.reloads):
        # `changed` is false when the service's own poll (reload_seconds) got there first
        assert reload["status"] == 200, reload
        expected = (challenger, champion) if i % 2 == 0 else (champion, challenger)
        assert (reload["champion"], reload["challenger"]) == expected
    moving = [s for s in traffic.served if not s[5]]
    assert len(moving) == CLIENTS * (PER_CLIENT - STABLE)  # nothing refused or lost
    history = [
        strict(line)
        for line in (traffic.baked.path / "models" / "registry.jsonl").read_text().splitlines()
    ]
    assert sum(entry.get("why") == "swap under load" for entry in history) == SWAPS
    events = [strict(line) for line in traffic.server_log.splitlines() if line.strip()]
    assert sum(e["event"] == "models_reloaded" for e in events) == SWAPS


def test_raw_pii_values_are_in_no_log(traffic: Traffic) -> None:
    logs = traffic.baked.path / "logs"
    texts = {p.name: p.read_text(encoding="utf-8") for p in logs.iterdir() if p.is_file()}
    assert "requests.jsonl" in texts
    for name, text in [*texts.items(), ("the service's stderr", traffic.server_log)]:
        for raw in (PII_DOMAIN, "Pat Q", "+1-555-01"):
            assert raw not in text, name


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
    report = json.loads((baked.path / "reports/monitoring.json").read_text())
    performance, comparison = report["performance"], report["comparison"]
    champion = aliases(baked)["champion"]
    answered = Counter(served[3] for served in traffic.served[:LABELLED])
    # the champion is judged on the labelled requests it answered; canary compares each model
    # on its own ones, every logged request counted once
    assert performance["labelled"] == answered[champion] and performance["judged"], performance
    assert isinstance(performance["value"], float)
    assert sum(comparison["labelled"].values()) == LABELLED, comparison
    assert sum(comparison["requests"].values()) == CLIENTS * PER_CLIENT, comparison


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
