"""`python -m <package>.serving` (`make serve`): run the REST service with uvicorn.

Host and port come from conf/ (`serving.host`, `serving.port`); the flags override them.
Exit codes: 0 stopped cleanly (Ctrl-C / SIGTERM flush the request log first), 2 no usable
blessed model or bad configuration, 3 uvicorn could not start (e.g. the port is in use).
One worker process; for more, run
`uvicorn --factory <package>.serving.app:create_app --workers N` (each worker appends to the same
request log safely).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..common.config import ConfigError, load_config
from .model import ModelError


def main(argv: list[str] | None = None) -> int:
    config = load_config()
    serving = config.get("serving") or {}
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__)
    parser.add_argument("--host", default=serving.get("host", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(serving.get("port", 8000)))
    parser.add_argument("--model-dir", type=Path, help="default: <paths.models>/blessed")
    parser.add_argument("--log-dir", type=Path, help="default: paths.logs")
    parser.add_argument(
        "--no-log-requests",
        action="store_true",
        help="do not log requests (overrides serving.log_requests)",
    )
    parser.add_argument("--access-log", action="store_true", help="uvicorn's access log too")
    args = parser.parse_args(argv)

    import uvicorn

    from .app import create_app

    try:
        app = create_app(
            model_dir=args.model_dir,
            log_dir=args.log_dir,
            log_requests=False if args.no_log_requests else None,
        )
    except (ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=args.host, port=args.port, access_log=args.access_log, log_level="info")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
