"""The built wheel ships the templates: install it into a fresh venv and scaffold from it."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_scaffolds(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
                   check=True, capture_output=True)  # fmt: skip
    wheel = next(dist.glob("mlops_template-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    subprocess.run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    dest = tmp_path / "from-wheel"
    proc = subprocess.run(
        [str(env_dir / "bin" / "mlops"), "new", str(dest), "--spec",
         str(REPO / "examples" / "churn" / "mlops.yaml"), "--quiet"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (dest / "src" / "churn_prediction" / "common" / "config.py").is_file()
    assert (dest / ".mlops" / "pristine.json").is_file()
