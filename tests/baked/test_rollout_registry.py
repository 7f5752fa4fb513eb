"""Baked project: the model registry and the live champion/challenger comparison, end to end.

One churn bake, on two sources of its own (customers CSV, orders JSON lines, joined in its
features.py) through the duckdb engine. `make pipeline` blesses the champion. A second model is
trained on shifted data (gold's target inverted: the concept moved) and, with `serving.strategy:
canary`, the gate makes it the challenger. The real service then answers on 127.0.0.1 with a
50/50 split by customer id, late labels (the true outcomes from silver) come back through `POST
/feedback`, and `python -m <pkg>.monitoring` (`make monitor`) finds the challenger worse with
confidence, rolls it back (exit 4), says why in the report, and `make models` shows the move.
Then the same with `shadow`: clients only ever get champion answers, the log holds both
predictions, and the challenger is rolled back again on the paired comparison.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml

from .champion import champion_rel
from .conftest import Baked, BakeFn
from .test_serving_monitoring import call, serving
from .two_sources import SOURCES, own_data

SHARE = 0.5
RECORDS = 900


def _aliases(baked: Baked) -> dict[str, Any]:
    return json.loads((baked.path / "models" / "aliases.json").read_text())


def _configure(baked: Baked, strategy: str) -> None:
    """conf/dev.yaml (the default environment): the rollout strategy and the comparison's sample."""
    dev = baked.path / "conf" / "dev.yaml"
    conf = yaml.safe_load(dev.read_text()) or {}
    conf["serving"] = {**conf.get("serving", {}), "strategy": strategy,
                       "rollout": {"challenger_share": SHARE, "key": "customer_id"}}  # fmt: skip
    monitoring = conf.get("monitoring") or {}
    conf["monitoring"] = {**monitoring, "comparison": {"min_samples": 200, "bootstrap": 300}}
    dev.write_text(yaml.safe_dump(conf, sort_keys=False))


def _records(baked: Baked) -> list[dict[str, Any]]:
    """Raw main-table records (what a client sends) with their true outcome (``_truth``)."""
    code = f"""
import json, polars as pl
meta = json.load(open("{champion_rel(baked.path)}/metadata.json"))
inputs = [i["name"] for i in meta["inputs"]]
silver = pl.read_parquet(f"data/silver/{{meta['main_table']}}.parquet").sample({RECORDS}, seed=11)
rows = silver.select([meta["id_column"], *inputs, pl.col(meta["target"]).alias("_truth")])
print(json.dumps(rows.to_dicts()))
"""
    return list(json.loads(baked.python(code).stdout))


