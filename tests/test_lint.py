"""`mlops lint`: every rule on seeded violations in a generated repo, the engine and the CLI.

The repo is generated with ``--phases data,training`` (package ``demo``). Other phases' templates
are still evolving, so :func:`complete` creates what the enabled manifests require but the
templates do not ship yet (only when absent): each test creates the violation it checks itself.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_template.apply import apply_new
from mlops_template.cli import app
from mlops_template.lint import Finding, LintResult, Rule, all_rules, lint
from mlops_template.lint.model import Append, Example, Replace
from mlops_template.lint.project import evaluate_condition
from mlops_template.lint.rules.layering import imports_of, resolve_relative
from mlops_template.lint.rules.ownership import last_match, parse_codeowners
from mlops_template.phases import load_catalogue
from mlops_template.render import render
from mlops_template.spec import load_spec

RULES = all_rules()
runner = CliRunner()
MINIMAL_WORKFLOW = """\
name: {name}
on: workflow_dispatch
permissions:
  contents: read
jobs:
  run:
    runs-on: ubuntu-latest
    steps:
      - run: make help
"""


def complete(root: Path, package: str, phases: list[str]) -> None:
    """Create the required files and workflows the enabled phases' templates do not ship yet."""
    catalogue = load_catalogue()
    for name in phases:
        phase = catalogue[name]
        for required in phase.required_files:
            rel = required.replace("{{ package }}", package).strip("/")
            path = root / rel
            if path.exists():
                continue
            if "." in path.name:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(
                    '"""Placeholder."""\n' if rel.endswith(".py") else "# placeholder\n"
                )
            else:
                path.mkdir(parents=True)
        for workflow in phase.workflows:
            path = root / str(workflow.value)
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(MINIMAL_WORKFLOW.format(name=path.stem))
    if "data" in phases:
        for layer in ("bronze", "silver", "gold"):
            readme = root / "data" / layer / "README.md"
            if not readme.exists():
                readme.parent.mkdir(parents=True, exist_ok=True)
                readme.write_text(f"# {layer}\n")


@pytest.fixture(scope="session")
def pristine_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("lint") / "demo"
    phases = ["data", "training"]
    spec = load_spec(name="Demo", phases=phases)
    apply_new(render(spec), dest)
    complete(dest, spec.package, phases)
    return dest


@pytest.fixture
def repo(pristine_repo: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "demo"
    shutil.copytree(pristine_repo, dest)
    return dest


def apply_example(root: Path, example: Example) -> None:
    for rel, edit in example.files.items():
        path = root / rel
        if edit is None:
            assert path.exists(), f"example deletes {rel}, which the template does not generate"
            path.unlink()
        elif isinstance(edit, Replace):
            text = path.read_text(encoding="utf-8")
            assert edit.old in text, f"{rel} has no {edit.old!r} to replace"
            path.write_text(text.replace(edit.old, edit.new, 1), encoding="utf-8")
        elif isinstance(edit, Append):
            with path.open("a", encoding="utf-8") as handle:
                handle.write(edit.text)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(edit, encoding="utf-8")


def expected_line(root: Path, example: Example) -> int | None:
    if example.line is None or example.line > 0 or example.file is None:
        return example.line
    return len((root / example.file).read_text(encoding="utf-8").splitlines()) + 1 + example.line


def found(result: LintResult, rule_id: str) -> list[Finding]:
    return [f for f in result.findings if f.rule == rule_id]


# ------------------------------------------------------------------------------ every rule


def located(root: Path, rule_id: str) -> set[tuple[str, int | None, str]]:
    return {(f.file, f.line, f.message) for f in found(lint(root, select=[rule_id]), rule_id)}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.id}-{r.name}")
