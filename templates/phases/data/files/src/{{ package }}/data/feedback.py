"""Feedback: the served requests whose ground truth came back -> a bronze ``feedback`` table.

``python -m <package>.data feedback`` (``make feedback``) joins the request log of the serving
phase (``<paths.logs>/requests.jsonl``: one JSON object a line with ``request_id``,
``timestamp``, ``model_version`` and ``features``, the inputs as the model received them) with
the labels in ``data/labels/`` (``paths.labels``; ``*.csv`` and ``*.parquet`` files with
``request_id`` and the target column, the files ``POST /feedback`` and ``make monitor`` use)
on ``request_id``, and appends the labelled requests as a new partition of
``<paths.bronze>/feedback/ingest_date=YYYY-MM-DD/part-<UTC timestamp>.parquet`` with its
manifest and a lineage entry, like ``ingest``.

Columns: ``request_id``, ``timestamp``, ``model_version``, the feature columns, the target.

- Labels: the files are read in name order, rows in file order; a later label of the same
  ``request_id`` wins (a corrected label replaces the first one); an empty label is skipped.
  This is the order ``make monitor`` reads them in.
- A request logged twice keeps its last line.
- Idempotent: a request already in an earlier feedback partition is never written again (its
  label, even corrected since, stays the one bronze has: bronze is append-only). A run with
  nothing new writes nothing and is not an error.
- To learn from it, list it as a source (``data.sources.labelled_requests``: ``kind: parquet``,
  ``path: data/bronze/feedback/ingest_date=*/part-*.parquet``, ``id_column: request_id``; not
  named ``feedback``, the folder of this table) and combine it in ``data/features.py``.
- The request log holds no PII in clear (the serving phase masks or drops those columns) and
  nothing is added here.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from ..common.config import resolve
from ..common.lineage import record
from .errors import DataError
from .storage import bronze_partitions, lineage_file, manifest_path, relative, staged, write_json

TABLE = "feedback"
REQUEST_LOG = "requests.jsonl"
#: the columns every feedback row has besides the features and the target
KEYS = ("request_id", "timestamp", "model_version")


def bronze_folder(cfg: dict[str, Any]) -> Path:
    """Where the feedback partitions go: ``<paths.bronze>/feedback``."""
    return resolve(cfg, "bronze") / TABLE


def read_requests(path: Path, root: Path) -> dict[str, dict[str, Any]]:
    """request_id -> its row (keys, then the features) from the request log (last line wins)."""
    name = relative(path, root)
    if not path.is_file():
        raise DataError(
            f"request log {name} does not exist: it is written by the serving phase "
            "(serving.log_requests: true) while it answers /predict; serve some requests, or "
            "point paths.logs (conf/base.yaml) at the folder holding requests.jsonl"
        )
    rows: dict[str, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"request log {name} cannot be read as UTF-8: {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{name}:{number}:{exc.colno}: not a JSON object ({exc.msg}); the request log "
                "holds one JSON object a line: fix or remove the line"
            ) from None
        if not isinstance(item, dict):
            raise DataError(f"{name}:{number}: a {type(item).__name__}, not a JSON object")
        request_id, features = item.get("request_id"), item.get("features")
        if not isinstance(request_id, str) or not request_id:
            raise DataError(f"{name}:{number}: no `request_id` (a string); fix or remove the line")
        if not isinstance(features, dict):
            raise DataError(
                f"{name}:{number}: `features` is not an object of the model's inputs; fix or "
                "remove the line"
            )
        clash = [k for k in features if k in KEYS]
        if clash:
            raise DataError(
                f"{name}:{number}: feature {clash[0]!r} has the name of a feedback column "
                f"({', '.join(KEYS)}); rename the feature"
            )
        rows[request_id] = {
            "request_id": request_id,
            "timestamp": item.get("timestamp"),
            "model_version": item.get("model_version"),
            **features,
        }
    return rows


def label_files(labels: Path) -> list[Path]:
    """The labels files, in the order they are read (name order)."""
    if not labels.is_dir():
        return []
    return sorted([*labels.glob("*.csv"), *labels.glob("*.parquet")], key=lambda p: p.name)


def read_labels(files: list[Path], target: str, root: Path) -> dict[str, Any]:
    """request_id -> observed target; a later file or row of the same request_id wins."""
    labels: dict[str, Any] = {}
    for path in files:
        name = relative(path, root)
        try:
            if path.suffix == ".csv":
                frame = pl.read_csv(path, infer_schema_length=None)
            else:
                frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"labels file {name} cannot be read ({first}); fix it or move it out of "
                f"{relative(path.parent, root)}"
            ) from None
        missing = [c for c in ("request_id", target) if c not in frame.columns]
        if missing:
            raise DataError(
                f"labels file {name} has no column {', '.join(map(repr, missing))}: a labels "
                f"file holds `request_id` and the target `{target}` (ml.target); its columns "
                f"are: {', '.join(frame.columns) or 'none'}"
            )
        for request_id, value in frame.select("request_id", target).iter_rows():
            if request_id is not None and value is not None:
                labels[str(request_id)] = value
    return labels


def written_ids(folder: Path) -> set[str]:
    """The request ids of every earlier feedback partition."""
    ids: set[str] = set()
    for part in bronze_partitions(folder):
        try:
            column = pl.read_parquet(part, columns=["request_id"]).get_column("request_id")
        except (OSError, pl.exceptions.PolarsError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(
                f"feedback partition {part} cannot be read ({first}); bronze is append-only: "
                "restore it, or move it and its manifest out of the feedback folder"
            ) from None
        ids.update(str(v) for v in column.drop_nulls().to_list())
    return ids


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    """Append the newly labelled requests as a feedback partition; a summary of the run
    (``written`` False when nothing new was labelled)."""
    root = Path(cfg["root"])
    target = cfg["ml"].get("target")
    if not target:
        raise DataError(
            "ml.target is not set (conf/base.yaml): the feedback table pairs each request "
            "with its observed target; set ml.target"
        )
    target = str(target)
    if (cfg["data"].get("sources") or {}).get(TABLE) is not None:
        raise DataError(
            f"data.sources.{TABLE} (conf/base.yaml): a source named {TABLE!r} would be ingested "
            f"into the folder of the feedback table ({relative(bronze_folder(cfg), root)}); "
            "give that source another name (e.g. labelled_requests)"
        )
    log = resolve(cfg, "logs") / REQUEST_LOG
    requests = read_requests(log, root)
    files = label_files(resolve(cfg, "labels", default="data/labels"))
    labels = read_labels(files, target, root)
    folder = bronze_folder(cfg)
    done = written_ids(folder)
    new = [rid for rid in requests if rid in labels and rid not in done]
    summary: dict[str, Any] = {
        "requests": len(requests),
        "labels": len(labels),
        "already": len(done & labels.keys() & requests.keys()),
        "unmatched": len(labels.keys() - requests.keys()),
        "rows": len(new),
        "written": False,
        "partition": None,
    }
    if not new:
        return summary
    rows = []
    for rid in new:
        row = requests[rid]
        if target in row:
            raise DataError(
                f"{relative(log, root)}: request {rid!r} has a feature named like the target "
                f"{target!r}; the model must not receive its own target"
            )
        rows.append({**row, target: labels[rid]})
    try:
        frame = pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, OverflowError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"the labelled requests of {relative(log, root)} cannot be typed ({first}): give "
            f"each feature and the target `{target}` one type in the log and the labels files"
        ) from None
    features = [c for c in frame.columns if c not in (*KEYS, target)]
    frame = frame.select(*KEYS, *features, target)

    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    payload = buffer.getvalue()
    now = datetime.now(timezone.utc)  # noqa: UP017 (py3.10)
    partition = folder / f"ingest_date={now:%Y-%m-%d}" / f"part-{now:%Y%m%dT%H%M%S%fZ}.parquet"
    origin = {
        "kind": TABLE,
        "request_log": relative(log, root),
        "labels": [relative(f, root) for f in files],
    }
    manifest = {
        "source": origin,
        "rows": frame.height,
        "columns": frame.width,
        "schema": {name: str(dtype) for name, dtype in frame.schema.items()},
        "sha256": hashlib.sha256(payload).hexdigest(),
        "ingested_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "partition": relative(partition, root),
    }
    with staged([partition, manifest_path(partition)]) as temps:
        temps[partition].write_bytes(payload)
        write_json(manifest, temps[manifest_path(partition)])
    record(
        lineage_file(cfg),
        TABLE,
        [log, *files],
        [partition],
        root,
        {"table": TABLE, "source": origin, "rows": frame.height},
    )
    return {**summary, "written": True, "partition": relative(partition, root)}
