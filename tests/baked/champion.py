"""Where a baked project's served model lives: the registry's champion (models/aliases.json ->
models/versions/<version>/), for the checks that read the model's files."""

from __future__ import annotations

import json
from pathlib import Path

#: for code run inside the project: ``CHAMP`` = the champion's folder (relative path)
CHAMPION_CODE = (
    "import json as _json\n"
    "CHAMP = 'models/versions/' + _json.load(open('models/aliases.json'))['champion']\n"
)


def champion_rel(project: Path) -> str:
    """``models/versions/<champion>`` of the project at ``project``."""
    aliases = json.loads((Path(project) / "models" / "aliases.json").read_text(encoding="utf-8"))
    return f"models/versions/{aliases['champion']}"


def champion_dir(project: Path) -> Path:
    return Path(project) / champion_rel(project)
