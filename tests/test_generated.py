"""The option matrix: every Literal choice of the spec and every valid phase subset renders a
project whose file set is exactly what the enabled phases own and whose every file parses."""

from __future__ import annotations

import itertools
import json
import re
import types
import typing
from functools import cache
from pathlib import Path

import pytest
import yaml
from checks import check_parses, tool
from pydantic import BaseModel

from mlops_template.phases import load_catalogue, with_requirements
from mlops_template.render import CODEOWNERS_DIR, Tree, render
from mlops_template.spec import Spec, load_spec

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
#: settings a choice needs to be valid on its own (e.g. regression needs a regression metric).
COMPANIONS: dict[str, list[str]] = {
    "data.source.kind=csv": ["data.source.path=data/raw/x.csv", "ml.target=label",
                             "data.pii_columns=[]"],
    "data.source.kind=parquet": ["data.source.path=data/raw/x.parquet", "ml.target=label",
                                 "data.pii_columns=[]"],
    "data.source.kind=json": ["data.source.path=data/raw/x.jsonl", "ml.target=label",
                              "data.pii_columns=[]"],
    "data.source.kind=sklearn": ["data.source.dataset=breast_cancer"],
    "data.source.kind=sql": ["data.source.url=sqlite:///data/raw/x.db",
                             "data.source.query=SELECT * FROM t", "ml.target=label"],
    "data.versioning=delta": ["data.engine=spark"],
    "ml.task=regression": [],
    "ml.metric=r2": ["ml.task=regression"],
    "ml.metric=rmse": ["ml.task=regression", "ml.min_score=50"],
    "ml.metric=mae": ["ml.task=regression", "ml.min_score=50"],
}  # fmt: skip


def literal_choices(model: type[BaseModel] = Spec, prefix: str = "") -> list[str]:
    """``section.key=value`` for every Literal field of the spec, nested sections included (a new
    Literal field anywhere in the spec joins the matrix by itself). A field typed ``Literal[...]``
    has the values as its args; ``Literal[...] | None`` has the Literal among its args. List and
    mapping fields (phases, data.sources) are left out: the phase subsets cover the phases."""
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            options = typing.get_args(annotation)
        else:
            options = (annotation,)
        for option in options:
            if isinstance(option, type) and issubclass(option, BaseModel):
                out.extend(literal_choices(option, f"{key}."))
            elif typing.get_origin(option) is typing.Literal:
                out.extend(f"{key}={_set_value(value)}" for value in typing.get_args(option))
    return out


def _set_value(value: object) -> str:
    """``value`` as ``--set`` reads it back (YAML): quoted when plain text would change type,
    e.g. project.python=3.10 is the float 3.1 unquoted."""
    plain = str(value)
    return plain if yaml.safe_load(plain) == value else json.dumps(plain)


def phase_subsets() -> list[list[str]]:
    names = list(load_catalogue())
    subsets = set()
    for size in range(1, len(names) + 1):
        for combo in itertools.combinations(names, size):
            subsets.add(tuple(with_requirements(list(combo), load_catalogue())))
    return [list(s) for s in sorted(subsets)]


CHOICES = literal_choices()
SUBSETS = phase_subsets()


@cache
def rendered(
    sets: tuple[str, ...] = (), phases: tuple[str, ...] | None = None
) -> tuple[Spec, Tree]:
    spec = load_spec(name="Matrix Project", sets=list(sets),
                     phases=list(phases) if phases is not None else None)  # fmt: skip
    return spec, render(spec)


def check_file_set(spec: Spec, tree: Tree) -> None:
    catalogue = load_catalogue()
    files = set(tree)
    for name, phase in catalogue.items():
        owned = [o.replace("{{ package }}", spec.package).lstrip("/") for o in phase.owns]
        if name in spec.phases:
            for required in phase.required_files:
                req = required.replace("{{ package }}", spec.package)
                assert any(f == req or f.startswith(req.rstrip("/") + "/") for f in files), (
                    f"phase {name} enabled but {req} missing"
                )
        else:
            shared = {"data/"}  # the data layers exist whatever the phases
            for prefix in owned:
                if prefix in shared:
                    continue
                hits = [
                    f
                    for f in files
                    if f == prefix or (prefix.endswith("/") and f.startswith(prefix))
                ]
                assert not hits, f"phase {name} disabled but {hits[:3]} rendered"
    envs = {f"conf/{e}.yaml" for e in spec.infra.environments}
    assert {f for f in files if re.fullmatch(r"conf/[^/]+\.yaml", f)} == envs | {"conf/base.yaml"}
    assert f"{CODEOWNERS_DIR[spec.ci.provider]}/CODEOWNERS" in files
    workflows = {f for f in files if f.startswith(".github/workflows/")}
    if spec.ci.provider != "github":
        assert not workflows


@pytest.mark.parametrize("choice", CHOICES)
def test_every_literal_choice_renders_a_parsable_project(choice: str) -> None:
    spec, tree = rendered((choice, *COMPANIONS.get(choice, [])))
    check_parses(tree)
    check_file_set(spec, tree)