def _send(port: int, records: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """POST the records in batches (each with its request id); the answers in order."""
    answers: list[dict[str, Any]] = []
    for start in range(0, len(records), 100):
        batch = [{k: v for k, v in r.items() if k != "_truth"} | {"request_id": f"{tag}-{start + i}"}
                 for i, r in enumerate(records[start : start + 100])]  # fmt: skip
        status, body = call(port, "POST", "/predict", batch)
        assert status == 200, body
        answers.extend(body["predictions"])
    return answers


def _feedback(port: int, answers: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    """The late labels: the true outcome of every served request, through POST /feedback."""
    for answer, record in zip(answers, records, strict=True):
        status, body = call(port, "POST", "/feedback",
                            {"request_id": answer["request_id"], "label": record["_truth"]})  # fmt: skip
        assert status == 202, body


def _fresh_traffic(baked: Baked) -> None:
    """Start a new experiment: the previous one's request log and labels are archived."""
    archive = baked.path / "archive"
    archive.mkdir(exist_ok=True)
    for path in [baked.path / "logs" / "requests.jsonl", baked.path / "data/labels/feedback.csv"]:
        if path.exists():
            path.rename(archive / f"{len(list(archive.iterdir()))}-{path.name}")


def _monitor(baked: Baked) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    done = baked.run(".venv/bin/python", "-m", f"{baked.package}.monitoring", check=False)
    report = json.loads((baked.path / "reports" / "monitoring.json").read_text())
    return done, report


@pytest.fixture(scope="module")
def two_models(bake: BakeFn) -> tuple[Baked, str, str]:
    """The churn project with a champion (make pipeline) and a challenger trained on shifted
    data, blessed under serving.strategy canary. Its data: two sources of its own (a CSV file
    and JSON lines, joined in its features.py) through the duckdb engine."""
    baked = bake("churn", sets=[*SOURCES, "data.engine=duckdb"])
    own_data(baked)
    baked.make("pipeline")
    for report in ("data-quality.json", "data-quality-orders.json"):
        assert json.loads((baked.path / "reports" / report).read_text())["engine"] == "duckdb"
    champion = _aliases(baked)["champion"]
    _configure(baked, "canary")
    # the concept moved: gold's target inverted (gold keeps its schema and contract)
    gold = baked.path / "data" / "gold" / "features.parquet"
    original = gold.read_bytes()
    baked.python(
        "import polars as pl\n"
        "g = pl.read_parquet('data/gold/features.parquet')\n"
        "g = g.with_columns((1 - pl.col('churned')).alias('churned'))\n"
        "g.write_parquet('data/gold/features.parquet')\n"
    )
    for step in ("train", "evaluate", "explain", "package", "gate"):
        baked.run(".venv/bin/python", "-m", f"{baked.package}.ml", step)
    aliases = _aliases(baked)
    assert aliases["champion"] == champion and aliases["challenger"] not in (None, champion)
    gold.write_bytes(original)  # the real outcomes again (the labels below come from silver)
    return baked, champion, str(aliases["challenger"])


def test_canary_50_50_then_the_worse_challenger_is_rolled_back(
    two_models: tuple[Baked, str, str],
) -> None:
    baked, champion, challenger = two_models
    records = _records(baked)
    with serving(baked) as port:
        status, ready = call(port, "GET", "/metadata")
        assert status == 200, ready
        answers = _send(port, records, "canary")
        _feedback(port, answers, records)
    answered = [a["model_version"] for a in answers]
    assert set(answered) == {champion, challenger}
    share = answered.count(challenger) / len(answered)
    assert 0.4 < share < 0.6, share  # 50/50 by a hash of the customer id
    # the same customer always gets the same model: send a few again
    with serving(baked) as port:
        again = _send(port, records[:50], "again")
    assert [a["model_version"] for a in again] == answered[:50]
    log = [json.loads(x) for x in (baked.path / "logs/requests.jsonl").read_text().splitlines()]
    assert {r["model_version"] for r in log} == {champion, challenger}

    done, report = _monitor(baked)
    assert done.returncode == 4, done.stdout + done.stderr
    comparison = report["comparison"]
    assert comparison["mode"] == "split" and comparison["decision"] == "rollback"
    assert comparison["interval"][1] < 0 and comparison["difference"] < 0
    assert "worse with 95% confidence" in comparison["reason"]
    assert comparison["moved"]["changes"] == [
        {"alias": "challenger", "from": challenger, "to": None}
    ]
    assert _aliases(baked) == {"champion": champion, "challenger": None}
    page = (baked.path / "reports/monitoring.html").read_text()
    assert "Champion vs challenger" in page and "worse with 95% confidence" in page
    shown = baked.make("models")
    assert "rollback" in shown.stdout and "via make monitor" in shown.stdout
    assert f"challenger {challenger} -> -" in shown.stdout
    assert "worse with 95% confidence" in shown.stdout


def test_shadow_answers_with_the_champion_and_rolls_back_the_challenger(
    two_models: tuple[Baked, str, str],
) -> None:
    baked, champion, challenger = two_models
    if _aliases(baked)["challenger"] is None:  # the canary test withdrew it: test it again
        baked.run(".venv/bin/python", "-m", f"{baked.package}.ml", "promote", challenger,
                  "--alias", "challenger", "--why", "shadow test")  # fmt: skip
    _configure(baked, "shadow")
    _fresh_traffic(baked)
    records = _records(baked)
    with serving(baked) as port:
        answers = _send(port, records, "shadow")
        _feedback(port, answers, records)
    assert {a["model_version"] for a in answers} == {champion}  # clients only see the champion
    log = [json.loads(x) for x in (baked.path / "logs/requests.jsonl").read_text().splitlines()]
    assert len(log) == RECORDS and {r["model_version"] for r in log} == {champion}
    assert all(r["shadow"]["model_version"] == challenger and "prediction" in r["shadow"]
               for r in log)  # fmt: skip

    done, report = _monitor(baked)
    assert done.returncode == 4, done.stdout + done.stderr
    comparison = report["comparison"]
    assert comparison["mode"] == "shadow" and comparison["decision"] == "rollback"
    assert comparison["labelled"] == {"champion": RECORDS, "challenger": RECORDS}
    assert _aliases(baked) == {"champion": champion, "challenger": None}
    history = [
        json.loads(x) for x in (baked.path / "models/registry.jsonl").read_text().splitlines()
    ]
    assert history[-1]["event"] == "rollback" and "make monitor" in history[-1]["who"]
    assert "worse with 95% confidence" in history[-1]["why"]
    # with no challenger left, the next run is healthy and moves nothing
    done, report = _monitor(baked)
    assert done.returncode == 0 and report["comparison"] is None
    assert _aliases(baked)["champion"] == champion
