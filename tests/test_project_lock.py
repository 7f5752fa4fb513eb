"""`.mlops/lock`: a killed run's writes are told from the user's (and an unreadable file is a
located error), and taking over a stale lock is exclusive between runs."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_template import project as proj
from mlops_template.errors import ProjectError


def test_planned_writes_names_a_file_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding 9: an unreadable changed file was a traceback (PermissionError)."""
    target = tmp_path / "Makefile"
    target.write_text("all:\n")
    lock = proj.Lock(tmp_path / proj.LOCK_FILE, {}, taken_over={"plan": {"Makefile": "0" * 64}})
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:
        if self == target:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    with pytest.raises(ProjectError, match="Makefile: cannot read it") as caught:
        proj.planned_writes(tmp_path, lock)(["Makefile"])
    assert "Permission denied" in str(caught.value) and caught.value.exit_code == 2


def _stale(root: Path) -> Path:
    """A lock left by a process that is gone, on this host."""
    lock = root / proj.LOCK_FILE
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname(), "since": 0}))
    return lock


def test_a_stale_lock_is_judged_and_removed_under_a_guard_other_runs_wait_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding 3: two runs that read the same stale lock could both remove a lock (the
    second one a live run's). The read-check-remove now holds an flock on `.mlops/`."""
    lock = _stale(tmp_path)
    seen: list[str] = []
    real_rename = os.rename

    def rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == lock:  # the moment another run could interleave: can it take the guard?
            probe = (
                "import fcntl, os, sys\n"
                f"fd = os.open({str(lock.parent)!r}, os.O_RDONLY)\n"
                "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
                "except BlockingIOError:\n    print('busy')\nelse:\n    print('free')\n"
            )
            done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
            seen.append(done.stdout.strip() or done.stderr)
        real_rename(src, dst)

    monkeypatch.setattr(proj.os, "rename", rename)
    notes: list[str] = []
    with proj.project_lock(tmp_path, notes) as held:
        assert json.loads(lock.read_text())["pid"] == os.getpid() == held.info["pid"]
    assert seen == ["busy"] and "took over" in notes[0] and not lock.exists()


def test_a_takeover_that_finds_the_lock_changed_refuses_and_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the guard (no fcntl), run A's fresh lock can appear between this run's read and
    rename, and run C's after it: this run must not delete A's lock (old code did, leaving A
    and C both holding the lock); it stops with exit 2 and keeps A's lock."""
    import contextlib

    lock = _stale(tmp_path)
    run_a = {"pid": os.getppid(), "host": socket.gethostname(), "since": 1.0}
    run_c = {"pid": os.getppid(), "host": socket.gethostname(), "since": 2.0}
    real_rename = os.rename
    monkeypatch.setattr(
        proj, "_takeover_guard", lambda folder: contextlib.nullcontext(), raising=False
    )

    def rename(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(src) == lock:
            lock.write_text(json.dumps(run_a))  # A took over and created its lock
            real_rename(src, dst)
            lock.write_text(json.dumps(run_c))  # C created its lock in the free path
            return
        real_rename(src, dst)

    monkeypatch.setattr(proj.os, "rename", rename)
    with (
        pytest.raises(ProjectError, match="another mlops run took the lock") as caught,
        proj.project_lock(tmp_path),
    ):
        pass
    assert caught.value.exit_code == 2
    assert json.loads(lock.read_text()) == run_c
    kept = [p for p in lock.parent.iterdir() if p != lock]
    assert [json.loads(p.read_text()) for p in kept] == [run_a]
