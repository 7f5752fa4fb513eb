"""Read-only git queries the tool makes of a project: which paths changed, what a path holds at
``HEAD``, and where the user moved generated files (git's rename detection).

Nothing here writes, so ``lint`` may use it as well as ``add-phase`` and ``update``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from mlops_template.errors import ProjectError

#: the record of the last render, whose commits mark where generated files were rendered
PRISTINE_RECORD = ".mlops/pristine.json"


def in_work_tree(root: Path) -> bool:
    """Whether ``root`` is inside a git work tree (False when git is not installed)."""
    try:
        probe = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "true"


def git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()
        raise ProjectError(f"{root}: `git {' '.join(args[:2])}` failed: {message}")
    return done.stdout


def changed_paths(root: Path) -> list[str]:
    """The paths (relative to ``root``, POSIX) that ``git status`` reports under ``root``:
    modified, deleted, added, untracked, and both sides of a rename."""
    prefix = git(root, "rev-parse", "--show-prefix").decode("utf-8").strip()
    raw = git(root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
    fields = raw.decode("utf-8", "surrogateescape").split("\0")
    out: list[str] = []
    index = 0
    while index < len(fields):
        entry = fields[index]
        index += 1
        if len(entry) < 4:
            continue
        names = [entry[3:]]
        if entry[0] in "RC":  # a rename is followed by its source path
            names.append(fields[index])
            index += 1
        out.extend(n[len(prefix) :] if n.startswith(prefix) else n for n in names)
    return out


def committed_files(root: Path, paths: Sequence[str]) -> dict[str, bytes]:
    """The content of ``paths`` (relative to ``root``) at ``HEAD``; paths not there are absent."""
    if not paths:
        return {}
    prefix = git(root, "rev-parse", "--show-prefix").decode("utf-8").strip()
    request = "".join(f"HEAD:{prefix}{rel}\n" for rel in paths).encode("utf-8")
    data = git(root, "cat-file", "--batch", stdin=request)
    out: dict[str, bytes] = {}
    at = 0
    for rel in paths:
        end = data.index(b"\n", at)
        header = data[at:end].split()
        at = end + 1
        if len(header) != 3 or header[1] != b"blob":
            continue  # "<name> missing" (not committed) or a folder
        size = int(header[2])
        out[rel] = data[at : at + size]
        at += size + 1
    return out


def renamed_files(
    root: Path, gone: Sequence[str], known: set[str], record: str = PRISTINE_RECORD
) -> dict[str, str]:
    """Where the user moved generated files that are missing (``gone``): git's rename detection
    (content similarity) between a commit that recorded a render (``.mlops/pristine.json``;
    the newest, then the first) and the working tree, so a ``git mv``, committed or not, is
    found however many updates ago it happened. Empty outside git or when nothing was renamed."""
    if not in_work_tree(root):
        return {}
    out: dict[str, str] = {}
    try:
        commits = git(root, "log", "--format=%H", "--", record).decode().split()
        prefix = git(root, "rev-parse", "--show-prefix").decode("utf-8").strip()
        for commit in dict.fromkeys(commits[:1] + commits[-1:]):
            wanted = set(gone) - set(out)
            if not wanted:
                break
            raw = git(root, "diff", "--find-renames", "--name-status", "-z", "--diff-filter=R",
                       commit, "--", ".")  # fmt: skip
            fields = raw.decode("utf-8", "surrogateescape").split("\0")
            for index in range(0, len(fields) - 2, 3):
                old, new = (
                    name[len(prefix) :] if name.startswith(prefix) else name
                    for name in fields[index + 1 : index + 3]
                )
                if old in wanted and new not in known:
                    out[old] = new
    except ProjectError:
        return out
    return out
