"""Wall time of `mlops lint` on a generated default project and on copies grown to 2,000 Python files.

    .venv/bin/python benchmarks/lint.py [--runs 7] [--sizes 500,1000,2000] [--keep DIR]

For each size the script copies the default project (``mlops new --name "Bench Project"``) and
adds generated modules to ``src/<package>/{data,ml,serving,monitoring}/gen/`` until the package
holds that many ``.py`` files. The modules look like real code (docstring, absolute and relative
imports that respect the layering, functions, string constants, a class) so every rule does its
real work, and none of them breaks a rule. Each docstring names a module its layer must not
import, so `mlops lint` parses every one of them (files that mention no forbidden module are not
parsed at all): the figures are the worst case for a repo of that size.

Each size is timed as its own process (the installed ``mlops`` console script, ``--format json``,
bytecode cached in a private PYTHONPYCACHEPREFIX as after a normal install), ``--runs`` times
after one warm-up, interleaved across sizes so a noisy neighbour hurts them all
alike. Printed per size: min and median wall time, median CPU time (user + system of the child,
less sensitive to a loaded machine); then the cost per 1,000 files from a least-squares fit of
the minimum wall and median CPU times, and how far each point is from that line.
Nothing is asserted: benchmarks print figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LAYERS = ("data", "ml", "serving", "monitoring")
#: what each generated module imports: only what its layer may depend on.
ALLOWED = {
    "data": ("common.config", "data"),
    "ml": ("common.config", "ml"),
    "serving": ("common.config", "serving"),
    "monitoring": ("common.config", "monitoring"),
}

#: a word of a module each layer must not import: it makes `mlops lint` parse every file.
MENTION = {"data": "serving", "ml": "serving", "serving": "train", "monitoring": "train"}

MODULE = '''\
"""Generated module {index} of the {layer} layer (benchmark filler, realistic shape).

Talks to {mention} code only through files, never by import.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from {package}.common.config import load_config, resolve

from . import OFFSET
{sibling}
LAYER = "{layer}"
ARTIFACT = "reports/{layer}-{index}.json"


@dataclass(frozen=True)
class Step{index}:
    name: str
    weight: float = 1.0

    def score(self, values: list[float]) -> float:
        """Weighted root mean square of ``values``."""
        if not values:
            return 0.0
        return self.weight * math.sqrt(sum(v * v for v in values) / len(values))


def run_{index}(root: Path | None = None) -> dict[str, float]:
    cfg = load_config()
    out = resolve(cfg, "reports") if root is None else root
    step = Step{index}(name="step-{index}")
    result = {{"score": step.score([1.0, 2.0, 3.0]), "index": {index}}}
    (out / ARTIFACT).parent.mkdir(parents=True, exist_ok=True)
    (out / ARTIFACT).write_text(json.dumps(result))
    return result


def helper_{index}(x: float, y: float = 2.0) -> float:
    total = 0.0
    for i in range(10):
        total += (x * i + y) / (i + 1)
    return total + OFFSET
