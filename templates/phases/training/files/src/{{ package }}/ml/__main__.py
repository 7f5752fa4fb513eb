"""``python -m <package>.ml train|evaluate|explain|package|gate|card|all`` and the model
registry's ``promote|rollback|list|migrate`` (see ml/promote.py).

Exit codes: 0 success, 1 the acceptance gate rejected the candidate, 2 a usage, configuration or
data problem (the message says what to fix; nothing is moved).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from ..common.config import ConfigError, load_config
from .store import GateRejected, MLError

STEPS = ("train", "evaluate", "explain", "package", "gate", "card")
REGISTRY_COMMANDS = ("promote", "rollback", "list", "migrate")


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
        version = result["candidate"]["model_version"]
        return f"BLESSED {version} -> models/versions/{version}/ ({result.get('alias')})"
    return f"-> {result['path']}"


def _describe_move(entry: dict[str, Any]) -> str:
    changes = "; ".join(
        f"{c['alias']} {c['from'] or '-'} -> {c['to'] or '-'}" for c in entry["changes"]
    )
    return f"{changes} (by {entry['who']}: {entry['why']}) -> models/aliases.json"


def _registry_command(args: argparse.Namespace, cfg: dict[str, Any]) -> None:
    from . import promote

    if args.command == "list":
        result = promote.listing(cfg, last=args.last)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(promote.format_listing(result))
        return
    if args.command == "migrate":
        from ..common import registry
        from .store import layout

        try:
            entry = registry.migrate(layout(cfg).models, who=registry.who(args.who))
        except registry.RegistryError as exc:
            raise MLError(str(exc)) from None
        if entry is None:
            print("ml migrate: nothing to migrate (no models/blessed/ without models/aliases.json)")
        else:
            kept = ", ".join(entry["versions"])
            print(f"ml migrate: kept {kept} in models/versions/; {_describe_move(entry)}")
        return
    if args.command == "promote":
        entry = promote.promote(cfg, args.version, alias=args.alias, who=args.who, why=args.why)
    else:
        if args.version is not None:
            raise MLError("rollback takes no version argument; use --to <version>")
        entry = promote.rollback(cfg, args.to, alias=args.alias, who=args.who, why=args.why)
    print(f"ml {args.command}: {_describe_move(entry)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m <package>.ml", description=__doc__)
    parser.add_argument(
        "command",
        choices=[*STEPS, "all", *REGISTRY_COMMANDS],
        help="step to run (all = every step), or a registry command",
    )
    parser.add_argument("version", nargs="?", help="promote: the kept version to promote")
    parser.add_argument("--env", help="configuration environment (default: $MLOPS_ENV or dev)")
    parser.add_argument(
        "--alias",
        choices=["champion", "challenger"],
        default="champion",
        help="promote/rollback: the alias to move (default champion)",
    )
    parser.add_argument("--to", help="rollback: the kept version to roll back to")
    parser.add_argument("--why", help="promote/rollback: the reason recorded in the registry")
    parser.add_argument("--who", help="who moves it (default: $MLOPS_WHO, git user, $USER)")
    parser.add_argument("--json", action="store_true", help="list: print JSON")
    parser.add_argument("--last", type=int, default=10, help="list: how many moves to show")
    args = parser.parse_args(argv)
    if args.version is not None and args.command not in ("promote", "rollback"):
        parser.error(f"{args.command} takes no version argument")
    if args.command in REGISTRY_COMMANDS:
        try:
            _registry_command(args, load_config(args.env))
        except (MLError, ConfigError) as exc:
            print(f"ml {args.command}: error: {exc}", file=sys.stderr)
            return 2
        return 0
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
