"""Bounded load test of `POST /predict` (single record) against one local uvicorn worker.

`make bench-serve` (after `make pipeline`): starts the service on a free 127.0.0.1 port with one
worker and request logging on (into a temporary folder, so benchmark traffic never reaches
`logs/` or monitoring), then

1. latency: N sequential requests over one keep-alive connection -> p50 / p99 / max;
2. throughput: N requests from C concurrent keep-alive clients -> requests/s (and p50 / p99).

It prints the figures (and writes them as JSON with --json) and always stops the server. The
client runs on the same machine and competes for CPU, so the figures are a lower bound.
Nothing leaves 127.0.0.1. With `serving.auth` on in conf/base.yaml the clients send the key of
`serving.auth.key_env` (export it first); the first line says whether auth and /metrics are on.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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


def sample_record(model_dir: Path) -> dict[str, Any]:
    """One realistic record: the first row of the drift reference, else typical values."""
    metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
    names = [f["name"] for f in metadata["features"]]
    reference = model_dir / "reference.parquet"
    if reference.is_file():
        import polars as pl

        row = pl.read_parquet(reference, columns=names).row(0, named=True)
        return {n: (float(v) if isinstance(v, int | float) else v) for n, v in row.items()}
    return {
        f["name"]: 1.0 if f["kind"] == "numeric" else (f.get("categories") or ["a"])[0]
        for f in metadata["features"]
    }


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


def run_client(
    port: int, body: bytes, count: int, latencies: list[float], failures: list[int]
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = HEADERS
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", "/predict", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            failures.append(response.status)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per phase (<=50000)")
    parser.add_argument("--concurrency", type=int, default=4, help="clients in the 2nd phase")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 50_000 or not 1 <= args.concurrency <= 64:
        parser.error("--requests must be 1..50000 and --concurrency 1..64")

    import yaml

    config = yaml.safe_load((ROOT / "conf" / "base.yaml").read_text(encoding="utf-8"))
    package = config["project"]["package"]
    model_dir = ROOT / config["paths"]["models"] / "blessed"
    if not (model_dir / "model.onnx").is_file():
        print(
            f"error: {model_dir / 'model.onnx'} not found; run `make pipeline` first",
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
    body = json.dumps(sample_record(model_dir)).encode("utf-8")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as log_dir:
        env = {**os.environ, "MLOPS_PROJECT_ROOT": str(ROOT)}
        server_log = Path(log_dir) / "server.log"
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"{package}.serving",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-dir",
                log_dir,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=server_log.open("wb"),
        )
        try:
            wait_ready(port, server, server_log)
            failures: list[int] = []
            run_client(port, body, args.warmup, [], failures)
            cpu_before = cpu_seconds(server.pid)
            sequential: list[float] = []
            run_client(port, body, args.requests, sequential, failures)

            concurrent: list[float] = []
            share, extra = divmod(args.requests, args.concurrency)
            threads = [
                threading.Thread(
                    target=run_client, args=(port, body, share + (i < extra), concurrent, failures)
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
        logged = sum(1 for _ in (Path(log_dir) / "requests.jsonl").open(encoding="utf-8"))
    results = {
        "workers": 1,
        "requests": args.requests,
        "sequential": summary(sequential),
        "sequential_requests_per_s": round(len(sequential) / (sum(sequential) / 1000), 1),
        "concurrency": args.concurrency,
        "concurrent": summary(concurrent),
        "concurrent_requests_per_s": round(len(concurrent) / elapsed, 1),
        # server CPU per request: unlike wall-clock figures, barely affected by a busy machine
        "server_cpu_ms_per_request": (
            None
            if cpu_before is None or cpu_after is None
            else round((cpu_after - cpu_before) * 1000 / (2 * args.requests), 3)
        ),
        "failures": len(failures),
        "requests_logged": logged,
    }
    print(f"POST /predict, single record, 1 uvicorn worker, request logging on ({package})")
    print(
        f"  sequential  x{args.requests}: p50 {results['sequential']['p50_ms']} ms, "
        f"p99 {results['sequential']['p99_ms']} ms, "
        f"{results['sequential_requests_per_s']} requests/s"
    )
    print(
        f"  concurrency {args.concurrency} x{args.requests}: "
        f"{results['concurrent_requests_per_s']} requests/s, "
        f"p50 {results['concurrent']['p50_ms']} ms, p99 {results['concurrent']['p99_ms']} ms"
    )
    if results["server_cpu_ms_per_request"] is not None:
        print(f"  server CPU per request: {results['server_cpu_ms_per_request']} ms")
    print(f"  failures: {len(failures)}, requests logged: {logged}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
