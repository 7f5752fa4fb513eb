"""Hostile templates and specs (issue 21): each is refused with exit 2 and a located message,
writes nothing (in the project or outside it), runs none of its code, and stays within bounded
memory. The fixtures are in tests/data/hostile/ (see its README); memory cases run the CLI in a
subprocess under a 1 GiB address-space limit so a regression is a crash, not a slow machine.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2
import pytest
from test_add_phase_update import GIT_ENV, mlops

from mlops_template.apply import apply_new
from mlops_template.limits import MAX_INPUT_BYTES, MAX_SANDBOX_LENGTH, MAX_YAML_NODES
from mlops_template.render import confinement_problem, render
from mlops_template.sandbox import BoundedSandbox
from mlops_template.spec import load_spec

HOSTILE = Path(__file__).parent / "data" / "hostile"
GIB = 1024**3


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("golden") / "demo"
    apply_new(render(load_spec(name="Demo Project", phases=["data", "training"])), dest)
    return dest


@pytest.fixture(autouse=True)
def _git_writes_no_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """`git status` may rewrite .git/index to refresh it; keep .git byte-identical."""
    monkeypatch.setenv("GIT_OPTIONAL_LOCKS", "0")


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file a hostile template's code creates if it ever runs."""
    path = tmp_path / "HOSTILE-CODE-RAN"
    monkeypatch.setenv("MLOPS_HOSTILE_MARKER", str(path))
    return path


@pytest.fixture
def project(golden: Path, tmp_path: Path) -> Path:
    """A copy of the golden project, committed to git (so a hook would run on `git commit`)."""
    dest = tmp_path / "work" / "demo"
    shutil.copytree(golden, dest, symlinks=True)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "generated")
    return dest


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})  # fmt: skip


def fixture(name: str, tmp_path: Path, as_name: str | None = None) -> Path:
    """A copy of a hostile fixture folder (so tests can vary it and it is never written to)."""
    dest = tmp_path / "templates" / (as_name or name)
    shutil.copytree(HOSTILE / name, dest)
    return dest


def everything(root: Path) -> dict[str, str]:
    """Every file under ``root`` (``.git`` included: a hook there is the attack)."""
    return {
        p.relative_to(root).as_posix(): f"-> {os.readlink(p)}" if p.is_symlink()
        else p.read_bytes().hex()
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }  # fmt: skip


def refused(project: Path, *args: str, message: str) -> str:
    """Run ``mlops *args``; assert exit 2 with ``message`` and nothing written anywhere."""
    outside = project.parent.parent
    before, around = everything(project), everything(outside)
    code, out = mlops(*args)
    assert code == 2, out
    assert message in out, out
    assert "Traceback" not in out
    assert everything(project) == before
    assert everything(outside) == around
    return out


def commit_runs_no_hook(project: Path, marker: Path) -> None:
    """The next commit in the project runs no hook the template tried to install."""
    (project / "README.md").write_text((project / "README.md").read_text() + "\nedited\n")
    git(project, "commit", "-q", "-am", "an edit")
    assert not marker.exists(), "a template's git hook ran on commit"


# ------------------------------------------------------------------------------------------
# 1. nothing a template renders may land under .git/ (nor .mlops/)
# ------------------------------------------------------------------------------------------

#: how the `.git` segment is spelled in the template: as shipped (renders to .git), and literal
#: variants a case-insensitive or HFS+ file system takes for `.git`
GIT_SPELLINGS = ["{{ '.gi' ~ 't' }}", ".git", ".GIT", ".Git", ".g\u200cit", "GIT~1", ".git."]


def _respell(folder: Path, spelling: str) -> Path:
    shipped = next(folder.rglob("{{ '.gi' ~ 't' }}"))
    target = shipped.with_name(spelling)
    if target != shipped:
        shipped.rename(target)
    return target / "hooks" / "pre-commit"


