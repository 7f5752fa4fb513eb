"""File tree -> disk. Atomic creation for `mlops new`; per-file atomic writes for merges.

Nothing here decides *what* to write (that is render/merge); it decides *how*, safely:
a new project is written into a temporary sibling and renamed into place, so an error or Ctrl-C
leaves nothing behind; an existing file is never replaced without being reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_template.errors import DestinationError
from mlops_template.tree import Action, File, Tree


@dataclass(frozen=True)
class Entry:
    action: Action
    path: str
    detail: str = ""
    #: a user-owned file (a phase manifest's ``user_owned``): never merged once edited
    user_owned: bool = False


@dataclass
class Report:
    destination: Path
    entries: list[Entry] = field(default_factory=list)
    dry_run: bool = False

    def add(self, action: Action, path: str, detail: str = "", *, user_owned: bool = False) -> None:
        self.entries.append(Entry(action, path, detail, user_owned))

    def count(self, action: Action) -> int:
        return sum(1 for e in self.entries if e.action == action)

    @property
    def conflicts(self) -> list[Entry]:
        return [e for e in self.entries if e.action == "conflict"]

    def summary(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for entry in self.entries:
            out[entry.action] = out.get(entry.action, 0) + 1
        return out

    def to_json(self) -> dict[str, object]:
        return {
            "destination": str(self.destination),
            "dry_run": self.dry_run,
            "summary": self.summary(),
            "files": [
                {
                    "action": e.action,
                    "path": e.path,
                    **({"detail": e.detail} if e.detail else {}),
                    **({"user_owned": True} if e.user_owned else {}),
                }
                for e in self.entries
            ],
        }


#: the generation record a render carries (``render.STATE_FILE``; not imported: apply stays light)
_STATE_FILE = ".mlops/state.json"


def recorded_user_owned(tree: Tree) -> frozenset[str]:
    """The user-owned paths a render's ``.mlops/state.json`` lists (empty when it lists none)."""
    entry = tree.files.get(_STATE_FILE)
    if entry is None:
        return frozenset()
    return user_owned_of(entry.content)


def user_owned_of(state: bytes | str | Mapping[str, Any]) -> frozenset[str]:
    """The ``user_owned`` list of a ``.mlops/state.json`` (its bytes, text or parsed mapping)."""
    if not isinstance(state, Mapping):
        try:
            state = json.loads(state)
        except ValueError:
            return frozenset()
    raw = state.get("user_owned") if isinstance(state, Mapping) else None
    if not isinstance(raw, list):
        return frozenset()
    return frozenset(p for p in raw if isinstance(p, str))


def _is_inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def safe_target(root: Path, rel: str) -> Path:
    """``root / rel``, refusing absolute paths, ``..`` and symlinks that lead outside ``root``."""
    if rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in rel.split("/")):
        raise DestinationError(f"{rel}: refusing to write outside the project (unsafe path)")
    target = root / rel
    # every existing ancestor must stay inside root (a symlinked folder could lead elsewhere)
    probe = target
    while probe != root and probe != probe.parent:
        if probe.is_symlink() and not _is_inside(probe, root):
            raise DestinationError(
                f"{rel}: {probe.relative_to(root)} is a symlink pointing outside the project",
                hint="replace the symlink with a real file or folder",
            )
        probe = probe.parent
    return target


#: the temporary file ``write_file`` replaces its target with (``.<name>.<random>.mlops-tmp``)
TEMP_SUFFIX = ".mlops-tmp"


def write_file(target: Path, entry: File) -> None:
    """Write one file atomically (temp file in the same folder + rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(entry.content)
        os.chmod(tmp, 0o755 if entry.executable else 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _write_new_file(target: Path, entry: File, made: set[Path]) -> None:
    """Create one file in a private staging folder: no temp file needed, since the folder is only
    renamed into place once every file in it is complete."""
    if target.parent not in made:
        target.parent.mkdir(parents=True, exist_ok=True)
        made.add(target.parent)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755 if entry.executable else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(entry.content)


def _write_tree(tree: Tree, root: Path) -> None:
    """Write ``tree`` into the staging folder ``root`` (created by ``_staging``)."""
    made: set[Path] = set()
    for rel in tree:
        try:
            _write_new_file(safe_target(root, rel), tree.files[rel], made)
        except OSError as exc:
            raise DestinationError(
                f"cannot write {rel}: {exc.strerror or exc}; nothing was written",
                hint="free some disk space or fix the permissions, then run the command again",
            ) from exc


STAGING_SUFFIX = ".mlops-new"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (one we may not signal counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _staging_owner(candidate: Path) -> int | None:
    """The pid in a staging folder's name ``.<dest>.<pid>.<random>.mlops-new``, else None."""
    parts = candidate.name.removesuffix(STAGING_SUFFIX).rsplit(".", 2)
    if len(parts) != 3 or not parts[0].startswith(".") or not parts[1].isdigit():
        return None
    return int(parts[1])