def test_rule_failing_example_is_found_at_its_file_and_line(repo: Path, rule: Rule) -> None:
    assert rule.bad.file, f"{rule.id}: a failing example must say which file the finding names"
    before = located(repo, rule.id)
    apply_example(repo, rule.bad)
    result = lint(repo, select=[rule.id])
    hits = found(result, rule.id)
    line = expected_line(repo, rule.bad)
    new = [(f.file, f.line if line is not None else None) for f in hits
           if (f.file, f.line, f.message) not in before]  # fmt: skip
    assert (rule.bad.file, line) in new, f"{rule.id} expected at {rule.bad.file}:{line}: {hits}"
    for finding in hits:
        assert finding.severity == rule.severity
        assert finding.message and finding.fix
    assert result.exit_code(strict=True) == (0 if rule.severity.value == "info" else 1)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: f"{r.id}-{r.name}")
def test_rule_passing_example_is_clean(repo: Path, rule: Rule) -> None:
    if not rule.good.files:  # "the generated project as it is" must pass the rule
        assert not located(repo, rule.id)
        return
    before = located(repo, rule.id)
    apply_example(repo, rule.good)
    new = located(repo, rule.id) - before
    assert not new, f"{rule.id} fired on its passing example: {new}"


def test_rule_metadata_is_complete() -> None:
    ids = [r.id for r in RULES]
    assert ids == sorted(set(ids))
    for rule in RULES:
        assert re.fullmatch(r"MLO[1-7]\d\d", rule.id)
        assert re.fullmatch(r"[a-z]+(-[a-z]+)*", rule.name)
        assert rule.summary and rule.why and rule.fix and rule.bad.files
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))


# ------------------------------------------------------------------------------ seeded cases


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_spec_errors_use_the_messages_of_mlops_new(repo: Path) -> None:
    spec = (repo / "mlops.yaml").read_text()
    (repo / "mlops.yaml").write_text(spec.replace("metric: roc_auc", "metric: rmse"))
    result = lint(repo)
    [finding] = found(result, "MLO101")
    line = next(n for n, t in enumerate(spec.splitlines(), 1) if "metric: roc_auc" in t)
    assert (finding.file, finding.line) == ("mlops.yaml", line)
    assert finding.message.startswith("ml.metric: 'rmse' does not fit task 'classification'")
    # rules needing the spec are skipped and reported as skipped, the others still run
    assert "MLO401" in [r.id for r in result.skipped]
    assert "MLO601" not in [r.id for r in result.skipped]


def test_spec_yaml_syntax_error_and_missing_spec(repo: Path) -> None:
    (repo / "mlops.yaml").write_text("project:\n  name: [Demo\n")
    [finding] = found(lint(repo), "MLO101")
    assert finding.file == "mlops.yaml" and finding.line is not None
    assert "YAML syntax error" in finding.message
    (repo / "mlops.yaml").unlink()
    [missing] = found(lint(repo), "MLO101")
    assert missing.file == "mlops.yaml" and "missing" in missing.message


def test_layer_import_resolves_relative_imports(repo: Path) -> None:
    write(repo, "src/demo/ml/deep/helpers.py",
          '"""Helpers."""\n\nfrom ...serving import app\nfrom ... import data\n'
          "from ...data.ingest import read_source\nimport demo.common.config\n")  # fmt: skip
    hits = found(lint(repo, select=["MLO401"]), "MLO401")
    assert [(f.file, f.line) for f in hits] == [
        ("src/demo/ml/deep/helpers.py", 3),
        ("src/demo/ml/deep/helpers.py", 5),
    ]
    assert "demo.serving" in hits[0].message and "demo.data.ingest" in hits[1].message


def test_layer_import_dynamic_and_serving_contract(repo: Path) -> None:
    write(repo, "src/demo/serving/__init__.py", '"""Serving."""\n')
    write(repo, "src/demo/serving/app.py",
          '"""App."""\nimport importlib\n\nfrom ..ml import contract\n\n'
          'train = importlib.import_module("demo.ml.train")\n')  # fmt: skip
    hits = found(lint(repo, select=["MLO401"]), "MLO401")
    assert [(f.file, f.line) for f in hits] == [("src/demo/serving/app.py", 6)]


