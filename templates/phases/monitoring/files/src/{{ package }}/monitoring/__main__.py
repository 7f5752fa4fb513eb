"""`python -m <package>.monitoring` (`make monitor`): drift, staleness and performance report.

Compares the requests logged by the service (`logs/requests.jsonl`, the champion's version only
unless --all-versions) with the champion's training reference, checks the model's age and, when
labels have arrived in `data/labels/`, its performance. When the registry (`models/aliases.json`)
names a challenger (shadow, canary or A/B serving), it compares champion and challenger on the
labelled traffic and decides: promote, keep testing or roll back (monitoring/compare.py); a
challenger worse with confidence is withdrawn (`monitoring.comparison.auto_rollback`), a better
one promoted only with `monitoring.comparison.auto_promote: true`; every move is recorded in
`models/registry.jsonl` with why. Writes `reports/monitoring.json` and a self-contained
`reports/monitoring.html`.

Exit codes:
  0  healthy (also when there is too little traffic to judge drift: see monitoring.min_samples)
  2  usage or data error (no champion model, no reference, unreadable labels)
  3  retraining due (drift above monitoring.drift_threshold, model older than
     monitoring.max_model_age_days, or performance on labelled traffic below ml.min_score)
  4  the registry moved (the challenger was rolled back or promoted) and no retraining is due
`make monitor` fails whenever this does (make then exits 2 itself and prints "Error 3"), so
schedulers and CI run `python -m <package>.monitoring` to tell "retrain" from an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..common import registry
from ..common.config import ConfigError, load_config, resolve
from ..serving.model import ModelError
from .checks import EXIT_MOVED, EXIT_USAGE, MonitoringError, Settings, run_checks
from .compare import ComparisonSettings
from .html import render_html


def _write(path: Path, text: str) -> None:
    """Write atomically: readers never see half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def settings_from_config(config: dict[str, Any], args: argparse.Namespace) -> Settings:
    monitoring = config.get("monitoring") or {}
    ml = config.get("ml") or {}
    models = resolve(config, "models")
    model_dir: Path = args.model_dir
    if model_dir is None:
        try:
            model_dir = registry.model_dir(models, "champion")
        except registry.RegistryError as exc:
            raise MonitoringError(str(exc)) from None
    settings = Settings(
        model_dir=model_dir,
        logs_dir=args.logs_dir or resolve(config, "logs"),
        labels_dir=args.labels_dir or Path(config["root"]) / "data" / "labels",
        drift_metric=str(monitoring.get("drift_metric", "psi")),
        drift_threshold=float(monitoring.get("drift_threshold", 0.2)),
        max_model_age_days=float(monitoring.get("max_model_age_days", 30)),
        min_samples=int(args.min_samples or monitoring.get("min_samples", 100)),
        min_score=None if ml.get("min_score") is None else float(ml["min_score"]),
        metric=ml.get("metric"),
        greater_is_better=bool(ml.get("greater_is_better", True)),
        all_versions=args.all_versions,
        models_dir=None if args.model_dir else models,
        comparison=ComparisonSettings.from_config(monitoring.get("comparison")),
    )
    if settings.drift_metric not in ("psi", "ks"):
        raise ConfigError(f"monitoring.drift_metric {settings.drift_metric!r} must be psi or ks")
    if args.since_days is not None:
        settings.since = settings.now - timedelta(days=args.since_days)
    return settings


