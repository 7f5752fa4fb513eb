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

    digest = hashlib.sha256()
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.relative_to(root).parts and p.suffix != ".pyc"
    )  # fmt: skip
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
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
