"""Generated IaC and CI/CD pass the ecosystem's own validators, for every cloud x CI provider.

For each combination a project is rendered and written with the library API, then checked with
the tools its users will run: terraform fmt, hcl2 (bc-python-hcl2, the parser checkov ships with), checkov (infra); actionlint, zizmor,
check-jsonschema and yamllint (workflows); check-jsonschema for GitLab CI and Azure Pipelines.
The validators come with the repo's dev extras (`make test` installs them); terraform is a
system binary, and only the fmt check is skipped when it is missing.

Bad specs for the infra/CI/roles keys are refused with a message naming the key, and
`mlops new` writes nothing for them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from checks import tool

from mlops_template.apply import apply_new
from mlops_template.errors import SpecError
from mlops_template.render import render
from mlops_template.spec import load_spec

pytestmark = pytest.mark.slow

CLOUDS = ("azure", "aws", "gcp")
PROVIDERS = ("github", "gitlab", "azure-devops")
PHASE_WORKFLOWS = {
    "data": "data-pipeline.yml",
    "training": "ml-pipeline.yml",
    "serving": "deploy.yml",
    "monitoring": "monitor.yml",
    "infra": "infra.yml",
}
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+(\.\d+)*\s*$")
CHECKOV_SKIP = re.compile(r"#checkov:skip=(CKV2?_[A-Z]+_\d+)(?::(.*))?")


def run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_ok(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, (
        f"{what} failed (exit {result.returncode}):\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    )


@cache
def _generated(
    cloud: str, provider: str, root: Path, engine: str = "polars", mode: str = "rest"
) -> Path:
    spec = load_spec(
        name="Churn Demo",
        sets=[f"infra.cloud={cloud}", f"ci.provider={provider}", f"data.engine={engine}",
              f"serving.mode={mode}"],
    )  # fmt: skip
    dest = root / f"{cloud}-{provider}-{engine}-{mode}"
    apply_new(render(spec), dest)
    # actionlint only runs inside a git repository
    assert_ok(run(["git", "init", "-q", "."], dest), "git init")
    return dest


Generate = Callable[..., Path]
#: the data engines whose Terraform differs: spark adds the Spark job host (modules/<cloud>/spark.tf)
ENGINES = ("polars", "spark")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generate:
    """Project for (cloud, CI provider[, data engine, serving mode]), generated once per module."""
    root = tmp_path_factory.mktemp("validators")
    return lambda cloud, provider, engine="polars", mode="rest": _generated(
        cloud, provider, root, engine, mode
    )


# ------------------------------------------------------------------------------------------
# infrastructure as code (same for every CI provider: checked once per cloud)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_terraform_layout_and_hcl(generated: Generate, cloud: str, engine: str) -> None:
    from hcl2.api import load as load_hcl

    project = generated(cloud, "github", engine)
    tf = project / "infra" / "terraform"
    modules = sorted(p.name for p in (tf / "modules").iterdir())
    assert modules == [cloud], f"only the chosen cloud's module is rendered, got {modules}"
    spark_tf = tf / "modules" / cloud / "spark.tf"
    assert spark_tf.is_file() == (engine == "spark"), "the Spark job host comes with spark only"
    assert sorted(p.name for p in (tf / "envs").iterdir()) == ["dev", "prod", "staging"]
    backend = {"azure": "azurerm", "aws": "s3", "gcp": "gcs"}[cloud]
    files = sorted(tf.rglob("*.tf")) + sorted(tf.rglob("*.tfvars"))
    for path in files:
        with path.open() as handle:
            parsed = load_hcl(handle)  # raises on a syntax error
        rel = path.relative_to(project)
        for kind in ("variable", "output"):
            for block in parsed.get(kind, []):
                for name, body in block.items():
                    assert body.get("description"), f"{rel}: {kind} {name!r} has no description"
        if path.name == "versions.tf":
            (terraform,) = parsed["terraform"]
            for providers in terraform["required_providers"]:
                for name, req in providers.items():
                    version = str(_unwrap(_unwrap(req)["version"]))
                    assert re.match(r"^~> \d+\.\d+$", version), f"{rel}: {name} not pinned"
            if "envs" in path.parts:
                assert backend in terraform["backend"][0], f"{rel}: no {backend} backend"


def _unwrap(value: Any) -> Any:
    """The hcl2 parser wraps attribute values in one-element lists (depending on its version)."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_terraform_fmt(generated: Generate, cloud: str, engine: str) -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH: `terraform fmt -check` cannot run here")
    project = generated(cloud, "github", engine)
    result = run([terraform, "fmt", "-check", "-recursive", "-diff", "infra"], project)
    assert_ok(result, "terraform fmt -check -recursive")