@pytest.mark.parametrize("spelling", GIT_SPELLINGS)
def test_custom_phase_cannot_install_a_git_hook(
    project: Path, tmp_path: Path, marker: Path, spelling: str
) -> None:
    folder = fixture("git-hook-phase", tmp_path)
    hook = _respell(folder, spelling)
    out = refused(project, "add-phase", str(folder), "--project", str(project),
                  message="inside a .git folder")  # fmt: skip
    assert str(hook) in out.replace("\n", "")  # names the template file
    commit_runs_no_hook(project, marker)


@pytest.mark.parametrize("spelling", GIT_SPELLINGS)
def test_cookiecutter_template_cannot_install_a_git_hook(
    project: Path, tmp_path: Path, marker: Path, spelling: str
) -> None:
    folder = fixture("git-hook-cookiecutter", tmp_path, "hook-kit")
    hook = _respell(folder, spelling)
    out = refused(project, "add-phase", str(folder), "--project", str(project),
                  message="inside a .git folder")  # fmt: skip
    assert str(hook) in out.replace("\n", "")
    commit_runs_no_hook(project, marker)


@pytest.mark.parametrize("spelling", [".mlops", ".MLOPS", ".Mlops"])
def test_templates_cannot_write_the_mlops_record(
    project: Path, tmp_path: Path, spelling: str
) -> None:
    folder = fixture("git-hook-cookiecutter", tmp_path, "record-kit")
    _respell(folder, spelling)
    refused(project, "add-phase", str(folder), "--project", str(project),
            message="which mlops manages itself")  # fmt: skip


def test_confinement_rules() -> None:
    for path in [".git/config", "a/.git/hooks/x", ".GIT/x", ".Git/hooks/x", "GIT~1/x",
                 ".git /x", ".g\u200dit/x", "../x", "/etc/x", "a//b", ".mlops/state.json",
                 ".MLOPS/x", "mlops.yaml", "MLOPS.YAML"]:  # fmt: skip
        assert confinement_problem(path), path
    for path in [".gitignore", ".github/workflows/ci.yml", "docs/.git-notes", "a/mlops.yaml",
                 ".gitlab-ci.yml", "src/git/x.py"]:  # fmt: skip
        assert confinement_problem(path) is None, path


# ------------------------------------------------------------------------------------------
# 2. a name is rendered once: what was checked is what is written
# ------------------------------------------------------------------------------------------


def script_random(monkeypatch: pytest.MonkeyPatch, draws: list[str]) -> None:
    """Jinja's ``random`` filter returns ``draws`` in order, then 'inside'."""
    queue = list(draws)
    monkeypatch.setattr(random, "choice", lambda seq: queue.pop(0) if queue else "inside")


