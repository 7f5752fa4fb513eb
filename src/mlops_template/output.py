"""Human output of the commands (rich). Imported lazily by the CLI."""

from __future__ import annotations

import os
import re
import sys
from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from mlops_template.apply import Report
    from mlops_template.spec import Spec
    from mlops_template.tree import Tree


def console(stderr: bool = False) -> Console:
    """A rich console; when the output is not a terminal, a stand-in that prints a plain line
    itself (without importing rich) when rich would print exactly that line."""
    if not sys.stdout.isatty():
        return PlainConsole(stderr)  # type: ignore[return-value]
    return rich_console(stderr)


def rich_console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(
        stderr=stderr,
        no_color="NO_COLOR" in os.environ,
        highlight=False,
        soft_wrap=True,
        force_terminal=None if sys.stdout.isatty() else False,
    )


class PlainConsole:
    """``Console.print`` for output that is not a terminal: no colours, no wrapping (soft wrap),
    markup tags dropped. Lines rich would change in any other way (other markup, escapes,
    ``:emoji:`` codes, tabs, control or non-ASCII characters) and anything but a string go to a
    real rich console, so the output is the same either way."""

    def __init__(self, stderr: bool = False) -> None:
        self.stderr = stderr
        self._rich: Console | None = None

    def print(self, *objects: Any) -> None:
        text = plain_text(objects[0]) if len(objects) == 1 else None
        if text is None:
            if self._rich is None:
                self._rich = rich_console(self.stderr)
            self._rich.print(*objects)
            return
        stream = sys.stderr if self.stderr else sys.stdout
        stream.write(text + "\n")
        stream.flush()


#: what rich might render differently from the text itself: an emoji code, escapes, markup
_NOT_PLAIN = re.compile(r":\S*:|[\[\]\\]|[^\x20-\x7e\n]")


def plain_text(value: Any) -> str | None:
    """``value`` as rich prints it without colour, when that is certain; else None."""
    if type(value) is not str:
        return None
    text = value
    for style in {"bold", *_STYLE.values()}:
        text = text.replace(f"[{style}]", "").replace(f"[/{style}]", "")
    return None if _NOT_PLAIN.search(text) else text


_STYLE = {
    "created": "green",
    "updated": "cyan",
    "merged": "cyan",
    "conflict": "bold red",
    "unchanged": "dim",
    "skipped": "yellow",
    "removed": "magenta",
    "overwritten": "yellow",
    "kept": "green",
}


def owner_of(path: str, spec: Spec) -> str:
    """The role owning ``path`` according to the enabled phases' manifests (or 'shared')."""
    from mlops_template.phases import load_catalogue

    best, best_len = "shared", -1
    for name in spec.phases:
        phase = load_catalogue().get(name)
        if phase is None:
            continue
        for owned in phase.owns:
            prefix = owned.replace("{{ package }}", spec.package).lstrip("/")
            if (path == prefix or path.startswith(prefix.rstrip("*"))) and len(prefix) > best_len:
                best, best_len = phase.owner, len(prefix)
    return best


def print_new_report(report: Report, spec: Spec, tree: Tree) -> None:
    out = console()
    verb = "would create" if report.dry_run else "created"
    groups: dict[str, list[str]] = defaultdict(list)
    for entry in report.entries:
        groups[owner_of(entry.path, spec)].append(entry.path)
    out.print(f"[bold]{spec.project.name}[/bold] -> {report.destination}")
    for role in ("data_engineer", "data_scientist", "ml_engineer", "shared"):
        paths = groups.get(role)
        if not paths:
            continue
        handle = getattr(spec.roles, role, None) if role != "shared" else "all roles"
        out.print(f"\n[bold]{role}[/bold] ({handle}): {len(paths)} files")
        dirs: dict[str, int] = defaultdict(int)
        for path in paths:
            head = path.rsplit("/", 1)[0] + "/" if "/" in path else path
            dirs[head] += 1
        for head, count in sorted(dirs.items()):
            out.print(f"  {head:<48} {count:>3}")
    for entry in report.entries:
        if entry.action != "created":
            style = _STYLE.get(entry.action, "")
            out.print(f"[{style}]{entry.action:>10}[/{style}] {entry.path}  {entry.detail}")
    owned = [e.path for e in report.entries if e.user_owned and e.action == "created"]
    if owned:
        out.print(
            "\n[bold]user-owned[/bold] (working examples, yours to edit: `mlops update` "
            "never merges into them once edited; `mlops lint` checks their interface):"
        )
        for path in owned:
            out.print(f"  {path}")
    summary = ", ".join(f"{n} {a}" for a, n in report.summary().items())
    out.print(f"\n{verb}: {summary}")
    if not report.dry_run:
        out.print("\nNext:")
        out.print(f"  cd {report.destination}")
        out.print("  make pipeline     # bronze -> silver -> gold -> train -> gate -> ONNX")
        out.print("  make help         # every target of the enabled phases")


def print_report(report: Report) -> None:
    out = console()
    for entry in report.entries:
        if entry.action == "unchanged":
            continue
        style = _STYLE.get(entry.action, "")
        detail = f"  ({entry.detail})" if entry.detail else ""
        out.print(f"[{style}]{entry.action:>10}[/{style}] {entry.path}{detail}")
    summary = ", ".join(f"{n} {a}" for a, n in sorted(report.summary().items()))
    prefix = "dry run, nothing written: " if report.dry_run else ""
    out.print(f"{prefix}{summary or 'nothing to do'}")


def print_phases(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(show_edge=False, pad_edge=False)
    for col in ("phase", "owner", "requires", "default", "description"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["name"], row["owner"], ", ".join(row["requires"]) or "-",
            "yes" if row["default"] else "", row["description"],
        )  # fmt: skip
    console().print(table)
