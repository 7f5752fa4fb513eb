"""Shared fixtures: every test runs against a throw-away copy of the project layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary project root with this project's conf/, so tests never touch real data."""
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf")
    monkeypatch.setenv("MLOPS_PROJECT_ROOT", str(tmp_path))
    monkeypatch.setenv("MLOPS_ENV", "test")
    monkeypatch.setenv("MLOPS_PII_SALT", "test-salt")
    return tmp_path
