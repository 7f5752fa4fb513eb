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
TEMPLATE_VERSION = "2026.11.1"

if TYPE_CHECKING:  # pragma: no cover
    from mlops_template.apply import apply_new as apply_new
    from mlops_template.render import render as render
    from mlops_template.spec import load_spec as load_spec

__all__ = ["TEMPLATE_VERSION", "__version__", "apply_new", "load_spec", "render"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import mlops_template` (and so `mlops --version`) cheap.
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
