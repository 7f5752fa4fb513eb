"""Reports not printed on a terminal skip rich only where rich would print the same text."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from mlops_template import output

LINES = [
    "[bold]Bench Project[/bold] -> bench_project",
    "\n[bold]data_engineer[/bold] (@your-org/data-engineers): 40 files",
    "  src/bench_project/data/                            12",
    "[bold red]  conflict[/bold red] README.md  merged with conflicts",
    "[green]   created[/green] a/b  ",
    "[dim]unchanged[/dim] x",
    "\ncreated: 135 created",
    "  cd /tmp/x y",
    # rich changes these: they must go through rich
    "a:smile:b",
    "  cd a:b:c",
    "[link]x[/link] [abc",
    "\\[escaped]",
    "tab\there",
    "carriage\rreturn",
    "control\x1b[31m",
    "Données Réelles",
    "wide 漢字",
    "zero\u200bwidth",
]


def rich_text(line: str) -> str:
    buffer = io.StringIO()
    Console(file=buffer, no_color=True, highlight=False, soft_wrap=True,
            force_terminal=False).print(line)  # fmt: skip
    return buffer.getvalue()


@pytest.mark.parametrize("line", LINES)
def test_plain_lines_are_what_rich_prints(line: str) -> None:
    plain = output.plain_text(line)
    if plain is not None:
        assert plain + "\n" == rich_text(line)


def test_the_lines_rich_would_change_are_left_to_rich() -> None:
    assert output.plain_text(LINES[0]) == "Bench Project -> bench_project"
    for line in LINES[8:]:
        assert output.plain_text(line) is None, line
    assert output.plain_text(object()) is None


def test_the_plain_console_prints_both_kinds_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    console = output.console()  # capsys: not a terminal
    assert isinstance(console, output.PlainConsole)
    for line in LINES:
        console.print(line)
    assert capsys.readouterr().out == "".join(rich_text(line) for line in LINES)
