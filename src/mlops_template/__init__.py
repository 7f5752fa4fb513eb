"""mlops-template: scaffold, extend and check production-grade MLOps repositories.

The core is a library::

    from mlops_template import load_spec, render, apply_new
    spec = load_spec("mlops.yaml")
    tree = render(spec)
    report = apply_new(tree, Path("churn"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
#: the human part of the template version, bumped on a release of the template.
TEMPLATE_RELEASE = "2026.12.0"

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from mlops_template.apply import apply_new as apply_new
    from mlops_template.render import render as render
    from mlops_template.spec import load_spec as load_spec

    #: ``<release>+<digest>``: see :func:`template_version`; computed on first use.
    TEMPLATE_VERSION: str

__all__ = [
    "TEMPLATE_RELEASE", "TEMPLATE_VERSION", "__version__", "apply_new", "load_spec", "render",
    "template_version",
]  # fmt: skip


def template_digest(root: Path) -> str:
    """A content hash of the template folder ``root``: every file's path and bytes (caches
    such as ``__pycache__`` excluded). Any change to any template changes it."""
    import hashlib  # here, not at the top: `mlops --version` stays fast
    import os

    digest = hashlib.sha256()
    # os.walk rather than Path.rglob (a third of the time), with rglob's choices: symlinked
    # folders not entered, files (or links to files) only, in Path order (by parts)
    files: list[tuple[tuple[str, ...], str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        parts = () if rel == os.curdir else tuple(rel.split(os.sep))
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            dot = name.rfind(".")
            suffix = name[dot:] if 0 < dot < len(name) - 1 else ""
            full = os.path.join(dirpath, name)
            if name != "__pycache__" and suffix != ".pyc" and os.path.isfile(full):
                files.append(((*parts, name), full))
    files.sort()
    for parts_of, full in files:
        digest.update("/".join(parts_of).encode("utf-8") + b"\0")
        with open(full, "rb") as handle:
            digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()[:12]


def template_version(root: Path | None = None) -> str:
    """The version of the templates at ``root`` (default: the installed ones):
    ``<TEMPLATE_RELEASE>+<content hash>``, so it moves whenever a template changes."""
    if root is None:
        from pathlib import Path

        here = Path(__file__).resolve().parent
        root = next(
            (c for c in (here / "templates", here.parent.parent / "templates")
             if (c / "base").is_dir()),
            None,
        )  # fmt: skip
        if root is None:
            return TEMPLATE_RELEASE  # no templates installed: nothing to hash
    return f"{TEMPLATE_RELEASE}+{template_digest(root)}"


_cache: dict[str, str] = {}


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import mlops_template` (and so `mlops --version`) cheap.
    if name == "TEMPLATE_VERSION":
        if name not in _cache:
            _cache[name] = template_version()
        return _cache[name]
    if name == "render":
        from mlops_template.render import render

        return render
    if name == "apply_new":
        from mlops_template.apply import apply_new

        return apply_new
    if name == "load_spec":
        from mlops_template.spec import load_spec

        return load_spec
    raise AttributeError(name)