#: (engine, serving mode) pairs checkov scans: batch swaps the model API for a scheduled job
CHECKOV_STACKS = [("polars", "rest"), ("spark", "rest"), ("polars", "batch")]


@dataclass
class CheckovScan:
    """One checkov run over the infra/ of every (cloud, engine, mode) stack, copied side by side
    under one root (checkov starts in seconds, scans in a fraction of that; a repeated ``-d``
    rescans the first folder, so the stacks share a root instead). Results by stack name."""

    result: subprocess.CompletedProcess[str]
    passed: dict[str, int]
    failed: dict[str, list[str]]
    error: str | None  # checkov's output could not be read, or it failed without a failed check


def _stack(cloud: str, engine: str, mode: str) -> str:
    return f"{cloud}-{engine}-{mode}"


@pytest.fixture(scope="module")
def checkov_scan(generated: Generate, tmp_path_factory: pytest.TempPathFactory) -> CheckovScan:
    root = tmp_path_factory.mktemp("checkov").resolve()
    names = []
    for cloud in CLOUDS:
        for engine, mode in CHECKOV_STACKS:
            name = _stack(cloud, engine, mode)
            source = generated(cloud, "github", engine, mode) / "infra"
            shutil.copytree(source, root / name / "infra")
            names.append(name)
    # --framework terraform: infra/ holds only Terraform, and checkov's other runners (secrets)
    # fail in this environment and can stall its parallel runner. Not --quiet: the passed checks
    # are listed, so each stack's count is known.
    result = run(
        [tool("checkov"), "-d", ".", "--framework", "terraform", "--compact", "--skip-download",
         "--output", "json"],
        root,
        timeout=900,
    )  # fmt: skip
    passed = dict.fromkeys(names, 0)
    failed: dict[str, list[str]] = {name: [] for name in names}
    try:
        reports = json.loads(result.stdout)
    except json.JSONDecodeError:
        return CheckovScan(result, passed, failed, f"no JSON report:\n{result.stderr[-3000:]}")
    for report in reports if isinstance(reports, list) else [reports]:
        results = report.get("results", {})
        for kind, checks in (("passed", results.get("passed_checks", [])),
                             ("failed", results.get("failed_checks", []))):  # fmt: skip
            for check in checks:
                name = Path(check["file_abs_path"]).resolve().relative_to(root).parts[0]
                if kind == "passed":
                    passed[name] += 1
                else:
                    failed[name].append(
                        f"{check['check_id']} {check['resource']} ({check['file_path']})"
                    )
    error = None
    if result.returncode != 0 and not any(failed.values()):
        error = f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}"
    return CheckovScan(result, passed, failed, error)


