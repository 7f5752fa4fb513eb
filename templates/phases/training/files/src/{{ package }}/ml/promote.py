"""Move the registry's aliases by hand (or from monitoring): promote, roll back, list.

Every move goes through common/registry.py (``models/aliases.json`` replaced atomically, the
event appended to ``models/registry.jsonl`` with who, when and why) and, with
``ml.tracking: mlflow``, is mirrored to the MLflow registry's aliases.

- ``promote``: the challenger becomes the champion (refused when there is none);
  ``promote <version>`` makes a kept version the champion; ``promote <version> --alias
  challenger`` starts testing a kept version against the champion.
- ``rollback``: the champion goes back to the one it replaced (or ``--to <version>``), refused
  when that version's folder no longer exists; ``rollback --alias challenger`` withdraws the
  challenger (the champion alone answers again).
- ``list``: the kept versions, their scores and aliases, and the latest moves.
"""

from __future__ import annotations

import json
from typing import Any

from ..common import registry
from .model import METADATA_FILE
from .store import MLError, layout
from .tracking import tracker_for


def _models(cfg: dict[str, Any]) -> Any:
    lay = layout(cfg)
    try:
        registry.migrate(lay.models, who=registry.who())
    except registry.RegistryError as exc:
        raise MLError(str(exc)) from None
    return lay.models


