"""``python -m <package>.ml train|evaluate|explain|package|gate|card|all``.

Exit codes: 0 success, 1 the acceptance gate rejected the candidate, 2 a usage, configuration or
data problem (the message says what to fix).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from ..common.config import ConfigError, load_config
from .store import GateRejected, MLError

STEPS = ("train", "evaluate", "explain", "package", "gate", "card")


def _step(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if name == "train":
        from .train import run
    elif name == "evaluate":
        from .evaluate import run
    elif name == "explain":
        from .explain import run
    elif name == "package":
        from .package import run
    elif name == "gate":
        from .gate import run
    else:
        from .model_card import run
    return run


def _describe(name: str, result: dict[str, Any]) -> str:
    if name == "train":
        fam = next(f for f in result["families"] if f["family"] == result["chosen"])
        rows = result["split"]["rows"]
        return (
            f"{result['chosen']} (validation {result['metric']} {fam['validation_score']:.4f}; "
            f"train/validation/holdout {rows['train']}/{rows['validation']}/{rows['holdout']})"
            f" -> models/candidate/ {result['model_version']}"
        )
    if name == "evaluate":
        return f"holdout {result['metric']} {result['score']:.4f} -> reports/metrics.json"
    if name == "explain":
        top = ", ".join(f["feature"] for f in result["features"][:3])
        return f"top features: {top} -> reports/explanation.json"
    if name == "package":
        diff, rows = result["max_abs_diff"], result["rows"]
        return f"model.onnx parity ok (max |diff| {diff:.2g}, {rows} rows)"
    if name == "gate":
        return f"BLESSED {result['candidate']['model_version']} -> models/blessed/"
    return f"-> {result['path']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m <package>.ml", description=__doc__)
    parser.add_argument("command", choices=[*STEPS, "all"], help="step to run (all = every step)")
    parser.add_argument("--env", help="configuration environment (default: $MLOPS_ENV or dev)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    steps = STEPS if args.command == "all" else (args.command,)
    try:
        cfg = load_config(args.env)
        for name in steps:
            started = time.perf_counter()
            try:
                result = _step(name)(cfg)
            except GateRejected:
                if args.command == "all":
                    _step("card")(cfg)  # the card records the rejection too
                raise
            took = time.perf_counter() - started
            print(f"ml {name}: {_describe(name, result)} [{took:.1f}s]", flush=True)
    except GateRejected as exc:
        print(f"ml gate: REJECTED {exc}", file=sys.stderr)
        return 1
    except (MLError, ConfigError) as exc:
        print(f"ml {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
