"""`make demo` (scripts/demo.py), the README's first command, runs its whole story."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_demo_tells_the_whole_story(tmp_path: Path) -> None:
    dest = tmp_path / "demo-project"
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--dest", str(dest)],
        cwd=REPO, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    for step in range(1, 8):
        assert f"[{step}/7]" in out, f"step {step} missing:\n{out[-4000:]}"
    assert "ml gate: BLESSED" in out  # the pipeline blessed a model
    assert '"predictions"' in out  # one REST answer shown
    assert "RETRAINING DUE" in out and "drifted features" in out  # the shifted traffic is seen
    assert "created src/" in out and "/analysis/" in out  # add-phase analysis merged in
    assert "Demo finished" in out
    assert (dest / "src").is_dir() and (dest / "models" / "aliases.json").is_file()
