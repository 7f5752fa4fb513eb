"""The on-disk cache of compiled template strings and conditions changes no output."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from mlops_template import codecache
from mlops_template.render import evaluate, make_environment, render, render_string
from mlops_template.spec import load_spec


def _files(tree: object) -> dict[str, bytes]:
    return {path: entry.content for path, entry in tree.files.items()}  # type: ignore[attr-defined]


def test_cold_warm_and_no_cache_render_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = load_spec(name="Cache Check", sets=["ml.task=regression", "infra.cloud=gcp"])
    cold = _files(render(spec))
    written = list((tmp_path / "cache").rglob("strings-*.marshal"))
    assert len(written) == 1 and written[0].stat().st_size > 0
    warm = _files(render(spec))
    monkeypatch.setattr(codecache, "attach", lambda env, stamp: None)  # no code cache at all
    plain = _files(render(spec))
    assert cold == warm == plain


def test_a_damaged_cache_file_is_ignored_and_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    spec = load_spec(name="Cache Check")
    first = _files(render(spec))
    (cache,) = (tmp_path / "cache").rglob("strings-*.marshal")
    cache.write_bytes(b"\x00garbage")
    assert _files(render(spec)) == first
    assert cache.read_bytes() != b"\x00garbage"


def test_cached_strings_and_conditions_behave_as_jinja_compiles_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for _ in range(2):  # the second environment reads what the first one saved
        env = make_environment([tmp_path])
        context = {"a": "x", "n": 3, "items": [1, 2]}
        assert render_string(env, "{{ a | upper }}-{{ n + 1 }}", context) == "X-4"
        assert evaluate(env, "n > 2 and 'x' in a", context, "here") is True
        assert evaluate(env, "missing is undefined", context, "here") is True
        codecache.save(env)
    env = make_environment([tmp_path])
    with pytest.raises(jinja2.UndefinedError):
        render_string(env, "{{ nope }}", {})
    # bad syntax: Jinja's own error, as without the cache (and nothing cached for it)
    from mlops_template.errors import TemplateError

    with pytest.raises(TemplateError, match="condition 'n >' failed"):
        evaluate(env, "n >", {"n": 1}, "here")
    with pytest.raises(TemplateError, match="condition 'a b' failed"):
        evaluate(env, "a b", {"a": 1}, "here")


def test_sandboxed_environments_do_not_use_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    env = make_environment([tmp_path], sandboxed=True)
    assert codecache.ATTRIBUTE not in env.__dict__
    assert render_string(env, "{{ a }}{{ a }}", {"a": "y"}) == "yy"


def test_cached_filter_results_are_the_filters_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlops_template.quoting import yaml_str

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    values = ["plain", "it's \"quoted\"", "a: b # c", "tab\tnew\nline", "Données 漢字 \u2028",
              "", " lead", "...", "---", 42, 0.5, True, None, "\x00\x7f\ud7ff"]  # fmt: skip
    for _ in range(2):  # the second environment reads what the first saved
        env = make_environment([tmp_path])
        cached = env.filters["yaml_str"]
        assert cached is not yaml_str
        assert [cached(v) for v in values] == [yaml_str(v) for v in values]
        codecache.save(env)
    env = make_environment([tmp_path])
    assert env.filters["yaml_str"]("tab\tnew\nline") == yaml_str("tab\tnew\nline")
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ missing | yaml_str }}").render()


def test_a_damaged_compiled_template_is_compiled_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "t.jinja").write_text("{{ a }}-{{ a | upper }}\n", encoding="utf-8")
    assert make_environment([tmp_path]).get_template("t.jinja").render(a="x") == "x-X\n"
    (compiled,) = (tmp_path / "cache").rglob("__jinja2_*")
    good = compiled.read_bytes()
    assert make_environment([tmp_path]).get_template("t.jinja").render(a="y") == "y-Y\n"
    for damage in (b"", b"nonsense", good[:40], good[:-5] + b"\xff" * 5):
        compiled.write_bytes(damage)
        assert make_environment([tmp_path]).get_template("t.jinja").render(a="z") == "z-Z\n"
    # a changed template is a changed checksum: never the old code
    (tmp_path / "t.jinja").write_text("{{ a }}!\n", encoding="utf-8")
    assert make_environment([tmp_path]).get_template("t.jinja").render(a="z") == "z!\n"


def test_a_change_of_the_tools_code_is_a_miss_for_every_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool's version alone does not name its code (an editable install, a reinstall from
    a newer commit): a changed filter (its quoting, or the context Jinja passes it) must never
    meet the results or the compiled code of the old one."""
    from mlops_template import cachestore, quoting

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "t.jinja").write_text("{{ a | toml_str }}\n", encoding="utf-8")
    env = make_environment([tmp_path])
    assert env.filters["yaml_str"]("a") == '"a"'
    assert render_string(env, "[{{ a | toml_str }}]", {"a": "x"}) == '["x"]'
    assert env.get_template("t.jinja").render(a="x") == '"x"\n'
    codecache.save(env)

    # the next run has other code (same tool version): its key differs, its filters changed
    monkeypatch.setattr(cachestore, "_code_keys", {})
    monkeypatch.setattr(cachestore, "_compute_code_key", lambda templates: "f" * 64)
    monkeypatch.setitem(quoting.FILTERS, "yaml_str", lambda value: f"<{value}>")

    @jinja2.pass_context
    def toml_str(context: object, value: object) -> str:
        return f"ctx:{value}"

    monkeypatch.setitem(quoting.FILTERS, "toml_str", toml_str)
    env = make_environment([tmp_path])
    assert env.filters["yaml_str"]("a") == "<a>"
    assert render_string(env, "[{{ a | toml_str }}]", {"a": "x"}) == "[ctx:x]"
    assert env.get_template("t.jinja").render(a="x") == "ctx:x\n"