def _mirror(cfg: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    mirrored = tracker_for(cfg).mirror_aliases(entry["aliases"])
    if mirrored is not None:
        entry = {**entry, "mlflow": mirrored}
    return entry


def _apply(cfg: dict[str, Any], changes: dict[str, str | None], *, who: str | None, why: str,
           event: str) -> dict[str, Any]:  # fmt: skip
    models = _models(cfg)
    try:
        entry = registry.update(models, changes, who=registry.who(who), why=why, event=event)
    except registry.RegistryError as exc:
        raise MLError(str(exc)) from None
    return _mirror(cfg, entry)


def promote(cfg: dict[str, Any], version: str | None = None, *, alias: str = "champion",
            who: str | None = None, why: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Promote the challenger (no ``version``) or a kept version to ``alias``."""
    models = _models(cfg)
    try:
        current = registry.aliases(models)
        if alias not in registry.ALIASES:
            raise MLError(f"--alias {alias!r}: use champion or challenger")
        if version is None:
            if alias != "champion":
                raise MLError("promote --alias challenger needs the version to test")
            if current["challenger"] is None:
                raise MLError(
                    f"{models / registry.ALIASES_FILE}: there is no challenger to promote "
                    f"(champion: {current['champion']}); name a kept version "
                    "(`promote <version>`) or bless a candidate with serving.strategy shadow, "
                    "canary or ab"
                )
            version = current["challenger"]
        version = registry.resolve(models, registry.check_version(version))
        if current[alias] == version:
            raise MLError(f"{version} is already the {alias}; nothing to promote")
        if alias == "challenger" and current["champion"] == version:
            raise MLError(f"{version} is the champion; a model cannot challenge itself")
    except registry.RegistryError as exc:
        raise MLError(str(exc)) from None
    changes: dict[str, str | None] = {alias: version}
    if alias == "champion" and current["challenger"] == version:
        changes["challenger"] = None
    default = (
        f"promoted {version} to {alias} by hand"
        + (f" (champion was {current['champion']})" if alias == "champion" else "")
    )  # fmt: skip
    return _apply(cfg, changes, who=who, why=why or default, event="promote")


def previous_champion(models: Any) -> str | None:
    """The champion the current one replaced when it was blessed or promoted (registry.jsonl), or
    None. Rollbacks are skipped, so rolling back twice walks further back instead of flipping."""
    current = registry.aliases(models)["champion"]
    for entry in reversed(registry.history(models)):
        if entry.get("event") == "rollback":
            continue
        for change in entry.get("changes", []):
            if change.get("alias") == "champion" and change.get("to") == current:
                return change.get("from")
    return None


def rollback(cfg: dict[str, Any], to: str | None = None, *, alias: str = "champion",
             who: str | None = None, why: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Roll the champion back (to the one it replaced, or ``to``) or withdraw the challenger."""
    models = _models(cfg)
    try:
        current = registry.aliases(models)
        if alias == "challenger":
            if to is not None:
                raise MLError("rollback --alias challenger withdraws the challenger; drop --to")
            if current["challenger"] is None:
                raise MLError(
                    f"{models / registry.ALIASES_FILE}: there is no challenger to roll back"
                )
            default = (
                f"withdrew challenger {current['challenger']}; champion {current['champion']} "
                "answers alone"
            )
            return _apply(cfg, {"challenger": None}, who=who, why=why or default, event="rollback")
        if alias != "champion":
            raise MLError(f"--alias {alias!r}: use champion or challenger")
        if current["champion"] is None:
            raise MLError(
                f"{models / registry.ALIASES_FILE}: no champion yet; nothing to roll back"
            )
        target = to if to is not None else previous_champion(models)
        if target is None:
            raise MLError(
                f"champion {current['champion']} replaced no earlier champion (see "
                f"{models / registry.HISTORY_FILE}); name one with --to <version>"
            )
        folder = registry.version_path(models, registry.check_version(target))
        if not (folder / METADATA_FILE).is_file():
            kept = ", ".join(registry.versions(models)) or "none"
            raise MLError(
                f"refusing to roll back to {target}: {folder}/ no longer exists (kept versions: "
                f"{kept}); pass --to <a kept version>"
            )
        if target == current["champion"]:
            raise MLError(f"{target} is already the champion; nothing to roll back")
    except registry.RegistryError as exc:
        raise MLError(str(exc)) from None
    default = f"rolled the champion back from {current['champion']} to {target} by hand"
    return _apply(cfg, {"champion": target}, who=who, why=why or default, event="rollback")


def listing(cfg: dict[str, Any], last: int = 10) -> dict[str, Any]:
    """The kept versions (with metadata and aliases) and the last ``last`` registry events."""
    models = _models(cfg)
    try:
        current = registry.aliases(models)
        events = registry.history(models)
    except registry.RegistryError as exc:
        raise MLError(str(exc)) from None
    rows = []
    for version in registry.versions(models):
        meta_file = registry.version_path(models, version) / METADATA_FILE
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {}
        rows.append(
            {
                "model_version": version,
                "aliases": [a for a in registry.ALIASES if current[a] == version],
                "trained_at": meta.get("trained_at"),
                "blessed_at": meta.get("blessed_at"),
                "estimator": meta.get("estimator"),
                "metric": meta.get("metric"),
                "score": meta.get("score"),
            }
        )
    return {"aliases": current, "versions": rows, "events": events[-last:] if last else events}


def format_listing(result: dict[str, Any]) -> str:
    lines = []
    aliases = result["aliases"]
    lines.append(
        f"champion: {aliases['champion'] or '-'}   challenger: {aliases['challenger'] or '-'}"
    )
    kept = {row["model_version"] for row in result["versions"]}
    for alias in ("champion", "challenger"):
        if aliases[alias] is not None and aliases[alias] not in kept:
            lines.append(
                f"WARNING: {alias} {aliases[alias]} has no folder in models/versions/; restore it "
                "or move the alias (promote / rollback)"
            )
    lines.append("")
    lines.append(f"{'version':<28} {'aliases':<20} {'score':>10}  estimator")
    for row in result["versions"]:
        score = row["score"]
        shown = f"{score:.4f}" if isinstance(score, int | float) else "-"
        label = ",".join(row["aliases"]) or "-"
        lines.append(
            f"{row['model_version']:<28} {label:<20} {shown:>10}  {row['estimator'] or '-'}"
            f" ({row['metric'] or '-'})"
        )
    if not result["versions"]:
        lines.append("(no kept versions: run `make pipeline`)")
    lines.append("")
    lines.append("latest moves:")
    for entry in result["events"]:
        changes = (
            "; ".join(
                f"{c['alias']} {c.get('from') or '-'} -> {c.get('to') or '-'}"
                for c in entry.get("changes", [])
            )
            or f"blessed {entry.get('model_version', '?')}"
        )
        lines.append(
            f"  {entry.get('when') or '?'}  {entry.get('event', '?'):<8} {changes}  "
            f"by {entry.get('who') or '?'}: {entry.get('why') or '-'}"
        )
    if not result["events"]:
        lines.append("  (none)")
    return "\n".join(lines)