@pytest.mark.parametrize("phases", SUBSETS, ids=lambda p: "+".join(p))
def test_every_phase_subset_renders_exactly_its_files(phases: list[str]) -> None:
    spec, tree = rendered((), tuple(phases))
    check_parses(tree)
    check_file_set(spec, tree)
    assert json.loads(tree.text(".mlops/state.json"))["phases"] == phases


@pytest.mark.parametrize(
    "example", sorted(p.parent.name for p in (REPO / "examples").glob("*/mlops.yaml"))
)
def test_examples_render(example: str) -> None:
    spec = load_spec(REPO / "examples" / example / "mlops.yaml")
    tree = render(spec)
    check_parses(tree)
    check_file_set(spec, tree)


def golden_list(tree: Tree) -> str:
    return "".join(f"{path}\n" for path in tree)


def test_golden_default_project_file_list() -> None:
    """The default project's files. Regenerate with `python scripts/update_golden.py`."""
    _, tree = rendered()
    expected = (GOLDEN / "default-files.txt").read_text(encoding="utf-8")
    assert golden_list(tree) == expected, "file list changed: run `python scripts/update_golden.py`"


def test_golden_churn_composed_files() -> None:
    spec = load_spec(REPO / "examples/churn/mlops.yaml")
    tree = render(spec)
    for name in ("Makefile", "pyproject.toml", ".github/CODEOWNERS", "conf/base.yaml"):
        golden = GOLDEN / "churn" / name.replace("/", "__")
        assert tree.text(name) == golden.read_text(encoding="utf-8"), (
            f"{name} changed: run `python scripts/update_golden.py`"
        )


FORMAT_CASES = {
    **{f"example-{p.parent.name}": p for p in sorted((REPO / "examples").glob("*/mlops.yaml"))},
    "every-phase-regression-duckdb": (
        "ml.task=regression", "ml.metric=rmse", "ml.min_score=50", "data.engine=duckdb",
        "phases=[data, training, serving, monitoring, infra, analysis, experimentation]",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(FORMAT_CASES))
def test_generated_python_passes_ruff_check_and_format(case: str, tmp_path: Path) -> None:
    """Generated code is already formatted: the project's own `make lint` passes on day one."""
    import subprocess

    source = FORMAT_CASES[case]
    if isinstance(source, Path):
        tree = render(load_spec(source))
    else:
        sets = [s for s in source if not s.startswith("phases=")]
        phases = [p.strip() for p in source[-1].removeprefix("phases=").strip("[]").split(",")]
        tree = render(load_spec(name="Format Project", sets=sets, phases=phases))
    for rel in tree:
        if rel.endswith((".py", "pyproject.toml")):
            target = tmp_path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(tree.text(rel), encoding="utf-8")
    ruff = tool("ruff")
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        done = subprocess.run([ruff, *args], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {args[0]}:\n{done.stdout}{done.stderr}"


SPARK_JOB_FILES = {"jobs/spark_data_job.py", "ci/submit-spark.sh"}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_spark_job_host_only_with_the_spark_engine(cloud: str) -> None:
    """The Spark job host (Terraform, entry file, submit script and jobs) comes with spark only."""
    _, plain = rendered((f"infra.cloud={cloud}",))
    assert not [f for f in plain if f in SPARK_JOB_FILES or f.endswith("/spark.tf")]
    assert "spark" not in plain.text("infra/terraform/envs/prod/outputs.tf")
    assert "submit-spark" not in plain.text(".github/workflows/data-pipeline.yml")
    _, spark = rendered((f"infra.cloud={cloud}", "data.engine=spark"))
    assert SPARK_JOB_FILES | {f"infra/terraform/modules/{cloud}/spark.tf"} <= set(spark)
    assert "spark_lake_urls" in spark.text("infra/terraform/envs/prod/outputs.tf")
    workflow = spark.text(".github/workflows/data-pipeline.yml")
    assert "bash ci/submit-spark.sh staging" in workflow and "submit-spark.sh dev" not in workflow
    # without the infra phase there is no job host to submit to: the entry file stays
    _, no_infra = rendered((f"infra.cloud={cloud}", "data.engine=spark"), ("data",))
    assert "jobs/spark_data_job.py" in no_infra and "ci/submit-spark.sh" not in no_infra
    assert not [f for f in no_infra if f.startswith("infra/")]


def test_spark_projects_say_java_17_in_their_readme() -> None:
    spark = render(load_spec(REPO / "examples/spark/mlops.yaml")).text("README.md")
    assert "Java 17 or newer" in spark and "(docs/spark.md)" in spark
    assert "Java" not in render(load_spec(REPO / "examples/churn/mlops.yaml")).text("README.md")


@pytest.mark.parametrize(
    "example", sorted(p.parent.name for p in (REPO / "examples").glob("*/mlops.yaml"))
)
def test_every_example_has_a_readme_with_its_command(example: str) -> None:
    readme = (REPO / "examples" / example / "README.md").read_text(encoding="utf-8")
    assert f"--spec examples/{example}/mlops.yaml" in readme
