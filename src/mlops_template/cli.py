"""The `mlops` command line: parse, call the core, map errors to exit codes. Nothing else.

Exit codes: 0 success, 1 findings or conflicts, 2 usage or input error, 130 interrupted.
Heavy imports (pydantic, jinja2, rich) happen inside the commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mlops_template import __version__

app = typer.Typer(
    name="mlops",
    help="Scaffold, extend and check production-grade MLOps repositories.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


class ConflictFormat(str, Enum):
    inline = "inline"
    rej = "rej"


_CONFLICT_HELP = (
    "How to write conflicts: inline markers in the file, or rej (your side kept in the file, "
    "the template's side as a patch in <file>.rej)."
)


def _run(action: Callable[[], T]) -> T:
    """The one place where errors become messages and exit codes."""
    from mlops_template.commands import guarded

    ok, result, code = guarded(action, typer.echo)
    if not ok:
        raise typer.Exit(code)
    return result  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlops {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Scaffold, extend and check production-grade MLOps repositories."""


def _complete_set(incomplete: str) -> list[str]:
    """Shell completion for --set: every dotted spec key, then its Literal choices."""
    from mlops_template.spec import dotted_keys

    key, sep, _ = incomplete.partition("=")
    keys = dotted_keys()
    if sep and key in keys:
        return [f"{key}={choice}" for choice in keys[key]]
    return [f"{k}=" for k in keys if k.startswith(incomplete)]


def _complete_phase(incomplete: str) -> list[str]:
    from mlops_template.phases import load_catalogue

    return [name for name in load_catalogue() if name.startswith(incomplete)]


@app.command()
def new(
    dest: Annotated[
        Path | None, typer.Argument(help="Folder to create (default: the package name).")
    ] = None,
    spec_file: Annotated[
        Path | None, typer.Option("--spec", "-s", help="Spec file (mlops.yaml).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Project name (project.name).")
    ] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override a spec key: dotted.key=value (repeatable).",
            autocompletion=_complete_set,
        ),
    ] = None,
    phases: Annotated[
        str | None,
        typer.Option(
            "--phases",
            help="Comma-separated phases, e.g. data,training.",
            autocompletion=_complete_phase,
        ),
    ] = None,
    no_input: Annotated[
        bool, typer.Option("--no-input", help="Never prompt (default when stdin is not a TTY).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be written; write nothing.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Write into a non-empty folder without overwriting any file."),
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only errors.")] = False,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="text or json.")
    ] = OutputFormat.text,
    interactive: Annotated[
        bool,
        typer.Option("--interactive", "-i", help="Ask for the spec's values (default on a TTY)."),
    ] = False,
) -> None:
    """Render a new project from a spec (mlops.yaml) into DEST."""

    def action() -> None:
        from mlops_template.commands import new_project, spec_from_options

        phase_list = [p.strip() for p in phases.split(",") if p.strip()] if phases else None
        nothing_given = spec_file is None and name is None and not _has_name(sets or [])
        ask_user = interactive or (nothing_given and not no_input and sys.stdin.isatty())
        if ask_user and spec_file is None:
            spec = _wizard(name, sets or [], phase_list)
        else:
            spec = spec_from_options(spec_file, name, sets or [], phase_list)
        new_project(spec, dest, dry_run=dry_run, force=force, quiet=quiet, output=output.value,
                    echo=typer.echo, confirm=_confirm if ask_user else None)  # fmt: skip

    _run(action)


def _ask(prompt: str) -> str:
    try:
        return input(prompt)
    except EOFError:
        from mlops_template.errors import UsageError

        raise UsageError(
            "input ended before the wizard finished; nothing was written",
            hint="pass --no-input with --spec or --name to run without questions",
        ) from None


def _wizard(name: str | None, sets: list[str], phases: list[str] | None) -> Any:
    from mlops_template.spec import parse_set
    from mlops_template.wizard import run_wizard

    preset: dict[str, Any] = dict(parse_set(item) for item in sets)
    if name is not None:
        preset["project.name"] = name
    if phases is not None:
        preset["phases"] = phases
    return run_wizard(_ask, typer.echo, preset)


def _confirm(prompt: str) -> bool:
    from mlops_template.wizard import confirm

    return confirm(_ask, prompt)


