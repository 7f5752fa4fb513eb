"""Start-up time of `mlops --version` and `mlops --help`, and what `import mlops_template.cli` costs.

    .venv/bin/python benchmarks/startup.py [--runs 20] [--top 15] [--no-peers]

Paired, interleaved runs (each round runs every command once, in a rotated order) of:

* ``python -c pass`` with the tool's interpreter: the floor no Python CLI can beat;
* ``mlops --version`` (target < 60 ms) and ``mlops --help`` (target < 150 ms), via the installed
  console script, i.e. the real process a shell starts;
* ``cookiecutter --version``, ``copier --version`` and ``ccds --help`` from ``.bench/venv`` (created
  with uv when missing; ``--no-peers`` leaves them out);
* with ``--baseline DIR`` (a source tree of another revision: ``git archive REV src templates |
  tar -x -C DIR``), ``--version``, ``--help``, ``new`` (the default project) and
  ``lint --format json`` (of the default project that tree generates) of this tree and of that
  one, each through the console script's entry point (``python -c "...entry.main()"`` with
  ``PYTHONPATH=<tree>/src``), paired: the before/after figures of a change.

Then ``python -X importtime -c "import mlops_template.cli"`` (best of 3): the top cumulative imports,
the share of the third-party packages, and whether a heavy library (pydantic, jinja2, rich, yaml)
is imported at start-up at all (it should only be imported by the commands that need it).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    REPO,
    BenchError,
    Case,
    busy_note,
    ensure_peer_venv,
    machine,
    median_ms,
    mlops_command,
    paired_ratio,
    peer_bin,
    peer_version,
    quiet_env,
    run_paired,
    table,
)

TARGETS_MS = {"mlops --version": 60.0, "mlops --help": 150.0}
HEAVY = ("pydantic", "jinja2", "rich", "yaml", "ruamel", "tomlkit", "typer", "click")
IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def tool_python() -> str:
    """The interpreter the console script runs on (its shebang), else this one."""
    script = Path(mlops_command()[0])
    if script.is_file():
        first = script.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
        if first.startswith("#!") and "python" in first:
            return first[2:].strip().split()[0]
    venv_python = REPO / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.is_file() else sys.executable


def cases(with_peers: bool) -> list[Case]:
    env = quiet_env()
    mlops = mlops_command()
    out = [
        Case("python -c pass", lambda i: [tool_python(), "-c", "pass"], env=env),
        Case("mlops --version", lambda i: [*mlops, "--version"], env=env),
        Case("mlops --help", lambda i: [*mlops, "--help"], env=env),
    ]
    if with_peers:
        ensure_peer_venv()
        for name, argv in (
            ("cookiecutter --version", ["cookiecutter", "--version"]),
            ("copier --version", ["copier", "--version"]),
            ("ccds --help", ["ccds", "--help"]),
        ):
            path = peer_bin(argv[0])
            if path is not None:
                full = [str(path), *argv[1:]]
                out.append(Case(name, _fixed(full), env=env))
    return out


#: what the console script runs, as a -c statement (so two source trees run the same way)
ENTRY = "import sys; from mlops_template.entry import main; sys.exit(main())"


def baseline_cases(baseline: Path, scratch: Path) -> list[Case]:
    """``--version``, ``--help``, ``new`` (the default project, text report, as new.py runs it)
    and ``lint --format json`` (of the default project that tree generates) for this tree and
    for ``baseline``."""
    if not (baseline / "src" / "mlops_template" / "entry.py").is_file():
        raise BenchError(
            f"--baseline {baseline}: no src/mlops_template/entry.py there; make it with "
            f"`git archive REV src templates | tar -x -C {baseline}`"
        )
    out = []
    for label, tree in (("this tree", REPO), ("baseline", baseline)):
        env = {**quiet_env(), "PYTHONPATH": str(tree / "src")}
        entry = [tool_python(), "-c", ENTRY]
        for flag in ("--version", "--help"):
            out.append(Case(f"{label} {flag}", _fixed([*entry, flag]), env=env))
        folder = scratch / label.replace(" ", "-")
        project = folder / "lint-project"
        folder.mkdir(parents=True, exist_ok=True)
        made = subprocess.run([*entry, "new", str(project), "--no-input", "--name", "Bench Project",
                               "-q"], env=env, capture_output=True, text=True, check=False)  # fmt: skip
        if made.returncode != 0:
            raise BenchError(f"{label}: `mlops new` failed:\n{made.stderr.strip()[-2000:]}")

        def new_argv(index: int, entry: list[str] = entry, folder: Path = folder) -> list[str]:
            return [*entry, "new", str(folder / f"new-{index}"), "--no-input", "--name",
                    "Bench Project"]  # fmt: skip

        def clean(index: int, folder: Path = folder) -> None:
            shutil.rmtree(folder / f"new-{index}", ignore_errors=True)

        out.append(Case(f"{label} new", new_argv, env=env, after=clean))
        lint = [*entry, "lint", str(project), "--format", "json"]
        out.append(Case(f"{label} lint", _fixed(lint), env=env))
    return out


def _fixed(argv: list[str]) -> Callable[[int], list[str]]:
    return lambda _index: argv


@dataclass(frozen=True)
class Import:
    module: str
    self_us: int
    cumulative_us: int
    depth: int


def import_profile(python: str, statement: str, tries: int = 3) -> list[Import]:
    """``-X importtime`` of ``statement``; the try with the least total time (least noise)."""
    best: list[Import] = []
    best_total = -1
    for _ in range(tries):
        proc = subprocess.run(
            [python, "-X", "importtime", "-c", statement],
            capture_output=True,
            text=True,
            check=False,
            env=quiet_env(),
        )
        if proc.returncode != 0:
            raise BenchError(f"`{python} -c {statement!r}` failed:\n{proc.stderr.strip()[-2000:]}")
        rows = []
        for line in proc.stderr.splitlines():
            match = IMPORT_LINE.match(line)
            if match:
                self_us, cum_us, indent, module = match.groups()
                rows.append(Import(module, int(self_us), int(cum_us), (len(indent) - 1) // 2))
        total = sum(r.self_us for r in rows)
        if best_total < 0 or total < best_total:
            best, best_total = rows, total
    return best


def package_shares(rows: list[Import]) -> list[tuple[str, int]]:
    """Self time summed per top-level package, largest first."""
    shares: dict[str, int] = {}
    for row in rows:
        top = row.module.split(".")[0]
        shares[top] = shares.get(top, 0) + row.self_us
    return sorted(shares.items(), key=lambda kv: -kv[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="paired rounds (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    parser.add_argument("--top", type=int, default=15, help="imports to list (default 15)")
    parser.add_argument("--no-peers", action="store_true", help="time only mlops")
    parser.add_argument(
        "--baseline", type=Path, help="also time --version/--help of this source tree (paired)"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    scratch = Path(tempfile.mkdtemp(prefix="mlops-bench-startup-"))
    try:
        todo = cases(with_peers=not args.no_peers)
        if args.baseline is not None:
            todo += baseline_cases(args.baseline.resolve(), scratch)
        print(f"timing {', '.join(c.name for c in todo)} ...", flush=True)
        run_paired(todo, args.runs, args.warmup)
        floor = todo[0].times
        rows = []
        for case in todo:
            target = TARGETS_MS.get(case.name)
            med = median_ms(case.times)
            best = min(case.times) * 1000
            verdict = (
                ""
                if target is None
                else f"< {target:.0f}: median {'met' if med < target else 'MISSED'},"
                f" min {'met' if best < target else 'MISSED'}"
            )
            ratio = "" if case is todo[0] else f"{paired_ratio(case.times, floor):.1f}x"
            rows.append(
                [
                    case.name,
                    f"{med:.0f}",
                    f"{min(case.times) * 1000:.0f}",
                    f"{median_ms(case.cpu):.0f}",
                    ratio,
                    verdict,
                ]
            )
        print()
        print(f"start-up: {args.runs} paired rounds (+{args.warmup} warm-up), interleaved")
        print(f"machine: {machine()}")
        print()
        print(table(["command", "median ms", "min ms", "cpu ms", "vs python", "target ms"], rows))
        if busy_note():
            print(busy_note())
        by_name = {c.name: c for c in todo}
        for ours in ("mlops --version", "mlops --help"):
            for peer in ("cookiecutter --version", "copier --version", "ccds --help"):
                if peer in by_name:
                    peer_ratio = paired_ratio(by_name[ours].times, by_name[peer].times)
                    print(f"ratio  {ours} / {peer}: {peer_ratio:.2f}")
        for flag in ("--version", "--help", "new", "lint"):
            if f"baseline {flag}" in by_name:
                ratio = paired_ratio(by_name[f"this tree {flag}"].times,
                                     by_name[f"baseline {flag}"].times)  # fmt: skip
                print(f"ratio  this tree {flag} / baseline {flag}: {ratio:.2f}")
        versions = [
            (p, peer_version(p)) for p in ("cookiecutter", "copier", "cookiecutter-data-science")
        ]
        if not args.no_peers:
            print("peers  " + ", ".join(f"{p} {v}" for p, v in versions if v))

        python = tool_python()
        imports = import_profile(python, "import mlops_template.cli")
        total = sum(r.self_us for r in imports)
        print()
        print(f"`python -X importtime -c 'import mlops_template.cli'` (best of 3): {total / 1000:.0f} ms"
              f" in {len(imports)} modules")  # fmt: skip
        top = sorted(imports, key=lambda r: -r.cumulative_us)[: args.top]
        print(
            table(
                ["module (by cumulative)", "cumulative ms", "self ms"],
                [
                    [r.module, f"{r.cumulative_us / 1000:.1f}", f"{r.self_us / 1000:.1f}"]
                    for r in top
                ],
            )
        )
        print()
        shares = package_shares(imports)[:8]
        print(
            "self time by top-level package: "
            + ", ".join(f"{p} {us / 1000:.0f} ms" for p, us in shares)
        )
        loaded = {r.module.split(".")[0] for r in imports}
        heavy = [h for h in HEAVY if h in loaded]
        print("heavy libraries imported at start-up: " + (", ".join(heavy) if heavy else "none"))
        help_imports = import_profile(python, _help_statement(), tries=1)
        help_heavy = [h for h in HEAVY if h in {r.module.split(".")[0] for r in help_imports}]
        print("... and by `mlops --help`: " + (", ".join(help_heavy) if help_heavy else "none"))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _help_statement() -> str:
    """Run the CLI's entry point with --help in-process, as the console script does."""
    return (
        "import sys; sys.argv = ['mlops', '--help']\n"
        "from mlops_template.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )


if __name__ == "__main__":
    sys.exit(main())