'''


@dataclass
class Sized:
    label: str
    root: Path
    files: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    exit_code: int | None = None
    findings: int | None = None


def mlops_command() -> list[str]:
    script = Path(sys.executable).with_name("mlops")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlops_template"]


def generate_default(dest: Path) -> str:
    from mlops_template.apply import apply_new
    from mlops_template.render import render
    from mlops_template.spec import load_spec

    spec = load_spec(name="Bench Project")
    apply_new(render(spec), dest)
    return spec.package


def py_files(root: Path, package: str) -> int:
    return sum(1 for _ in (root / "src" / package).rglob("*.py"))


def grow(source: Path, dest: Path, package: str, total: int) -> int:
    shutil.copytree(source, dest)
    missing = total - py_files(dest, package)
    per_layer = [missing // len(LAYERS) + (1 if i < missing % len(LAYERS) else 0)
                 for i in range(len(LAYERS))]  # fmt: skip
    for layer, count in zip(LAYERS, per_layer, strict=True):
        if count <= 0:
            continue
        folder = dest / "src" / package / layer / "gen"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text('"""Generated modules."""\n\nOFFSET = 1.0\n')
        for index in range(count - 1):
            sibling = f"from .mod_{index - 1:04d} import helper_{index - 1}\n" if index else ""
            text = MODULE.format(
                index=index, layer=layer, package=package, sibling=sibling, mention=MENTION[layer]
            )
            (folder / f"mod_{index:04d}.py").write_text(text)
    return py_files(dest, package)


def bench_env(base: Path) -> dict[str, str]:
    """Bytecode cached as on a normal install (pip compiles .pyc), in a private prefix so the
    venv is not touched even where PYTHONDONTWRITEBYTECODE is set."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(base / "pycache")
    return env


def time_process(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        command, capture_output=True, text=True, stdin=subprocess.DEVNULL, env=env
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.returncode, proc.stdout


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares ``t = a + b * files``: (a, b)."""
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


def main(argv: list[str] | None = None) -> int:
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per size (after 1 warm-up)")
    parser.add_argument("--sizes", default="500,1000,2000", help="Python file counts to grow to")
    parser.add_argument("--keep", type=Path, help="build the repos here and keep them")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]

    base = args.keep or Path(tempfile.mkdtemp(prefix="mlops-lint-bench-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        default = base / "default"
        if default.exists():
            shutil.rmtree(default)
        package = generate_default(default)
        cases = [Sized("default project", default, py_files(default, package))]
        for size in sizes:
            dest = base / f"py{size}"
            if dest.exists():
                shutil.rmtree(dest)
            cases.append(Sized(f"{size} .py files", dest, grow(default, dest, package, size)))

        command = mlops_command()
        env = bench_env(base)
        for case in cases:  # warm-up: page cache, .pyc files
            time_process([*command, "lint", str(case.root), "--format", "json"], env)
        for run in range(args.runs):
            order = cases[run % len(cases) :] + cases[: run % len(cases)]
            for case in order:
                wall, cpu, code, out = time_process(
                    [*command, "lint", str(case.root), "--format", "json"], env
                )
                case.wall.append(wall)
                case.cpu.append(cpu)
                case.exit_code = code
                case.findings = len(json.loads(out)["findings"]) if out.strip() else None
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"machine: {platform.machine()} {os.cpu_count()} cpus, Python "
              f"{platform.python_version()}, load average {load:.2f} at the end")  # fmt: skip
        print(f"command: {' '.join(command)} lint PATH --format json ({args.runs} runs each)\n")
        header = ("repo", ".py files", "wall min", "wall median", "cpu median", "exit", "findings")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for case in cases:
            print(
                f"| {case.label} | {case.files} | {min(case.wall) * 1000:.0f} ms | "
                f"{statistics.median(case.wall) * 1000:.0f} ms | "
                f"{statistics.median(case.cpu) * 1000:.0f} ms | {case.exit_code} | {case.findings} |"
            )
        points = [(c.files, min(c.wall)) for c in cases]
        intercept, slope = fit(points)
        print(f"\nlinear fit of min wall time: {intercept * 1000:.0f} ms + "
              f"{slope * 1e6:.0f} ms per 1,000 files")  # fmt: skip
        for case, (files, measured) in zip(cases, points, strict=True):
            predicted = intercept + slope * files
            print(f"  {case.label}: measured {measured * 1000:.0f} ms, line {predicted * 1000:.0f} "
                  f"ms ({(measured - predicted) / predicted * 100:+.0f}%)")  # fmt: skip
        cpu_intercept, cpu_slope = fit([(c.files, statistics.median(c.cpu)) for c in cases])
        print(f"linear fit of median CPU time: {cpu_intercept * 1000:.0f} ms + "
              f"{cpu_slope * 1e6:.0f} ms per 1,000 files")  # fmt: skip
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
