"""`mlops new -i`: a short interactive wizard built from the spec's own models.

Questions, choices, help texts and defaults come from the pydantic fields (not a second list of
choices); each answer is validated at once with the same rules as a spec file, and a bad answer is
explained and asked again. Nothing is written until the user confirms the resulting `mlops.yaml`.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from mlops_template.errors import SpecError, UsageError
from mlops_template.phases import load_catalogue
from mlops_template.spec import Spec, SpecSources, build_spec, dump_spec, parse_set

Ask = Callable[[str], str]
Say = Callable[[str], None]


@dataclass(frozen=True)
class Question:
    key: str  # dotted spec key
    when: Callable[[dict[str, Any]], bool] = lambda answers: True


QUESTIONS: tuple[Question, ...] = (
    Question("project.name"),
    Question("project.description"),
    Question("ml.task"),
    Question("data.source.kind"),
    Question("data.source.path", lambda a: a.get("data.source.kind") in ("csv", "parquet", "json")),
    Question("data.source.dataset", lambda a: a.get("data.source.kind") == "sklearn"),
    Question("data.source.url", lambda a: a.get("data.source.kind") == "sql"),
    Question("data.source.query", lambda a: a.get("data.source.kind") == "sql"),
    Question("ml.target"),
    Question("data.engine"),
    Question("phases"),
    Question("infra.cloud", lambda a: "infra" in str(a.get("phases", "infra"))),
    Question("ci.provider"),
    Question("roles.data_engineer"),
    Question("roles.data_scientist"),
    Question("roles.ml_engineer"),
)


def field_info(key: str) -> tuple[str, list[str]]:
    """The description and the Literal choices of a dotted spec key, read from the models."""
    model: type[BaseModel] = Spec
    parts = key.split(".")
    for part in parts[:-1]:
        annotation = model.model_fields[part].annotation
        model = next(
            a
            for a in (annotation, *typing.get_args(annotation))
            if isinstance(a, type) and issubclass(a, BaseModel)
        )
    field = model.model_fields[parts[-1]]
    return field.description or key, _literal_values(field.annotation)


def _literal_values(annotation: Any) -> list[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return [str(v) for v in typing.get_args(annotation)]
    values: list[str] = []
    for arg in typing.get_args(annotation):
        values.extend(_literal_values(arg))
    return values


def _current(spec: Spec | None, key: str) -> Any:
    node: Any = spec
    for part in key.split("."):
        node = getattr(node, part, None) if node is not None else None
    return node


def _sources(answers: dict[str, Any]) -> SpecSources:
    sources = SpecSources({})
    for key, value in answers.items():
        sources.set(key, value, f"answer to {key}")
    return sources


def _try(answers: dict[str, Any]) -> tuple[Spec | None, SpecError | None]:
    try:
        return build_spec(_sources(answers)), None
    except SpecError as exc:
        return None, exc


def _format_default(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return "" if value is None else str(value)


def _parse(key: str, raw: str) -> Any:
    if key == "phases":
        return [p.strip() for p in raw.split(",") if p.strip()]
    if key.startswith(("project.", "roles.", "data.source.")) or key == "ml.target":
        return raw
    return parse_set(f"{key}={raw}")[1]


def run_wizard(ask: Ask, say: Say, preset: dict[str, Any] | None = None) -> Spec:
    """Ask the questions, validating every answer; returns the confirmed spec."""
    answers: dict[str, Any] = dict(preset or {})
    catalogue = load_catalogue()
    say("New MLOps project: answer each question, or press Enter to keep the [default].")
    for question in QUESTIONS:
        if question.key in answers or not question.when(answers):
            continue
        description, choices = field_info(question.key)
        if question.key == "phases":
            choices = list(catalogue)
        while True:
            spec, _ = _try({**answers, "project.name": answers.get("project.name", "x")})
            default = _format_default(_current(spec, question.key))
            if question.key == "project.name":
                default = ""  # the placeholder used to compute other defaults is not a default
            options = f" ({'/'.join(choices)})" if choices and question.key != "phases" else ""
            if question.key == "phases":
                options = f" (comma-separated from: {', '.join(choices)})"
            shown = f" [{default}]" if default else ""
            raw = ask(f"{question.key}: {description}{options}{shown}: ").strip()
            if not raw:
                if not default and question.key == "project.name":
                    say("  a project name is required")
                    continue
                if not default:
                    break  # optional and left empty
                raw = default
            value = _parse(question.key, raw)
            trial = {**answers, question.key: value}
            if "project.name" not in trial:
                trial["project.name"] = "x"
            _, error = _try(trial)
            mine = [
                i
                for i in (error.issues if error else [])
                if i.path == question.key or i.path.startswith(question.key + ".")
                or (question.key == "project.name" and i.path == "project.package")
            ]  # fmt: skip
            if mine:
                for issue in mine:
                    say(f"  {issue.path}: {issue.message}")
                continue
            answers[question.key] = value
            break
    spec, error = _try(answers)
    if error is not None or spec is None:
        raise error or UsageError("the answers do not make a valid spec")
    say("\nThe resulting mlops.yaml:\n")
    say(dump_spec(spec))
    return spec


def confirm(ask: Ask, prompt: str) -> bool:
    while True:
        raw = ask(f"{prompt} [Y/n]: ").strip().lower()
        if raw in ("", "y", "yes"):
            return True
        if raw in ("n", "no"):
            return False
