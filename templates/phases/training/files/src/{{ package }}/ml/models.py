"""The model families this project searches. THIS FILE IS YOURS.

It was generated once as a working example (``user_owned`` in the training phase's manifest):
`mlops update` takes the template's new version only while this file is still as generated, and
never merges into it once you edit it (your version is kept byte for byte, reported as ``kept``).
The template-owned code (``train.py``, ``package.py``, ``gate.py`` ...) reads model families only
through the names below (``REGISTRY``, ``ModelFamily``, ``get``, ``select``, ``RegistryError``,
``TASKS``), whose shape `mlops lint` checks (rule MLO703).

Adding a model family is one entry in ``REGISTRY`` plus, to search only it, conf::

    ml:
      families: [extra_trees]   # names from REGISTRY; unset = every family of ml.framework

An entry (``ModelFamily``) says:

* ``name``: how conf, reports, metadata and the model card name it;
* ``tasks``: ``classification`` and/or ``regression``;
* ``framework``: the ``ml.framework`` whose default search includes it (``sklearn``,
  ``lightgbm``, ``xgboost``, or your own word: then it is searched only when listed in
  ``ml.families``);
* ``make(task, seed)``: a fresh, unfitted scikit-learn-compatible estimator (``fit``,
  ``predict``, ``predict_proba`` for classification, ``set_params``);
* ``space``: the random search's hyper-parameters, by the estimator's own parameter names (a list
  of values or a scipy distribution each);
* ``scale``: whether numeric features are standard-scaled first (linear models, KNN, SVMs);
* ``requires``: modules the family imports; a family whose module is not installed is listed but
  not enabled (selecting it is a clear error that says what to install);
* ``register_onnx``: registers the estimator's ONNX converter with skl2onnx, for estimators
  skl2onnx does not convert itself (LightGBM, XGBoost); ``None`` for scikit-learn's own.

Every family gets the same preprocessing (numeric: median imputer; categorical: constant imputer
+ one-hot encoder), so ONNX inputs and served requests stay the same whatever family wins.
``tests/ml/test_models.py`` trains every enabled family on a tiny frame, converts it to ONNX and
checks that ONNX and native predictions agree: keep it passing when you add one.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scipy.stats import loguniform

TASKS = ("classification", "regression")


class Estimator(Protocol):
    """What the template code needs from an estimator (scikit-learn's estimator API)."""

    def fit(self, x: Any, y: Any) -> Any: ...

    def predict(self, x: Any) -> Any: ...

    def set_params(self, **params: Any) -> Any: ...

    def get_params(self, deep: bool = True) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ModelFamily:
    """One model family of the search (see the module docstring)."""

    name: str
    tasks: frozenset[str]
    framework: str
    make: Callable[[str, int], Estimator]
    space: Mapping[str, Any]
    scale: bool = False
    requires: tuple[str, ...] = ()
    register_onnx: Callable[[], None] | None = None

    def installed(self) -> bool:
        return all(importlib.util.find_spec(module) is not None for module in self.requires)


# ---------------------------------------------------------------------------- estimators


def _logistic_regression(task: str, seed: int) -> Estimator:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000)


def _ridge(task: str, seed: int) -> Estimator:
    from sklearn.linear_model import Ridge

    return Ridge()


def _random_forest(task: str, seed: int) -> Estimator:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    # bounded on purpose: depth-limited trees on half-size bootstrap samples keep the search fast
    cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
    return cls(max_samples=0.5, random_state=seed, n_jobs=1)


def _lightgbm(task: str, seed: int) -> Estimator:
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMClassifier if task == "classification" else LGBMRegressor
    return cls(random_state=seed, n_jobs=1, verbose=-1)


def _xgboost(task: str, seed: int) -> Estimator:
    from xgboost import XGBClassifier, XGBRegressor

    cls = XGBClassifier if task == "classification" else XGBRegressor
    return cls(random_state=seed, n_jobs=1, tree_method="hist", verbosity=0)


# ---------------------------------------------------------------------------- ONNX converters


def _register_lightgbm() -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm,
        options={"split": None},
    )


def _register_xgboost() -> None:
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )
    from xgboost import XGBClassifier, XGBRegressor

    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        XGBRegressor,
        "XGBoostXGBRegressor",
        calculate_linear_regressor_output_shapes,
        convert_xgboost,
    )


# ---------------------------------------------------------------------------- the registry

_FOREST_SPACE: dict[str, Any] = {
    "n_estimators": [50, 100],
    "max_depth": [6, 10, 14],
    "min_samples_leaf": [2, 10, 30],
    "max_features": ["sqrt", 0.5],
}

