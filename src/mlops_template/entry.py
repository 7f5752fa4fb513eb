"""Console-script entry point: answers `mlops --version`, and plain `mlops new` / `mlops lint`
command lines (:func:`mlops_template.commands.fast_main`), without importing the CLI framework;
turns a Ctrl-C at any moment (even during start-up imports) into a clean exit 130."""

from __future__ import annotations

import os
import sys
from typing import Any


def main(argv: list[str] | None = None) -> Any:
    try:
        args = sys.argv[1:] if argv is None else argv
        if args == ["--version"]:
            from mlops_template import __version__

            print(f"mlops {__version__}")
            return 0
        # pydantic would scan every installed distribution's entry points for plugins: none used
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        from mlops_template.commands import fast_main

        code = fast_main(args)
        if code is not None:
            return code
        from mlops_template.cli import main as cli_main

        return cli_main(args)
    except KeyboardInterrupt:
        print("interrupted: nothing was written", file=sys.stderr)
        sys.exit(130)
