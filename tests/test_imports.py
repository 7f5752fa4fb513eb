"""`mlops new` and `mlops lint` import only what they use, checked in a fresh interpreter (the
console script's entry point, as a shell runs it). Nothing here is timed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROBE = """\
import sys
from mlops_template.entry import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("EXIT:" + str(code))
print("MODULES:" + ",".join(sorted(sys.modules)))
"""


def imported(args: list[str], cwd: Path) -> tuple[int, set[str]]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cwd / "cache")}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          cwd=cwd, env=env, stdin=subprocess.DEVNULL, check=False)  # fmt: skip
    out = done.stdout
    assert "MODULES:" in out, done.stderr
    code = int(out.rsplit("EXIT:", 1)[1].split("\n", 1)[0])
    modules = set(out.rsplit("MODULES:", 1)[1].strip().split(","))
    return code, modules


def tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


#: what no run of `new` or `lint` needs: the CLI framework (typer parses with pydantic), the
#: three-way merge and the add-phase/update machinery, the wizard, the TOML and round-trip YAML
#: editors of add-phase, the sandbox for foreign templates
NEVER = {"typer", "click", "mlops_template.cli", "mlops_template.project",
         "mlops_template.wizard", "mlops_template.sandbox", "tomlkit", "ruamel"}  # fmt: skip


def test_new_imports_only_what_it_uses(tmp_path: Path) -> None:
    code, modules = imported(["new", "p", "--no-input", "--name", "Demo", "-q"], tmp_path)
    assert code == 0 and (tmp_path / "p" / "mlops.yaml").is_file()
    names = modules | tops(modules)
    assert not names & NEVER, sorted(names & NEVER)
    # -q prints nothing: no rich; new writes a project, it does not check one
    assert not names & {"rich", "mlops_template.lint", "mlops_template.merge"}
    # what it does use
    assert {"pydantic", "jinja2", "yaml", "mlops_template.render", "mlops_template.apply"} <= names


def test_new_as_json_imports_no_rich(tmp_path: Path) -> None:
    code, modules = imported(["new", "p", "--name", "Demo", "--format", "json"], tmp_path)
    assert code == 0 and "rich" not in tops(modules)


def test_lint_imports_only_what_it_uses(tmp_path: Path) -> None:
    code, _ = imported(["new", "p", "--no-input", "--name", "Demo", "-q"], tmp_path)
    assert code == 0
    for fmt in ("json", "text", "sarif"):
        code, modules = imported(["lint", "p", "--format", fmt], tmp_path)
        assert code == 0
        names = modules | tops(modules)
        assert not names & NEVER, sorted(names & NEVER)
        # lint reads the project: it renders nothing, writes nothing, prints without rich
        assert not names & {"jinja2", "rich", "mlops_template.apply", "mlops_template.output"}
        assert "mlops_template.lint.rules.spec" in names


def test_a_line_the_fast_path_declines_still_works(tmp_path: Path) -> None:
    """`--help` goes to typer (and only then is typer imported)."""
    code, modules = imported(["lint", "--help"], tmp_path)
    assert code == 0 and "typer" in tops(modules)


def test_an_unchanged_spec_is_not_validated_again(tmp_path: Path) -> None:
    """A second run with the same input and the same code takes the validated spec and the phase
    catalogue from the cache (mlops_template.speccache): neither pydantic nor the spec models
    are imported; the text report, not on a terminal, is printed without rich."""
    new = ["new", "p", "--no-input", "--name", "Demo"]
    code, modules = imported(new, tmp_path)
    assert code == 0 and "pydantic" in tops(modules)  # the first run validates
    shutil.rmtree(tmp_path / "p")
    code, modules = imported(new, tmp_path)
    names = modules | tops(modules)
    assert code == 0 and (tmp_path / "p" / "mlops.yaml").is_file()
    # PyYAML neither: the phase manifests and yaml_str's results come from the caches too
    unused = {"pydantic", "pydantic_core", "mlops_template.spec", "rich", "yaml"}
    assert not names & unused, sorted(names & unused)
    for fmt in ("json", "text"):
        imported(["lint", "p", "--format", fmt], tmp_path)
        code, modules = imported(["lint", "p", "--format", fmt], tmp_path)
        names = modules | tops(modules)
        assert code == 0 and not names & {"pydantic", "mlops_template.spec", "jinja2", "rich"}
        assert "mlops_template.lint.rules.spec" in names  # the spec rule ran
    # an edited spec is validated again (and its error is pydantic's, located)
    spec = tmp_path / "p" / "mlops.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("task: classification",
                                                             "task: clasification"))  # fmt: skip
    code, modules = imported(["lint", "p", "--format", "json"], tmp_path)
    assert code == 1 and "pydantic" in tops(modules)
