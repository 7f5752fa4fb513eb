"""`mlops lint` outside its engine: the rule reference is current, the pre-commit hook manifest is
valid, and every example spec renders to a project that lints clean."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mlops_template.apply import apply_new
from mlops_template.lint import all_rules, lint
from mlops_template.render import render
from mlops_template.spec import load_spec

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent.name for p in (REPO / "examples").glob("*/mlops.yaml"))


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_rules_doc", REPO / "scripts/gen_rules_doc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rules_doc_is_up_to_date() -> None:
    script = load_script()
    committed = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == script.render_rules_doc(), "run: python scripts/gen_rules_doc.py"
    assert script.main(["--check"]) == 0


def test_rules_doc_lists_every_rule_with_both_examples() -> None:
    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in all_rules():
        section = text.split(f"### {rule.id} `{rule.name}`", 1)[1].split("\n### ", 1)[0]
        assert "**Failing example.**" in section and "**Passing example.**" in section
        assert rule.fix in section


def test_pre_commit_hook_manifest() -> None:
    clientlib = pytest.importorskip("pre_commit.clientlib")
    hooks = clientlib.load_manifest(str(REPO / ".pre-commit-hooks.yaml"))
    tomlkit = pytest.importorskip("tomlkit")
    scripts = tomlkit.parse((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert {h["id"] for h in hooks} == {"mlops-lint", "mlops-lint-strict"}
    for hook in hooks:
        argv = shlex.split(hook["entry"])
        assert argv[0] in scripts and argv[1] == "lint"
        assert hook["pass_filenames"] is False and hook["language"] == "python"


@pytest.mark.parametrize("provider", ["github", "gitlab", "azure-devops"])
@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_lints_clean(example: str, provider: str, tmp_path: Path) -> None:
    """The real templates against every rule (gitlab, azure-devops: all but the GitHub-workflow
    ones)."""
    dest = tmp_path / example
    spec = load_spec(REPO / "examples" / example / "mlops.yaml", sets=[f"ci.provider={provider}"])
    apply_new(render(spec), dest)
    result = lint(dest)
    problems = [
        f"{f.file}:{f.line or ''} {f.rule} {f.message}"
        for f in result.findings
        if f.severity.value != "info"
    ]
    assert not problems, "\n".join(problems)
    assert not [f for f in result.findings if f.rule == "MLO603"], "fresh project shows drift"
    assert result.exit_code(strict=True) == 0


@pytest.mark.slow
def test_pre_commit_hook_runs_mlops_lint(tmp_path: Path) -> None:
    """`pre-commit try-repo` installs this repository as a hook repo and runs `mlops-lint`."""
    pre_commit = Path(sys.executable).with_name("pre-commit")
    if not pre_commit.exists() or shutil.which("git") is None:
        pytest.skip("pre-commit and git are needed")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "home"),
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip

    def git_repo(path: Path) -> None:
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "snapshot"]):
            subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)

    hook_repo = tmp_path / "hook-repo"  # this repository's files as they are now, committed
    hook_repo.mkdir()
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy2(REPO / name, hook_repo / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("src", "templates"):
        shutil.copytree(REPO / name, hook_repo / name, ignore=ignore)
    git_repo(hook_repo)

    project = tmp_path / "demo"
    spec = load_spec(name="Demo", phases=["data", "training"], sets=["ci.provider=gitlab"])
    apply_new(render(spec), project)
    git_repo(project)

    def hook() -> subprocess.CompletedProcess[str]:
        argv = [str(pre_commit), "try-repo", str(hook_repo), "mlops-lint", "--all-files"]
        return subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True)

    clean = hook()
    assert clean.returncode == 0 and "Passed" in clean.stdout, clean.stdout + clean.stderr
    (project / "src/demo/ml/paths.py").write_text('SILVER = "data/silver/x.parquet"\n')
    dirty = hook()
    assert dirty.returncode == 1 and "Failed" in dirty.stdout
    assert "src/demo/ml/paths.py:1:10: MLO403" in dirty.stdout
