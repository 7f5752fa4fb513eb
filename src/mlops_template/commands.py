"""The bodies of the hot commands (`new`, `lint`), free of the CLI framework.

:mod:`mlops_template.cli` (typer) calls them, and so does :mod:`mlops_template.entry` when the
command line is one it can read without typer (see :func:`fast_main`): typer builds a pydantic
validator for every parameter, which costs more than linting a whole project. Anything the fast
reader does not recognise exactly (``--help``, a typo, an unknown option, a value typer might
read differently) goes to typer, so messages and exit codes for bad input stay typer's.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from mlops_template.spec import Spec

T = TypeVar("T")

NEW_FORMATS = ("text", "json")
LINT_FORMATS = ("text", "json", "sarif", "github")


class Echo(Protocol):
    def __call__(self, message: str = "", *, err: bool = False, nl: bool = True) -> None: ...


#: ANSI escape codes, as click strips them when the output is not a terminal.
_ANSI = re.compile(r"\033\[[;?0-9]*[a-zA-Z]")


def plain_echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """What ``typer.echo`` does for text on POSIX: newline, ANSI codes stripped when the stream
    is not a terminal, flushed."""
    stream = sys.stderr if err else sys.stdout
    text = message + ("\n" if nl else "")
    if not stream.isatty():
        text = _ANSI.sub("", text)
    if text:
        stream.write(text)
    stream.flush()


def guarded(action: Callable[[], T], echo: Echo) -> tuple[bool, T | None, int]:
    """Run ``action``; errors become a message and an exit code: ``(ok, result, code)``."""
    from mlops_template.errors import MlopsError

    try:
        return True, action(), 0
    except MlopsError as exc:
        echo(f"error: {exc.render()}", err=True)
        return False, None, exc.exit_code
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        echo(f"error: {where}{exc.strerror or exc}", err=True)
        return False, None, 2
    except KeyboardInterrupt:
        echo("interrupted: nothing was written", err=True)
        return False, None, 130


def has_name(sets: Sequence[str]) -> bool:
    return any(s.split("=", 1)[0].strip() == "project.name" for s in sets)


def spec_from_options(
    spec_file: Path | None, name: str | None, sets: Sequence[str], phases: list[str] | None
) -> Spec:
    """The spec of a non-interactive `mlops new` (from :mod:`mlops_template.speccache` when the
    same input validated before: then pydantic is not even imported)."""
    from mlops_template.speccache import load_spec

    if spec_file is None and name is None and not has_name(sets):
        from mlops_template.errors import UsageError

        raise UsageError(
            "no project name: pass --spec mlops.yaml, --name 'My Project', "
            "--set project.name=... or -i to be asked",
            hint="e.g. mlops new churn --name 'Churn Prediction'",
        )
    return load_spec(spec_file, name=name, sets=list(sets), phases=phases)


def new_project(
    spec: Spec,
    dest: Path | None,
    *,
    dry_run: bool,
    force: bool,
    quiet: bool,
    output: str,
    echo: Echo,
    confirm: Callable[[str], bool] | None = None,
) -> None:
    """Render ``spec`` and write it to ``dest`` (default: the package name); print the report."""
    from mlops_template.apply import apply_new
    from mlops_template.render import render

    target = dest if dest is not None else Path(spec.package)
    tree = render(spec)
    if confirm is not None and not dry_run and not confirm(f"Write {len(tree)} files to {target}?"):
        echo("nothing written")
        return
    report = apply_new(tree, target, force=force, dry_run=dry_run)
    if output == "json":
        import json

        echo(json.dumps(report.to_json(), indent=2))
    elif not quiet:
        from mlops_template.output import print_new_report

        print_new_report(report, spec, tree)


def lint_project(
    path: Path,
    *,
    output: str,
    select: list[str] | None,
    ignore: list[str] | None,
    strict: bool,
    echo: Echo,
) -> int:
    from mlops_template.lint import lint as run_lint
    from mlops_template.lint.reporters import report

    result = run_lint(path, select=select, ignore=ignore)
    echo(report(result, output, strict=strict), nl=False)
    return result.exit_code(strict=strict)


# ------------------------------------------------------------------------------------------
# the fast reader: exact, common command lines only; everything else is typer's
# ------------------------------------------------------------------------------------------

#: option -> (key, kind): "flag", "value" (once) or "multi" (repeatable)
_Spec = dict[str, tuple[str, str]]
_NEW_OPTIONS: _Spec = {
    "--spec": ("spec_file", "value"),
    "-s": ("spec_file", "value"),
    "--name": ("name", "value"),
    "-n": ("name", "value"),
    "--set": ("sets", "multi"),
    "--phases": ("phases", "value"),
    "--no-input": ("no_input", "flag"),
    "--dry-run": ("dry_run", "flag"),
    "--force": ("force", "flag"),
    "--quiet": ("quiet", "flag"),
    "-q": ("quiet", "flag"),
    "--format": ("output", "value"),
}
_LINT_OPTIONS: _Spec = {
    "--format": ("output", "value"),
    "--select": ("select", "multi"),
    "--ignore": ("ignore", "multi"),
    "--strict": ("strict", "flag"),
}


def read_args(args: Sequence[str], options: _Spec) -> tuple[dict[str, Any], list[str]] | None:
    """Options and positionals of ``args``, or None when the line is not plainly one that click
    reads the same way (then typer reads it, with its own messages)."""
    values: dict[str, Any] = {}
    positionals: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-"):
            if not arg:
                return None
            positionals.append(arg)
            continue
        name, eq, attached = arg.partition("=")
        known = options.get(name)
        if known is None or (eq and not name.startswith("--")):
            return None  # --help, --, -qn, unknown options, typos: typer answers
        key, kind = known
        if kind == "flag":
            if eq or key in values:
                return None
            values[key] = True
            continue
        if eq:
            value = attached
        else:
            if i >= len(args):
                return None
            value = args[i]
            i += 1
        if value.startswith("-") or not value:
            return None  # click would take it as the value; typer decides what it means
        if kind == "multi":
            values.setdefault(key, []).append(value)
        elif key in values:
            return None
        else:
            values[key] = value
    return values, positionals


def fast_main(args: Sequence[str]) -> int | None:
    """Run `mlops new` / `mlops lint` without typer when ``args`` is a plain, valid line of
    either; None means "not handled here" (typer runs it)."""
    if not args or os.environ.get("_MLOPS_COMPLETE"):
        return None
    command, rest = args[0], args[1:]
    if command == "new":
        return _fast_new(rest)
    if command == "lint":
        return _fast_lint(rest)
    return None


def _fast_new(args: Sequence[str]) -> int | None:
    read = read_args(args, _NEW_OPTIONS)
    if read is None:
        return None
    opts, positionals = read
    output = opts.get("output", "text")
    if len(positionals) > 1 or output not in NEW_FORMATS:
        return None
    sets: list[str] = opts.get("sets", [])
    nothing_given = "spec_file" not in opts and "name" not in opts and not has_name(sets)
    if nothing_given and not opts.get("no_input") and sys.stdin.isatty():
        return None  # the wizard asks: typer's path
    raw_phases: str | None = opts.get("phases")
    phases = [p.strip() for p in raw_phases.split(",") if p.strip()] if raw_phases else None
    spec_file = Path(opts["spec_file"]) if "spec_file" in opts else None
    dest = Path(positionals[0]) if positionals else None

    def action() -> None:
        spec = spec_from_options(spec_file, opts.get("name"), sets, phases)
        new_project(spec, dest, dry_run=bool(opts.get("dry_run")), force=bool(opts.get("force")),
                    quiet=bool(opts.get("quiet")), output=output, echo=plain_echo)  # fmt: skip

    _, _, code = guarded(action, plain_echo)
    return code


def _fast_lint(args: Sequence[str]) -> int | None:
    read = read_args(args, _LINT_OPTIONS)
    if read is None:
        return None
    opts, positionals = read
    output = opts.get("output", "text")
    if len(positionals) > 1 or output not in LINT_FORMATS:
        return None
    path = Path(positionals[0]) if positionals else Path(".")
    strict = bool(opts.get("strict"))

    def action() -> int:
        return lint_project(path, output=output, select=opts.get("select"),
                            ignore=opts.get("ignore"), strict=strict, echo=plain_echo)  # fmt: skip

    _, result, code = guarded(action, plain_echo)
    return code if result is None else result
