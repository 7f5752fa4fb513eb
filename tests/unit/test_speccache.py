"""The validated-spec and catalogue cache gives exactly what validation gives, or nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from mlops_template import cachestore, phases, speccache
from mlops_template.errors import SpecError, UsageError
from mlops_template.limits import MAX_INPUT_BYTES
from mlops_template.phases import _load_catalogue, templates_dir
from mlops_template.render import render
from mlops_template.spec import Spec, load_spec


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MLOPS_NO_CACHE", raising=False)


def entries(tmp_path: Path, kind: str = "spec") -> list[Path]:
    return sorted((tmp_path / "cache").rglob(f"{kind}-*.json"))


def assert_same_attributes(real: Any, view: Any, where: str = "spec") -> None:
    """Every field and property of every model: the same value and type through the view."""
    if isinstance(real, BaseModel):
        cls = type(real)
        names = list(cls.model_fields)
        for klass in cls.__mro__:
            if klass is BaseModel or not issubclass(klass, BaseModel):
                break
            names += [n for n, a in vars(klass).items() if isinstance(a, property)]
        assert names
        for name in names:
            assert_same_attributes(getattr(real, name), getattr(view, name), f"{where}.{name}")
    elif isinstance(real, list):
        assert type(view) is list and len(view) == len(real), where
        for i, (a, b) in enumerate(zip(real, view, strict=True)):
            assert_same_attributes(a, b, f"{where}.{i}")
    elif isinstance(real, dict):
        assert type(view) is dict and list(view) == list(real), where
        for key in real:
            assert_same_attributes(real[key], view[key], f"{where}.{key}")
    else:
        assert type(view) is type(real) and view == real, (where, real, view)


CASES: list[dict[str, Any]] = [
    {"name": "Bench Project"},
    {"name": "Données Réelles", "sets": ["ml.task=regression", "infra.cloud=gcp"]},
    {
        "name": "Iris",
        "sets": ["data.source=sklearn:iris", "ml.metric=accuracy", "roles.ml_engineer=null"],
        "phases": ["data", "training"],
    },
    {
        "name": "Files",
        "sets": [
            "data.source=csv:data/raw/x.csv",
            "ml.target=y",
            "data.date_columns=[day]",
            "serving.mode=batch",
        ],
    },
]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_cached_spec_is_the_validated_spec(case: dict[str, Any], tmp_path: Path) -> None:
    real = load_spec(**case)
    first = speccache.load_spec(None, **case)
    assert isinstance(first, Spec)  # a miss validates and stores
    assert len(entries(tmp_path)) == 1
    view = speccache.load_spec(None, **case)
    assert isinstance(view, speccache.SpecView)
    assert_same_attributes(real, view)
    assert view.model_dump(mode="json") == real.model_dump(mode="json")
    assert view.package == real.package
    # what a project is made of: byte for byte the same tree from the view (from one copy of
    # the templates, which other work may be editing meanwhile)
    root = tmp_path / "templates"
    shutil.copytree(templates_dir(), root, ignore=shutil.ignore_patterns("__pycache__"))
    expected = {p: (e.content, e.executable) for p, e in render(real, root=root).files.items()}
    got = {p: (e.content, e.executable) for p, e in render(view, root=root).files.items()}
    assert got == expected, sorted(p for p in expected if got.get(p) != expected[p])
    with pytest.raises(AttributeError):
        view.ml.metric = "f1"


def test_any_change_of_input_or_code_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_file = tmp_path / "mlops.yaml"
    spec_file.write_text("project: {name: Demo}\n", encoding="utf-8")
    speccache.load_spec(spec_file)
    assert isinstance(speccache.load_spec(spec_file), speccache.SpecView)
    others: list[tuple[str | None, list[str], list[str] | None]] = [
        ("Other", [], None),
        (None, ["ml.metric=f1"], None),
        (None, [], ["data"]),
    ]
    for name, sets, phase_list in others:
        key = speccache.input_key(spec_file.read_bytes(), name, sets, phase_list)
        assert speccache.cached_spec(key) is None
    # one byte more in the file (a comment): validated again
    spec_file.write_text("project: {name: Demo}\n#\n", encoding="utf-8")
    assert isinstance(speccache.load_spec(spec_file), Spec)
    # lint keeps its own outcomes (it reads spec_version itself)
    raw = spec_file.read_bytes()
    assert speccache.cached_spec(speccache.input_key(raw, None, (), None, purpose="lint")) is None
    # another version of the code: every entry is a miss
    monkeypatch.setattr(cachestore, "_code_keys", {templates_dir(): "0" * 64})
    assert isinstance(speccache.load_spec(spec_file), Spec)


def test_the_code_key_covers_the_package_the_manifests_and_the_libraries() -> None:
    key = cachestore._compute_code_key(templates_dir())
    assert key is not None and len(key) == 64
    versions = cachestore._library_versions()
    assert versions is not None
    assert [v.split("-")[0] for v in versions] == ["pydantic", "pydantic_core", "pyyaml"]


def test_damaged_foreign_or_oversized_entries_are_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    speccache.load_spec(None, name="Demo")
    (entry,) = entries(tmp_path)
    good = entry.read_bytes()
    stored = json.loads(good)
    bad_entries = [
        b"\x00garbage",
        b"[1, 2]",
        json.dumps({**stored, "key": stored["key"].replace("Demo", "Other")}).encode(),
        json.dumps({**stored, "code": "0" * 64}).encode(),
        json.dumps({**stored, "format": 0}).encode(),
        json.dumps({**stored, "values": {"project": ["x", 1]}}).encode(),
        json.dumps({**stored, "yaml": 3}).encode(),
        good + b" " * cachestore.MAX_ENTRY_BYTES,
        b"[" * 100_000,
    ]
    for bad in bad_entries:
        entry.write_bytes(bad)
        spec = speccache.load_spec(None, name="Demo")
        assert isinstance(spec, Spec), bad[:60]  # validated again, as without a cache
        assert spec.project.name == "Demo"
    entry.write_bytes(good)
    assert isinstance(speccache.load_spec(None, name="Demo"), speccache.SpecView)
    monkeypatch.setenv("MLOPS_NO_CACHE", "1")
    assert isinstance(speccache.load_spec(None, name="Demo"), Spec)


def test_invalid_specs_are_never_stored(tmp_path: Path) -> None:
    spec_file = tmp_path / "mlops.yaml"
    spec_file.write_text("project: {name: Demo}\nml: {metric: rmse}\n", encoding="utf-8")
    messages = []
    for _ in range(2):
        with pytest.raises(SpecError) as caught:
            speccache.load_spec(spec_file)
        messages.append(caught.value.render())
    assert messages[0] == messages[1] and "mlops.yaml:2" in messages[0]
    assert entries(tmp_path) == []


def test_the_size_limit_holds_after_a_hit(tmp_path: Path) -> None:
    spec_file = tmp_path / "mlops.yaml"
    spec_file.write_text("project: {name: Demo}\n", encoding="utf-8")
    speccache.load_spec(spec_file)
    assert isinstance(speccache.load_spec(spec_file), speccache.SpecView)
    spec_file.write_bytes(b"project: {name: Demo}\n" + b"#" * MAX_INPUT_BYTES)
    with pytest.raises(UsageError) as caught:
        speccache.load_spec(spec_file)
    assert "MiB" in caught.value.render()


def test_a_spec_with_a_value_json_cannot_hold_is_not_stored(tmp_path: Path) -> None:
    spec = load_spec(name="Demo")
    with pytest.raises(cachestore.Uncacheable):
        speccache._encode(Path("x"))
    with pytest.raises(cachestore.Uncacheable):
        speccache._encode(float("nan"))
    with pytest.raises(cachestore.Uncacheable):
        speccache._encode({1: "a"})
    speccache.store_spec("k", spec)
    assert len(entries(tmp_path)) == 1  # a plain spec is stored


def test_the_cached_catalogue_is_the_parsed_one(tmp_path: Path) -> None:
    parsed = _load_catalogue(templates_dir())
    cachestore.store_catalogue(templates_dir(), parsed, phases.__name__)
    assert len(entries(tmp_path, "catalogue")) == 1
    cached = cachestore.cached_catalogue(templates_dir(), vars(phases))
    assert cached is not None and list(cached) == list(parsed)
    for name, phase in parsed.items():
        again = cached[name]
        assert type(again) is type(phase)
        for field in dataclasses.fields(phase):  # every field, `compare=False` ones too
            a, b = getattr(phase, field.name), getattr(again, field.name)
            assert a == b and type(a) is type(b), (name, field.name)
        assert [t.where for t in phase.make_targets] == [t.where for t in again.make_targets]
    (entry,) = entries(tmp_path, "catalogue")
    stored = json.loads(entry.read_bytes())
    stored["phases"][1]["data"][1][0] = "Path"  # a class that is not a phases dataclass
    entry.write_text(json.dumps(stored), encoding="utf-8")
    assert cachestore.cached_catalogue(templates_dir(), vars(phases)) is None


def test_lint_takes_a_cached_spec_only_for_the_same_bytes(tmp_path: Path) -> None:
    from mlops_template.lint.project import Project

    root = tmp_path / "p"
    root.mkdir()
    spec_file = root / "mlops.yaml"
    spec_file.write_text("spec_version: 1\nproject: {name: Demo}\n", encoding="utf-8")
    assert isinstance(Project(root).spec_load.spec, Spec)  # a miss: validated, stored
    assert isinstance(Project(root).spec_load.spec, speccache.SpecView)
    spec_file.write_bytes(b"spec_version: 1\nproject: {name: Demo}\n" + b"#" * MAX_INPUT_BYTES)
    load = Project(root).spec_load
    assert load.spec is None and "over the limit" in load.issues[0].message
    spec_file.write_text("spec_version: 2\nproject: {name: Demo}\n", encoding="utf-8")
    for _ in range(2):
        load = Project(root).spec_load
        assert load.spec is None and load.bad_version is not None and not load.issues


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners and modes")
def test_a_cache_folder_others_can_write_or_swap_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries decide a spec without validating it, and the strings file holds code that runs:
    a folder of another user (a shared XDG_CACHE_HOME) or a symlink planted in its place is not
    used, and ours are for us alone (as Jinja's own default cache does)."""
    from mlops_template import codecache

    base = tmp_path / "cache" / "mlops-template"
    assert cachestore.folder() is not None and codecache.cache_folder() is not None
    for target in (base, *base.iterdir()):
        assert target.stat().st_mode & 0o077 == 0, target  # made for us alone
        target.chmod(0o777)
        assert cachestore.folder() is not None and codecache.cache_folder() is not None
        assert target.stat().st_mode & 0o077 == 0, target  # ours: made private again
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)  # every folder is someone else's
    assert cachestore.folder() is None and codecache.cache_folder() is None
    assert isinstance(speccache.load_spec(None, name="Demo"), Spec)
    monkeypatch.setattr(os, "getuid", lambda: uid)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (spec_folder,) = [f for f in base.iterdir() if f.name.startswith("specs-")]
    spec_folder.rmdir()
    spec_folder.symlink_to(elsewhere, target_is_directory=True)
    assert cachestore.folder() is None
    assert isinstance(speccache.load_spec(None, name="Demo"), Spec)
    assert list(elsewhere.iterdir()) == []
