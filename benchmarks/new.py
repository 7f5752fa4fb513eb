"""Time `mlops new --no-input` against cookiecutter, copier and ccds on a tree of the same shape.

    .venv/bin/python benchmarks/new.py [--runs 10] [--warmup 1] [--json results.json]

What is compared (all as separate processes, the way a person runs them):

* ``mlops new DEST --no-input --name "Bench Project"``: the default project, as rendered now.
* ``cookiecutter --no-input`` and ``copier copy --defaults`` of a template this script writes at
  run time with the *same* relative paths and byte sizes as that project: one variable
  (``package``) in the path segments that hold the package name and in every file's content, so
  each peer renders every file. The outputs are checked path by path and byte count by byte count
  before anything is timed; a mismatch stops the benchmark.
* ``ccds`` (cookiecutter-data-science v2) when ``CCDS_TEMPLATE`` points at a local checkout of its
  template; otherwise it is skipped (by default ccds clones its template from the network).

Runs are paired and interleaved: each round runs every tool once, in an order rotated per round,
into a fresh temporary folder. Reported per tool: median and min wall time, median CPU time (user
+ system of the process tree: far less disturbed than wall time on a busy machine), files written,
and the paired ratios mlops/other (median over rounds, of wall and of CPU time). The peers live in
``.bench/venv``, created with uv when missing, so the tool's own venv stays clean.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BenchError,
    Case,
    busy_note,
    ensure_peer_venv,
    machine,
    median_ms,
    mlops_command,
    paired_ratio,
    peer_version,
    quiet_env,
    run_paired,
    table,
)

PROJECT_NAME = "Bench Project"
FILLER = "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\n"


@dataclass(frozen=True)
class Shape:
    """The default project's file tree: relative path -> size in bytes, and its package name."""

    sizes: dict[str, int]
    package: str

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def project_shape() -> Shape:
    """Render the default project in memory, exactly as `mlops new --name ...` would."""
    try:
        from mlops_template.render import render
        from mlops_template.spec import load_spec
    except ImportError as exc:
        raise BenchError(
            f"cannot import mlops_template ({exc}); run with the dev venv: "
            ".venv/bin/python benchmarks/new.py (or `make bench`)"
        ) from None
    from mlops_template.errors import MlopsError

    try:
        spec = load_spec(name=PROJECT_NAME)
        tree = render(spec)
    except MlopsError as exc:
        raise BenchError(f"the default project does not render: {exc.render()}") from None
    return Shape({path: len(tree.files[path].content) for path in tree}, spec.package)


# ------------------------------------------------------------------------------------------
# the look-alike templates
# ------------------------------------------------------------------------------------------


def filler(size: int) -> str:
    """ASCII text of exactly ``size`` bytes, no Jinja syntax, not ending in a newline.

    (A template engine may drop one trailing newline; ending on a letter keeps sizes exact.)
    """
    text = (FILLER * (size // len(FILLER) + 1))[:size]
    if text.endswith("\n"):
        text = text[:-1] + "."
    return text


def content(size: int, expression: str, value: str) -> str:
    """Template text that renders to ``size`` bytes and uses the variable when it fits."""
    if size > len(value):
        return expression + filler(size - len(value))
    return filler(size)


def template_path(path: str, package: str, expression: str) -> str:
    return "/".join(part.replace(package, expression) for part in path.split("/"))


def write_cookiecutter_template(shape: Shape, root: Path) -> Path:
    var = "{{ cookiecutter.package }}"
    root.mkdir(parents=True)
    (root / "cookiecutter.json").write_text(
        json.dumps({"package": shape.package}) + "\n", encoding="utf-8"
    )
    for path, size in shape.sizes.items():
        target = root / var / template_path(path, shape.package, var)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content(size, var, shape.package), encoding="utf-8", newline="")
    return root


def write_copier_template(shape: Shape, root: Path) -> Path:
    var = "{{ package }}"
    root.mkdir(parents=True)
    (root / "copier.yml").write_text(
        "_subdirectory: project\n_templates_suffix: .jinja\n"
        f"package:\n  type: str\n  default: {shape.package}\n",
        encoding="utf-8",
    )
    for path, size in shape.sizes.items():
        target = root / "project" / (template_path(path, shape.package, var) + ".jinja")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content(size, var, shape.package), encoding="utf-8", newline="")
    return root


# ------------------------------------------------------------------------------------------
# outputs
# ------------------------------------------------------------------------------------------


def project_root(out: Path) -> Path:
    """Each tool writes exactly one project folder into its (fresh) output folder."""
    children = list(out.iterdir()) if out.is_dir() else []
    if len(children) != 1 or not children[0].is_dir():
        raise BenchError(f"{out}: expected one project folder, found {sorted(children)}")
    return children[0]