def act(config: dict[str, Any], report: dict[str, Any], models: Path) -> dict[str, Any] | None:
    """Carry out the comparison's decision (rollback / promote) when conf allows it; returns the
    registry event (None: nothing moved)."""
    comparison = report.get("comparison")
    if not comparison:
        return None
    settings = ComparisonSettings.from_config((config.get("monitoring") or {}).get("comparison"))
    decision = comparison["decision"]
    if decision == "rollback" and settings.auto_rollback:
        changes: dict[str, str | None] = {"challenger": None}
        why = f"make monitor: {comparison['reason']}"
    elif decision == "promote" and settings.auto_promote:
        changes = {"champion": comparison["challenger"], "challenger": None}
        why = f"make monitor (auto_promote): {comparison['reason']}"
    else:
        return None
    try:
        current = registry.aliases(models)
        if current["challenger"] != comparison["challenger"]:
            return None  # someone moved it meanwhile: decide again on the next run
        who = f"{registry.who()} via make monitor"
        entry = registry.update(models, changes, who=who, why=why, event=decision)
    except registry.RegistryError as exc:
        raise MonitoringError(str(exc)) from None
    if (config.get("ml") or {}).get("tracking") == "mlflow":
        from ..ml.store import MLError
        from ..ml.tracking import tracker_for

        try:
            mirrored = tracker_for(config).mirror_aliases(entry["aliases"])
        except MLError as exc:  # the local registry moved: MLflow catches up on the next move
            mirrored = {"error": str(exc)}
        entry = {**entry, "mlflow": mirrored}
    return entry


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__package__}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--since-days", type=float, help="only requests of the last N days")
    parser.add_argument(
        "--all-versions",
        action="store_true",
        help="include requests served by earlier model versions",
    )
    parser.add_argument("--min-samples", type=int, help="override monitoring.min_samples")
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="monitor this model folder alone (default: the champion of models/aliases.json, "
        "compared with the challenger when there is one)",
    )
    parser.add_argument(
        "--no-act",
        action="store_true",
        help="report the champion/challenger decision without moving the aliases",
    )
    parser.add_argument("--logs-dir", type=Path, help="default: paths.logs")
    parser.add_argument("--labels-dir", type=Path, help="default: data/labels")
    parser.add_argument("--output-dir", type=Path, help="default: paths.reports")
    args = parser.parse_args(argv)
    try:
        config = load_config()
        settings = settings_from_config(config, args)
        report = run_checks(settings)
        moved = None
        if settings.models_dir is not None and not args.no_act:
            moved = act(config, report, settings.models_dir)
    except (ConfigError, ModelError, MonitoringError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if report.get("comparison") is not None:
        report["comparison"]["moved"] = moved
        if moved is not None and not report["retraining_due"]:
            report["exit_code"] = EXIT_MOVED
    report["project"] = config["project"]["name"]
    report["environment"] = config.get("environment")
    out = args.output_dir or resolve(config, "reports")
    _write(out / "monitoring.json", json.dumps(report, indent=2) + "\n")
    _write(out / "monitoring.html", render_html(report, str(config["project"]["name"])))

    drift = report["data_drift"]
    status = "RETRAINING DUE" if report["retraining_due"] else "healthy"
    print(f"monitoring: {status} (exit {report['exit_code']})")
    print(
        f"  model {report['model']['model_version']}: {report['model']['age_days']} days old "
        f"(max {report['model']['max_model_age_days']})"
    )
    if drift["judged"]:
        worst = max(drift["features"], key=lambda f: f["score"])
        print(
            f"  {report['window']['requests']} requests; drifted features: "
            f"{', '.join(drift['drifted_features']) or 'none'} (largest "
            f"{report['thresholds']['drift_metric']}: {worst['name']} {worst['score']:.3f}, "
            f"threshold {report['thresholds']['drift_threshold']})"
        )
    else:
        print(f"  drift not judged: {drift['reason']}")
    for line in [*report["reasons"], *report["alerts"]]:
        print(f"  - {line}")
    comparison = report.get("comparison")
    if comparison is not None:
        print(
            f"  champion {comparison['champion']} vs challenger {comparison['challenger']} "
            f"({comparison['mode']}): {comparison['decision'].upper()}: {comparison['reason']}"
        )
        if comparison["moved"] is not None:
            changes = "; ".join(
                f"{c['alias']} {c['from'] or '-'} -> {c['to'] or '-'}"
                for c in comparison["moved"]["changes"]
            )
            print(f"  registry: {changes} (recorded in models/registry.jsonl)")
    print(f"  report: {out / 'monitoring.json'}, {out / 'monitoring.html'}")
    return int(report["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
