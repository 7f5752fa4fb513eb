"""One exception hierarchy. Every message says what is wrong, where, and how to fix it.

The CLI maps these to exit codes in exactly one place (``cli._run``):
``UsageError`` and its subclasses -> 2, ``ConflictError`` -> 1.
"""

from __future__ import annotations

from dataclasses import dataclass


class MlopsError(Exception):
    """Base class of every error the tool reports to a user."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(MlopsError):
    """Bad input from the user: a flag, a path, a spec value. Exit 2, nothing written."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a spec, located as precisely as we can."""

    where: str  # "mlops.yaml:14:11", "--set ml.metric", "default"
    path: str  # dotted path, e.g. "ml.metric" ("" for the document itself)
    message: str  # what is wrong; how to fix

    def render(self) -> str:
        loc = f"{self.where} {self.path}:" if self.path else f"{self.where}:"
        return f"{loc} {self.message}"


class SpecError(UsageError):
    """The spec is invalid. Carries every issue found, not just the first."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        count = len(issues)
        header = f"invalid spec ({count} error{'s' if count != 1 else ''}):"
        super().__init__(header + "".join(f"\n  {i.render()}" for i in issues))


class TemplateError(MlopsError):
    """A template or phase manifest is broken (a bug in the template, not the user's input)."""

    exit_code = 2


class DestinationError(UsageError):
    """The destination cannot be written as asked (non-empty, not a directory, read-only...)."""


class ProjectError(UsageError):
    """The directory is not a generated project, or its `.mlops/` record is unusable."""


class ConflictError(MlopsError):
    """A merge left conflicts in the working tree; the report lists them. Exit 1."""

    exit_code = 1