@pytest.fixture
def tmpdir_under(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary folder the tool renders cookiecutter templates in, inside tmp_path."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return folder


def test_a_random_name_is_written_as_it_was_checked(
    project: Path, tmp_path: Path, tmpdir_under: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two nested folders named ``{{ ['inside', '..'] | random }}``. The old code rendered each
    name once to check it and again to write: draws 0-1 ('inside', 'inside') passed the check,
    2-4 made the folders, and the file went where draws 5-6 ('..', '..') put it: two levels
    above cookiecutter's output folder, i.e. into $TMPDIR, outside the project, exit 0."""
    folder = fixture("random-name-cookiecutter", tmp_path, "random-kit")
    script_random(monkeypatch, ["inside"] * 5 + ["..", ".."])
    code, out = mlops("add-phase", str(folder), "--project", str(project))
    assert not (tmpdir_under / "escaped.txt").exists(), "a name rendered twice escaped"
    written = {p for p in tmp_path.rglob("escaped.txt") if folder not in p.parents}
    assert written == {project / "inside" / "inside" / "escaped.txt"}, out
    assert code == 0, out


def test_a_random_name_that_leaves_is_refused(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = fixture("random-name-cookiecutter", tmp_path, "random-kit")
    script_random(monkeypatch, [".."])
    out = refused(project, "add-phase", str(folder), "--project", str(project),
                  message="the name renders to '..'; refusing to write outside the project")  # fmt: skip
    assert "{{ ['inside', '..'] | random }}" in out  # names the template folder


# ------------------------------------------------------------------------------------------
# 3. make targets cannot inject or override Makefile rules
# ------------------------------------------------------------------------------------------


def test_a_newline_in_a_make_target_help_is_refused(project: Path, tmp_path: Path) -> None:
    folder = fixture("makefile-newline-phase", tmp_path)
    manifest = folder / "phase.yaml"
    refused(project, "add-phase", str(folder), "--project", str(project),
            message=f"{manifest}:7:11 make_targets[0].help: the help text holds a control "
            "character ('\\n'")  # fmt: skip


def test_a_make_target_named_like_a_base_target_is_refused(project: Path, tmp_path: Path) -> None:
    folder = fixture("makefile-override-phase", tmp_path)
    manifest = folder / "phase.yaml"
    refused(project, "add-phase", str(folder), "--project", str(project),
            message=f"{manifest}:9:5 make_targets[1].name: 'test' is a target of the base "
            "Makefile")  # fmt: skip


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("  - name: 'x: y'\n    help: h\n    recipe: [a]\n", "make_targets[0].name: 'x: y' is not"),
        (
            "  - name: train\n    help: h\n    recipe: [a]\n",
            "make_targets[0].name: 'train' is already a make target of phase 'training'",
        ),
        (
            "  - name: ok\n    help: " + "h" * 201 + "\n    recipe: [a]\n",
            "the help text is 201 characters long, over the limit of 200",
        ),
        (
            '  - name: ok\n    help: h\n    recipe: ["a\\nb: c"]\n',
            "make_targets[0].recipe[0]: the recipe line holds a control character",
        ),
        (
            "  - name: ok\n    help: h\n    recipe: [\"{{ '%c' % 10 }}x\"]\n",
            "recipe[0]: renders to more than one line",
        ),
        (
            "  - name: ok\n    help: h\n    deps: ['a b']\n    recipe: [a]\n",
            "make_targets[0].deps[0]: 'a b' is not a make target name",
        ),
    ],
)
def test_make_target_validation(project: Path, tmp_path: Path, target: str, message: str) -> None:
    folder = tmp_path / "templates" / "targets"
    folder.mkdir(parents=True)
    (folder / "phase.yaml").write_text(
        "name: targets\ndescription: d\nowner: ml_engineer\nrequires: []\nmake_targets:\n" + target
    )
    out = refused(project, "add-phase", str(folder), "--project", str(project), message=message)
    assert f"{folder / 'phase.yaml'}:" in out


# ------------------------------------------------------------------------------------------
# 4. no way to load a Jinja extension without --trust
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"_jinja2_env_vars": {"extensions": ["mlops_hostile_extension.Hostile"]}},
            "`_jinja2_env_vars.extensions` is passed to Jinja's Environment",
        ),
        ({"_extensions": ["mlops_hostile_extension.Hostile"]}, "`_extensions` declares Jinja"),
        (
            {"_jinja2_env_vars": {"finalize": "mlops_hostile_extension.Hostile"}},
            "`_jinja2_env_vars.finalize`",
        ),
        ({"_jinja2_env_vars": {"undefined": "x"}}, "`_jinja2_env_vars.undefined`"),
        ({"_jinja2_env_vars": ["extensions"]}, "`_jinja2_env_vars` must be an object"),
    ],
)
def test_cookiecutter_cannot_load_extensions_without_trust(
    project: Path, tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, object], message: str,
) -> None:  # fmt: skip
    folder = fixture("envvars-extension-cookiecutter", tmp_path, "ext-kit")
    (folder / "cookiecutter.json").write_text(json.dumps({"project_slug": "p", **settings}))
    monkeypatch.syspath_prepend(str(folder))  # importable, so only the tool can stop it
    monkeypatch.delitem(sys.modules, "mlops_hostile_extension", raising=False)
    out = refused(project, "add-phase", str(folder), "--project", str(project), message=message)
    assert str(folder / "cookiecutter.json") in out and "--trust" in out
    assert not marker.exists(), "the template's extension was imported"
    assert "mlops_hostile_extension" not in sys.modules