def test_forbidden_import_reported_once_across_rules(repo: Path) -> None:
    write(repo, "src/demo/data/leak.py", '"""Leak."""\nfrom demo.ml.train import fit\n')
    hits = [f for f in lint(repo, select=["MLO4"]).findings if f.file.endswith("leak.py")]
    assert [(f.rule, f.line) for f in hits] == [("MLO401", 2)]
    only_manifest = lint(repo, select=["MLO402"]).findings
    assert [(f.rule, f.file, f.line) for f in only_manifest] == [
        ("MLO402", "src/demo/data/leak.py", 2)
    ]


def test_ml_raw_layer_references(repo: Path) -> None:
    write(repo, "src/demo/ml/paths.py",
          '"""Reads gold, never bronze or silver."""\n'
          'A = "data/bronze/x.parquet"\n'
          'B = cfg["paths"]["silver"]\n'
          "C = settings.paths.silver\n"
          'D = "silverware"\n'
          'E = f"{root}/silver/{name}"\n')  # fmt: skip
    hits = found(lint(repo, select=["MLO403"]), "MLO403")
    assert [f.line for f in hits] == [2, 3, 4, 6]


def test_disabled_phase_files_warning_and_strict(repo: Path) -> None:
    write(repo, "src/demo/monitoring/drift.py", '"""Drift."""\n')
    result = lint(repo, select=["MLO203"])
    [hit] = found(result, "MLO203")
    assert hit.file == "src/demo/monitoring" and hit.severity.value == "warning"
    assert result.exit_code() == 0 and result.exit_code(strict=True) == 1


def test_codeowners_uncovered_when_a_role_line_is_removed(repo: Path) -> None:
    path = repo / ".github/CODEOWNERS"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(ln for ln in lines if not ln.startswith("/src/demo/ml/")))
    [hit] = found(lint(repo, select=["MLO302"]), "MLO302")
    assert hit.file == ".github/CODEOWNERS" and hit.line is not None
    assert "/src/demo/ml/" in hit.message and "catch-all" in hit.message


def test_codeowners_matching_semantics() -> None:
    rules = parse_codeowners("# c\n*  @all\n/src/  @src\ndocs/*.md @docs\n*.yml @yml # note\n")
    assert last_match(rules, "src/demo/ml", True).owners == ("@src",)  # type: ignore[union-attr]
    assert last_match(rules, "README.md", False).owners == ("@all",)  # type: ignore[union-attr]
    assert last_match(rules, "docs/a.md", False).owners == ("@docs",)  # type: ignore[union-attr]
    assert last_match(rules, "docs/x/a.md", False).owners == ("@all",)  # type: ignore[union-attr]
    assert last_match(rules, ".github/w/ci.yml", False).line == 5  # type: ignore[union-attr]
    assert last_match(parse_codeowners("/data/ @d\n"), "data", False) is None


def test_workflow_rules_on_one_file(repo: Path) -> None:
    write(repo, ".github/workflows/release.yml",
          "name: release\n"
          "on: push\n"
          "permissions: write-all\n"
          "jobs:\n"
          "  build:\n"
          "    runs-on: ubuntu-latest\n"
          "    env:\n"
          "      TOKEN: ${{ secrets.TOKEN }}\n"
          "      AWS_KEY_ID: AKIAABCDEFGHIJKLMNOP\n"
          "      API_KEY: changeme\n"
          "    steps:\n"
          "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2\n"
          "      - uses: actions/setup-python@v5\n"
          "      - uses: ./.github/actions/local\n"
          "      - uses: docker://alpine:3.20\n"
          "      - run: |\n"
          "          export DB_PASSWORD=s3cr3t-value-123\n"
          "          echo ok\n"
          "  deploy:\n"
          "    uses: org/repo/.github/workflows/deploy.yml@main\n")  # fmt: skip
    result = lint(repo, select=["MLO5"])
    got = [(f.rule, f.line) for f in result.findings if f.file.endswith("release.yml")]
    assert got == [
        ("MLO502", 3),
        ("MLO503", 9),
        ("MLO504", 13),
        ("MLO504", 15),
        ("MLO503", 16),
        ("MLO504", 20),
    ]


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("DB_PASSWORD", "hunter2-prod-2026", True),
        ("client_secret", "Zx81kq0PavB2", True),
        ("token", "${{ secrets.TOKEN }}", False),
        ("persist-credentials", "false", False),
        ("secret-name", "db-password", False),
        ("API_KEY", "<your key here>", False),
        ("PASSWORD_FILE", "/run/secrets/db", False),
        ("DATABASE_URL", "postgres://app:S3cretPw1@db:5432/app", True),
        ("DATABASE_URL", "postgres://app:$DB_PASSWORD@db:5432/app", False),
        ("run", "export MLOPS_PII_SALT=${{ secrets.SALT }}\nexport DB_TOKEN=abc123def456\n", True),
        ("run", "export TOKEN_URL=https://login.example.com/token\nmake data\n", False),
        ("password", "ghp_" + "a1B2" * 9, True),
    ],
)
def test_secret_heuristics(key: str, value: str, secret: bool) -> None:
    from mlops_template.lint.rules.workflows import _looks_secret

    assert bool(_looks_secret(key, value)) is secret


