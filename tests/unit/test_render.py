"""The renderer, on a small template root built in each test (independent of the real templates)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlops_template.errors import TemplateError
from mlops_template.phases import load_catalogue
from mlops_template.render import PRISTINE_FILE, STATE_FILE, read_pristine, render
from mlops_template.spec import load_spec

MANIFEST = """name: {name}
description: test phase {name}
owner: {owner}
requires: {requires}
default: true
owns: ["/src/{{{{ package }}}}/{name}/"]
make_targets:
  - name: {name}-run
    help: run {name}
    recipe: ["$(PY) -m $(PACKAGE).{name}"]
dependencies:
  - dep-{name}
  - value: only-when-duckdb
    when: "data.engine == 'duckdb'"
files_when:
  "optional.txt": "data.engine == 'duckdb'"
"""


def make_root(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    base = root / "base"
    (base / "src" / "{{ package }}").mkdir(parents=True)
    (base / "src" / "{{ package }}" / "__init__.py.jinja").write_text(
        "NAME = {{ project.name | py_str }}\n", encoding="utf-8"
    )
    (base / "binary.bin").write_bytes(b"\x00\x01{{ not rendered }}\xff")
    (base / "plain.txt").write_text("{{ package }} stays literal\n", encoding="utf-8")
    (base / "conf").mkdir()
    (base / "conf" / "{{ env }}.yaml.jinja").write_text("env: {{ env }}\n", encoding="utf-8")
    (base / "{% if data.engine == 'spark' %}spark.txt{% endif %}").write_text("spark\n")
    script = base / "run.sh"
    script.write_text("#!/bin/sh\necho ok\n", encoding="utf-8")
    script.chmod(0o755)
    (base / "deps.txt.jinja").write_text(
        "{% for d in dependencies %}{{ d }}\n{% endfor %}", encoding="utf-8"
    )
    for name, owner, requires in (("data", "data_engineer", "[]"),
                                  ("training", "data_scientist", "[data]")):  # fmt: skip
        folder = root / "phases" / name
        (folder / "files").mkdir(parents=True)
        (folder / "phase.yaml").write_text(
            MANIFEST.format(name=name, owner=owner, requires=requires), encoding="utf-8"
        )
        (folder / "files" / f"{name}.txt").write_text(f"{name}\n", encoding="utf-8")
    (root / "phases" / "data" / "files" / "optional.txt").write_text("duck\n", encoding="utf-8")
    load_catalogue.cache_clear()
    return root


def spec_for(*sets: str, phases: list[str] | None = None, root: Path) -> object:
    return load_spec(name="Demo 'Project'", sets=list(sets), phases=phases,
                     catalogue=load_catalogue(root))  # fmt: skip


def test_jinja_files_render_and_others_copy_byte_for_byte(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    tree = render(spec_for("phases=[data, training]", root=root), root=root)  # type: ignore[arg-type]
    assert tree.text("src/demo_project/__init__.py") == "NAME = \"Demo 'Project'\"\n"
    assert tree.files["binary.bin"].content == b"\x00\x01{{ not rendered }}\xff"
    assert tree.text("plain.txt") == "{{ package }} stays literal\n"
    assert tree.files["run.sh"].executable and not tree.files["plain.txt"].executable
    assert {"data.txt", "training.txt"} <= set(tree)


def test_per_environment_paths_and_empty_segments(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    spec = spec_for("infra.environments=[dev, qa]", root=root)
    tree = render(spec, root=root)  # type: ignore[arg-type]
    assert tree.text("conf/qa.yaml") == "env: qa\n"
    assert "conf/staging.yaml" not in tree
    assert "spark.txt" not in tree
    assert "spark.txt" in render(spec_for("data.engine=spark", root=root), root=root)  # type: ignore[arg-type]


def test_manifests_compose_conditions(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    plain = render(spec_for(phases=["data"], root=root), root=root)  # type: ignore[arg-type]
    assert plain.text("deps.txt") == "dep-data\n"
    assert "optional.txt" not in plain and "training.txt" not in plain
    duck = render(spec_for("data.engine=duckdb", phases=["data", "training"], root=root), root=root)  # type: ignore[arg-type]
    assert duck.text("deps.txt") == "dep-data\nonly-when-duckdb\ndep-training\n"
    assert duck.text("optional.txt") == "duck\n"


def test_strict_undefined_names_the_template(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    (root / "base" / "broken.txt.jinja").write_text("{{ no_such_value }}\n", encoding="utf-8")
    with pytest.raises(TemplateError, match=r"base/broken.txt.jinja: UndefinedError"):
        render(spec_for(root=root), root=root)  # type: ignore[arg-type]


def test_symlinks_in_templates_are_refused(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    os.symlink("/etc/passwd", root / "base" / "passwd")
    with pytest.raises(TemplateError, match="symlinks are not allowed"):
        render(spec_for(root=root), root=root)  # type: ignore[arg-type]


def test_state_and_pristine_record_the_render(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    spec = spec_for(root=root)
    tree = render(spec, root=root)  # type: ignore[arg-type]
    state = json.loads(tree.text(STATE_FILE))
    assert state["phases"] == list(spec.phases)  # type: ignore[attr-defined]
    assert state["files"]["plain.txt"] == tree.files["plain.txt"].sha256
    pristine = read_pristine(tree.text(PRISTINE_FILE))
    for path in tree:
        if path in (STATE_FILE, PRISTINE_FILE):
            continue
        assert pristine.files[path] == tree.files[path], path
    assert render(spec, root=root).files == tree.files  # type: ignore[arg-type]  # deterministic
