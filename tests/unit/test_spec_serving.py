"""serving.strategy: the values, the rules (REST only, serving phase), located errors, and the
conf it renders (serving.strategy + serving.rollout)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_template.errors import SpecError
from mlops_template.render import render
from mlops_template.spec import load_spec


@pytest.mark.parametrize("strategy", ["single", "shadow", "canary", "ab"])
def test_every_strategy_is_accepted(strategy: str) -> None:
    assert (
        load_spec(name="Churn", sets=[f"serving.strategy={strategy}"]).serving.strategy == strategy
    )


def test_the_default_is_single() -> None:
    assert load_spec(name="Churn").serving.strategy == "single"


def test_an_unknown_strategy_is_located_in_the_file(tmp_path: Path) -> None:
    spec = tmp_path / "mlops.yaml"
    spec.write_text("project: {name: Churn}\nserving:\n  strategy: blue-green\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        load_spec(spec)
    [issue] = exc.value.issues
    assert issue.path == "serving.strategy"
    assert issue.render().startswith(f"{spec}:3:13 serving.strategy")
    assert "'shadow'" in issue.message and "'canary'" in issue.message


@pytest.mark.parametrize(
    ("sets", "fragment"),
    [
        (["serving.mode=batch", "serving.strategy=canary"], "set serving.mode: rest"),
        (["phases=[data, training]", "serving.strategy=shadow"], "needs the serving phase"),
    ],
)
def test_strategies_need_the_rest_service(sets: list[str], fragment: str) -> None:
    with pytest.raises(SpecError) as exc:
        load_spec(name="Churn", sets=sets)
    matching = [i for i in exc.value.issues if i.path == "serving.strategy"]
    assert matching and fragment in matching[0].message, [i.render() for i in exc.value.issues]


def test_single_with_batch_scoring_is_fine() -> None:
    assert load_spec(name="Churn", sets=["serving.mode=batch"]).serving.strategy == "single"


@pytest.mark.parametrize(
    ("strategy", "share", "key"),
    [("single", 0.1, "customer_id"), ("canary", 0.1, "customer_id"), ("ab", 0.5, "customer_id")],
)
def test_the_conf_renders_strategy_and_rollout(strategy: str, share: float, key: str) -> None:
    spec = load_spec(name="Churn", sets=[f"serving.strategy={strategy}"])
    conf = yaml.safe_load(render(spec).files["conf/base.yaml"].content)
    assert conf["serving"]["strategy"] == strategy
    assert conf["serving"]["rollout"] == {
        "challenger_share": share,
        "key": key,
        "reload_seconds": 5,
    }


def test_without_an_id_column_requests_are_routed_by_request_id() -> None:
    spec = load_spec(
        name="Cancer", sets=["data.source=sklearn:breast_cancer", "serving.strategy=canary"]
    )
    conf = yaml.safe_load(render(spec).files["conf/base.yaml"].content)
    assert conf["serving"]["rollout"]["key"] is None