def test_workflow_permissions_per_job_are_enough(repo: Path) -> None:
    write(repo, ".github/workflows/jobs.yml",
          "on: push\njobs:\n  a:\n    permissions: {contents: read}\n    runs-on: x\n"
          "    steps: [{run: 'true'}]\n  b:\n    runs-on: x\n    steps: [{run: 'true'}]\n")  # fmt: skip
    [hit] = found(lint(repo, select=["MLO502"]), "MLO502")
    assert hit.line == 2 and "b" in hit.message
    write(repo, ".github/workflows/jobs.yml",
          "on: push\njobs:\n  a:\n    permissions: {contents: read}\n    runs-on: x\n"
          "    steps: [{run: 'true'}]\n")  # fmt: skip
    assert not found(lint(repo, select=["MLO502"]), "MLO502")


def test_drift_modified_deleted_and_corrupt_state(repo: Path) -> None:
    (repo / "docs/runbook.md").unlink()
    result = lint(repo, select=["MLO6"])
    assert [(f.rule, f.file) for f in result.findings] == [("MLO603", "docs/runbook.md")]
    assert result.exit_code() == 0  # info never fails
    (repo / ".mlops/pristine.json").write_text("{not json")
    [bad] = found(lint(repo, select=["MLO6"]), "MLO601")
    assert bad.file == ".mlops/pristine.json" and bad.severity.value == "error"


def test_template_version_line_and_newer_template(repo: Path) -> None:
    state = repo / ".mlops/state.json"
    text = state.read_text()
    state.write_text(re.sub(r'"template_version": "[^"]+"', '"template_version": "9999.1.0"', text))
    [hit] = found(lint(repo, select=["MLO602"]), "MLO602")
    assert hit.line == next(
        n for n, t in enumerate(text.splitlines(), 1) if "template_version" in t
    )
    assert "newer" in hit.message


def test_noqa_suppresses_only_the_named_rule(repo: Path) -> None:
    write(repo, "src/demo/data/leak.py",
          '"""Leak."""\nfrom demo.ml import train  # noqa: MLO401\n'
          "from demo.serving import app  # noqa: E402\n"
          "from demo.monitoring import drift  # noqa: E402, MLO401\n")  # fmt: skip
    result = lint(repo, select=["MLO401"])
    assert [f.line for f in result.findings] == [3]
    assert result.suppressed == 2


# ------------------------------------------------------------------------------ units


@pytest.mark.parametrize(
    ("module", "is_pkg", "level", "target", "expected"),
    [
        ("p.ml.train", False, 1, "gate", "p.ml.gate"),
        ("p.ml.train", False, 2, "serving", "p.serving"),
        ("p.ml", True, 1, "train", "p.ml.train"),
        ("p.ml", True, 2, None, "p"),
        ("p.ml.train", False, 3, "x", None),
    ],
)
def test_resolve_relative(
    module: str, is_pkg: bool, level: int, target: str | None, expected: str | None
) -> None:
    assert resolve_relative(module, is_pkg, level, target) == expected