@pytest.mark.xdist_group("checkov")  # one worker: the scan of every stack runs once
@pytest.mark.parametrize(
    ("engine", "mode"), CHECKOV_STACKS, ids=["-".join(s) for s in CHECKOV_STACKS]
)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_checkov_has_no_failed_check(
    generated: Generate, checkov_scan: CheckovScan, cloud: str, engine: str, mode: str
) -> None:
    project = generated(cloud, "github", engine, mode)
    assert checkov_scan.error is None, checkov_scan.error
    stack = _stack(cloud, engine, mode)
    failed = checkov_scan.failed[stack]
    assert failed == [], "checkov failed checks:\n" + "\n".join(failed)
    passed = checkov_scan.passed[stack]
    assert passed > 20, f"checkov scanned almost nothing ({passed} passed checks)"
    # every skip carries its reason next to it
    for path in (project / "infra").rglob("*.tf"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            match = CHECKOV_SKIP.search(line)
            if match:
                reason = (match.group(2) or "").strip()
                assert len(reason) > 20, f"{path}:{number}: checkov skip without a reason"


PLATFORMS = ("linux_amd64", "linux_arm64", "darwin_amd64", "darwin_arm64", "windows_amd64")


def _fake_provider_mirror(project: Path, mirror: Path) -> dict[str, str]:
    """A filesystem mirror holding a stand-in package of every provider the stack requires (the
    lowest version its `~> X.Y` constraint allows) for every platform; returns name -> version."""
    import zipfile

    wanted: dict[str, str] = {}
    for versions in (project / "infra" / "terraform").rglob("versions.tf"):
        text = versions.read_text()
        for source, major, minor in re.findall(
            r'source\s*=\s*"hashicorp/([\w-]+)"\s*\n\s*version\s*=\s*"~> (\d+)\.(\d+)"', text
        ):
            wanted[source] = f"{major}.{minor}.0"
    for name, version in wanted.items():
        folder = mirror / "registry.terraform.io" / "hashicorp" / name
        folder.mkdir(parents=True, exist_ok=True)
        for platform in PLATFORMS:
            package = folder / f"terraform-provider-{name}_{version}_{platform}.zip"
            with zipfile.ZipFile(package, "w") as archive:
                archive.writestr(f"terraform-provider-{name}_v{version}", f"stand-in {platform}\n")
    return wanted


@pytest.mark.parametrize("cloud", CLOUDS)
def test_infra_lock_writes_every_environment_lock_file(
    generated: Generate, tmp_path: Path, cloud: str
) -> None:
    """`make infra-lock` (providers.sh lock) pins every provider of every environment with the
    hashes of all five platforms; from a mirror here, since the registry is out of reach."""
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH")
    project = generated(cloud, "github")
    work = tmp_path / "project"
    shutil.copytree(project / "infra", work / "infra")
    wanted = _fake_provider_mirror(work, tmp_path / "mirror")
    assert wanted, "the stack requires providers"
    script = work / "infra" / "terraform" / "providers.sh"
    assert_ok(run([tool("shellcheck"), str(script)], work), "shellcheck providers.sh")
    result = run(["bash", str(script), "lock", f"-fs-mirror={tmp_path / 'mirror'}"], work)
    assert_ok(result, "providers.sh lock")
    for env in ("dev", "staging", "prod"):
        lock = (work / "infra" / "terraform" / "envs" / env / ".terraform.lock.hcl").read_text()
        for name, version in wanted.items():
            block = lock.split(f'provider "registry.terraform.io/hashicorp/{name}" {{')[1]
            block = block.split("\n}")[0]
            assert f'version     = "{version}"' in block, (env, name)
            assert block.count('"h1:') == len(PLATFORMS), (env, name, block)
    assert "written: commit it" in result.stdout


def test_infra_validate_says_what_it_needs_when_the_registry_is_unreachable(
    generated: Generate, tmp_path: Path
) -> None:
    """Offline, `make infra-validate` exits 2 naming the registry and the way out (a mirror)
    instead of failing with terraform's provider error. The only "registry" here is a mirror on
    127.0.0.1's discard port, so the test is offline wherever it runs."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on PATH")
    project = generated("aws", "github")
    work = tmp_path / "project"
    shutil.copytree(project / "infra", work / "infra")
    config = tmp_path / "terraform.rc"
    config.write_text(
        'provider_installation {\n  network_mirror {\n    url = "https://127.0.0.1:9/"\n  }\n}\n'
    )
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(config), "TF_PLUGIN_CACHE_DIR": ""}
    result = subprocess.run(
        ["bash", "infra/terraform/providers.sh", "validate"], cwd=work, capture_output=True,
        text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "provider registry (registry.terraform.io) cannot be reached" in result.stderr
    assert "terraform providers mirror DIR" in result.stderr
    assert "run `make infra-lock` and commit it" in result.stderr
    assert not list((work / "infra").rglob(".terraform.lock.hcl")), "nothing written"
    usage = run(["bash", "infra/terraform/providers.sh"], work)
    assert usage.returncode == 2 and "usage: providers.sh lock" in usage.stderr


def test_free_text_cannot_break_or_inject(tmp_path: Path) -> None:
    """A hostile project name and owner handle end up quoted (HCL) or nowhere (workflows)."""
    from hcl2.api import load as load_hcl

    name = 'Evil ${{ secrets.TOKEN }} "quoted" ${var.x} %{if 1}'
    spec = load_spec(name=name, sets=["project.package=evil", "roles.ml_engineer=x@evil.example"])
    dest = tmp_path / "evil"
    apply_new(render(spec), dest)
    for path in (dest / ".github" / "workflows").glob("*.yml"):
        text = path.read_text()
        assert "secrets.TOKEN" not in text and "Evil" not in text, path.name
    for path in (dest / "infra").rglob("*.tf"):
        with path.open() as handle:
            load_hcl(handle)
    main = (dest / "infra/terraform/envs/dev/main.tf").read_text()
    assert 'cost_center = "evil-secrets-token-quoted-var-x-if-1"' in main
    assert 'owner       = "x-evil-example"' in main
    terraform = shutil.which("terraform")
    if terraform is not None:
        assert_ok(run([terraform, "fmt", "-check", "-recursive", "infra"], dest), "terraform fmt")


# ------------------------------------------------------------------------------------------
# CI/CD for every cloud x provider
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_ci_files_pass_validators(generated: Generate, cloud: str, provider: str) -> None:
    validate_ci(generated(cloud, provider), provider)


VARIANTS = [
    # batch scoring instead of REST, environments with other names, another cloud
    ["serving.mode=batch", "infra.environments=[qa, prod-eu]", "infra.cloud=gcp"],
    # a single environment (no promotion chain)
    ["infra.environments=[prod]", "infra.cloud=aws"],
    # the Spark engine: every pipeline that runs `make data` sets up Java 17 first, and each
    # deployed environment gets a job submitting the data pipeline to its Spark job host
    ["data.engine=spark", "infra.cloud=gcp"],
    ["data.engine=spark", "infra.cloud=aws", "infra.environments=[dev, qa, prod-eu]"],
    ["data.engine=spark", "infra.cloud=azure"],
]
VARIANT_IDS = ["batch-custom-envs", "single-env", "spark-gcp", "spark-aws", "spark-azure"]


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("sets", VARIANTS, ids=VARIANT_IDS)
def test_ci_variants_pass_validators(tmp_path: Path, provider: str, sets: list[str]) -> None:
    spec = load_spec(name="Variant", sets=[*sets, f"ci.provider={provider}"])
    dest = tmp_path / "variant"
    apply_new(render(spec), dest)
    assert_ok(run(["git", "init", "-q", "."], dest), "git init")
    validate_ci(dest, provider)
    envs = sorted(p.name for p in (dest / "infra" / "terraform" / "envs").iterdir())
    assert envs == sorted(spec.infra.environments)
    ci_files = [*(dest / ".github" / "workflows").glob("*.yml"), dest / ".gitlab-ci.yml",
                dest / "azure-pipelines.yml"]  # fmt: skip
    text = "".join(p.read_text() for p in ci_files if p.is_file())
    java = {"github": "actions/setup-java@", "gitlab": "openjdk-17-jre-headless",
            "azure-devops": "JavaToolInstaller@0"}[provider]  # fmt: skip
    # the data pipeline and the ML pipeline both run `make data`
    assert text.count(java) == (2 if spec.data.engine == "spark" else 0), provider
    # one job per deployed environment submits the pipeline to its Spark job host
    deployed = spec.infra.environments[1:] if spec.data.engine == "spark" else []
    submits = re.findall(r"bash ci/submit-spark\.sh ([\w-]+)", text)
    assert submits == deployed, (provider, submits)
    assert (dest / "ci" / "submit-spark.sh").is_file() == (spec.data.engine == "spark")


MODES = ("rest", "batch")
#: what the deploy pipeline does with the image, per serving mode and cloud
ROLL_OUT = {
    ("rest", "azure"): "az containerapp update",
    ("rest", "aws"): "aws ecs update-service",
    ("rest", "gcp"): "gcloud run deploy",
    ("batch", "azure"): "az containerapp job update",
    ("batch", "aws"): 'aws ecs describe-task-definition --task-definition "$JOB_NAME"',
    ("batch", "gcp"): "gcloud run jobs update",
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("cloud", CLOUDS)
def test_every_built_image_has_its_dockerfile(
    tmp_path: Path, cloud: str, provider: str, mode: str
) -> None:
    """Each cloud x CI provider x serving mode deploys what it builds: the Dockerfile of every
    image build exists, the image runs the mode's entry point, and Terraform provisions the
    mode's runtime (the API service, or the scheduled batch job) and not the other."""
    from mlops_template.lint import lint

    spec = load_spec(name="Delivery", sets=[f"infra.cloud={cloud}", f"ci.provider={provider}",
                                            f"serving.mode={mode}"])  # fmt: skip
    dest = tmp_path / "delivery"
    apply_new(render(spec), dest)
    ci_files = [*(dest / ".github" / "workflows").glob("*.yml"), dest / ".gitlab-ci.yml",
                dest / "azure-pipelines.yml", *(dest / "ci").glob("*.sh")]  # fmt: skip
    builds = []
    for path in ci_files:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            command = line.strip().removeprefix("- ")
            match = re.match(r"docker build .*?(?:-f (\S+) .*)?(\S+)$", command)
            if match:
                dockerfile = match.group(1) or f"{match.group(2)}/Dockerfile"
                builds.append((path.name, dockerfile))
                assert (dest / dockerfile).is_file(), f"{path.name} builds from {dockerfile}"
    assert builds, "the serving phase builds an image in some pipeline"
    findings = lint(dest, select=["MLO506"]).findings
    assert findings == [], findings
    dockerfile = (dest / "Dockerfile").read_text()
    entry = "serving.job" if mode == "batch" else "serving"
    assert f'CMD ["python", "-m", "delivery.{entry}"' in dockerfile
    assert dockerfile.count("\nFROM ") == 2, "multi-stage: build stage and runtime stage"
    module = dest / "infra" / "terraform" / "modules" / cloud
    assert (module / "batch.tf").is_file() == (mode == "batch")
    assert (module / "serving.tf").is_file() == (mode == "rest")
    ci_text = "".join(p.read_text() for p in ci_files if p.is_file())
    assert ROLL_OUT[(mode, cloud)] in ci_text
    other = "rest" if mode == "batch" else "batch"
    assert ROLL_OUT[(other, cloud)] not in ci_text.replace(ROLL_OUT[(mode, cloud)], "")


EXAMPLES = sorted(
    p.parent.name for p in (Path(__file__).parents[1] / "examples").glob("*/mlops.yaml")
)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_projects_pass_zizmor_auditor_and_hadolint(tmp_path: Path, example: str) -> None:
    """The shipped examples, as users get them: every finding of zizmor's auditor persona (not
    only the default persona's) and of hadolint is fixed or justified inline."""
    spec = load_spec(Path(__file__).parents[1] / "examples" / example / "mlops.yaml")
    dest = tmp_path / example
    apply_new(render(spec), dest)
    assert_ok(run(["git", "init", "-q", "."], dest), "git init")
    assert (dest / ".github" / "workflows").is_dir(), "the examples use GitHub Actions"
    audit = run([tool("zizmor"), "--offline", "--persona=auditor", ".github/workflows"], dest)
    assert_ok(audit, f"zizmor --persona=auditor ({example})")
    assert "No findings to report" in audit.stdout + audit.stderr
    assert (dest / "Dockerfile").is_file(), "every example serves"
    assert_ok(run([tool("hadolint"), "Dockerfile"], dest), f"hadolint ({example})")


@pytest.mark.parametrize(("mode", "cloud"), [("batch", "gcp"), ("rest", "aws")])
def test_image_installs_exactly_the_locked_versions(tmp_path: Path, mode: str, cloud: str) -> None:
    """`make lock` writes uv.lock; the image's build stage exports it as pip constraints and
    installs its runtime requirements under them: every package the image gets (resolved here
    with `pip install --dry-run`, from the package index) is at its uv.lock version."""
    spec = load_spec(name="Locked", sets=[f"serving.mode={mode}", f"infra.cloud={cloud}"])
    dest = tmp_path / "locked"
    apply_new(render(spec), dest)
    makefile = (dest / "Makefile").read_text()
    assert "\nlock: " in makefile and "uv lock --check" in makefile and "uv sync" in makefile
    assert_ok(run([tool("uv"), "lock", "--quiet"], dest), "uv lock")
    dockerfile = (dest / "Dockerfile").read_text().replace("\\\n", " ")
    assert "COPY pyproject.toml README.md uv.lock* ./" in dockerfile
    export = re.search(r"(uv export --locked [^;]*?) --output-file", dockerfile)
    assert export, "the build stage exports uv.lock"
    constraints = tmp_path / "constraints.txt"
    args = export.group(1).split()[1:]
    assert_ok(run([tool("uv"), *args, "--output-file", str(constraints)], dest), "uv export")
    install = re.search(
        r"pip install --no-cache-dir --constraint /build/constraints.txt (.*)", dockerfile
    )
    assert install, "the runtime requirements are installed under the lock's constraints"
    requirements = re.findall(r'"([^"]+)"', install.group(1))
    assert "onnxruntime>=1.17" in requirements, requirements
    report = tmp_path / "report.json"
    result = run([sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
                  "--report", str(report), "--constraint", str(constraints), *requirements], dest)  # fmt: skip
    assert_ok(result, "pip install --dry-run under the lock's constraints")
    locked: dict[str, set[str]] = {}
    for line in constraints.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            locked.setdefault(name, set()).add(match.group(2))
    installed = [(i["metadata"]["name"], i["metadata"]["version"])
                 for i in json.loads(report.read_text())["install"]]  # fmt: skip
    assert len(installed) > 10, installed
    unlocked = [(n, v) for n, v in installed
                if v not in locked.get(re.sub(r"[-_.]+", "-", n).lower(), set())]  # fmt: skip
    assert unlocked == [], f"installed at versions uv.lock does not hold: {unlocked}"


def test_lint_catches_a_build_whose_dockerfile_is_gone(tmp_path: Path) -> None:
    from mlops_template.lint import lint

    spec = load_spec(name="Delivery", sets=["serving.mode=batch", "ci.provider=gitlab"])
    dest = tmp_path / "delivery"
    apply_new(render(spec), dest)
    (dest / "Dockerfile").unlink()
    findings = lint(dest, select=["MLO506"]).findings
    assert [(f.file, f.message) for f in findings] == [
        (".gitlab-ci.yml", "builds an image from Dockerfile, which does not exist")
    ]


@pytest.mark.parametrize("mode", MODES)
def test_dockerfiles_pass_hadolint(generated: Generate, mode: str) -> None:
    project = generated("aws", "github", "polars", mode)
    assert_ok(run([tool("hadolint"), "Dockerfile"], project), f"hadolint ({mode})")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_plans_infra_on_pull_requests(tmp_path: Path, provider: str) -> None:
    """A pull request shows the terraform plan of every environment, on every CI provider, and
    the pull-request path never applies."""
    import yaml

    spec = load_spec(name="Plans", sets=[f"ci.provider={provider}", "infra.cloud=aws"])
    tree = render(spec)
    envs = spec.infra.environments
    if provider == "github":
        doc = yaml.safe_load(tree.text(".github/workflows/infra.yml"))
        assert "pull_request" in doc[True]  # `on:` parses as True
        plan = doc["jobs"]["plan"]
        assert "github.event_name == 'pull_request'" in plan["if"]
        assert plan["strategy"]["matrix"]["environment"] == envs
        steps = "".join(str(step.get("run", "")) for step in plan["steps"])
        assert " plan " in steps and " apply" not in steps
    elif provider == "gitlab":
        doc = yaml.safe_load(tree.text(".gitlab-ci.yml"))
        plan = doc["infra-plan"]
        assert plan["parallel"]["matrix"] == [{"ENVIRONMENT": envs}]
        assert plan["rules"][0]["if"] == '$CI_PIPELINE_SOURCE == "merge_request_event"'
        assert not any(" apply" in line for line in plan["script"])
    else:
        doc = yaml.safe_load(tree.text("azure-pipelines.yml"))
        assert doc["pr"] == {"branches": {"include": ["main"]}}
        stages = {stage["stage"]: stage for stage in doc["stages"]}
        for env in envs:
            stage = stages[f"infra_plan_{env}"]
            assert "eq(variables['Build.Reason'], 'PullRequest')" in stage["condition"]
            assert stage["variables"] == [{"group": env}]
            (job,) = stage["jobs"]
            script = "".join(str(step.get("bash", "")) for step in job["steps"])
            assert f"terraform -chdir=infra/terraform/envs/{env} plan" in script
            assert " apply" not in script
            # the apply stages never run for a pull request
            assert "eq(variables.isMain, true)" in stages[f"infra_{env}"]["condition"]


def validate_ci(project: Path, provider: str) -> None:
    """Every validator of the provider's CI files, plus yamllint over the whole project."""
    workflows = sorted((project / ".github" / "workflows").glob("*.yml"))
    gitlab = project / ".gitlab-ci.yml"
    azure = project / "azure-pipelines.yml"
    if provider == "github":
        names = {p.name for p in workflows}
        assert names == {"ci.yml", *PHASE_WORKFLOWS.values()}, names
        assert not gitlab.exists() and not azure.exists()
        files = [str(p.relative_to(project)) for p in workflows]
        assert_ok(run([tool("actionlint"), *files], project), "actionlint")
        assert_ok(
            # the auditor persona: every finding, also the ones the default persona hides
            run([tool("zizmor"), "--offline", "--persona=auditor", ".github/workflows"], project),
            "zizmor --persona=auditor",
        )  # fmt: skip
        assert_ok(
            run([tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
                project),
            "check-jsonschema vendor.github-workflows",
        )  # fmt: skip
        check_workflow_hygiene(workflows)
    else:
        assert workflows == [], "no GitHub workflows for another CI provider"
        assert (project / "ci" / "oidc-credentials.sh").is_file()
        assert (project / "ci" / "deploy.sh").is_file()
        check_deploy_script_refuses_bad_input(project)
    scripts = sorted((project / "ci").glob("*.sh"))
    for script in scripts:
        assert_ok(run(["bash", "-n", str(script)], project), f"bash -n {script.name}")
    if scripts:
        assert_ok(run([tool("shellcheck"), *map(str, scripts)], project), "shellcheck")
    if (project / "ci" / "submit-spark.sh").is_file():
        check_submit_script_refuses_bad_input(project)
    if provider == "gitlab":
        assert gitlab.is_file() and not azure.exists()
        assert_ok(
            run([tool("check-jsonschema"), "--builtin-schema", "vendor.gitlab-ci", gitlab.name],
                project),
            "check-jsonschema vendor.gitlab-ci",
        )  # fmt: skip
    if provider == "azure-devops":
        assert azure.is_file() and not gitlab.exists()
        # the schema's patterns use escapes the default (ECMA 'regress') engine rejects
        assert_ok(
            run([tool("check-jsonschema"), "--regex-variant", "python", "--builtin-schema",
                 "vendor.azure-pipelines", azure.name], project),
            "check-jsonschema vendor.azure-pipelines",
        )  # fmt: skip
    check_update_bot(project, provider)
    assert_ok(run([tool("yamllint"), "--strict", "-c", ".yamllint.yaml", "."], project), "yamllint")


def check_update_bot(project: Path, provider: str) -> None:
    """Dependabot (GitHub) or Renovate (GitLab, Azure DevOps) keeps every kind of pin fresh, and
    its config passes the bot's own schema (check-jsonschema's built-in copy)."""
    import yaml

    dependabot = project / ".github" / "dependabot.yml"
    renovate = project / "renovate.json"
    if provider == "github":
        assert dependabot.is_file() and not renovate.exists()
        assert_ok(
            run([tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot",
                 str(dependabot)], project),
            "check-jsonschema vendor.dependabot",
        )  # fmt: skip
        config = yaml.safe_load(dependabot.read_text())
        ecosystems = {u["package-ecosystem"] for u in config["updates"]}
        assert ecosystems == {"github-actions", "uv", "docker", "terraform"}, ecosystems
    else:
        assert renovate.is_file() and not dependabot.exists()
        assert_ok(
            run([tool("check-jsonschema"), "--builtin-schema", "vendor.renovate", renovate.name],
                project),
            "check-jsonschema vendor.renovate",
        )  # fmt: skip
        managers = set(json.loads(renovate.read_text())["enabledManagers"])
        ci_manager = "gitlabci" if provider == "gitlab" else "azure-pipelines"
        assert managers == {ci_manager, "pep621", "dockerfile", "terraform"}, managers


def check_deploy_script_refuses_bad_input(project: Path) -> None:
    """ci/deploy.sh checks its arguments and variables before touching any cloud."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(project)}

    def deploy(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "ci/deploy.sh", *args], cwd=project, capture_output=True, text=True,
            env={**env, **extra}, timeout=60,
        )  # fmt: skip

    usage = deploy()
    assert usage.returncode != 0 and "usage: deploy.sh ENVIRONMENT TAG" in usage.stderr
    bad_tag = deploy("dev", "$(touch pwned)")
    assert bad_tag.returncode == 2 and "TAG must be a commit SHA" in bad_tag.stderr
    assert not (project / "pwned").exists()
    no_registry = deploy("dev", "0" * 40)
    assert no_registry.returncode != 0 and "set REGISTRY for dev" in no_registry.stderr


def check_submit_script_refuses_bad_input(project: Path) -> None:
    """ci/submit-spark.sh checks its argument and variables before building or touching a cloud."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(project)}

    def submit(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "ci/submit-spark.sh", *args], cwd=project, capture_output=True, text=True,
            env=env, timeout=60,
        )  # fmt: skip

    usage = submit()
    assert usage.returncode != 0 and "usage: submit-spark.sh ENVIRONMENT" in usage.stderr
    bad = submit("$(touch pwned)")
    assert bad.returncode == 2 and "must be an environment name" in bad.stderr
    assert not (project / "pwned").exists()
    unset = submit("prod")
    assert unset.returncode != 0 and "set SPARK_ARTIFACTS for prod" in unset.stderr
    assert not (project / "build").exists(), "nothing is built before the variables are checked"


def check_workflow_hygiene(workflows: list[Path]) -> None:
    """Pinned actions, least privilege on every job, concurrency, no secrets in the YAML."""
    import yaml

    for path in workflows:
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            if re.match(r"^\s*(-\s+)?uses:", line):
                assert PINNED.match(line), f"{path.name}:{number}: not pinned to a SHA: {line}"
        # cloud access is OIDC only; the one stored secret is the PII hashing salt
        used = set(re.findall(r"secrets\.(\w+)", text))
        assert used <= {"MLOPS_PII_SALT"}, f"{path.name}: stored secrets {used}; use OIDC"
        doc = yaml.safe_load(text)
        assert doc["permissions"] == {}, f"{path.name}: workflow-level permissions must be {{}}"
        assert "concurrency" in doc, f"{path.name}: no concurrency group"
        for job_name, job in doc["jobs"].items():
            assert "permissions" in job, f"{path.name}: job {job_name} has no permissions"
            for scope, level in job["permissions"].items():
                if level == "write":
                    assert scope in {"id-token", "actions"}, f"{path.name}:{job_name} {scope}"


def test_only_enabled_phases_get_workflows(tmp_path: Path) -> None:
    spec = load_spec(name="Data Only", phases=["data"])
    dest = tmp_path / "data-only"
    apply_new(render(spec), dest)
    names = sorted(p.name for p in (dest / ".github" / "workflows").iterdir())
    assert names == ["ci.yml", "data-pipeline.yml"]
    assert not (dest / "infra").exists()


def test_roles_doc_lists_every_role_and_owned_path(generated: Generate) -> None:
    project = generated("aws", "github")
    roles = (project / "docs" / "roles.md").read_text()
    codeowners = (project / ".github" / "CODEOWNERS").read_text()
    for handle in (
        "@your-org/data-engineers",
        "@your-org/data-scientists",
        "@your-org/ml-engineers",
    ):
        assert f"`{handle}`" in roles
    for line in codeowners.splitlines():
        if line.startswith("/") and not line.startswith(("/mlops.yaml", "/.mlops/")):
            assert f"`{line.split()[0]}`" in roles, f"{line.split()[0]} missing from roles.md"


# ------------------------------------------------------------------------------------------
# bad input: clear errors from the spec, nothing written
# ------------------------------------------------------------------------------------------

BAD = [
    ("infra.environments=[dev, dev]", "infra.environments.1", "listed twice"),
    ("infra.environments=[dev, Prod]", "infra.environments.1", "lowercase slug"),
    ("infra.cloud=oracle", "infra.cloud", "azure"),
    ("ci.provider=jenkins", "ci.provider", "github"),
    ("roles.ml_engineer=ml-team", "roles.ml_engineer", "@org/team"),
    ("roles.data_engineer=@acme/", "roles.data_engineer", "@org/team"),
]


@pytest.mark.parametrize(("setting", "path", "hint"), BAD)
def test_bad_spec_is_refused(setting: str, path: str, hint: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(name="Bad", sets=[setting])
    message = str(caught.value)
    assert path in message and hint in message, message


@pytest.mark.parametrize(("setting", "path", "hint"), BAD)
def test_bad_spec_writes_nothing(tmp_path: Path, setting: str, path: str, hint: str) -> None:
    dest = tmp_path / "project"
    result = run(
        [
            sys.executable,
            "-m",
            "mlops_template",
            "new",
            str(dest),
            "--name",
            "Bad",
            "--set",
            setting,
        ],
        tmp_path,
    )
    assert result.returncode != 0
    assert path in result.stderr + result.stdout, result.stderr
    assert not dest.exists(), "a refused spec must leave nothing behind"
    assert list(tmp_path.iterdir()) == [], "no temporary folder left behind either"
