"""Train / validation / holdout split: seeded, stratified for classification.

The holdout is cut first and never used for fitting or model selection: only the acceptance gate
reads it. A fingerprint of its row positions travels in the model metadata so later steps can
prove they judge the model on the same untouched rows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from .store import MLError, ml_setting


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame

    def fingerprint(self) -> dict[str, Any]:
        return {
            "rows": {
                "train": len(self.train),
                "validation": len(self.validation),
                "holdout": len(self.holdout),
            },
            "holdout_sha256": index_digest(self.holdout.index),
        }


def index_digest(index: pd.Index) -> str:
    joined = ",".join(str(i) for i in sorted(index.tolist()))
    return hashlib.sha256(joined.encode()).hexdigest()


def split_frame(
    frame: pd.DataFrame,
    target: str,
    task: str,
    validation: float,
    holdout: float,
    seed: int,
) -> Split:
    """Split rows three ways; classification splits keep the class proportions."""
    for key, value in (("validation", validation), ("holdout", holdout)):
        if not 0 < value < 1:
            raise MLError(f"conf: ml.split.{key} = {value} must be between 0 and 1 (exclusive)")
    if validation + holdout >= 0.9:
        raise MLError(
            f"conf: ml.split.validation + ml.split.holdout = {validation + holdout:.2f} leaves "
            "under 10% of the rows for training; lower them"
        )
    stratify = task == "classification"
    try:
        rest, hold = train_test_split(
            frame,
            test_size=holdout,
            random_state=seed,
            stratify=frame[target] if stratify else None,
        )
        train, val = train_test_split(
            rest,
            test_size=validation / (1 - holdout),
            random_state=seed,
            stratify=rest[target] if stratify else None,
        )
    except ValueError as exc:
        counts = frame[target].value_counts().to_dict() if stratify else {}
        raise MLError(
            f"cannot split {len(frame)} gold rows (class counts {counts}): {exc}; "
            "gold needs more rows (every class in every split)"
        ) from None
    return Split(train=train, validation=val, holdout=hold)


def split_gold(frame: pd.DataFrame, target: str, task: str, cfg: dict[str, Any]) -> Split:
    """``split_frame`` with the fractions and seed of ``ml.split`` in conf/."""
    return split_frame(
        frame,
        target,
        task,
        validation=float(ml_setting(cfg, "split.validation")),
        holdout=float(ml_setting(cfg, "split.holdout")),
        seed=int(ml_setting(cfg, "split.seed")),
    )