def test_imports_of_from_import_names() -> None:
    import ast

    tree = ast.parse("from .. import serving, data as d\nfrom x import *\n")
    got = [i.modules for i in imports_of(tree, "p.ml.train", False)]
    assert got == [("p", "p.serving", "p.data"), ("x",)]


def test_conditions_without_jinja() -> None:
    ctx = {"ci": {"provider": "github"}, "phases": ["data"], "data": {"engine": "spark"}}
    assert evaluate_condition("ci.provider == 'github'", ctx)
    assert not evaluate_condition("'serving' in phases and ci.provider == 'github'", ctx)
    assert evaluate_condition("data.engine != 'polars' or not phases", ctx)
    assert evaluate_condition("data.engine | length > 3", ctx)  # falls back to Jinja


# ------------------------------------------------------------------------------ CLI


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["lint", *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_exit_codes(repo: Path, tmp_path: Path) -> None:
    code, out, _ = cli(str(repo), "--select", "MLO1,MLO2,MLO4,MLO301")
    assert code == 0 and "All checks passed" in out
    write(repo, "src/demo/ml/x.py", 'P = "silver"\n')
    code, out, _ = cli(str(repo), "--select", "MLO403")
    assert code == 1 and "src/demo/ml/x.py:1:5: MLO403 [error]" in out and "fix:" in out
    code, _, err = cli(str(tmp_path / "nope"))
    assert code == 2 and "no such directory" in err
    code, _, err = cli(str(tmp_path))
    assert code == 2 and "not a project generated by mlops-template" in err
    code, _, err = cli(str(repo), "--select", "MLO999")
    assert code == 2 and "MLO999" in err
    code, _, err = cli(str(repo), "--ignore", "nonsense")
    assert code == 2
    code, _, _ = cli(str(repo), "--select", "MLO403", "--ignore", "ml-reads-raw-layer")
    assert code == 0


def test_cli_json(repo: Path) -> None:
    write(repo, "src/demo/ml/x.py", 'P = "silver"\n')
    code, out, _ = cli(str(repo), "--format", "json", "--select", "MLO4")
    data = json.loads(out)
    assert code == 1 and data["exit_code"] == 1 and data["counts"]["error"] == 1
    [finding] = data["findings"]
    assert finding == {
        "rule": "MLO403", "name": "ml-reads-raw-layer", "severity": "error",
        "file": "src/demo/ml/x.py", "line": 1, "column": 5,
        "message": finding["message"], "fix": finding["fix"],
    }  # fmt: skip


GITHUB_COMMAND = re.compile(
    r"^::(error|warning|notice) file=[^,:\n]+(,line=\d+(,col=\d+)?)?,title=[^,:\n]+::[^\n]*$"
)


def test_cli_github_annotations(repo: Path) -> None:
    write(repo, "src/demo/ml/x.py", 'P = "silver"\n')
    (repo / "docs/runbook.md").write_text("# changed, with a comma: and colon\n")
    code, out, _ = cli(str(repo), "--format", "github", "--select", "MLO403,MLO603")
    lines = out.splitlines()
    commands = [ln for ln in lines if ln.startswith("::")]
    assert code == 1 and len(commands) == 2
    for line in commands:
        assert GITHUB_COMMAND.match(line), line
    assert commands[0].startswith(
        "::notice file=docs/runbook.md,line=1,title=MLO603 file-modified::"
    )
    assert commands[1].startswith("::error file=src/demo/ml/x.py,line=1,col=5,title=MLO403")
    assert "%0Afix: " in commands[1]
    assert lines[-1] == "mlops lint: 1 errors, 0 warnings, 1 info"


def sarif_validator() -> object:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((Path(__file__).parent / "data" / "sarif-2.1.0-subset.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_cli_sarif_validates(repo: Path) -> None:
    write(repo, "src/demo/ml/x.py", 'P = "silver"\n')
    (repo / ".github/CODEOWNERS").unlink()
    code, out, _ = cli(str(repo), "--format", "sarif")
    log = json.loads(out)
    validator = sarif_validator()
    errors = list(validator.iter_errors(log))  # type: ignore[attr-defined]
    assert not errors, [e.message for e in errors]
    run = log["runs"][0]
    assert code == 1 and run["invocations"][0]["exitCode"] == 1
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
    raw = next(r for r in run["results"] if r["ruleId"] == "MLO403")
    loc = raw["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "src/demo/ml/x.py"
    assert loc["region"] == {"startLine": 1, "startColumn": 5}


def test_sarif_schema_rejects_what_it_should() -> None:
    validator = sarif_validator()
    bad_logs: Iterator[dict[str, object]] = iter([
        {"version": "2.0.0", "runs": []},
        {"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]},
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}},
                                       "results": [{"level": "fatal", "message": {"text": "m"}}]}]},
        {"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}, "results": [
            {"message": {"text": "m"}, "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": "a"}, "region": {"startLine": 0}}}]}]}]},
    ])  # fmt: skip
    for log in bad_logs:
        assert not validator.is_valid(log), log  # type: ignore[attr-defined]


