"""Size limits for input the tool does not control (specs, manifests, templates it did not ship).

Every limit is a number here, named in the error that enforces it and listed in docs/security.md.
No heavy imports: the CLI's start-up imports nothing from this module before a command runs.
"""

from __future__ import annotations

from pathlib import Path

#: largest spec (`mlops.yaml`), custom `phase.yaml` or `cookiecutter.json` read, in bytes
MAX_INPUT_BYTES = 1024 * 1024
#: most YAML nodes a document may expand to once aliases are followed (a spec has ~100)
MAX_YAML_NODES = 100_000
#: longest string or sequence a sandboxed template may build, and longest file it may render
MAX_SANDBOX_LENGTH = 10_000_000
#: largest integer (in bits) a sandboxed `**` or `*` may produce
MAX_SANDBOX_INT_BITS = 65_536


def human_bytes(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MiB"
    if size >= 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size} bytes"


class InputTooLarge(Exception):
    """A file is over its size limit. Callers turn it into their own located error (this module
    sits below :mod:`mlops_template.errors` in the layering, so it raises a plain exception)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def read_capped(path: Path, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path``, reading at most ``limit + 1`` of them; an error names the limit
    and the file's size when it is larger. ``OSError`` propagates for the caller to explain."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
        if len(data) > limit:
            try:
                size = human_bytes(path.stat().st_size)
            except OSError:  # pragma: no cover - it was just opened
                size = f"more than {human_bytes(limit)}"
            raise InputTooLarge(
                f"{path}: {what} is {size}, over the limit of {human_bytes(limit)}; "
                "nothing was read past the limit",
                f"a {what} is a few kilobytes; check that this is the right file",
            )
    return data
