"""MLO506 image-without-dockerfile: which Dockerfile a CI build uses, and where it is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_template.lint.rules.workflows import _build_dockerfile


@pytest.mark.parametrize(
    ("command", "dockerfile"),
    [
        (' --pull -t "api:$SHA" .', "./Dockerfile"),
        (" -t img serving/", "serving/Dockerfile"),
        (" -f docker/Dockerfile.batch -t img .", "docker/Dockerfile.batch"),
        (" --file=Containerfile .", "Containerfile"),
        (' --build-arg A=1 --target runtime --platform linux/amd64 -t "x:1" ctx', "ctx/Dockerfile"),
        (" . | tee build.log", "./Dockerfile"),
        (" -t img . && docker push img", "./Dockerfile"),
        # cannot be told without running the script: not reported
        (' -t img "$CONTEXT"', None),
        (" -f $DOCKERFILE .", None),
        (" -t img - < Dockerfile", None),
        (" https://github.com/org/repo.git#main", None),
        (' -t "unbalanced .', None),
        (" --help", None),
    ],
)
def test_dockerfile_of_a_build_command(command: str, dockerfile: str | None) -> None:
    assert _build_dockerfile(command) == dockerfile


WORKFLOW = """\
name: deploy
on: push
permissions: {{}}
jobs:
  build:
    runs-on: ubuntu-latest
    permissions: {{contents: read}}
    steps:
      - run: |
          echo building
          docker buildx build --pull \\
            -f {dockerfile} -t "score:$SHA" .
      - uses: docker/build-push-action@263435318d21b8e681c14492fe198d362a7d2c83 # v6.18.0
        with:
          context: serving
"""


def lint(root: Path) -> list[tuple[str, int | None, str]]:
    from mlops_template.lint import lint as run_lint

    (root / ".mlops").mkdir(exist_ok=True)  # a generated project (the rule needs no spec)
    result = run_lint(root, select=["MLO506"])
    return [(f.file, f.line, f.message) for f in result.findings]


def test_run_block_and_build_push_action_are_checked(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "deploy.yml").write_text(WORKFLOW.format(dockerfile="docker/Dockerfile.batch"))
    found = lint(tmp_path)
    assert found == [
        (".github/workflows/deploy.yml", 11, "builds an image from docker/Dockerfile.batch, "
         "which does not exist"),
        (".github/workflows/deploy.yml", 13, "builds an image from serving/Dockerfile, "
         "which does not exist"),
    ]  # fmt: skip
    (tmp_path / "docker").mkdir()
    (tmp_path / "docker" / "Dockerfile.batch").write_text("FROM scratch\n")
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "Dockerfile").write_text("FROM scratch\n")
    assert lint(tmp_path) == []


def test_gitlab_and_azure_pipelines_are_checked(tmp_path: Path) -> None:
    (tmp_path / ".gitlab-ci.yml").write_text(
        'build-image:\n  script:\n    - docker build --pull -t "api:$CI_COMMIT_SHA" .\n'
    )
    (tmp_path / "azure-pipelines.yml").write_text(
        "steps:\n  - script: |\n      docker build -t api:1 .\n    displayName: build\n"
    )
    assert sorted(lint(tmp_path)) == [
        (".gitlab-ci.yml", 3, "builds an image from Dockerfile, which does not exist"),
        ("azure-pipelines.yml", 3, "builds an image from Dockerfile, which does not exist"),
    ]
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    assert lint(tmp_path) == []