def test_manifest_paths_with_other_jinja_are_rendered(repo: Path) -> None:
    from mlops_template.lint.project import Project

    project = Project(repo)
    assert project.expand("/src/{{ package }}/ml/") == "/src/demo/ml/"
    assert project.expand("docs/{{ project.name | lower }}.md") == "docs/demo.md"


def test_cli_strict_and_skipped_rules(repo: Path) -> None:
    write(repo, "src/demo/serving/app.py", '"""Serving code in a project without serving."""\n')
    code, out, _ = cli(str(repo), "--select", "MLO203")
    assert code == 0 and "MLO203 [warning]" in out
    code, out, _ = cli(str(repo), "--select", "MLO203", "--strict")
    assert code == 1 and "errors and warnings fail the check" in out
    (repo / "mlops.yaml").write_text("project: {name: Demo}\nml: {metric: nonsense}\n")
    code, out, _ = cli(str(repo), "--select", "MLO1,MLO2")
    assert code == 1 and "mlops.yaml:2:" in out
    assert "skipped 3 rules that need a valid mlops.yaml: MLO201, MLO202, MLO203" in out


def test_lint_writes_nothing_and_does_not_import_jinja(repo: Path) -> None:
    import hashlib
    import subprocess
    import sys

    def snapshot() -> dict[str, str]:
        return {
            p.relative_to(repo).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(repo.rglob("*"))
            if p.is_file()
        }

    before = snapshot()
    code = (
        "import sys\nfrom pathlib import Path\nfrom mlops_template.lint import lint\n"
        f"result = lint(Path({str(repo)!r}))\n"
        "heavy = sorted(m for m in ('jinja2', 'rich', 'ruamel.yaml', 'tomlkit') if m in sys.modules)\n"
        "print(len(result.rules), heavy)\n"
    )
    env = {"PYTHONDONTWRITEBYTECODE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(" ", 1)[1].strip() == "[]", proc.stdout
    assert snapshot() == before


def test_only_files_that_mention_a_forbidden_module_are_parsed(repo: Path) -> None:
    from mlops_template.lint.project import Project
    from mlops_template.lint.rules.layering import facts, forbidden_for

    write(repo, "src/demo/data/quiet.py", "def broken(:\n")  # mentions nothing forbidden
    write(repo, "src/demo/data/loud.py", "# feeds ml through gold\ndef broken(:\n")
    write(repo, "src/demo/common/util.py", "from demo.ml import train\ndef broken(:\n")
    project = Project(repo)
    assert forbidden_for(project, "src/demo/data/quiet.py") == {
        "demo.ml", "demo.serving", "demo.monitoring"
    }  # fmt: skip
    assert forbidden_for(project, "src/demo/common/util.py") == frozenset()
    assert facts(project, "src/demo/data/quiet.py").error is None
    assert facts(project, "src/demo/data/loud.py").error is not None
    assert facts(project, "src/demo/common/util.py").error is None  # no contract applies
    hits = found(lint(repo, select=["MLO404"]), "MLO404")
    assert [(f.file, f.line) for f in hits] == [("src/demo/data/loud.py", 2)]


def test_phase_added_to_the_spec_but_not_rendered(repo: Path) -> None:
    spec = repo / "mlops.yaml"
    text = spec.read_text()
    assert "phases: [data, training]" in text
    spec.write_text(text.replace("phases: [data, training]", "phases: [data, training, serving]"))
    result = lint(repo, select=["MLO201", "MLO501", "MLO603"])
    missing = [f for f in result.findings if f.rule in ("MLO201", "MLO501")]
    assert missing and all("run `mlops update`" in f.fix for f in missing)
    assert any("serving" in f.file for f in missing)
    [changed] = [f for f in result.findings if f.file == "mlops.yaml"]
    assert changed.rule == "MLO603" and "spec changed" in changed.message


def test_conflict_markers_in_every_output_format(repo: Path) -> None:
    """Issue 19: a file committed with leftover merge markers is an error (MLO604) at the line
    where the region starts, in every format; a Markdown heading underline is not a marker."""
    makefile = repo / "Makefile"
    lines = makefile.read_text().splitlines(keepends=True)
    lines[2:2] = ["<<<<<<< HEAD\n", "a: b\n", "=======\n", "a: c\n", ">>>>>>> template\n"]
    makefile.write_text("".join(lines))
    (repo / "docs/runbook.md").write_text("Runbook\n=======\n\ntext\n")
    code, out, _ = cli(str(repo), "--select", "MLO604")
    assert code == 1 and "Makefile:3" in out and "MLO604" in out and "runbook" not in out, out
    code, out, _ = cli(str(repo), "--format", "json", "--select", "MLO604")
    [finding] = json.loads(out)["findings"]
    assert (finding["rule"], finding["file"], finding["line"]) == ("MLO604", "Makefile", 3)
    assert finding["severity"] == "error"
    code, out, _ = cli(str(repo), "--format", "github", "--select", "MLO604")
    assert "::error file=Makefile,line=3,title=MLO604 conflict-markers::" in out
    code, out, _ = cli(str(repo), "--format", "sarif", "--select", "MLO604")
    [result] = json.loads(out)["runs"][0]["results"]
    assert result["ruleId"] == "MLO604" and result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3


def test_a_crlf_checkout_is_not_reported_as_modified(repo: Path) -> None:
    """Issue 19: in a Windows checkout (core.autocrlf=true) only real edits are drift."""
    for rel in ("Makefile", "README.md", ".editorconfig"):
        path = repo / rel
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    readme = repo / "README.md"
    readme.write_bytes(readme.read_bytes() + b"our own line\r\n")
    files = {f.file for f in found(lint(repo, select=["MLO603"]), "MLO603")}
    assert "README.md" in files
    assert "Makefile" not in files and ".editorconfig" not in files


def test_conflict_markers_and_side_files_at_a_renamed_path(repo: Path) -> None:
    """Review finding 2: since `update` follows a `git mv`, it writes conflict markers and
    `.mlops-new`/`.rej` at the user's new path; MLO604 and MLO605 report them there."""
    import os
    import subprocess

    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "render"],
                 ["mv", ".editorconfig", ".editorconfig-team"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)
    moved = repo / ".editorconfig-team"
    (repo / ".editorconfig-team.mlops-new").write_text("root = true\n")
    (repo / ".editorconfig-team.rej").write_text("@@ -1 +1 @@\n-a\n+b\n")
    start = len(moved.read_text().splitlines()) + 1
    with moved.open("a") as handle:
        handle.write("<<<<<<< yours\na\n=======\nb\n>>>>>>> template\n")
    assert {(f, line) for f, line, _ in located(repo, "MLO604")} == {(".editorconfig-team", start)}
    leftovers = {(f, m) for f, _, m in located(repo, "MLO605")}
    assert {f for f, _ in leftovers} == {".editorconfig-team.mlops-new", ".editorconfig-team.rej"}
    assert all(".editorconfig-team (moved from .editorconfig)" in m for _, m in leftovers), (
        leftovers
    )