def _has_name(sets: list[str]) -> bool:
    from mlops_template.commands import has_name

    return has_name(sets)


@app.command()
def schema() -> None:
    """Print the JSON Schema of mlops.yaml (point your editor's YAML plugin at it)."""

    def action() -> None:
        import json

        from mlops_template.spec import json_schema

        typer.echo(json.dumps(json_schema(), indent=2))

    _run(action)


@app.command("phases")
def list_phases(
    output: Annotated[
        OutputFormat, typer.Option("--format", help="text or json.")
    ] = OutputFormat.text,
) -> None:
    """List the phases a project can enable (name, owner, requires, description)."""

    def action() -> None:
        from mlops_template.phases import load_catalogue

        catalogue = load_catalogue()
        rows = [
            {"name": p.name, "owner": p.owner, "requires": list(p.requires),
             "default": p.default, "description": p.description}
            for p in catalogue.values()
        ]  # fmt: skip
        if output is OutputFormat.json:
            import json

            typer.echo(json.dumps(rows, indent=2))
            return
        from mlops_template.output import print_phases

        print_phases(rows)

    _run(action)


# --- add-phase / update / diff (three-way merge into an existing project) ------------------

_PROJECT_HELP = (
    "The generated project (default: the current folder or the nearest parent with .mlops/)."
)


_TRUST_HELP = "Run a cookiecutter template's hooks and Jinja extensions (they run code)."


def _finish(outcome: Any, output: OutputFormat, *, show_diff: bool, quiet: bool = False) -> None:
    """Print an add-phase/update outcome; conflicts become exit 1 through ``_run``."""
    from mlops_template.errors import ConflictError

    report = outcome.report
    if output is OutputFormat.json:
        import json

        payload = {**report.to_json(), "notes": outcome.notes, "noop": outcome.noop}
        if show_diff:
            payload["diff"] = outcome.diff
        typer.echo(json.dumps(payload, indent=2))
    else:
        for note in outcome.notes:
            typer.echo(f"note: {note}", err=True)
        if show_diff and outcome.diff:
            typer.echo(outcome.diff, nl=False)
        if not quiet and not outcome.noop:
            from mlops_template.output import print_report

            print_report(report)
    conflicts = report.conflicts
    if conflicts:
        from mlops_template.markers import REJ_SUFFIX, SIDE_SUFFIX

        one = len(conflicts) == 1
        verb = (
            "would conflict" if report.dry_run else ("has conflicts" if one else "have conflicts")
        )
        listed = ", ".join(e.path for e in conflicts)
        # the hint names only what was written: marked files and side files that exist
        marked = [e.path for e in conflicts if "marked in the file" in e.detail]
        side = [e.path for e in report.entries
                if e.action == "created" and e.path.endswith(SIDE_SUFFIX)]  # fmt: skip
        rejects = [e.path for e in report.entries
                   if e.action == "created" and e.path.endswith(REJ_SUFFIX)]  # fmt: skip
        steps = []
        if marked:
            steps.append(
                f"resolve the <<<<<<< yours / >>>>>>> template markers in {', '.join(marked)}"
            )
        if side:
            steps.append(f"merge the template's version from {', '.join(side)} into your file "
                         "and delete it")  # fmt: skip
        if rejects:
            steps.append(f"apply the template's changes from {', '.join(rejects)} by hand (or "
                         "`git apply --unidiff-zero <file>.rej`) and delete them")  # fmt: skip
        handled = {*side, *rejects}
        others = [e for e in conflicts if e.path not in marked
                  and not {e.path + SIDE_SUFFIX, e.path + REJ_SUFFIX} & handled]  # fmt: skip
        steps.extend(f"{e.path}: {e.detail}" for e in others)
        raise ConflictError(
            f"{len(conflicts)} file{'' if one else 's'} {verb}: {listed}",
            hint=None if report.dry_run or not steps else "; ".join(steps) + ", then commit",
        )


