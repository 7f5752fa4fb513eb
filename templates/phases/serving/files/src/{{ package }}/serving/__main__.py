"""`python -m <package>.serving` (`make serve`): run the REST service with uvicorn.

Host and port come from conf/ (`serving.host`, `serving.port`); the flags (and `make serve
HOST=... PORT=...`) override them. Exit codes: 0 stopped cleanly (Ctrl-C / SIGTERM flush the
request log first), 2 no usable blessed model or bad configuration, 3 the server could not start
(e.g. the port is in use: the message names it and how to pick another).
One worker process; for more, run
`uvicorn --factory <package>.serving.app:create_app --workers N` (each worker appends to the same
request log safely). The service's own events (and uvicorn's) are JSON lines on stderr.
"""

from __future__ import annotations

import argparse
import errno
import logging.config
import socket
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
    parser.add_argument(
        "--model-dir",
        type=Path,
        help="serve this model folder alone (default: the champion, and the challenger per "
        "serving.strategy, of <paths.models>/aliases.json)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        help="the model registry (aliases.json, versions/) to serve from (default: paths.models)",
    )
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
    from .telemetry import event, log_config

    try:
        app = create_app(
            model_dir=args.model_dir,
            models_dir=args.models_dir,
            log_dir=args.log_dir,
            log_requests=False if args.no_log_requests else None,
        )
    except (ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = bind_problem(args.host, args.port)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 3
    try:
        logging.config.dictConfig(log_config())  # JSON lines on stderr, before the first event
        event("starting", host=args.host, port=args.port)
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            access_log=args.access_log,
            log_level="info",
            log_config=log_config(),
        )
    except SystemExit as exc:  # uvicorn exits 1 when it cannot bind or start up
        if exc.code not in (None, 0):
            print(
                f"error: the server on {args.host}:{args.port} could not start (see the log above)",
                file=sys.stderr,
            )
            return 3
    return 0


def bind_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be served (None when it can), said so the user can act on it."""
    if not 0 <= port <= 65535:
        return f"port {port} is not a TCP port (0-65535); choose one with `make serve PORT=8001`"
    how = f"choose another with `make serve PORT={port + 1 if port < 65535 else 8001}` (or --port)"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"host {host!r} cannot be resolved ({exc.strerror}); fix HOST= / serving.host"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use (another server?); {how}"
            if exc.errno == errno.EACCES:
                return f"port {port} on {host} needs privileges to bind; {how}"
            if exc.errno == errno.EADDRNOTAVAIL:
                return f"{host} is not an address of this machine; fix HOST= / serving.host"
            return f"cannot listen on {host}:{port} ({exc.strerror}); {how}"
    return None


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
