"""Shared helpers for the benchmark scripts: the peer-tool venv, paired timing and tables.

Benchmarks are scripts that print figures; nothing here asserts on time.
"""

from __future__ import annotations

import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / ".bench"  # git-ignored
BENCH_VENV = BENCH_DIR / "venv"
PEER_PACKAGES = ("cookiecutter", "copier", "cookiecutter-data-science")


class BenchError(Exception):
    """A benchmark could not run (missing tool, failed command): printed, exit 2."""


# ------------------------------------------------------------------------------------------
# tools
# ------------------------------------------------------------------------------------------


def mlops_command() -> list[str]:
    """The real CLI process: the installed console script, else ``python -m mlops_template``."""
    script = REPO / ".venv" / "bin" / "mlops"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("mlops")
    if found:
        return [found]
    return [sys.executable, "-m", "mlops_template"]


def _uv() -> str | None:
    local = REPO / ".venv" / "bin" / "uv"
    if local.is_file():
        return str(local)
    return shutil.which("uv")


def peer_bin(name: str) -> Path | None:
    """Path of a peer tool's console script in the bench venv, or None when it is not there."""
    path = BENCH_VENV / "bin" / name
    return path if path.is_file() else None


def ensure_peer_venv(*, install: bool = True) -> Path:
    """Create ``.bench/venv`` with cookiecutter, copier and ccds when missing (uv, cached).

    The tool's own venv is never touched. Returns the venv's bin folder.
    """
    wanted = {"cookiecutter": "cookiecutter", "copier": "copier", "ccds": "ccds"}
    if all(peer_bin(script) for script in wanted.values()):
        return BENCH_VENV / "bin"
    if not install:
        return BENCH_VENV / "bin"
    uv = _uv()
    BENCH_DIR.mkdir(exist_ok=True)
    print(f"setting up the peer tools in {BENCH_VENV} ({', '.join(PEER_PACKAGES)}) ...", flush=True)
    if uv is not None:
        if not (BENCH_VENV / "bin" / "python").is_file():
            _check([uv, "venv", "--quiet", "--python", sys.executable, str(BENCH_VENV)])
        env = {**os.environ, "VIRTUAL_ENV": str(BENCH_VENV)}
        _check([uv, "pip", "install", "--quiet", *PEER_PACKAGES], env=env)
    else:
        if not (BENCH_VENV / "bin" / "python").is_file():
            _check([sys.executable, "-m", "venv", str(BENCH_VENV)])
        _check([str(BENCH_VENV / "bin" / "python"), "-m", "pip", "install", "-q", *PEER_PACKAGES])
    missing = [script for script in wanted.values() if peer_bin(script) is None]
    if missing:
        raise BenchError(f"{BENCH_VENV}: {', '.join(missing)} missing after install")
    return BENCH_VENV / "bin"


def _check(argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(
            f"`{' '.join(argv)}` failed (exit {proc.returncode}):\n{proc.stderr.strip()}\n"
            f"fix: check the network access to PyPI, or delete {BENCH_VENV} and retry"
        )


def peer_version(package: str) -> str:
    """Installed version of a package in the bench venv (empty when unknown)."""
    python = BENCH_VENV / "bin" / "python"
    if not python.is_file():
        return ""
    code = f"import importlib.metadata as m; print(m.version({package!r}))"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


# ------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------


@dataclass
class Case:
    """One command to time. ``argv`` gets the run index (fresh output folder per run)."""

    name: str
    argv: Callable[[int], list[str]]
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    before: Callable[[int], None] | None = None  # untimed set-up of run i
    after: Callable[[int], None] | None = None  # untimed check/clean-up of run i
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds of the process tree


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_once(case: Case, index: int) -> tuple[float, float]:
    """Wall and CPU time (seconds) of one run of ``case`` as a separate process.

    CPU time (user + system, the process and the children it waited for) is far less disturbed
    than wall time by other work on a shared machine, so it is reported next to it.
    """
    if case.before is not None:
        case.before(index)
    argv = case.argv(index)
    cpu_start = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        argv,
        cwd=case.cwd,
        env=dict(case.env) if case.env is not None else None,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    cpu = _children_cpu() - cpu_start
    if proc.returncode != 0:
        out = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip()
        raise BenchError(f"{case.name}: `{' '.join(argv)}` exited {proc.returncode}:\n{out}")
    if case.after is not None:
        case.after(index)
    return elapsed, cpu


def run_paired(cases: Sequence[Case], runs: int, warmup: int = 1) -> None:
    """Interleave the cases: round r runs every case once, in an order rotated by r.

    Each round is one paired sample, so a slow moment on a shared machine hits every tool of
    that round alike; rotating the order cancels any first/last position effect.
    """
    index = 0
    for _ in range(warmup):
        for case in cases:
            time_once(case, index)
            index += 1
    for r in range(runs):
        shift = r % len(cases)
        for case in [*cases[shift:], *cases[:shift]]:
            wall, cpu = time_once(case, index)
            case.times.append(wall)
            case.cpu.append(cpu)
            index += 1


def median_ms(times: Sequence[float]) -> float:
    return statistics.median(times) * 1000.0


def paired_ratio(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """Median over rounds of ours/theirs (the paired estimate of the speed ratio)."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        cells = [
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def machine() -> str:
    load = ""
    if hasattr(os, "getloadavg"):
        load = " load avg %.2f %.2f %.2f" % os.getloadavg()  # noqa: UP031
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores,"
        f" Python {platform.python_version()} ({sys.executable}),{load}"
    )


def busy_note() -> str:
    """A warning line when other work competes for the CPUs (empty when the machine is quiet)."""
    if not hasattr(os, "getloadavg"):
        return ""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load <= cores * 0.75:
        return ""
    return (
        f"note    the machine is busy (load {load:.1f} on {cores} cores): wall-time medians are"
        " inflated by waiting for a CPU; the min and cpu columns are closer to a quiet machine"
    )


def quiet_env(home: Path | None = None) -> dict[str, str]:
    """The environment for every timed process: no colour, no prompts, nothing in ~."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORCE_COLOR", "CLICOLOR"))}
    env["NO_COLOR"] = "1"
    env["TERM"] = "dumb"
    # Time the state every installed tool is in after its first run: bytecode cached. (uv does not
    # compile .pyc at install time, and a PYTHONDONTWRITEBYTECODE=1 shell would make every run
    # compile every imported module from source.) The cache goes under .bench/, so the venvs
    # themselves are not written to.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(BENCH_DIR / "pycache")
    if home is not None:
        # cookiecutter (and ccds) write replay files and clones under ~; keep them in the scratch
        config = home / "cookiecutterrc.yaml"
        config.write_text(
            f"cookiecutters_dir: {home / 'cookiecutters'}\nreplay_dir: {home / 'replay'}\n",
            encoding="utf-8",
        )
        env["COOKIECUTTER_CONFIG"] = str(config)
    return env
