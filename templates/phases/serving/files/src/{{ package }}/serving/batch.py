"""`python -m <package>.serving.batch` (`make score`): score a gold-shaped parquet file.

Reads ``data/gold/features.parquet`` by default (any parquet file with the model's feature
columns works), scores it with the blessed ONNX model in chunks and writes
``reports/predictions.parquet``: ``request_id``, the id column when present, ``prediction``,
one ``probability_<class>`` column per class (classification), ``model_version`` and
``scored_at``. Each scored row is also logged to ``logs/requests.jsonl`` like a REST request
(``serving.log_requests``; ``--no-log`` to skip), so monitoring covers batch scoring; labels
join on ``request_id``.
The output is written to a temporary file and renamed, so a failure leaves nothing half-written.

With a model packaged with its feature code (``features.py`` and, with per-entity features,
``entity_features.parquet`` in the model folder), a file may hold the raw columns of the main
silver table instead (gold contract ``inputs``; the id column when features are looked up by it):
the packaged ``derive_features`` computes the derived features and the entity features are looked
up by id, as the REST service does (an unknown id or a missing one is an error naming the row). A
computed feature present in such a file is recomputed (the computed value wins). A file without
some raw input but with every model feature (gold's ``features.parquet``) is scored as it is.

Columns may also come as silver/bronze has them, as the REST service accepts: a renamed feature
under its original name (``mean radius`` for ``mean_radius``) and a date column gold expanded
(``date``, ISO text) instead of its parts (``date_year``, ...), expanded with gold's rule
(``data/dates.py``); a column present under both names, or an impossible date, is an error.

A null in a feature silver imputes is filled with silver's value (the model's metadata ``fill``),
as the REST service does; the log lists it in ``imputed``, and numbers beyond silver's fences in
``out_of_range``.

Exit codes: 0 scored, 2 bad input (missing or mistyped column, nulls in a feature without a
fill value) or no blessed model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ..common.config import ConfigError, load_config, resolve
from ..common.registry import RegistryError
from ..common.registry import model_dir as registry_model_dir
from ..data.dates import date_parts
from .features import FeatureError, FeaturePipeline, iso_dates
from .model import ModelError, OnnxModel, read_metadata
from .request_log import JsonlWriter, utc_timestamp

CHUNK_ROWS = 50_000


class BatchInputError(ValueError):
    """The input file cannot be scored; the message names the file and column."""


def _raw_columns(frame: Any, path: Path, model: OnnxModel, keep_dates: bool = False) -> Any:
    """``frame`` with renamed features under their model names and raw dates expanded
    (``keep_dates``: the date column stays too, for the feature code)."""
    import polars as pl

    meta = model.metadata
    for name, original in meta.renamed.items():
        if original in frame.columns:
            if name in frame.columns:
                raise BatchInputError(
                    f"{path}: columns {original!r} and {name!r} are the same feature; keep one"
                )
            frame = frame.rename({original: name})
    for column, parts in meta.dates.items():
        if column not in frame.columns:
            continue
        both = [n for n in parts.values() if n in frame.columns]
        if both:
            raise BatchInputError(
                f"{path}: column {column!r} and its parts {', '.join(both)} are both present; "
                "keep the date or its parts"
            )
        rows: list[dict[str, float] | None] = []
        for index, text in enumerate(frame[column].cast(pl.Utf8, strict=False).to_list()):
            try:
                rows.append(None if text is None else date_parts(text))
            except ValueError as exc:
                raise BatchInputError(f"{path}: column {column!r}, row {index}: {exc}") from None
        frame = frame.with_columns(
            pl.Series(name, [None if r is None else r[part] for r in rows], dtype=pl.Float64)
            for part, name in parts.items()
        )
        if not keep_dates:
            frame = frame.drop(column)
    return frame


def _computed(frame: Any, path: Path, model: OnnxModel, pipeline: FeaturePipeline) -> Any:
    """The model features of a raw file, computed by the packaged feature code (chunk by chunk);
    a gold-shaped file (every model feature, some raw input missing) is returned as it is."""
    import polars as pl

    meta = model.metadata
    for item in meta.inputs:
        if item.name not in frame.columns and item.source in frame.columns:
            frame = frame.rename({item.source: item.name})
    dates = meta.dates
    parts = {
        i.name: dates.get(i.source or i.name) or dates.get(i.name) or {}
        for i in meta.inputs
        if i.kind in ("date", "datetime")
    }
    missing = [
        i
        for i in meta.inputs
        if i.name not in frame.columns
        and not (parts.get(i.name) and all(n in frame.columns for n in parts[i.name].values()))
    ]
    if missing and all(n in frame.columns for n in meta.feature_names):
        return frame  # gold-shaped: its features were computed by the same code in gold
    required = [i.name for i in missing if i.fill is None]
    if required:
        computed = ", ".join(sorted(meta.computed)) or "none"
        raise BatchInputError(
            f"{path}: missing raw input column(s) {', '.join(required)}; the model needs its "
            f"raw inputs {', '.join(i.name for i in meta.inputs)} (it computes {computed} "
            f"from them), or every model feature ({', '.join(meta.feature_names)})"
        )
    entity = pipeline.entity
    if entity is not None and entity.id_column not in frame.columns:
        raise BatchInputError(
            f"{path}: no id column {entity.id_column!r}: the model looks its features "
            f"{', '.join(entity.names)} up by it"
        )
    rows = frame.height
    columns: dict[str, Any] = {}
    for item in meta.inputs:
        if item.name in frame.columns:
            columns[item.name] = frame[item.name]
        elif parts.get(item.name):
            given = {p: frame[n].to_list() for p, n in parts[item.name].items()}
            columns[item.name] = iso_dates(item, given, rows)
    if entity is not None:
        columns[entity.id_column] = frame[entity.id_column]
    for name in meta.feature_names:
        if name not in meta.computed and name not in columns and name in frame.columns:
            columns[name] = frame[name]
    chunks = []
    for start in range(0, rows, CHUNK_ROWS):
        chunk = {n: list(v[start : start + CHUNK_ROWS]) for n, v in columns.items()}
        try:
            got = pipeline.compute(chunk, min(CHUNK_ROWS, rows - start))
        except FeatureError as exc:
            shown = [
                f"row {start + e['loc'][1]}: {e['msg']}"
                if len(e["loc"]) > 2 and isinstance(e["loc"][1], int)
                else e["msg"]
                for e in exc.errors[:5]
            ]
            more = f" (and {len(exc.errors) - 5} more)" if len(exc.errors) > 5 else ""
            raise BatchInputError(f"{path}: {'; '.join(shown)}{more}") from None
        chunks.append(pl.DataFrame(got, strict=False))
    if not chunks:
        return frame.select([n for n in meta.feature_names if n in frame.columns])
    return pl.concat(chunks, how="vertical_relaxed")


def _check_columns(
    frame: Any, path: Path, model: OnnxModel, pipeline: FeaturePipeline | None = None
) -> tuple[Any, dict[str, Any]]:
    """The feature columns typed and their nulls filled, and per filled feature its null mask
    (``pipeline``: raw inputs computed into the model features first)."""
    import polars as pl

    frame = _raw_columns(frame, path, model, keep_dates=pipeline is not None)
    imputed: dict[str, Any] = {}
    if pipeline is not None:
        filled = [i.name for i in model.metadata.inputs if i.fill is not None]
        imputed = {
            n: frame[n].is_null() for n in filled if n in frame.columns and frame[n].null_count()
        }
        frame = _computed(frame, path, model, pipeline)
    missing = [n for n in model.metadata.feature_names if n not in frame.columns]
    if missing:
        raise BatchInputError(
            f"{path}: missing feature column(s) {', '.join(missing)}; the model needs "
            f"{', '.join(model.metadata.feature_names)}"
        )
    casts = []
    for feature in model.metadata.features:
        column = pl.col(feature.name)
        casts.append(
            column.cast(pl.Float64, strict=True)
            if feature.kind == "numeric"
            else column.cast(pl.Utf8, strict=True)
        )
    try:
        typed = frame.with_columns(casts)
    except pl.exceptions.PolarsError as exc:
        raise BatchInputError(f"{path}: a feature column has the wrong type ({exc})") from None
    fills = {f.name: f.fill for f in model.metadata.features if f.fill is not None}
    masks = {n: typed[n].is_null() for n in fills if typed[n].null_count()}
    if masks:
        typed = typed.with_columns([pl.col(n).fill_null(fills[n]) for n in masks])
    imputed |= masks
    nulls = {n: typed[n].null_count() for n in model.metadata.feature_names}
    bad = {n: c for n, c in nulls.items() if c}
    if bad:
        listing = ", ".join(f"{n} ({c} rows)" for n, c in bad.items())
        raise BatchInputError(
            f"{path}: null values in {listing}; impute them (gold never has "
            "nulls) or drop those rows before scoring"
        )
    return typed, imputed


def score_file(
    input_path: Path,
    output_path: Path,
    model: OnnxModel,
    id_column: str | None = None,
    request_log: Path | None = None,
) -> int:
    """Score ``input_path`` into ``output_path``; returns the number of rows scored.

    With ``request_log`` every scored row is also appended to that JSON-lines log, in the same
    format as the REST service's, so `make monitor` watches batch traffic too.
    """
    import polars as pl

    started = time.perf_counter()
    if not input_path.is_file():
        raise BatchInputError(f"{input_path} not found; run `make data` or pass --input")
    try:
        frame = pl.read_parquet(input_path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise BatchInputError(f"{input_path}: not a readable parquet file ({exc})") from None
    metadata = model.metadata
    pipeline = FeaturePipeline.load(metadata.path.parent, metadata) if metadata.inputs else None
    typed, imputed = _check_columns(frame, input_path, model, pipeline)
    outputs: list[dict[str, Any]] = []
    for start in range(0, typed.height, CHUNK_ROWS):
        chunk = typed.slice(start, CHUNK_ROWS)
        outputs.extend(
            model.predict_columns({n: chunk[n].to_list() for n in model.metadata.feature_names})
        )
    request_ids = [uuid.uuid4().hex for _ in outputs]
    columns: dict[str, Any] = {"request_id": request_ids}
    if id_column and id_column in frame.columns:
        columns[id_column] = frame[id_column]
    columns["prediction"] = [o["prediction"] for o in outputs]
    if model.metadata.task == "classification" and outputs:
        for name in outputs[0]["probabilities"]:
            columns[f"probability_{name}"] = [o["probabilities"][name] for o in outputs]
    scored_at = utc_timestamp()
    result = pl.DataFrame(columns).with_columns(
        pl.lit(model.metadata.model_version).alias("model_version"),
        pl.lit(scored_at).alias("scored_at"),
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(f".{output_path.name}.partial")
    try:
        result.write_parquet(partial)
        os.replace(partial, output_path)
    finally:
        partial.unlink(missing_ok=True)
    if request_log is not None:
        latency_ms = round((time.perf_counter() - started) * 1000 / max(1, len(outputs)), 4)
        names = model.metadata.feature_names
        fences = {f.name: f.fences for f in model.metadata.features if f.fences is not None}
        masks = {n: mask.to_list() for n, mask in imputed.items()}
        with JsonlWriter(request_log) as log:
            for i, (request_id, row, output) in enumerate(
                zip(request_ids, typed.select(names).iter_rows(named=True), outputs, strict=True)
            ):
                log.write(
                    {
                        "request_id": request_id,
                        "timestamp": scored_at,
                        "model_version": model.metadata.model_version,
                        "features": row,
                        **output,
                        "imputed": [n for n in masks if masks[n][i]],
                        "out_of_range": [
                            n for n, (lo, hi) in fences.items() if not lo <= row[n] <= hi
                        ],
                        "latency_ms": latency_ms,
                    }
                )
    return result.height


def champion_dir(models: Path) -> Path:
    """The champion's folder in the model registry (``models/aliases.json``)."""
    try:
        return registry_model_dir(models, "champion")
    except RegistryError as exc:
        raise ModelError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {__spec__.name if __spec__ else 'batch'}",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--input", type=Path, help="default: <paths.gold>/features.parquet")
    parser.add_argument("--output", type=Path, help="default: <paths.reports>/predictions.parquet")
    parser.add_argument(
        "--model-dir", type=Path, help="default: the champion of <paths.models>/aliases.json"
    )
    parser.add_argument(
        "--no-log", action="store_true", help="do not append the scored rows to logs/requests.jsonl"
    )
    args = parser.parse_args(argv)
    try:
        config = load_config()
        model_dir = args.model_dir or champion_dir(resolve(config, "models"))
        model = OnnxModel(model_dir, read_metadata(model_dir))
        input_path = args.input or resolve(config, "gold") / "features.parquet"
        output_path = args.output or resolve(config, "reports") / "predictions.parquet"
        log = None
        if config["serving"].get("log_requests", True) and not args.no_log:
            log = resolve(config, "logs") / "requests.jsonl"
        rows = score_file(input_path, output_path, model, config["data"].get("id_column"), log)
    except (BatchInputError, ModelError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"scored {rows} rows of {input_path} with model {model.metadata.model_version} "
        f"-> {output_path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
