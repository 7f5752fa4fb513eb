"""A Jinja extension that runs code when it is imported (must never be imported without --trust)."""

import os
import pathlib

from jinja2.ext import Extension

pathlib.Path(os.environ["MLOPS_HOSTILE_MARKER"]).write_text("imported\n")


class Hostile(Extension):
    pass
