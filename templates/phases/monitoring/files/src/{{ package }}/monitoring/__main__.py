"""`python -m <package>.monitoring` (`make monitor`): drift, staleness and performance report.

Compares the requests logged by the service (`logs/requests.jsonl`, current model version only
unless --all-versions) with the blessed model's training reference, checks the model's age and,
when labels have arrived in `data/labels/`, its performance. Writes `reports/monitoring.json` and
a self-contained `reports/monitoring.html`.

Exit codes:
  0  healthy (also when there is too little traffic to judge drift: see monitoring.min_samples)
  2  usage or data error (no blessed model, no reference, unreadable labels)
  3  retraining due (drift above monitoring.drift_threshold, model older than
     monitoring.max_model_age_days, or performance on labelled traffic below ml.min_score)
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

from ..common.config import ConfigError, load_config, resolve
from ..serving.model import ModelError
from .checks import EXIT_USAGE, MonitoringError, Settings, run_checks
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
    settings = Settings(
        model_dir=args.model_dir or resolve(config, "models") / "blessed",
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
    )
    if settings.drift_metric not in ("psi", "ks"):
        raise ConfigError(f"monitoring.drift_metric {settings.drift_metric!r} must be psi or ks")
    if args.since_days is not None:
        settings.since = settings.now - timedelta(days=args.since_days)
    return settings


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
    parser.add_argument("--model-dir", type=Path, help="default: <paths.models>/blessed")
    parser.add_argument("--logs-dir", type=Path, help="default: paths.logs")
    parser.add_argument("--labels-dir", type=Path, help="default: data/labels")
    parser.add_argument("--output-dir", type=Path, help="default: paths.reports")
    args = parser.parse_args(argv)
    try:
        config = load_config()
        settings = settings_from_config(config, args)
        report = run_checks(settings)
    except (ConfigError, ModelError, MonitoringError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
    print(f"  report: {out / 'monitoring.json'}, {out / 'monitoring.html'}")
    return int(report["exit_code"])


if __name__ == "__main__":
    sys.exit(main())
