"""``python -m <package>.data ingest|silver|gold|all|docs|reset-bronze|feedback`` - the data CLI.

``reset-bronze`` starts a new bronze contract after the source's columns changed: it moves every
bronze partition (and its manifest) to ``<bronze>/_archive/<UTC time>/``, so nothing is lost and
the next ``ingest`` locks the new columns.

``feedback`` appends the served requests whose labels came back (``data/labels/``) as a
partition of the bronze ``feedback`` table (``feedback.py``); it is not part of ``all``.

With ``data.versioning: delta``, ``delta-history [silver|gold]`` lists the Delta table versions.

Exit codes: 0 done, 2 bad input or configuration (the message says what and where; nothing is
written to silver or gold).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time
from pathlib import Path
from typing import Any

from ..common.config import ConfigError, load_config
from . import feedback, gold, ingest, silver
from .engines import ENGINES
from .errors import DataError

#: the Delta tables module ships only with data.versioning: delta
DELTA = importlib.util.find_spec(f"{__package__}.delta") is not None
STEPS = ("ingest", "silver", "gold", "all", "docs", "reset-bronze", "feedback") + (
    ("delta-history",) if DELTA else ()
)
ARCHIVE = "_archive"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}", description="bronze -> silver -> gold data pipeline"
    )
    parser.add_argument("step", choices=STEPS, help="the step to run (all: ingest, silver, gold)")
    parser.add_argument("--engine", choices=ENGINES, help="override data.engine from conf/")
    parser.add_argument(
        "--force",
        action="store_true",
        help="ingest: append a partition even if the source is unchanged",
    )
    parser.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help="docs: rewrite the contract section of FILE instead of printing",
    )
    if DELTA:
        parser.add_argument(
            "layer", nargs="?", choices=("silver", "gold"), help="delta-history: only this layer"
        )
    return parser


def _ingest(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    results = ingest.run(cfg, force=args.force)["tables"]
    for name, result in results.items():
        table = f" {name}" if len(results) > 1 else ""
        if result["written"]:
            print(f"ingest{table}: {result['rows']} rows -> {result['partition']}")
        else:
            print(
                f"ingest{table}: source unchanged since {result['partition']} "
                "(use --force to append)"
            )


def _silver(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    report = silver.run(cfg, args.engine)
    columns = report.get("columns") or {}
    renamed = columns.get("renamed") or {}
    if renamed:
        old, new = next(iter(renamed.items()))
        more = f" and {len(renamed) - 1} more" if len(renamed) > 1 else ""
        print(
            f"silver: column names made identifiers: {old!r} -> {new!r}{more} "
            "(reports/data-quality.md lists them)"
        )
    for name, why in (columns.get("excluded") or {}).items():
        print(f"silver: column {name!r} is not a feature: {why}")
    for name, parts in (columns.get("dates") or {}).items():
        print(f"silver: date column {name!r} -> gold features {', '.join(parts)}")
    for name, table in {"": report, **report.get("tables", {})}.items():
        dup = table["duplicates"]
        print(
            f"silver{' ' + name if name else ''}: {table['bronze']['rows']} bronze rows -> "
            f"{table['silver']['rows']} rows ({table['quarantined']['rows']} quarantined, "
            f"{dup['exact_rows_removed']} duplicates, {dup['repeated_ids_removed']} repeated "
            f"ids) -> {table['silver']['path']}"
        )


def _gold(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    result = gold.run(cfg, args.engine)
    entity = result.get("entity_rows")
    extra = "" if entity is None else f", entity_features.parquet: {entity} ids"
    print(
        f"gold: {result['rows']} rows, {result['features']} features -> {result['path']} "
        f"(+ contract.json, {result['aggregates']} aggregate rows{extra})"
    )


def _docs(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    from ..common.config import resolve
    from .contracts import BEGIN, END, Contract, markdown, replace_section

    contract = Contract.load(resolve(cfg, "silver") / "contract.json")
    if args.write is None:
        print(markdown(contract), end="")
        return
    target = args.write
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{target} not found; create it with the lines {BEGIN} and {END}") from None
    target.write_text(replace_section(text, markdown(contract), str(target)), encoding="utf-8")
    print(f"docs: contract tables of {target} rewritten from the silver contract")


def _reset_bronze(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    from ..common.config import resolve
    from ..common.lineage import utc_now
    from .storage import move, relative

    bronze, root = resolve(cfg, "bronze"), Path(cfg["root"])
    folders = sorted(p for p in bronze.glob("ingest_date=*") if p.is_dir())
    if not folders:
        print(f"reset-bronze: {relative(bronze, root)} has no partitions; nothing to move")
        return
    stamp = utc_now().replace(":", "").replace("-", "")
    archive = bronze / ARCHIVE / stamp
    archive.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        move(folder, archive / folder.name)
    print(
        f"reset-bronze: {len(folders)} partition folder(s) moved to {relative(archive, root)}; "
        "the next `ingest` (make data) starts a new bronze contract with the source's columns"
    )


def _feedback(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    result = feedback.run(cfg)
    seen = (
        f"{result['requests']} logged requests, {result['labels']} labels "
        f"({result['already']} already in bronze, {result['unmatched']} for requests not in "
        "the log)"
    )
    if result["written"]:
        print(f"feedback: {seen}: {result['rows']} labelled requests -> {result['partition']}")
    else:
        print(f"feedback: {seen}: nothing new to write")


def _delta_history(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    delta = importlib.import_module(f"{__package__}.delta")  # shipped with versioning: delta

    print(delta.history_text(cfg, args.layer), end="")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "layer", None) and args.step != "delta-history":
        parser.error("a layer is given only to delta-history")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    steps = ["ingest", "silver", "gold"] if args.step == "all" else [args.step]
    actions = {"ingest": _ingest, "silver": _silver, "gold": _gold, "docs": _docs}
    actions["reset-bronze"] = _reset_bronze
    actions["delta-history"] = _delta_history
    actions["feedback"] = _feedback
    try:
        cfg = load_config()
        for step in steps:
            started = time.perf_counter()
            actions[step](cfg, args)
            if args.step == "all":
                print(f"  ({step} took {time.perf_counter() - started:.2f} s)")
    except (DataError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
