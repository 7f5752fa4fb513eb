"""MLO2xx: the files and folders of the enabled phases are there, and no others."""

from __future__ import annotations

from collections.abc import Iterator

from mlops_template.lint.model import Example, Finding, Rule, Severity, rule
from mlops_template.lint.project import Project, iter_phase_paths

LAYERS = ("bronze", "silver", "gold")


@rule(
    "MLO201",
    "required-file-missing",
    Severity.error,
    summary="A file or folder an enabled phase requires is missing.",
    why="Each phase manifest (`templates/phases/<name>/phase.yaml`) lists the `required_files` "
    "its make targets, workflows and other phases rely on.",
    fix="Restore it from version control, or remove the phase from `phases` in `mlops.yaml` if "
    "the project does not use it.",
    bad=Example(
        {"src/demo/ml/__init__.py": None},
        file="src/demo/ml/__init__.py",
        note="`training` requires its package marker.",
    ),
    good=Example({"src/demo/ml/__init__.py": '"""Model development."""\n'}),
)
def required_files(project: Project, rule: Rule) -> Iterator[Finding]:
    for phase in project.enabled:
        for required in phase.required_files:
            rel = project.expand(required).strip("/")
            if not project.exists(rel):
                yield rule.finding(
                    rel,
                    f"{rel} is missing; phase `{phase.name}` requires it",
                    fix=project.missing_fix(rel, phase.name),
                )


@rule(
    "MLO202",
    "data-layer-missing",
    Severity.error,
    summary="A data-lake layer folder (`data/bronze`, `data/silver`, `data/gold`) is missing.",
    why="The data pipeline writes raw data to bronze, validated data to silver and model-ready "
    "features to gold; ML code reads gold only. The folders (with their README) are part of the "
    "repository even though their contents are git-ignored.",
    fix="Re-create the folder with its README.md describing the layer.",
    bad=Example(
        {"data/silver/README.md": None},
        file="data/silver",
        note="deleting the layer's only tracked file removes the folder from a clone.",
    ),
    good=Example({"data/silver/README.md": "# silver: validated, cleaned, PII masked\n"}),
)
def data_layers(project: Project, rule: Rule) -> Iterator[Finding]:
    if not any(phase.name == "data" for phase in project.enabled):
        return
    for layer in LAYERS:
        rel = f"data/{layer}"
        if not project.is_dir(rel):
            yield rule.finding(
                rel,
                f"data layer folder {rel}/ is missing",
                fix=f"create {rel}/README.md describing the {layer} layer (its data files stay "
                "git-ignored)",
            )
            continue
        readme = f"{rel}/README.md"
        if not project.is_file(readme):
            yield rule.finding(
                rel,
                f"data layer folder {rel}/ has no README.md, so a fresh clone will not have it",
                fix=f"add {readme} describing the {layer} layer",
            )


@rule(
    "MLO203",
    "disabled-phase-files",
    Severity.warning,
    summary="Files of a phase that is not enabled in `mlops.yaml` are present.",
    why="Phase files outside `phases` are not checked, owned or updated by the template: they "
    "rot silently. Either the phase is used (enable it) or the files are leftovers.",
    fix="Enable the phase (`mlops add-phase NAME`) or delete its files.",
    bad=Example(
        {"src/demo/serving/__init__.py": '"""Serving."""\n'},
        file="src/demo/serving",
        note="`serving` is not in `phases: [data, training]`.",
    ),
    good=Example({"src/demo/ml/serve_helpers.py": '"""Helpers kept inside ml/."""\n'}),
)
def disabled_phase_files(project: Project, rule: Rule) -> Iterator[Finding]:
    pristine = project.state_load.pristine
    rendered = set(pristine.files) if pristine is not None else set()
    rendered_dirs = {p.rsplit("/", n)[0] for p in rendered for n in range(1, p.count("/") + 1)}
    claimed = {path for phase in project.enabled for path, _ in iter_phase_paths(project, phase)}
    for phase in project.disabled:
        paths = [path for path, _ in iter_phase_paths(project, phase)]
        paths += [project.expand(r).strip("/") for r in phase.required_files]
        seen: set[str] = set()
        for path in paths:
            if not path or path in seen or any(path == c or path.startswith(c + "/") for c in seen):
                continue
            seen.add(path)
            if path in claimed or path in rendered or path in rendered_dirs:
                continue
            if project.exists(path):
                yield rule.finding(
                    path,
                    f"{path} belongs to phase `{phase.name}`, which is not enabled in mlops.yaml",
                    fix=f"enable it (mlops add-phase {phase.name}) or delete {path}",
                )
