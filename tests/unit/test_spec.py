"""Spec rules: each rule has a failing and a passing case; errors carry file:line:col and path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_template.errors import SpecError, UsageError
from mlops_template.spec import (
    DEFAULT_PHASES,
    Spec,
    SpecSources,
    build_spec,
    dump_spec,
    json_schema,
    load_spec,
    parse_set,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mlops.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(exc: pytest.ExceptionInfo[SpecError]) -> list[str]:
    return [issue.render() for issue in exc.value.issues]


def test_minimal_spec_takes_every_default() -> None:
    spec = load_spec(name="Churn Prediction")
    assert spec.project.package == "churn_prediction"
    assert spec.phases == DEFAULT_PHASES
    assert spec.ml.metric == "roc_auc" and spec.ml.min_score == 0.75
    assert spec.ml.target == "churned"
    assert spec.data.pii_columns == ["name", "email", "phone"]
    assert spec.infra.region == "westeurope"


@pytest.mark.parametrize(
    ("sets", "path", "fragment"),
    [
        (["ml.metric=rmse"], "ml.metric", "does not fit task 'classification'"),
        (["ml.min_score=1.5"], "ml.min_score", "out of range for roc_auc"),
        (["ml.task=regression", "ml.metric=rmse"], "ml.min_score", "set ml.min_score"),
        (["ml.task=regression", "ml.metric=mae", "ml.min_score=-1"], "ml.min_score", "> 0"),
        (["project.package=class"], "project.package", "keyword"),
        (["project.package=json"], "project.package", "shadow the standard-library module"),
        (["project.package=polars"], "project.package", "shadow the dependency"),
        (["project.package=9lives"], "project.package", "not a valid Python identifier"),
        (["project.package=Churn"], "project.package", "lowercase"),
        ([f"project.package={'a' * 65}"], "project.package", "64 characters or fewer"),
        (["phases=[serving]"], "phases.0", "requires 'training'"),
        (["phases=[data, data]"], "phases.1", "listed twice"),
        (["infra.environments=[dev, Dev]"], "infra.environments.1", "lowercase slug"),
        (["infra.environments=[dev, dev]"], "infra.environments.1", "listed twice"),
        (["infra.environments=[]"], "infra.environments", "at least one"),
        (["roles.ml_engineer=ml-team"], "roles.ml_engineer", "CODEOWNERS handle"),
        (["roles.ml_engineer=null"], "roles.ml_engineer", "has no handle"),
        (["data.versioning=delta"], "data.versioning", "spark"),
        (["data.source=csv"], "data.source.path", "needs a path"),
        (["data.source=json"], "data.source.path", "data/raw/customers.jsonl"),
        (
            ["data.source=json:data/raw/x.csv", "ml.target=y"],
            "data.source.path",
            "files ending in .json, .jsonl, .ndjson",
        ),
        (["data.source=sklearn:titanic"], "data.source.dataset", "unknown scikit-learn dataset"),
        (["data.source=sklearn:diabetes"], "ml.task", "regression"),
        (["data.source.kind=sql"], "data.source.url", "sql source needs url"),
        (["ml.target=email"], "ml.target", "PII"),
        (["ml.target=price"], "ml.target", "synthetic source has no"),
        (["data.source=csv:x.csv", "data.pii_columns=[]"], "ml.target", "set ml.target"),
        (["infra.region=West Europe"], "infra.region", "not a region name"),
        (["data.pii_columns=['e mail']"], "data.pii_columns.0", "not a valid column name"),
        (["ml.task=regression", "ml.average=macro"], "ml.average", "remove ml.average"),
        (["ml.average=mean"], "ml.average", "'macro', 'weighted' or 'micro'"),
    ],
)
def test_each_rule_fails_with_a_located_fix(sets: list[str], path: str, fragment: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_spec(name="Churn", sets=sets)
    matching = [i for i in exc.value.issues if i.path == path]
    assert matching, errors_of(exc)
    assert any(fragment in i.message for i in matching), errors_of(exc)
    assert all(i.where.startswith(("--set", "--name", "(spec)")) for i in exc.value.issues)


@pytest.mark.parametrize(
    "sets",
    [
        ["ml.metric=f1", "ml.min_score=0.5"],
        ["ml.metric=f1", "ml.min_score=0.5", "ml.average=weighted"],
        ["ml.average=micro"],
        ["ml.task=regression"],
        ["ml.task=regression", "ml.metric=rmse", "ml.min_score=40"],
        ["project.package=churn_v2"],
        ["phases=[data, training]"],
        ["infra.environments=[dev, prod-eu]"],
        ["roles.ml_engineer=mle@example.com", "roles.data_scientist=@alice"],
        ["data.engine=spark", "data.versioning=delta"],
        ["data.source=csv:data/raw/x.csv", "ml.target=label", "data.pii_columns=[]"],
        ["data.source=json:data/raw/x.jsonl", "ml.target=label", "data.pii_columns=[]"],
        ["data.source=json:data/raw/*.json", "ml.target=label"],
        ["data.source.kind=json", "data.source.path=data/raw/X.NDJSON", "ml.target=label"],
        ["data.source=json:data/raw/events-*", "ml.target=label"],
        ["data.source=sklearn:diabetes", "ml.task=regression"],
        ["data.source=sklearn:breast_cancer"],
        [
            "data.source.kind=sql",
            "data.source.url=sqlite:///x.db",
            "data.source.query=select 1",
            "ml.target=y",
        ],
        ["infra.cloud=gcp"],
    ],
)
def test_valid_variants_pass(sets: list[str]) -> None:
    spec = load_spec(name="Churn", sets=sets)
    assert isinstance(spec, Spec)


def test_derived_defaults_follow_other_fields() -> None:
    assert load_spec(name="x y", sets=["infra.cloud=aws"]).infra.region == "eu-west-1"
    regression = load_spec(name="x y", sets=["ml.task=regression"])
    assert (regression.ml.metric, regression.ml.target) == ("r2", "lifetime_value")
    sk = load_spec(name="x y", sets=["data.source=sklearn:diabetes", "ml.task=regression"])
    assert (sk.ml.target, sk.data.pii_columns) == ("target", [])


def test_errors_point_at_file_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "project:\n  name: Churn\nml:\n  task: classification\n  metric: rmse\n"
        "data:\n  engine: spork\n  sourc: {}\n",
    )
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    rendered = errors_of(exc)
    assert f"{path}:7:11 data.engine: Input should be" in rendered[0]
    assert any(f"{path}:8:3 data.sourc: unknown key; did you mean 'source'?" in r for r in rendered)


def test_json_source_shorthand_and_a_bad_path_located_in_the_file(tmp_path: Path) -> None:
    spec = load_spec(name="Churn", sets=["data.source=json:data/raw/a.jsonl", "ml.target=y"])
    assert (spec.data.source.kind, spec.data.source.path) == ("json", "data/raw/a.jsonl")
    path = write(
        tmp_path,
        "project:\n  name: Churn\nml:\n  target: y\n"
        "data:\n  source:\n    kind: json\n    path: data/raw/a.txt\n",
    )
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    rendered = errors_of(exc)
    assert any(
        r.startswith(f"{path}:8:11 data.source.path: a json source reads files ending in")
        for r in rendered
    ), rendered


def test_cross_field_errors_are_located_too(tmp_path: Path) -> None:
    path = write(tmp_path, "project:\n  name: Churn\nml:\n  task: classification\n  metric: rmse\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert exc.value.issues[0].render().startswith(f"{path}:5:11 ml.metric: 'rmse' does not fit")


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path, "project: {name: x}\nml: {task: nope, tracking: maybe}\nci: {provider: svn}\n"
    )
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert {i.path for i in exc.value.issues} == {"ml.task", "ml.tracking", "ci.provider"}


def test_missing_name_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        load_spec(write(tmp_path, "ml: {task: classification}\n"))
    assert "add `project: {name: ...}` or pass --name" in exc.value.issues[0].message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("project: {name: x\n", "YAML syntax error"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("project: {name: x}\nproject: {name: y}\n", "duplicate key"),
    ],
)
def test_unusable_documents(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_spec(write(tmp_path, text))
    assert fragment in exc.value.render()
    assert exc.value.issues[0].where.startswith(str(tmp_path / "mlops.yaml") + ":")


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "project:\n  name: x\nml:\n  task: [unclosed\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    assert exc.value.issues[0].where.startswith(f"{path}:")
    line = int(exc.value.issues[0].where.split(":")[-2])
    assert line >= 4


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="spec file not found"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(UsageError, match="is a directory"):
        load_spec(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"project: {name: caf\xe9}\n")
    with pytest.raises(UsageError, match="not UTF-8"):
        load_spec(bad)


def test_set_values_are_yaml_scalars() -> None:
    assert parse_set("ml.min_score=0.8") == ("ml.min_score", 0.8)
    assert parse_set("phases=[data, training]") == ("phases", ["data", "training"])
    assert parse_set("project.name=a: b") == ("project.name", "a: b")
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        parse_set("ml.metric")


def test_set_errors_name_the_flag() -> None:
    with pytest.raises(SpecError) as exc:
        load_spec(name="x", sets=["ml.metrc=f1"])
    assert exc.value.issues[0].render().startswith("--set ml.metrc ml.metrc: unknown key")


def test_dumped_spec_round_trips_with_comments() -> None:
    spec = load_spec(name='Ünïcode: "quoted" # not a comment', sets=["data.pii_columns=[email]"])
    text = dump_spec(spec)
    assert "# Human-readable project name" in text
    reloaded = Spec.model_validate(yaml.safe_load(text))
    assert reloaded == spec


def test_schema_has_every_section() -> None:
    schema = json_schema()
    assert set(schema["properties"]) >= {"project", "data", "ml", "phases", "infra", "ci"}
    assert schema["additionalProperties"] is False


def test_average_outside_classification_is_located_in_the_spec_file(tmp_path: Path) -> None:
    spec = write(tmp_path, "project: {name: X}\nml:\n  task: regression\n  average: macro\n")
    with pytest.raises(SpecError) as exc:
        load_spec(spec)
    located = [e for e in errors_of(exc) if e.startswith(f"{spec}:4:") and "ml.average" in e]
    assert located, errors_of(exc)


def test_positive_class_outside_classification_is_located_in_the_spec_file(tmp_path: Path) -> None:
    spec = write(tmp_path, "project: {name: X}\nml:\n  task: regression\n  positive_class: up\n")
    with pytest.raises(SpecError) as exc:
        load_spec(spec)
    located = [e for e in errors_of(exc) if e.startswith(f"{spec}:4:") and "ml.positive_class" in e]
    assert located, errors_of(exc)


def test_a_positive_class_yaml_reads_as_a_boolean_must_be_quoted(tmp_path: Path) -> None:
    spec = write(tmp_path, "project: {name: X}\nml:\n  positive_class: yes\n")
    with pytest.raises(SpecError) as exc:
        load_spec(spec)
    assert any("ml.positive_class" in e and "quote the label" in e for e in errors_of(exc))
    quoted = write(tmp_path, "project: {name: X}\nml:\n  positive_class: 'yes'\n")
    assert load_spec(quoted).ml.positive_class == "yes"


@pytest.mark.parametrize(
    ("item", "value"),
    [("project.python=3.10", "3.10"), ("ml.min_score=0.8", 0.8), ("data.source.rows=500", 500),
     ("x.y=010", "010"), ("x.y=true", True)],
)  # fmt: skip
def test_set_keeps_the_text_of_a_number_that_does_not_read_back(item: str, value: object) -> None:
    assert parse_set(item)[1] == value


def test_set_python_3_10_renders_python_3_10() -> None:
    sources = SpecSources({"project": {"name": "X"}})
    sources.set(*parse_set("project.python=3.10"), "--set")
    assert build_spec(sources).project.python == "3.10"


def test_an_unquoted_python_version_in_the_spec_file_says_to_quote_it(tmp_path: Path) -> None:
    spec = write(tmp_path, "project:\n  name: X\n  python: 3.10\n")
    with pytest.raises(SpecError) as exc:
        load_spec(spec)
    assert any(e.startswith(f"{spec}:3:") and "quote the version" in e for e in errors_of(exc))
