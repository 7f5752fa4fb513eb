"""`make demo`: the story in one command.

Scaffold the churn example, run its pipeline, serve a prediction (then 200 shifted requests),
show the monitoring result, add a phase, lint - each step with a one-line explanation, then a
summary of where to look next.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MLOPS = [sys.executable, "-m", "mlops_template"]
BOLD, DIM, GREEN, RED, RESET = (
    ("", "", "", "", "")
    if os.environ.get("NO_COLOR") or not sys.stdout.isatty()
    else ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m")
)


class StepFailed(Exception):
    pass


def step(number: int, total: int, title: str, why: str) -> float:
    print(f"\n{BOLD}[{number}/{total}] {title}{RESET}\n{DIM}{why}{RESET}", flush=True)
    return time.perf_counter()


@contextlib.contextmanager
def _progress(cmd: list[str]) -> Iterator[None]:
    """On a terminal, a spinner with the elapsed time while a long command runs (rich, which the
    tool already depends on); elsewhere (CI logs, pipes) nothing, the output follows at the end."""
    if not sys.stdout.isatty():
        yield
        return
    from rich.console import Console

    started = time.perf_counter()
    label = f"make {cmd[-1]}" if cmd[0] == "make" else f"mlops {cmd[len(MLOPS)]}"
    console = Console(no_color=bool(os.environ.get("NO_COLOR")))
    with console.status(f"{label} ...") as status:
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(1.0):
                status.update(f"{label} ... {time.perf_counter() - started:.0f}s")

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            stop.set()
            ticker.join()


def run(cmd: list[str], cwd: Path, *, check: bool = True, tail: int = 25,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    print(f"{DIM}$ {' '.join(cmd)}{RESET}", flush=True)
    with _progress(cmd):
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, **(env or {})})  # fmt: skip
    lines = (proc.stdout + proc.stderr).rstrip().splitlines()
    for line in lines[-tail:]:
        print(f"  {line}")
    if check and proc.returncode != 0:
        raise StepFailed(f"{' '.join(cmd)} exited {proc.returncode}")
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _records(project: Path, count: int) -> tuple[list[dict[str, object]], str | None]:
    """``count`` real raw records of the main silver table (the columns a client sends: the
    model's inputs and the id; the packaged feature code computes the rest) and the first
    numeric input."""
    python = project / ".venv" / "bin" / "python"
    contract = json.loads((project / "data" / "gold" / "contract.json").read_text())
    silver = project / "data" / "silver" / f"{contract['main_table']}.parquet"
    names = [i["name"] for i in contract["inputs"]]
    if contract.get("id_column"):
        names.insert(0, contract["id_column"])
    code = (
        "import json, polars as pl\n"
        f"rows = pl.read_parquet({str(silver)!r}).sample({count}, seed=7, with_replacement=True)\n"
        f"print(json.dumps(rows.select({names!r}).to_dicts(), default=str))\n"
    )
    records = json.loads(subprocess.check_output([str(python), "-c", code], cwd=project, text=True))
    numeric = next((i["name"] for i in contract["inputs"] if i["kind"] == "numeric"), None)
    return records, numeric


def _post(port: int, record: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict",
        data=json.dumps(record).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        answer: dict[str, object] = json.loads(resp.read())
    return answer


def serve_predictions(project: Path, package: str, shifted: int) -> None:
    """Start the generated API on a free localhost port, send one real record and show the
    answer, then ``shifted`` more records with one numeric feature 1.5x its training value (so
    the monitoring step has traffic to judge), and stop the server."""
    python = project / ".venv" / "bin" / "python"
    records, numeric = _records(project, shifted + 1)
    port = free_port()
    server = subprocess.Popen(
        [str(python), "-m", "uvicorn", f"{package}.serving.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=project, start_new_session=True, env={**os.environ, "MLOPS_PII_SALT": "demo-salt"},
    )  # fmt: skip
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise StepFailed("the API did not become ready within 60 s")
        answer = _post(port, records[0])
        print(f"  request : {json.dumps(records[0])[:160]}")
        print(f"  response: {json.dumps(answer)[:160]}")
        if numeric is None or len(records) < 2:
            return
        for record in records[1:]:
            value = record.get(numeric)
            if isinstance(value, int):  # an integer column takes whole numbers only
                record[numeric] = round(value * 1.5)
            elif isinstance(value, float):
                record[numeric] = value * 1.5
            _post(port, record)
        print(f"  then {len(records) - 1} more requests in which {numeric} is 1.5x its value in silver, "
              "as if the population had changed")  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dest", default="demo-project")
    parser.add_argument("--spec", default=str(REPO / "examples" / "churn" / "mlops.yaml"))
    args = parser.parse_args()
    dest = (REPO / args.dest).resolve() if not Path(args.dest).is_absolute() else Path(args.dest)
    started = time.perf_counter()
    total = 7
    env = {"MLOPS_PII_SALT": "demo-salt"}
    try:
        if dest.exists():
            marker = dest / ".mlops" / "state.json"
            if not marker.is_file():
                raise StepFailed(
                    f"{dest} exists and is not a generated project; remove it or use --dest"
                )
            print(f"{DIM}removing the previous demo project {dest}{RESET}")
            shutil.rmtree(dest)
        t = step(1, total, "Scaffold the churn example",
                 "mlops new renders examples/churn/mlops.yaml into a complete repository.")  # fmt: skip
        run([*MLOPS, "new", str(dest), "--spec", args.spec], REPO, tail=40)
        package = json.loads((dest / ".mlops" / "state.json").read_text())
        package_name = next(p.name for p in (dest / "src").iterdir() if p.is_dir())
        subprocess.run(["git", "init", "-q"], cwd=dest, check=False)
        print(
            f"  {GREEN}done in {time.perf_counter() - t:.1f}s{RESET} ({len(package['files'])} files)"
        )

        t = step(2, total, "Install the generated project",
                 "make setup creates the project's own .venv (uv when available) and installs it.")  # fmt: skip
        run(["make", "--no-print-directory", "setup"], dest, env=env)
        print(f"  {GREEN}done in {time.perf_counter() - t:.1f}s{RESET}")

        t = step(3, total, "Run the pipeline: bronze -> silver -> gold -> train -> gate -> ONNX",
                 "The data pipeline masks PII and quarantines bad rows; the gate blesses the model "
                 "only if it beats min_score on the holdout.")  # fmt: skip
        run(["make", "--no-print-directory", "pipeline"], dest, env=env, tail=30)
        gate_file = dest / "reports" / "gate.json"
        if gate_file.is_file():
            gate = json.loads(gate_file.read_text())
            print(f"  gate: {json.dumps(gate)[:300]}")
        print(f"  {GREEN}done in {time.perf_counter() - t:.1f}s{RESET}")

        if (dest / "src" / package_name / "serving" / "app.py").is_file():
            t = step(4, total, "Serve predictions over REST",
                     "FastAPI + onnxruntime load the blessed ONNX model; every request is logged.")  # fmt: skip
            serve_predictions(dest, package_name, shifted=200)
            print(f"  {GREEN}done in {time.perf_counter() - t:.1f}s{RESET}")

        if (dest / "src" / package_name / "monitoring").is_dir():
            t = step(5, total, "Monitor drift and staleness",
                     "Compares logged requests with the training reference; the monitor exits 3 when "
                     "retraining is due (make then says Error 3 and exits 2).")  # fmt: skip
            proc = run(["make", "--no-print-directory", "monitor"], dest, env=env, check=False)
            if proc.returncode not in (0, 2, 3):
                raise StepFailed(f"make monitor exited {proc.returncode}")
            print(
                f"  {GREEN}done in {time.perf_counter() - t:.1f}s (exit {proc.returncode}){RESET}"
            )

        t = step(6, total, "Add a phase",
                 "mlops add-phase analysis merges the new phase in without touching your edits.")  # fmt: skip
        run(
            [*MLOPS, "add-phase", "analysis", "--project", str(dest), "--allow-dirty"],
            REPO,
            tail=40,
        )
        print(f"  {GREEN}done in {time.perf_counter() - t:.1f}s{RESET}")

        t = step(7, total, "Lint the repository",
                 "mlops lint checks layout, ownership, layering and workflows, like CI does.")  # fmt: skip
        run([*MLOPS, "lint", str(dest)], REPO, tail=40)  # errors (exit 1) fail the demo
        print(f"  {GREEN}done in {time.perf_counter() - t:.1f}s{RESET}")
    except StepFailed as exc:
        print(f"\n{RED}demo failed: {exc}{RESET}", file=sys.stderr)
        return 1
    print(f"\n{BOLD}Demo finished in {time.perf_counter() - started:.0f}s.{RESET} Look next at:")
    rel = args.dest
    for path, what in (("README.md", "the generated project's front page"),
                       ("reports/", "data quality, gate decision, monitoring report"),
                       ("reports/model-card.md", "the model card written from the run"),
                       ("Makefile", "every target: `make help`")):  # fmt: skip
        print(f"  {rel}/{path:<22} {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
