"""Bounded load test of `POST /predict` (single record) against one local uvicorn worker, per
serving strategy (single, canary, shadow by default: see serving/rollout.py).

`make bench-serve` (after `make pipeline`): for each strategy starts the service on a free
127.0.0.1 port with one worker and request logging on (into a temporary folder, so benchmark
traffic never reaches `logs/` or monitoring), serving a temporary registry that holds the
project's champion and challenger (without a challenger: a copy of the champion under another
version, which costs the same to route to and to score), then

1. latency: N sequential requests over one keep-alive connection -> p50 / p99 / max;
2. throughput: N requests from C concurrent keep-alive clients -> requests/s (and p50 / p99).

It prints the figures per strategy and shadow's/canary's cost relative to single (and writes them
as JSON with --json) and always stops the servers. The client runs on the same machine and
competes for CPU, so the figures are a lower bound.
Nothing leaves 127.0.0.1. With `serving.auth` on in conf/base.yaml the clients send the key of
`serving.auth.key_env` (export it first); the first line says whether auth and /metrics are on.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def sample_records(model_dir: Path, count: int = 64) -> list[dict[str, Any]]:
    """Realistic records: rows of the drift reference (the raw inputs when the model computes
    features itself, plus an id its entity table knows), else typical values. Several records,
    with distinct ids, so canary/ab routing by the id splits the load as real traffic would."""
    metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
    names = [f["name"] for f in metadata.get("inputs") or metadata["features"]]
    reference = model_dir / "reference.parquet"
    if not reference.is_file():
        return [
            {
                f["name"]: 1.0 if f["kind"] == "numeric" else (f.get("categories") or ["a"])[0]
                for f in metadata["features"]
            }
        ]
    import polars as pl

    frame = pl.read_parquet(reference)
    rows = frame.select([n for n in names if n in frame.columns]).head(count).to_dicts()
    records = [
        {n: (float(v) if isinstance(v, int | float) else v) for n, v in row.items()} for row in rows
    ]
    entity = metadata.get("entity_table") or {}
    id_column = entity.get("id_column")
    if id_column and (model_dir / str(entity.get("file"))).is_file():
        ids = pl.read_parquet(model_dir / str(entity["file"]), columns=[id_column])[id_column]
        for record, value in zip(records, ids.head(len(records)).to_list(), strict=False):
            record[id_column] = value
    return records


def wait_ready(port: int, server: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
            raise SystemExit(f"error: the server exited with code {server.returncode}:\n{tail}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"error: the server was not ready after {timeout:.0f} s")


#: request headers of every client: JSON, plus the API key when conf/ turns serving.auth on
HEADERS = {"content-type": "application/json"}
#: the first refused request's status and body, shown when a run had failures
FIRST_FAILURE: list[str] = []


def run_client(
    port: int, bodies: list[bytes], count: int, latencies: list[float], failures: list[int]
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = HEADERS
    for i in range(count):
        started = time.perf_counter()
        conn.request("POST", "/predict", body=bodies[i % len(bodies)], headers=headers)
        response = conn.getresponse()
        text = response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            failures.append(response.status)
            if not FIRST_FAILURE:
                FIRST_FAILURE.append(f"{response.status}: {text[:500].decode(errors='replace')}")
    conn.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux /proc); None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies, 50), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "mean_ms": round(statistics.fmean(latencies), 3),
        "max_ms": round(max(latencies), 3),
    }


def bench_registry(models: Path, folder: Path) -> tuple[Path, str, str, bool]:
    """A registry for the benchmark in ``folder``: the project's champion and challenger (linked,
    not copied), or without a challenger a copy of the champion under another version, so routing
    and the second scoring cost what a real challenger costs. Returns (registry, champion,
    challenger, whether the challenger is that stand-in)."""
    aliases = json.loads((models / "aliases.json").read_text(encoding="utf-8"))
    champion, challenger = aliases.get("champion"), aliases.get("challenger")
    if not champion:
        raise SystemExit(f"error: {models / 'aliases.json'} has no champion; run `make pipeline`")
    root = folder / "models"
    (root / "versions").mkdir(parents=True)
    (root / "versions" / champion).symlink_to((models / "versions" / champion).resolve())
    stand_in = challenger is None
    if challenger is None:
        challenger = f"{champion}-bench"
        copy = root / "versions" / challenger
        shutil.copytree(models / "versions" / champion, copy)
        meta = json.loads((copy / "metadata.json").read_text(encoding="utf-8"))
        meta["model_version"] = challenger
        (copy / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    else:
        (root / "versions" / challenger).symlink_to((models / "versions" / challenger).resolve())
    aliases_file = root / "aliases.json"
    aliases_file.write_text(json.dumps({"champion": champion, "challenger": challenger}), "utf-8")
    return root, champion, challenger, stand_in


def run_strategy(
    strategy: str,
    share: float,
    package: str,
    registry: Path,
    bodies: list[bytes],
    args: argparse.Namespace,
    folder: Path,
) -> dict[str, Any]:
    """Start one uvicorn worker serving ``strategy``, load it, stop it; the figures."""
    port = free_port()
    log_dir = folder / f"logs-{strategy}"
    log_dir.mkdir()
    env = {
        **os.environ,
        "MLOPS_PROJECT_ROOT": str(ROOT),
        "SERVING_STRATEGY": strategy,
        "SERVING_CHALLENGER_SHARE": str(share),
    }
    server_log = log_dir / "server.log"
    command = [sys.executable, "-m", f"{package}.serving", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--log-dir", str(log_dir), "--models-dir", str(registry)]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=server_log.open("wb")
    )
    try:
        wait_ready(port, server, server_log)
        failures: list[int] = []
        run_client(port, bodies, args.warmup, [], failures)
        cpu_before = cpu_seconds(server.pid)
        sequential: list[float] = []
        run_client(port, bodies, args.requests, sequential, failures)

        concurrent: list[float] = []
        share_of, extra = divmod(args.requests, args.concurrency)
        threads = [
            threading.Thread(
                target=run_client,
                args=(port, bodies, share_of + (i < extra), concurrent, failures),
            )
            for i in range(args.concurrency)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        cpu_after = cpu_seconds(server.pid)
    finally:
        server.send_signal(signal.SIGINT)  # graceful: flushes the request log
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    lines = (log_dir / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    logged = [json.loads(line) for line in lines]
    return {
        "strategy": strategy,
        "challenger_share": share if strategy in ("canary", "ab") else None,
        "sequential": summary(sequential),
        "sequential_requests_per_s": round(len(sequential) / (sum(sequential) / 1000), 1),
        "concurrent": summary(concurrent),
        "concurrent_requests_per_s": round(len(concurrent) / elapsed, 1),
        # server CPU per request: unlike wall-clock figures, barely affected by a busy machine
        "server_cpu_ms_per_request": (
            None
            if cpu_before is None or cpu_after is None
            else round((cpu_after - cpu_before) * 1000 / (2 * args.requests), 3)
        ),
        "failures": len(failures),
        "requests_logged": len(logged),
        "answered_by_challenger": sum(r.get("model_alias") == "challenger" for r in logged),
        "shadow_scored": sum("shadow" in r for r in logged),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase (<=50000)")
    parser.add_argument("--concurrency", type=int, default=4, help="clients in the 2nd phase")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--strategies",
        default="single,canary,shadow",
        help="comma-separated serving strategies to compare (single, shadow, canary, ab)",
    )
    parser.add_argument("--share", type=float, default=0.5, help="challenger share of canary/ab")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if not 1 <= args.requests <= 50_000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests must be 1..50000 and --concurrency 1..64")
    if not strategies or not set(strategies) <= {"single", "shadow", "canary", "ab"}:
        parser.error("--strategies takes single, shadow, canary and ab")
    if not 0.0 <= args.share <= 1.0:
        parser.error("--share must be from 0 to 1")

    import yaml

    config = yaml.safe_load((ROOT / "conf" / "base.yaml").read_text(encoding="utf-8"))
    package = config["project"]["package"]
    models = ROOT / config["paths"]["models"]
    if not (models / "aliases.json").is_file():
        print(
            f"error: {models / 'aliases.json'} not found; run `make pipeline` first",
            file=sys.stderr,
        )
        return 2
    serving = config.get("serving") or {}
    auth = serving.get("auth") or {}
    if auth.get("enabled"):  # the service needs the key: send it as a bearer token
        key_env = auth.get("key_env", "SERVING_API_KEY")
        key = os.environ.get(key_env, "")
        if not key.strip():
            print(
                f"error: serving.auth is on in conf/base.yaml: export {key_env}=<key> first",
                file=sys.stderr,
            )
            return 2
        HEADERS["authorization"] = f"Bearer {key}"
    print(
        f"serving.auth {'on' if auth.get('enabled') else 'off'}, "
        f"serving.metrics {'on' if serving.get('metrics', True) else 'off'}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        folder = Path(tmp)
        registry, champion, challenger, stand_in = bench_registry(models, folder)
        records = sample_records(registry / "versions" / champion)
        bodies = [json.dumps(r).encode("utf-8") for r in records]
        runs = [
            run_strategy(s, args.share, package, registry, bodies, args, folder) for s in strategies
        ]
    results: dict[str, Any] = {
        "workers": 1,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "champion": champion,
        "challenger": challenger,
        "challenger_is_a_copy_of_the_champion": stand_in,
        "strategies": runs,
    }
    print(
        f"POST /predict, single record, 1 uvicorn worker, request logging on ({package}); "
        f"champion {champion}, challenger {challenger}"
        + (" (a copy of the champion: no challenger in models/aliases.json)" if stand_in else "")
    )
    print(
        f"  {'strategy':<10} {'seq p50':>9} {'seq p99':>9} {'seq req/s':>10} "
        f"{'conc req/s':>11} {'conc p99':>9} {'cpu/req':>9}  answered by challenger"
    )
    for run in runs:
        cpu = run["server_cpu_ms_per_request"]
        print(
            f"  {run['strategy']:<10} {run['sequential']['p50_ms']:>6} ms "
            f"{run['sequential']['p99_ms']:>6} ms {run['sequential_requests_per_s']:>10} "
            f"{run['concurrent_requests_per_s']:>11} {run['concurrent']['p99_ms']:>6} ms "
            f"{'-' if cpu is None else f'{cpu} ms':>9}  "
            f"{run['answered_by_challenger']}/{run['requests_logged']}"
            + (f" (shadow-scored {run['shadow_scored']})" if run["shadow_scored"] else "")
        )
    by_name = {run["strategy"]: run for run in runs}
    if "single" in by_name:
        base = by_name["single"]
        for name, run in by_name.items():
            if name != "single":
                p50 = run["sequential"]["p50_ms"] / base["sequential"]["p50_ms"]
                rps = base["concurrent_requests_per_s"] / run["concurrent_requests_per_s"]
                print(f"  {name} vs single: p50 x{p50:.2f}, time per request (1/req/s) x{rps:.2f}")
    failures = sum(run["failures"] for run in runs)
    print(f"  failures: {failures}" + (f" (first: {FIRST_FAILURE[0]})" if FIRST_FAILURE else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