@pytest.mark.parametrize("key", ["_extensions", "_jinja2_env_vars"])
def test_trusted_cookiecutter_loads_its_extensions(
    project: Path, tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    folder = fixture("envvars-extension-cookiecutter", tmp_path, "trusted-kit")
    extensions = ["mlops_hostile_extension.Hostile"]
    settings = {key: extensions if key == "_extensions" else {"extensions": extensions}}
    (folder / "cookiecutter.json").write_text(json.dumps({"project_slug": "p", **settings}))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "mlops_hostile_extension", raising=False)
    code, out = mlops("add-phase", str(folder), "--project", str(project), "--trust")
    assert code == 0, out
    assert marker.exists() and (project / "hello.txt").read_text() == "hello\n"


def test_a_broken_trusted_env_var_is_a_clear_error(project: Path, tmp_path: Path) -> None:
    folder = fixture("envvars-extension-cookiecutter", tmp_path, "broken-kit")
    (folder / "cookiecutter.json").write_text(json.dumps({
        "project_slug": "p", "_jinja2_env_vars": {"no_such_option": 1},
    }))  # fmt: skip
    refused(project, "add-phase", str(folder), "--project", str(project), "--trust",
            message="cannot build the Jinja environment from `_jinja2_env_vars`")  # fmt: skip


def test_safe_jinja_env_vars_still_work(project: Path, tmp_path: Path) -> None:
    folder = fixture("envvars-extension-cookiecutter", tmp_path, "syntax-kit")
    (folder / "cookiecutter.json").write_text(json.dumps({
        "project_slug": "p", "who": "you",
        "_jinja2_env_vars": {"variable_start_string": "[[", "variable_end_string": "]]"},
    }))  # fmt: skip
    top = next(folder.glob("{{*"))
    top.rename(folder / "[[ cookiecutter.project_slug ]]")
    (folder / "[[ cookiecutter.project_slug ]]" / "hello.txt").write_text(
        "hello [[ cookiecutter.who ]]\n"
    )
    code, out = mlops("add-phase", str(folder), "--project", str(project), "--allow-dirty")
    assert code == 0, out
    assert (project / "hello.txt").read_text() == "hello you\n"


# ------------------------------------------------------------------------------------------
# 5. bounded memory: sandboxed growth, alias bombs, oversized files (under a 1 GiB limit)
# ------------------------------------------------------------------------------------------


def _limit_memory() -> None:  # pragma: no cover - runs in the child
    resource.setrlimit(resource.RLIMIT_AS, (GIB, GIB))


