"""``python -m <package>.analysis report [--output PATH]``.

Exit codes: 0 report written, 2 missing or unreadable input or configuration (the message names
the file and the make target that builds it; nothing is written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common.config import ConfigError, load_config, resolve
from . import report
from .frames import AnalysisError, collect

REPORT_FILE = "business-report.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.parent if __spec__ else 'analysis'}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("report", help=f"write reports/{REPORT_FILE}")
    build.add_argument("--output", type=Path, help=f"default: <paths.reports>/{REPORT_FILE}")
    args = parser.parse_args(argv)
    try:
        cfg = load_config()
        output = args.output or resolve(cfg, "reports") / REPORT_FILE
        view = collect(cfg)
        report.write(view, output)
    except (AnalysisError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    figures = report.summary(view)
    print(
        f"report: {output} ({figures['gold_rows']} gold rows, {figures['segments']} segments, "
        f"{figures['requests']} logged predictions, model {figures['model_version'] or 'none'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
