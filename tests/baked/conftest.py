"""Baked-project fixtures: generate a project, install it, run its make targets.

Installing uses the generated Makefile itself (`make setup`), which puts uv into the project's
.venv when it can; uv's wheel cache makes the second and later installs take seconds.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlops_template.apply import apply_new
from mlops_template.render import render
from mlops_template.spec import load_spec

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
#: variables of the environment running the suite that a project command must not inherit
#: (PYTHONDONTWRITEBYTECODE: the project's modules are compiled once, when first imported)
INHERITED_OFF = ("VIRTUAL_ENV", "MLOPS_PROJECT_ROOT", "MLOPS_ENV", "PYTHONDONTWRITEBYTECODE")
#: set for every project command: `make setup` leaves bytecode to first imports (compiling every
#: installed package cost ~30 s of CPU per bake, most of it for modules no test imports);
#: `make demo` (tests/baked/test_demo.py) keeps the default, compiled at install
PROJECT_ENV = {"MLOPS_PII_SALT": "baked-test-salt", "UV_COMPILE_BYTECODE": "0"}


@dataclass
class Baked:
    path: Path
    package: str

    def run(
        self,
        *args: str,
        check: bool = True,
        env: dict[str, str] | None = None,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the project folder; on failure show its output in the test report."""
        proc = subprocess.run(
            list(args), cwd=self.path, env=self.env(env), capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if check and proc.returncode != 0:
            pytest.fail(
                f"{' '.join(args)} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-6000:]}"
                f"\n--- stderr ---\n{proc.stderr[-6000:]}"
            )
        return proc

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a project command runs in: this process's, minus what would point it
        elsewhere (the tool's venv, another project root, the environment of whoever runs the
        suite), plus PROJECT_ENV (the test salt), then ``extra``: a caller's MLOPS_ENV is kept."""
        full = {k: v for k, v in os.environ.items() if k not in INHERITED_OFF}
        full.update(PROJECT_ENV)
        full.update(extra or {})
        return full

    def make(self, *targets: str, check: bool = True, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return self.run("make", "--no-print-directory", *targets, check=check, env=env)

    def python(self, code: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(str(self.path / ".venv" / "bin" / "python"), "-c", code, check=check)


BakeFn = Callable[..., Baked]


def wait_until_ready(
    server: subprocess.Popen[bytes], log: Path, ready: Callable[[], bool], timeout: float = 90
) -> None:
    """Poll ``ready()`` (connection errors count as not yet) until it is true; fail the test with
    the end of the server's log if the server exits first or is not ready within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            pytest.fail(f"server exited {server.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if ready():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"server not ready after {timeout:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def bake(tmp_path_factory: pytest.TempPathFactory) -> BakeFn:
    """``bake(example="churn", sets=[...], name=None)`` -> a generated, installed project."""

    def _bake(example: str | None = "churn", sets: list[str] | None = None,
              phases: list[str] | None = None, install: bool = True) -> Baked:  # fmt: skip
        spec_file = EXAMPLES / example / "mlops.yaml" if example else None
        spec = load_spec(spec_file, sets=sets or [], phases=phases,
                         name=None if spec_file else "Baked Project")  # fmt: skip
        dest = tmp_path_factory.mktemp(example or "baked") / spec.package
        apply_new(render(spec), dest)
        subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
        baked = Baked(dest, spec.package)
        if install:
            baked.make("setup")
        return baked

    return _bake


# first: xdist's own hook turns the xdist_group marker into the node id's @group suffix, and it
# runs before a conftest that pytest loaded early (a test file of this folder named on the
# command line), which left every test a group of its own and baked a project per worker
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "baked" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
            if item.get_closest_marker("xdist_group") is None:
                item.add_marker(pytest.mark.xdist_group(_group(item)))


def _group(item: pytest.Item) -> str:
    """One worker per module (`--dist loadgroup`): its module-scoped projects are baked once, not
    once on every worker that happens to run one of its tests. A test that uses none of them
    (it bakes its own project) is a group of its own, free to run on the other worker."""
    module = Path(str(item.fspath)).stem
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return module
    for name in info.names_closure:
        defs = info.name2fixturedefs.get(name, ())
        if any(d.scope == "module" for d in defs):
            return module
    return f"{module}::{item.name}"