def listing(root: Path) -> dict[str, int]:
    return {
        p.relative_to(root).as_posix(): p.stat().st_size
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def compare(name: str, got: dict[str, int], want: dict[str, int]) -> None:
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    sizes = sorted(p for p in set(got) & set(want) if got[p] != want[p])
    if missing or extra or sizes:
        lines = [f"{name} did not write the same tree as `mlops new`, so timing it is no use:"]
        lines += [f"  missing: {p}" for p in missing[:10]]
        lines += [f"  extra:   {p}" for p in extra[:10]]
        lines += [f"  size:    {p}: {got[p]} != {want[p]}" for p in sizes[:10]]
        raise BenchError("\n".join(lines))


class Outputs:
    """Fresh output folder per run; checks the first output, counts files, then deletes it."""

    def __init__(self, scratch: Path, name: str, want: dict[str, int] | None) -> None:
        self.base = scratch / "out" / name.replace(" ", "-")
        self.name = name
        self.want = want
        self.files: set[int] = set()
        self.bytes = 0
        self.checked = False

    def folder(self, index: int) -> Path:
        return self.base / str(index)

    def before(self, index: int) -> None:
        self.folder(index).mkdir(parents=True)

    def after(self, index: int) -> None:
        out = self.folder(index)
        got = listing(project_root(out))
        if not self.checked and self.want is not None:
            compare(self.name, got, self.want)
        self.checked = True
        self.files.add(len(got))
        self.bytes = sum(got.values())
        shutil.rmtree(out)


# ------------------------------------------------------------------------------------------
# main
# ------------------------------------------------------------------------------------------


def ccds_template() -> tuple[Path | None, str]:
    raw = os.environ.get("CCDS_TEMPLATE", "").strip()
    if not raw:
        return None, (
            "CCDS_TEMPLATE is not set; ccds clones its template from the network at run time, "
            "which is not timed here. Point CCDS_TEMPLATE at a local checkout of "
            "drivendataorg/cookiecutter-data-science (the folder with cookiecutter.json)."
        )
    path = Path(raw).expanduser().resolve()
    if not (path / "cookiecutter.json").is_file():
        raise BenchError(
            f"CCDS_TEMPLATE={raw}: no cookiecutter.json there; point it at the root of a "
            "cookiecutter-data-science checkout (the folder with cookiecutter.json and ccds.json)"
        )
    return path, ""


def build_cases(
    shape: Shape, scratch: Path, bin_dir: Path, *, cold: bool = True
) -> tuple[list[Case], list[Outputs]]:
    home = scratch / "home"
    home.mkdir()
    env = quiet_env(home)
    want = shape.sizes
    mlops = Outputs(scratch, "mlops new", want)
    # mlops keeps compiled templates, validated specs and the phase catalogue in its cache
    # folder: "mlops new" runs with the cache its warm-up round filled (as after a first use,
    # the state every tool is timed in), "mlops new (cold)" with an empty one every run
    mlops_env = {**env, "XDG_CACHE_HOME": str(scratch / "cache")}
    cold_cache = scratch / "cold-cache"
    cold_out = Outputs(scratch, "mlops new (cold)", want)

    def cold_before(index: int) -> None:
        shutil.rmtree(cold_cache, ignore_errors=True)
        cold_out.before(index)

    cc_tpl = write_cookiecutter_template(shape, scratch / "templates" / "cookiecutter")
    cp_tpl = write_copier_template(shape, scratch / "templates" / "copier")
    cc = Outputs(scratch, "cookiecutter", want)
    cp = Outputs(scratch, "copier copy", want)
    cmd = mlops_command()
    cases = [
        Case(
            "mlops new",
            lambda i: [
                *cmd,
                "new",
                str(mlops.folder(i) / "project"),
                "--no-input",
                "--name",
                PROJECT_NAME,
            ],
            cwd=scratch,
            env=mlops_env,
            before=mlops.before,
            after=mlops.after,
        ),
        Case(
            "cookiecutter",
            lambda i: [
                str(bin_dir / "cookiecutter"),
                str(cc_tpl),
                "--no-input",
                "-o",
                str(cc.folder(i)),
            ],
            cwd=scratch,
            env=env,
            before=cc.before,
            after=cc.after,
        ),
        Case(
            "copier copy",
            lambda i: [
                str(bin_dir / "copier"),
                "copy",
                "--defaults",
                str(cp_tpl),
                str(cp.folder(i) / "project"),
            ],
            cwd=scratch,
            env=env,
            before=cp.before,
            after=cp.after,
        ),
    ]
    outputs = [mlops, cc, cp]
    if cold:
        cases.append(
            Case(
                "mlops new (cold)",
                lambda i: [
                    *cmd,
                    "new",
                    str(cold_out.folder(i) / "project"),
                    "--no-input",
                    "--name",
                    PROJECT_NAME,
                ],
                cwd=scratch,
                env={**env, "XDG_CACHE_HOME": str(cold_cache)},
                before=cold_before,
                after=cold_out.after,
            )
        )
        outputs.append(cold_out)
    template, _ = ccds_template()
    if template is not None:
        cd = Outputs(scratch, "ccds", None)  # its own tree: counted, not compared
        cases.append(
            Case(
                "ccds",
                lambda i: [
                    str(bin_dir / "ccds"),
                    str(template),
                    "--no-input",
                    "-o",
                    str(cd.folder(i)),
                ],
                cwd=scratch,
                env=env,
                before=cd.before,
                after=cd.after,
            )
        )
        outputs.append(cd)
    return cases, outputs


def report(shape: Shape, cases: list[Case], outputs: list[Outputs], runs: int, warmup: int) -> str:
    ours = cases[0]
    rows = []
    for case, out in zip(cases, outputs, strict=True):
        first = case is ours
        rows.append(
            [
                case.name,
                f"{median_ms(case.times):.0f}",
                f"{min(case.times) * 1000:.0f}",
                f"{median_ms(case.cpu):.0f}",
                "/".join(str(n) for n in sorted(out.files)),
                "1.00" if first else f"{paired_ratio(ours.times, case.times):.2f}",
                "1.00" if first else f"{paired_ratio(ours.cpu, case.cpu):.2f}",
            ]
        )
    header = ["tool", "median ms", "min ms", "cpu ms", "files", "mlops/other", "cpu ratio"]
    lines = [
        f"`mlops new` vs peers: {runs} paired rounds (+{warmup} warm-up), interleaved",
        f"default project {PROJECT_NAME!r}: {len(shape.sizes)} files,"
        f" {shape.total_bytes / 1024:.1f} KiB (peers render a template of the same paths and sizes)",
        f"machine: {machine()}",
        "",
        table(header, rows),
        "(median/min: wall time; cpu: median user+system time; ratios: median of per-round"
        " mlops/other)",
    ]
    return "\n".join(lines)


def targets(cases: list[Case], outputs: list[Outputs]) -> list[str]:
    by_name = {c.name: (c, o) for c, o in zip(cases, outputs, strict=True)}
    ours_case, ours_out = by_name["mlops new"]
    lines = []
    cc_case, _ = by_name["cookiecutter"]
    ratio = paired_ratio(ours_case.times, cc_case.times)
    verdict = "met" if ratio < 1.0 else "MISSED"
    lines.append(
        f"target  faster than cookiecutter on the same tree (ratio < 1): {ratio:.2f} {verdict}"
    )
    verdict = "met" if ratio <= 0.7 else "MISSED"
    lines.append(
        f"target  <= 0.7 of cookiecutter's wall time on the same tree (issue 23): {ratio:.2f} "
        f"{verdict}"
    )
    if "ccds" in by_name:
        cd_case, cd_out = by_name["ccds"]
        ratio = paired_ratio(ours_case.times, cd_case.times)
        more = min(ours_out.files) > max(cd_out.files)
        for limit, issue in ((0.4, "3, 23"), (0.25, "12")):
            ok = ratio <= limit and more
            lines.append(
                f"target  <= {limit} of ccds's wall time while writing more files (issues {issue}):"
                f" {ratio:.2f}, {min(ours_out.files)} vs {max(cd_out.files)} files"
                f" {'met' if ok else 'MISSED'}"
            )
    if "mlops new (cold)" in by_name:
        cold_case, _ = by_name["mlops new (cold)"]
        peers = [n for n in ("cookiecutter", "ccds") if n in by_name]
        ratios = ", ".join(
            f"/ {n} {paired_ratio(cold_case.times, by_name[n][0].times):.2f} wall "
            f"{paired_ratio(cold_case.cpu, by_name[n][0].cpu):.2f} cpu"
            for n in peers
        )
        lines.append(f"info    mlops new with an empty cache folder (a first run): {ratios}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="paired rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--json", type=Path, help="also write the raw times to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--no-cold", action="store_true", help="leave out `mlops new` with an empty cache folder"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        parser.error("--runs must be >= 1 and --warmup >= 0")
    scratch = Path(tempfile.mkdtemp(prefix="mlops-bench-new-"))
    try:
        bin_dir = ensure_peer_venv()
        shape = project_shape()
        template, why = ccds_template()
        cases, outputs = build_cases(shape, scratch, bin_dir, cold=not args.no_cold)
        print(f"timing {', '.join(c.name for c in cases)} ...", flush=True)
        run_paired(cases, args.runs, args.warmup)
        print()
        print(report(shape, cases, outputs, args.runs, args.warmup))
        if template is None:
            print(f"ccds    skipped: {why}")
        print()
        print("\n".join(targets(cases, outputs)))
        if busy_note():
            print(busy_note())
        if len(outputs[0].files) > 1:
            print(
                "note    the templates changed while timing (mlops wrote "
                f"{'/'.join(map(str, sorted(outputs[0].files)))} files); rerun for a clean figure"
            )
        versions = {
            p: peer_version(p) for p in ("cookiecutter", "copier", "cookiecutter-data-science")
        }
        print("peers   " + ", ".join(f"{k} {v}" for k, v in versions.items() if v))
        if args.json is not None:
            args.json.write_text(
                json.dumps(
                    {
                        "machine": machine(),
                        "files": {o.name: sorted(o.files) for o in outputs},
                        "times_s": {c.name: c.times for c in cases},
                        "cpu_s": {c.name: c.cpu for c in cases},
                        "peers": versions,
                    },
                    indent=2,
                )
                + "\n",
                encoding="utf-8",
            )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            print(f"scratch kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