def cli_limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``mlops *args`` in a subprocess that cannot use more than 1 GiB of address space."""
    env = {**os.environ, **GIT_ENV}
    return subprocess.run(
        [sys.executable, "-m", "mlops_template", *args], cwd=cwd, capture_output=True,
        text=True, preexec_fn=_limit_memory, env=env, timeout=300, check=False,
    )  # fmt: skip


def assert_clean_refusal(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr


def test_the_limit_is_real(tmp_path: Path) -> None:
    """The subprocess limit bites: a plain 2 GB allocation fails in the limited child."""
    result = subprocess.run(
        [sys.executable, "-c", "x = bytearray(2 * 1024**3)"], preexec_fn=_limit_memory,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0 and "MemoryError" in result.stderr


@pytest.mark.parametrize("name", ["memory-bomb-phase", "memory-bomb-cookiecutter"])
def test_a_memory_bomb_template_is_stopped(project: Path, tmp_path: Path, name: str) -> None:
    folder = fixture(name, tmp_path, name.replace("phase", "custom"))
    before = everything(project)
    result = cli_limited("add-phase", str(folder), "--project", str(project), cwd=tmp_path)
    assert_clean_refusal(result, f"would be 10,000,000,000 long, over the sandbox limit of "
                                 f"{MAX_SANDBOX_LENGTH:,}")  # fmt: skip
    assert everything(project) == before


@pytest.mark.parametrize("kind", ["phase", "cookiecutter"])
def test_running_out_of_memory_in_a_sandboxed_render_is_a_located_error(
    project: Path, tmp_path: Path, kind: str
) -> None:
    """A value no check sizes (a list holding one long string many times, printed) runs the
    limited child out of memory; that is reported with the file, a message and a hint."""
    folder = fixture(f"memory-bomb-{kind}", tmp_path, f"oom-{kind}")
    bomb = "{% set s = 'x' * 9000000 %}{{ [s] * 200 }}\n"
    if kind == "phase":
        (folder / "files" / "bomb.txt.jinja").write_text(bomb)
    else:
        (folder / "cookiecutter.json").write_text('{"project_slug": "p"}')
        next(folder.glob("{{*")).joinpath("bomb.txt").write_text(bomb)
    before = everything(project)
    result = cli_limited("add-phase", str(folder), "--project", str(project), cwd=tmp_path)
    assert_clean_refusal(result, "GrowthError: the template ran out of memory")
    if kind == "phase":
        assert "bomb.txt.jinja: GrowthError" in result.stderr
        assert "hint: a template that does not ship with mlops may not build" in result.stderr
    else:
        assert f"{folder}: cookiecutter failed: GrowthError" in result.stderr
    assert everything(project) == before


def test_an_alias_bomb_spec_is_refused_at_the_alias(tmp_path: Path) -> None:
    spec = HOSTILE / "alias-bomb.yaml"
    result = cli_limited("new", str(tmp_path / "bomb"), "--spec", str(spec), "--no-input",
                         cwd=tmp_path)  # fmt: skip
    # the first alias is `*a` on line 4, column 8
    assert_clean_refusal(result, f"{spec}:4:8: the document expands to more than "
                                 f"{MAX_YAML_NODES:,} YAML nodes")  # fmt: skip
    assert not (tmp_path / "bomb").exists()


def test_an_alias_bomb_phase_manifest_is_refused(project: Path, tmp_path: Path) -> None:
    folder = fixture("alias-bomb-phase", tmp_path)
    before = everything(project)
    result = cli_limited("add-phase", str(folder), "--project", str(project), cwd=tmp_path)
    assert_clean_refusal(result, f"{folder / 'phase.yaml'}:8:")
    assert "YAML nodes" in result.stderr
    assert everything(project) == before


def test_an_oversized_spec_is_not_read_whole(tmp_path: Path) -> None:
    spec = tmp_path / "huge.yaml"
    with spec.open("wb") as handle:  # 200 MB, sparse: costs no disk
        handle.write(b"project: {name: Huge}\n")
        handle.truncate(200 * 1024 * 1024)
    result = cli_limited("new", str(tmp_path / "huge"), "--spec", str(spec), "--no-input",
                         cwd=tmp_path)  # fmt: skip
    assert_clean_refusal(result, f"{spec}: spec file is 200.0 MiB, over the limit of 1.0 MiB")
    assert not (tmp_path / "huge").exists()


def test_oversized_manifests_are_refused(project: Path, tmp_path: Path) -> None:
    folder = fixture("git-hook-cookiecutter", tmp_path, "big-kit")
    padding = " " * MAX_INPUT_BYTES
    (folder / "cookiecutter.json").write_text('{"project_slug": "p"}' + padding)
    refused(project, "add-phase", str(folder), "--project", str(project),
            message=f"{folder / 'cookiecutter.json'}: cookiecutter.json is 1.0 MiB, over the "
            "limit of 1.0 MiB")  # fmt: skip
    phase = fixture("makefile-newline-phase", tmp_path, "big-phase")
    (phase / "phase.yaml").write_text("name: big\n" + "#" * MAX_INPUT_BYTES + "\n")
    refused(
        project,
        "add-phase",
        str(phase),
        "--project",
        str(project),
        message=f"{phase / 'phase.yaml'}: phase manifest is 1.0 MiB, over the limit",
    )


#: every entry would need more than 1 GiB if its value were built before the check (except the
#: ``+`` case, whose operands are themselves capped at the limit); they run in a child limited to
#: 1 GiB of address space, so a check made only after building ends in MemoryError and fails here
GROWTH = [
    "{{ 'a' * 10**10 }}",
    "{{ [0] * 10**9 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ ('a' * 9000000) + ('b' * 9000000) }}",
    "{{ '%02000000000d' % 1 }}",
    "{{ '%*d' % (2 * 10**9, 1) }}",
    "{{ 'a'.center(2 * 10**9) }}",
    "{{ 'a'.ljust(2 * 10**9) }}",
    "{{ 'a'.zfill(2 * 10**9) }}",
    "{{ ('\t' * 1000).expandtabs(10**7) }}",
    "{{ ('a' * 1000).replace('', 'b' * 2000000) }}",
    "{{ ('x' * 100000).join(range(100000)) }}",
    "{{ '{:>2000000000}'.format(1) }}",
    "{{ '{:>{w}}'.format(1, w=2 * 10**9) }}",
    "{{ 'a' | center(2 * 10**9) }}",
    "{{ ('a\n' * 1000) | indent(10**7) }}",
    "{{ ('a ' * 100000) | wordwrap(1, wrapstring='b' * 100000) }}",
    "{{ ('a' * 1000) | replace('', 'b' * 2000000) }}",
    "{{ range(100000) | join('x' * 100000) }}",
    "{{ '%02000000000d' | format(1) }}",
    "{{ [1] | batch(10**9, 0) | list }}",
    "{{ [1] | slice(10**9, 0) | list }}",
    "{{ [1] | tojson(indent=10**9) }}",
    "{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% for i in range(100000) %}{% for j in range(10000) %}xxxxxxxxxx{% endfor %}{% endfor %}",
    # review finding 1: `%` with a mapping or tuple, str.format repeats, lipsum, slugify, urlencode
    "{{ (('%(a)s' * 1000000) % {'a': 'x' * 10000}) | length }}",
    "{{ (('%s' * 1000000) % (('x' * 10000,) * 1000000)) | length }}",
    "{{ ('{0}' * 1000000).format('x' * 10000) | length }}",
    "{{ ('{a}' * 1000000).format_map({'a': 'x' * 10000}) | length }}",
    "{{ ('%(a)s' * 1000000) | format(a='x' * 10000) | length }}",
    "{{ lipsum(10**7) | length }}",
    "{{ lipsum(1, max=10**9) | length }}",
    "{{ ('a ' * 4000000) | slugify(separator='x' * 1000) | length }}",
    "{{ ('\U0001f600' * 9000000) | urlencode | urlencode | urlencode | length }}",
]

_GROWTH_CHILD = """
import json, sys
import jinja2
from mlops_template.sandbox import BoundedSandbox
extensions = ["cookiecutter.extensions." + n for n in
              ("JsonifyExtension", "RandomStringExtension", "SlugifyExtension")]