REGISTRY: tuple[ModelFamily, ...] = (
    ModelFamily(
        name="logistic_regression",
        tasks=frozenset({"classification"}),
        framework="sklearn",
        make=_logistic_regression,
        space={"C": loguniform(1e-3, 1e2)},
        scale=True,
    ),
    ModelFamily(
        name="ridge",
        tasks=frozenset({"regression"}),
        framework="sklearn",
        make=_ridge,
        space={"alpha": loguniform(1e-3, 1e3)},
        scale=True,
    ),
    ModelFamily(
        name="random_forest",
        tasks=frozenset(TASKS),
        framework="sklearn",
        make=_random_forest,
        space=_FOREST_SPACE,
    ),
    ModelFamily(
        name="lightgbm",
        tasks=frozenset(TASKS),
        framework="lightgbm",
        make=_lightgbm,
        space={
            "n_estimators": [100, 200],
            "learning_rate": [0.03, 0.05, 0.1],
            "num_leaves": [7, 15, 31],
            "min_child_samples": [10, 20, 40],
            "colsample_bytree": [0.7, 1.0],
        },
        requires=("lightgbm", "onnxmltools"),
        register_onnx=_register_lightgbm,
    ),
    # optional, enabled once installed: `uv pip install -e '.[xgboost]'` (pyproject's extra:
    # xgboost-cpu + onnxmltools), then conf ml.families: [xgboost] (or add it to a list).
    # xgboost-cpu is a 5 MiB wheel (18 MB installed); the CUDA `xgboost` wheel pulls ~460 MiB.
    ModelFamily(
        name="xgboost",
        tasks=frozenset(TASKS),
        framework="xgboost",
        make=_xgboost,
        space={
            "n_estimators": [100, 200],
            "learning_rate": [0.03, 0.05, 0.1],
            "max_depth": [3, 4, 6],
            "min_child_weight": [1, 5, 10],
            "colsample_bytree": [0.7, 1.0],
        },
        requires=("xgboost", "onnxmltools"),
        register_onnx=_register_xgboost,
    ),
)


# ---------------------------------------------------------------------------- look-ups
# (used by the template code; you should not need to change these)


class RegistryError(ValueError):
    """A conf or registry problem; the message says where and how to fix it."""


def get(name: str) -> ModelFamily:
    """The registered family ``name``."""
    for family in REGISTRY:
        if family.name == name:
            return family
    known = ", ".join(f.name for f in REGISTRY)
    raise RegistryError(
        f"model family {name!r} is not in src/.../ml/models.py REGISTRY (known: {known}); "
        "add an entry there or fix ml.families in conf/"
    )


def select(task: str, framework: str, names: Sequence[str] | None = None) -> list[ModelFamily]:
    """The families to search: ``names`` (conf ``ml.families``) or every one of ``framework``."""
    if task not in TASKS:
        raise RegistryError(f"conf: ml.task = {task!r}; use classification or regression")
    seen = [f.name for f in REGISTRY]
    duplicates = sorted({n for n in seen if seen.count(n) > 1})
    if duplicates:
        raise RegistryError(f"ml/models.py: REGISTRY names {duplicates} more than once")
    if names is None:
        chosen = [f for f in REGISTRY if f.framework == framework and task in f.tasks]
        if not chosen:
            frameworks = sorted({f.framework for f in REGISTRY})
            raise RegistryError(
                f"conf: ml.framework = {framework!r} has no {task} family in ml/models.py "
                f"(frameworks there: {', '.join(frameworks)}); set ml.framework or ml.families"
            )
    else:
        if isinstance(names, str) or not names:
            raise RegistryError(
                f"conf: ml.families = {names!r}; give a non-empty list of family names"
            )
        chosen = [get(str(n)) for n in names]
        wrong = [f.name for f in chosen if task not in f.tasks]
        if wrong:
            raise RegistryError(
                f"conf: ml.families lists {wrong}, which ml/models.py registers for "
                f"{' / '.join(sorted(get(wrong[0]).tasks))} only, not {task}"
            )
    missing = [f for f in chosen if not f.installed()]
    if missing:
        needs = sorted({m for f in missing for m in f.requires})
        raise RegistryError(
            f"model families {[f.name for f in missing]} need {needs}, which are not installed; "
            f"install them (xgboost: `uv pip install -e '.[xgboost]'`; others: `uv pip install "
            f"{' '.join(needs)}`) or remove them from ml.families in conf/"
        )
    return chosen