def remove_stale_staging(parent: Path) -> list[Path]:
    """Remove staging folders in ``parent`` left by killed runs (their owning process is gone).

    The owner's pid is part of the folder's name, so a run killed at any instant, even right
    after creating the folder, leaves something the next run can recognise and remove.
    """
    removed = []
    for candidate in parent.glob(f".*{STAGING_SUFFIX}"):
        pid = _staging_owner(candidate)
        if pid is None or pid == os.getpid() or pid_alive(pid) or not candidate.is_dir():
            continue  # not ours, or its run is still going
        shutil.rmtree(candidate, ignore_errors=True)
        removed.append(candidate)
    return removed


@contextlib.contextmanager
def _staging(dest: Path) -> Iterator[Path]:
    parent = dest.parent
    remove_stale_staging(parent)
    prefix = f".{dest.name}.{os.getpid()}."
    staging = Path(tempfile.mkdtemp(prefix=prefix, suffix=STAGING_SUFFIX, dir=parent))
    # mkdtemp makes the folder private (0700); the project it becomes gets the usual umask mode
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_destination(dest: Path) -> None:
    if dest.is_symlink():
        # never followed: `--force` would pour the project into whatever it points at
        points_to = os.readlink(dest)
        resolved = dest.resolve()
        if not resolved.exists():
            raise DestinationError(
                f"{dest}: is a symlink to {points_to}, which does not exist",
                hint="remove the symlink or choose another path; mlops does not follow a "
                "destination symlink",
            )
        if not resolved.is_dir():
            raise DestinationError(
                f"{dest}: is a symlink to the file {points_to}",
                hint="choose another path; mlops does not follow a destination symlink",
            )
        raise DestinationError(
            f"{dest}: is a symlink to {resolved}; mlops does not follow a destination symlink",
            hint=f"if you mean that folder, pass its resolved path explicitly: {resolved}",
        )
    if dest.exists() and not dest.is_dir():
        raise DestinationError(f"{dest}: exists and is not a directory", hint="choose another path")
    parent = dest.parent if dest.parent != Path("") else Path(".")
    if not parent.exists():
        raise DestinationError(f"{parent}: parent folder does not exist", hint="create it first")
    if not os.access(parent, os.W_OK):
        raise DestinationError(f"{parent}: not writable", hint="check its permissions")


def apply_new(tree: Tree, dest: Path, *, force: bool = False, dry_run: bool = False) -> Report:
    """Create a project at ``dest`` from ``tree``.

    ``dest`` must not exist or be empty. With ``force`` a non-empty folder is accepted: files that
    do not exist are created, identical files are left alone, and a differing file is never
    replaced silently: it is left as is and reported as ``skipped`` (the template's version is
    written next to it as ``<name>.mlops-new`` so nothing is lost on either side).
    """
    dest = Path(dest)
    _check_destination(dest)
    report = Report(dest, dry_run=dry_run)
    owned = recorded_user_owned(tree)
    existing = dest.is_dir() and any(dest.iterdir())
    if existing and not force:
        raise DestinationError(
            f"{dest}: destination is not empty",
            hint="choose a new folder, or pass --force to add files without overwriting any",
        )
    if not existing:
        for rel in tree:
            report.add("created", rel, user_owned=rel in owned)
        if dry_run:
            return report
        with _staging(dest) as staging:
            _write_tree(tree, staging)
            if dest.is_dir():
                dest.rmdir()  # empty: replace it with the staged tree in one rename
            os.rename(staging, dest)
        return report
    # --force into a non-empty folder: stage everything first so a failure writes nothing
    plan: list[tuple[str, File]] = []
    for rel in tree:
        target = safe_target(dest, rel)
        entry = tree.files[rel]
        for ancestor in target.relative_to(dest).parents:
            folder = dest / ancestor
            if folder.exists() and not folder.is_dir():
                raise DestinationError(
                    f"{folder}: is a file where the template needs a folder (for {rel})",
                    hint="rename or move that file, then run the command again",
                )
        if target.is_dir():
            raise DestinationError(f"{target}: is a directory where the template has a file")
        if not target.exists():
            plan.append((rel, entry))
            report.add("created", rel, user_owned=rel in owned)
        elif target.read_bytes() == entry.content:
            report.add("unchanged", rel, user_owned=rel in owned)
        else:
            plan.append((rel + ".mlops-new", entry))
            report.add("skipped", rel, f"exists and differs; template version in {rel}.mlops-new",
                       user_owned=rel in owned)  # fmt: skip
    if dry_run:
        return report
    with _staging(dest) as staging:
        staged = Tree()
        for rel, entry in plan:
            staged.files[rel] = entry
        _write_tree(staged, staging)
        for rel, _ in plan:
            target = safe_target(dest, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
    return report
