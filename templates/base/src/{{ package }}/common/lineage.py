"""File checksums and a lineage log: every layer write records its inputs and code version."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: Path) -> str:
    """The file's SHA-256 here; in the lake (storage URLs) the store's own checksum (ETag, MD5)
    when it has one, so a run does not download the whole lake to hash it."""
    if hasattr(path, "protocol"):  # a upath.UPath: a storage URL
        info = path.fs.info(path.path)  # type: ignore[attr-defined]
        for key in ("ETag", "etag", "md5Hash"):
            if info.get(key):
                return f"{key.lower()}:{str(info[key]).strip(chr(34))}"
    return sha256_file(path)


def code_version(root: Path) -> str:
    """The git commit of the project (with '-dirty' when modified), or 'unversioned'."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unversioned"
    return f"{commit}-dirty" if dirty else commit


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def record(
    lineage_file: Path,
    step: str,
    inputs: list[Path],
    outputs: list[Path],
    root: Path,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Append one lineage entry (JSON lines) and return it."""
    entry = {
        "step": step,
        "at": utc_now(),
        "code_version": code_version(root),
        "inputs": {
            str(p.relative_to(root)) if p.is_relative_to(root) else str(p): fingerprint(p)
            for p in inputs
            if p.is_file()
        },
        "outputs": {
            str(p.relative_to(root)) if p.is_relative_to(root) else str(p): fingerprint(p)
            for p in outputs
            if p.is_file()
        },
        **(extra or {}),
    }
    line = json.dumps(entry, sort_keys=True) + "\n"
    lineage_file.parent.mkdir(parents=True, exist_ok=True)
    if not hasattr(lineage_file, "protocol"):  # a file of this machine: append
        with lineage_file.open("a", encoding="utf-8") as handle:
            handle.write(line)
    else:  # object stores cannot append: rewrite the log (one writer: the data pipeline)
        before = lineage_file.read_text(encoding="utf-8") if lineage_file.exists() else ""
        lineage_file.write_text(before + line, encoding="utf-8")
    return entry
