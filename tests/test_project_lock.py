"""`.mlops/lock`: a killed run's writes are told from the user's (and an unreadable file is a
located error), and taking over a stale lock is exclusive between runs."""

from __future__ import annotations

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