@app.command("add-phase")
def add_phase(
    phase: Annotated[
        str,
        typer.Argument(
            help="A phase name (see `mlops phases`), or the path of a phase folder or of a "
            "cookiecutter template.",
            autocompletion=_complete_phase,
        ),
    ],
    project: Annotated[Path | None, typer.Option("--project", "-p", help=_PROJECT_HELP)] = None,
    sets: Annotated[
        list[str] | None,
        typer.Option("--set", help="Also set a spec key: dotted.key=value (repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the diff of what would change; write nothing.")
    ] = False,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Run even with uncommitted changes in git.")
    ] = False,
    with_requirements: Annotated[
        bool,
        typer.Option(
            "--with-requirements",
            help="Also add the phases PHASE requires (otherwise a missing requirement is an error).",
        ),
    ] = False,
    trust: Annotated[bool, typer.Option("--trust", help=_TRUST_HELP)] = False,
    conflict: Annotated[
        ConflictFormat, typer.Option("--conflict", help=_CONFLICT_HELP)
    ] = ConflictFormat.inline,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="text or json.")
    ] = OutputFormat.text,
) -> None:
    """Enable PHASE in mlops.yaml and merge its files into the project (three-way, no edit lost)."""  # fmt: skip

    def action() -> None:
        from mlops_template.project import add_phase as run

        outcome = run(phase, project=project, sets=sets or [], dry_run=dry_run,
                      allow_dirty=allow_dirty, with_requirements=with_requirements,
                      trust=trust, conflict=conflict.value)  # fmt: skip
        _finish(outcome, output, show_diff=dry_run)

    _run(action)


@app.command()
def update(
    project: Annotated[Path | None, typer.Option("--project", "-p", help=_PROJECT_HELP)] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the diff of what would change; write nothing.")
    ] = False,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Run even with uncommitted changes in git.")
    ] = False,
    trust: Annotated[bool, typer.Option("--trust", help=_TRUST_HELP)] = False,
    conflict: Annotated[
        ConflictFormat, typer.Option("--conflict", help=_CONFLICT_HELP)
    ] = ConflictFormat.inline,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="text or json.")
    ] = OutputFormat.text,
) -> None:
    """Re-render mlops.yaml with the installed template and merge (three-way, no edit lost)."""  # fmt: skip

    def action() -> None:
        from mlops_template.project import update as run

        outcome = run(project=project, dry_run=dry_run, allow_dirty=allow_dirty, trust=trust,
                      conflict=conflict.value)  # fmt: skip
        _finish(outcome, output, show_diff=dry_run)

    _run(action)


@app.command()
def diff(
    project: Annotated[Path | None, typer.Option("--project", "-p", help=_PROJECT_HELP)] = None,
) -> None:
    """Show, as a unified diff, what `mlops update` would change. Writes nothing.

    Exit 0, or 1 when the update would leave conflicts.
    """

    def action() -> None:
        from mlops_template.project import update as run

        outcome = run(project=project, dry_run=True)
        _finish(outcome, OutputFormat.text, show_diff=True, quiet=True)
        if not outcome.diff:
            typer.echo("no changes: the project matches the installed template", err=True)

    _run(action)


class LintFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


@app.command()
def lint(
    path: Annotated[
        Path, typer.Argument(help="The generated project (default: the current folder).")
    ] = Path("."),
    output: Annotated[
        LintFormat,
        typer.Option("--format", help="text, json, sarif (2.1.0) or github (annotations)."),
    ] = LintFormat.text,
    select: Annotated[
        list[str] | None,
        typer.Option(help="Only these rules: ids, prefixes (MLO4) or names; comma-separated."),
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option(help="Skip these rules (same forms as --select).")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail the check too.")] = False,
) -> None:
    """Check a generated project: spec, layout, ownership, layering, workflows, drift.

    Exit 0 clean, 1 findings (errors; warnings with --strict; info never), 2 usage error.
    Rules are documented in docs/rules.md.
    """

    def action() -> int:
        from mlops_template.commands import lint_project

        return lint_project(path, output=output.value, select=select, ignore=ignore,
                            strict=strict, echo=typer.echo)  # fmt: skip

    code = _run(action)
    if code:
        raise typer.Exit(code)


def main(argv: list[str] | None = None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:  # fast path: no typer/click parsing needed
        print(f"mlops {__version__}")
        return 0
    return app(args=args, prog_name="mlops")


if __name__ == "__main__":  # pragma: no cover
    main()