env = BoundedSandbox(undefined=jinja2.StrictUndefined, extensions=extensions)
try:
    out = env.from_string(sys.argv[1]).render()
    print(json.dumps(["rendered", str(len(out))]))
except BaseException as exc:
    print(json.dumps([type(exc).__name__, str(exc)]))
"""


@pytest.mark.parametrize("source", GROWTH)
def test_sandbox_bounds_growth(source: str) -> None:
    """Refused before the value is built: the child has 1 GiB of address space, and each value
    here would need more, so a check made after building would end in MemoryError instead."""
    result = subprocess.run(
        [sys.executable, "-c", _GROWTH_CHILD, source], capture_output=True, text=True,
        preexec_fn=_limit_memory, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    kind, message = json.loads(result.stdout.strip().splitlines()[-1])
    assert kind == "GrowthError", (kind, message)
    assert "over the sandbox limit" in message


def test_sandbox_bounds_cookiecutter_helpers(project: Path, tmp_path: Path) -> None:
    folder = fixture("memory-bomb-cookiecutter", tmp_path, "helpers-kit")
    (folder / "cookiecutter.json").write_text(json.dumps({
        "project_slug": "p", "big": "{{ random_ascii_string(10**9) }}"
    }))  # fmt: skip
    before = everything(project)
    result = cli_limited("add-phase", str(folder), "--project", str(project), cwd=tmp_path)
    assert_clean_refusal(result, "a random string would be 1,000,000,000 long")
    assert everything(project) == before


def test_sandbox_still_renders_ordinary_formats_and_filters() -> None:
    """The pre-checks added for review finding 1 leave ordinary uses alone."""
    extensions = ["cookiecutter.extensions.SlugifyExtension"]
    env = BoundedSandbox(undefined=jinja2.StrictUndefined, extensions=extensions)
    source = (
        "{{ '%(a)s-%(b)s' % {'a': 1, 'b': 'x'} }} {{ '%s/%s' % ('p', 2) }} "
        "{{ '{a}{0}'.format(1, a=2) }} {{ '{k}'.format_map({'k': 'v'}) }} "
        "{{ '%(a)s' | format(a=3) }} {{ 'Hello World' | slugify }} "
        "{{ 'Hello World' | slugify(separator='_') }} {{ 'a b&' | urlencode }} "
        "{{ '<b>' | e }} {{ lipsum(2, html=False, min=2, max=3).split() | length > 1 }}"
    )
    assert env.from_string(source).render() == (
        "1-x p/2 21 v 3 hello-world hello_world a%20b%26 &lt;b&gt; True"
    )


def test_sandbox_still_renders_ordinary_templates() -> None:
    env = BoundedSandbox(undefined=jinja2.StrictUndefined)
    source = (
        "{{ 'ab' * 3 }} {{ 2 ** 100 }} {{ [1, 2] + [3] }} {{ '%05.1f' % 3.14159 }} "
        "{{ 'x' ~ 1 }} {{ 'a'.center(5) }} {{ '{:>4}|{:,}'.format(7, 10**9) }} "
        "{{ 'a b' | replace(' ', '-') }} {{ [1, 2] | join(',') }} {{ 'x' | indent(2, true) }} "
        "{{ {'a': 1} | tojson }} {{ [1, 2, 3] | batch(2) | list }} {{ 'ab'.replace('a', 'c') }}"
    )
    assert env.from_string(source).render() == (
        "ababab 1267650600228229401496703205376 [1, 2, 3] 003.1 x1   a   "
        '   7|1,000,000,000 a-b 1,2   x {"a": 1} [[1, 2], [3]] cb'
    )


# ------------------------------------------------------------------------------------------
# 6. a destination symlink is never followed
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("force", [True, False])
def test_new_refuses_a_symlinked_destination(tmp_path: Path, force: bool) -> None:
    system = tmp_path / "system-folder"
    system.mkdir()
    (system / "precious.conf").write_text("keep me\n")
    link = tmp_path / "proj"
    link.symlink_to(system)
    before = everything(tmp_path)
    code, out = mlops("new", str(link), "--name", "Demo", "--no-input",
                      *(["--force"] if force else []))  # fmt: skip
    assert code == 2, out
    assert f"{link}: is a symlink to {system.resolve()}" in out
    assert f"pass its resolved path explicitly: {system.resolve()}" in out
    assert everything(tmp_path) == before and link.is_symlink()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: None, "which does not exist"),
        (lambda t: t.write_text("a file\n"), "is a symlink to the file"),
    ],
)
def test_new_explains_a_dangling_or_file_symlink(
    tmp_path: Path, make: object, message: str
) -> None:
    target = tmp_path / "target"
    make(target)  # type: ignore[operator]
    link = tmp_path / "proj"
    link.symlink_to(target)
    before = everything(tmp_path)
    code, out = mlops("new", str(link), "--name", "Demo", "--no-input", "--force")
    assert code == 2 and message in out and "Not a directory" not in out, out
    assert everything(tmp_path) == before
