"""The generated project's model registry (common/registry.py, interfaces.md D) without
installing the project: rendered from the default spec, loaded by path in a bare interpreter
(``-I -S``: no site-packages, so any third-party import would fail), and driven through its
contract: aliases, moves with who/when/why, located refusals, the pre-registry migration; plus
the phases' make targets and conf keys that expose it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlops_template.render import render
from mlops_template.spec import load_spec

SCRIPT = r"""
import importlib.util, json, sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("pkg.common.registry", sys.argv[1])
registry = importlib.util.module_from_spec(spec)
spec.loader.exec_module(registry)
models = Path(sys.argv[2])
out = {}

def err(fn):
    try:
        fn()
    except registry.RegistryError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

# the layout from before the registry: refused with the command that migrates it
(models / "blessed").mkdir(parents=True)
(models / "blessed" / "metadata.json").write_text(json.dumps({"model_version": "v2"}))
(models / "archive" / "v1").mkdir(parents=True)
(models / "archive" / "v1" / "metadata.json").write_text(json.dumps({"model_version": "v1"}))
out["legacy"] = err(lambda: registry.aliases(models))
out["migrated"] = registry.migrate(models, who="tester")
out["after_migrate"] = registry.aliases(models)
out["versions"] = registry.versions(models)
out["champion_dir"] = str(registry.model_dir(models, "champion").relative_to(models))
out["challenge"] = registry.move(models, "challenger", "v1", who="alice", why="canary test")
out["missing"] = err(lambda: registry.move(models, "champion", "v9", who="a", why="x"))
out["bad_name"] = err(lambda: registry.model_dir(models, "../etc"))
out["no_why"] = err(lambda: registry.move(models, "champion", "v1", who="a", why=" "))
out["clear_champion"] = err(lambda: registry.move(models, "champion", None, who="a", why="x"))
out["nothing"] = err(lambda: registry.move(models, "challenger", "v1", who="a", why="x"))
(models / "aliases.json").write_text('{"champion": "v2",\n  oops}\n')
out["broken"] = err(lambda: registry.aliases(models))
out["history"] = registry.history(models)
out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in {"yaml", "numpy", "pydantic"})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    tree = render(load_spec(None, sets=[], phases=None, name="Registry Check"))
    return {path: file.content.decode("utf-8", "replace") for path, file in tree.files.items()}


def test_registry_module_is_stdlib_only_and_keeps_its_contract(
    rendered: dict[str, str], tmp_path: Path
) -> None:
    module = tmp_path / "registry.py"
    module.write_text(rendered["src/registry_check/common/registry.py"])
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", SCRIPT, str(module), str(tmp_path / "models")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["modules"] == []
    assert out["legacy"].startswith("LegacyLayoutError") and "ml migrate" in out["legacy"]
    assert out["migrated"]["event"] == "migrate" and out["migrated"]["versions"] == ["v1", "v2"]
    assert out["after_migrate"] == {"champion": "v2", "challenger": None}
    assert out["versions"] == ["v1", "v2"] and out["champion_dir"] == "versions/v2"
    challenge = out["challenge"]
    assert (challenge["who"], challenge["why"], challenge["event"]) == (
        "alice",
        "canary test",
        "move",
    )
    assert challenge["changes"] == [{"alias": "challenger", "from": None, "to": "v1"}]
    assert challenge["when"].endswith("Z")
    assert "'v9' not found" in out["missing"] and "v1, v2" in out["missing"]
    assert "not a model version" in out["bad_name"]
    assert "needs a reason" in out["no_why"]
    assert "cannot be cleared" in out["clear_champion"]
    assert "nothing moves" in out["nothing"]
    assert "aliases.json:2:" in out["broken"]
    assert [e["event"] for e in out["history"]] == ["migrate", "move"]
    assert not (tmp_path / "models" / "blessed").exists()


def test_make_targets_and_conf_expose_the_registry(rendered: dict[str, str]) -> None:
    makefile = rendered["Makefile"]
    for target, command in [("models", "ml list"), ("promote", "ml promote"),
                            ("rollback", "ml rollback")]:  # fmt: skip
        assert f"\n{target}: " in makefile and command in makefile
    conf = yaml.safe_load(rendered["conf/base.yaml"])
    comparison = conf["monitoring"]["comparison"]
    assert comparison["auto_rollback"] is True and comparison["auto_promote"] is False
    assert 0.5 <= comparison["confidence"] < 1 and comparison["min_samples"] >= 2
    assert conf["serving"]["strategy"] == "single"
    # the artifacts CI hands on carry the registry, not a models/blessed folder
    workflow = rendered[".github/workflows/ml-pipeline.yml"]
    assert "models/aliases.json" in workflow and "--name blessed-model --dir models " in workflow
