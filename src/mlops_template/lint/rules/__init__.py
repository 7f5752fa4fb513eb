"""The built-in rules. Importing this package registers every rule in ``model.REGISTRY``."""

from __future__ import annotations

from mlops_template.lint.rules import (
    drift,
    extensions,
    layering,
    layout,
    ownership,
    spec,
    workflows,
)

__all__ = ["drift", "extensions", "layering", "layout", "ownership", "spec", "workflows"]
