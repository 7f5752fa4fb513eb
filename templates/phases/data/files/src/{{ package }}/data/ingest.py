"""Ingestion: the configured source -> an immutable bronze partition with a manifest.

Bronze is append-only: each run that sees new data writes
``data/bronze/ingest_date=YYYY-MM-DD/part-<UTC timestamp>.parquet`` and its
``.manifest.json`` (source, rows, schema, sha256, timestamp) and never rewrites a partition.
A run whose data is byte-identical to the latest partition writes nothing (``--force`` to append
anyway).
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from ..common.config import origin, resolve
from ..common.lineage import record
from . import synthetic
from .contracts import normalize_name
from .errors import DataError
from .storage import (
    bronze_partitions,
    lineage_file,
    manifest_path,
    read_manifest,
    relative,
    staged,
    write_json,
)
from .tables import main_table, sources, table_config

URL_ENV = "MLOPS_SOURCE_URL"
#: where a corrupt bronze partition goes (inside bronze, outside the partition glob)
QUARANTINE_DIR = "_quarantine"
#: json source files: a JSON array of records (or an object holding one), JSON lines
JSON_ARRAY_SUFFIXES = (".json",)
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


def read_source(cfg: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The source's rows and a description of where they came from (for the manifest)."""
    root = Path(cfg["root"])
    source = cfg["data"]["source"]
    kind = source["kind"]
    if kind == "synthetic":
        rows, seed = int(source["rows"]), int(source.get("seed", 42))
        described = {"kind": kind, "rows": rows, "seed": seed}
        if source.get("table") == "orders":
            return synthetic.generate_orders(rows, seed), {**described, "table": "orders"}
        return synthetic.generate(rows, seed), described
    if kind in ("csv", "parquet", "json"):
        files = _source_files(root, source.get("path"), kind, origin(cfg, "data.source.path"))
        frames = [_read_file(f, kind, root) for f in files]
        # a JSON record may leave a key out: json files are aligned by key name (missing: null)
        how: Any = "diagonal_relaxed" if kind == "json" else "vertical_relaxed"
        frame = pl.concat(frames, how=how) if len(frames) > 1 else frames[0]
        return frame, {
            "kind": kind,
            "path": source["path"],
            "files": [relative(f, root) for f in files],
        }
    if kind == "sklearn":
        return _read_sklearn(str(source.get("dataset"))), {
            "kind": kind,
            "dataset": source.get("dataset"),
        }
    if kind == "sql":
        return _read_sql(root, source)
    raise DataError(
        f"{origin(cfg, 'data.source.kind')} data.source.kind {kind!r} is not one of "
        "synthetic, csv, parquet, json, sklearn, sql"
    )


def _source_files(
    root: Path, path: str | None, kind: str, conf: str = "conf/base.yaml"
) -> list[Path]:
    """The files ``path`` names; ``conf`` is the file that sets data.source.path (messages)."""
    if not path:
        raise DataError(
            f"data.source.path is not set in {conf}; a {kind} source needs "
            f"the file to ingest (e.g. data/raw/customers.{kind})"
        )
    full = Path(path) if Path(path).is_absolute() else root / path
    if glob.has_magic(str(full)):
        files = sorted(Path(p) for p in glob.glob(str(full)))
        if not files:
            raise DataError(
                f"data.source.path {path!r}: no file matches in {root}; put the source files "
                f"there or fix data.source.path in {conf}"
            )
        return files
    if not full.is_file():
        raise DataError(
            f"source file {relative(full, root)} does not exist (data.source.path in "
            f"{conf}); put the file there or fix the path"
        )
    return [full]


def _read_file(path: Path, kind: str, root: Path) -> pl.DataFrame:
    name = relative(path, root)
    if kind == "json":
        return read_json_file(path, name)
    try:
        if kind == "csv":
            return pl.read_csv(path, infer_schema_length=None)
        return pl.read_parquet(path)
    except pl.exceptions.NoDataError:
        raise DataError(f"source file {name} is empty: it has no header and no rows") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"source file {name} cannot be read as {kind}: {first}") from None


def read_json_file(path: Path, name: str) -> pl.DataFrame:
    """The records of a JSON (array of records, or an object holding one) or JSON lines file.

    Types follow JSON's: strings stay strings, integers are Int64, a key with integers and
    decimals is Float64, true/false are Boolean, a key that is always null is String. Nested
    values (objects, arrays) are refused, naming the file, the record and the key: flatten them
    into columns before ingesting.
    """
    suffix = path.suffix.lower()
    if suffix not in JSON_ARRAY_SUFFIXES + JSON_LINES_SUFFIXES:
        raise DataError(
            f"source file {name} is not a json source file: a json source reads "
            f"{', '.join(JSON_ARRAY_SUFFIXES + JSON_LINES_SUFFIXES)} files (the ending tells a "
            "JSON array from JSON lines); rename it or fix data.source.path"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"source file {name} cannot be read as UTF-8 JSON: {exc}") from None
    if not text.strip():
        raise DataError(f"source file {name} is empty: it has no records")
    records: list[tuple[str, Any]] = []
    if suffix in JSON_LINES_SUFFIXES:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"{name}:{number}", json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{name}:{number}: not a JSON value ({exc.msg} at column {exc.colno}); "
                    "a JSON lines file holds one JSON object per line"
                ) from None
    else:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{name}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
            ) from None
        if isinstance(document, dict) and len(document) == 1:
            key, document = next(iter(document.items()))
            if not isinstance(document, list):
                raise DataError(
                    f"source file {name}: the object's only key {key!r} holds no array of records"
                )
        if not isinstance(document, list):
            raise DataError(
                f"source file {name} holds no array of records: a .json source is an array of "
                'objects ([{"a": 1}, ...]) or an object with one key holding one; use .jsonl '
                "for one object per line"
            )
        records = [(f"{name} record {i}", r) for i, r in enumerate(document, start=1)]
    if not records:
        raise DataError(f"source file {name} holds no records")
    return _json_frame(records, name)


def _json_frame(records: list[tuple[str, Any]], name: str) -> pl.DataFrame:
    """A frame from ``(where, record)`` pairs, each a flat JSON object, with one type per key."""
    names = {bool: "a true/false", int: "an integer", float: "a decimal", str: "a string"}
    seen: dict[str, tuple[type, str]] = {}  # key -> (its type, the record that set it)
    for where, row in records:
        if not isinstance(row, dict):
            raise DataError(
                f"{where}: a {type(row).__name__} where a record (a JSON object) is expected"
            )
        for key, value in row.items():
            if value is None:
                continue
            if isinstance(value, (dict, list)):
                nested = "object" if isinstance(value, dict) else "array"
                raise DataError(
                    f"{where}: key {key!r} holds a nested {nested}; "
                    "a json source takes flat records (one value per key): flatten it into "
                    "columns (e.g. a.b) before ingesting"
                )
            kind: type = type(value)
            if key not in seen:
                seen[key] = (kind, where)
                continue
            known, first = seen[key]
            if known is kind:
                continue
            if {known, kind} == {int, float}:
                seen[key] = (float, first)
                continue
            raise DataError(
                f"{where}: key {key!r} is {names[kind]}, but {names[known]} in {first}; "
                "give the key one type in every record"
            )
    columns: dict[str, None] = {}  # every key, in the order first seen
    for _, row in records:
        columns.update(dict.fromkeys(row))
    dtypes = {bool: pl.Boolean, int: pl.Int64, float: pl.Float64, str: pl.Utf8}
    series = []
    for key in columns:
        dtype = dtypes[seen[key][0]] if key in seen else pl.Utf8
        values = [r.get(key) for _, r in records]
        try:
            series.append(pl.Series(key, values, dtype=dtype, strict=True))
        except (pl.exceptions.PolarsError, OverflowError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"source file {name}: key {key!r} cannot be typed: {first}") from None
    return pl.DataFrame(series)


def _read_sklearn(dataset: str) -> pl.DataFrame:
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError("the sklearn source needs scikit-learn; run `make setup`") from None
    loaders = {
        "diabetes": lambda: datasets.load_diabetes(scaled=False),
        "breast_cancer": datasets.load_breast_cancer,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
    }
    if dataset not in loaders:
        raise DataError(
            f"data.source.dataset {dataset!r} is not a bundled scikit-learn dataset; "
            f"use one of {', '.join(loaders)}"
        )
    bunch = loaders[dataset]()
    names = [normalize_name(n) for n in bunch.feature_names]
    frame = pl.DataFrame(bunch.data, schema=names, orient="row")
    target = pl.Series("target", bunch.target)
    target = target.cast(pl.Float64) if dataset == "diabetes" else target.cast(pl.Int64)
    return frame.with_columns(target)


def _read_sql(root: Path, source: dict[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]]:
    env = str(source.get("url_env") or URL_ENV)
    url = os.environ.get(env) or source.get("url")
    query = source.get("query")
    if not url or not query:
        raise DataError(
            f"a sql source needs data.source.url (or ${env}) and "
            "data.source.query in conf/base.yaml"
        )
    try:
        import sqlalchemy
    except ImportError:
        raise DataError("the sql source needs SQLAlchemy; run `make setup`") from None
    try:
        parsed = sqlalchemy.engine.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise DataError(
            "data.source.url is not a SQLAlchemy URL (e.g. sqlite:///data/raw.db)"
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        db = Path(parsed.database)
        db = db if db.is_absolute() else root / db
        if not db.is_file():
            raise DataError(
                f"SQLite database {relative(db, root)} does not exist "
                "(data.source.url); create it or fix the URL"
            )
        parsed = parsed.set(database=str(db))
    engine = sqlalchemy.create_engine(parsed)
    try:
        with engine.connect() as conn:
            frame = pl.read_database(query, conn, infer_schema_length=None)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        first = str(exc).splitlines()[0]
        raise DataError(
            f"data.source.query failed on {parsed.render_as_string()}: {first}"
        ) from None
    finally:
        engine.dispose()
    return frame, {
        "kind": "sql",
        "url": parsed.render_as_string(hide_password=True),
        "query": query,
    }


def check_columns(frame: pl.DataFrame, cfg: dict[str, Any], where: str, bronze: Path) -> None:
    """The source must hold the configured columns and match the columns bronze already has."""
    root = Path(cfg["root"])
    if frame.height == 0:
        raise DataError(f"{where} has no rows; nothing to ingest (check the source)")
    target = cfg["ml"].get("target")
    wanted = [(target, "ml.target")] if target else []
    if cfg["data"].get("id_column"):
        wanted.append((cfg["data"]["id_column"], "data.id_column"))
    wanted += [(c, "data.pii_columns") for c in cfg["data"].get("pii_columns") or []]
    for column, key in wanted:
        if column not in frame.columns:
            raise DataError(
                f"{where} has no column {column!r} ({key} in {origin(cfg, key)}); its columns are: "
                f"{', '.join(frame.columns)}. Fix the source or {key}."
            )
    parts = bronze_partitions(bronze)
    if parts:
        latest = parts[-1]
        known = list(read_manifest(latest).get("schema", {}))
        missing = [c for c in known if c not in frame.columns]
        unexpected = [c for c in frame.columns if c not in known]
        if missing or unexpected:
            raise DataError(
                f"{where}: columns do not match the bronze contract of "
                f"{relative(latest, root)}: missing {missing}, unexpected {unexpected}. Fix the "
                f"source, or start a new bronze contract with `python -m {__package__} "
                "reset-bronze` (or `make reset-bronze`: it archives the old partitions, nothing "
                "is deleted) and ingest again."
            )


def _partition_problem(part: Path) -> str | None:
    """Why a bronze partition cannot be trusted (None when its bytes are the ones ingested)."""
    want = read_manifest(part).get("sha256")
    digest = hashlib.sha256()
    try:
        with part.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if want and digest.hexdigest() == want:
            return None
        pl.read_parquet_schema(str(part))
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"not a readable parquet file ({first})"
    return "readable, but its sha256 differs from the one in its manifest" if want else None


def _free_target(target: Path) -> Path:
    """``target``, or, when it or its manifest is taken (a partition of the same name was
    quarantined before, e.g. a bad copy put back), the name with a UTC timestamp (and a counter
    if that is taken too), so a quarantined file is never replaced."""
    taken = [target, manifest_path(target)]
    if not any(p.exists() for p in taken):
        return target
    stem = target.name.removesuffix(".parquet")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    count = 0
    while True:
        suffix = f".{stamp}" + (f"-{count}" if count else "")
        candidate = target.with_name(f"{stem}{suffix}.parquet")
        if not candidate.exists() and not manifest_path(candidate).exists():
            return candidate
        count += 1


def check_bronze(cfg: dict[str, Any]) -> None:
    """Stop (exit 2) on a corrupt bronze partition, after moving it out of the way.

    Policy (docs/data-contracts.md): a partition whose bytes are not the ones ingested (its
    sha256 differs from its manifest's, or it is no parquet file) is quarantined: it and its
    manifest move to ``<bronze>/_quarantine/ingest_date=.../``, where no step reads it and
    nothing deletes it (a name already taken there gets a timestamp suffix). The run stops
    naming the file; the next run goes on without it (and ingest appends the source again when
    it differs from the newest good partition).
    """
    root = Path(cfg["root"])
    bronze = resolve(cfg, "bronze")
    bad = [(p, why) for p in bronze_partitions(bronze) if (why := _partition_problem(p))]
    if not bad:
        return
    lines = []
    for part, why in bad:
        target = bronze / QUARANTINE_DIR / part.parent.name / part.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target = _free_target(target)
        for src, dst in ((part, target), (manifest_path(part), manifest_path(target))):
            if src.exists():
                src.rename(dst)
        lines.append(f"{relative(part, root)}: {why}; moved to {relative(target, root)}")
    raise DataError(
        f"{len(bad)} corrupt bronze partition(s), quarantined with their manifests "
        "(bronze keeps the bytes it ingested; a corrupt file is never read or deleted):\n  "
        + "\n  ".join(lines)
        + "\nRun the step again to continue without them, or put back a good copy to keep "
        "their rows."
    )


def run(cfg: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Ingest every source into its bronze table; the main table's summary, with every table's
    under ``tables`` (``written`` is False when a table's bronze was already current)."""
    results = {name: ingest_table(table_config(cfg, name), force) for name in sources(cfg)}
    return {**results[main_table(cfg)], "tables": results}


def ingest_table(cfg: dict[str, Any], force: bool = False) -> dict[str, Any]:
    """Ingest one source (``cfg`` is its table's view, :func:`tables.table_config`) once."""
    root = Path(cfg["root"])
    bronze = resolve(cfg, "bronze")
    check_bronze(cfg)
    frame, origin = read_source(cfg)
    where = _describe(origin)
    check_columns(frame, cfg, where, bronze)

    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    parts = bronze_partitions(bronze)
    if parts and not force and read_manifest(parts[-1]).get("sha256") == digest:
        return {"written": False, "partition": relative(parts[-1], root), "rows": frame.height}

    now = datetime.now(timezone.utc)  # noqa: UP017 (py3.10)
    partition = bronze / f"ingest_date={now:%Y-%m-%d}" / f"part-{now:%Y%m%dT%H%M%S%fZ}.parquet"
    manifest = {
        "source": origin,
        "rows": frame.height,
        "columns": frame.width,
        "schema": {name: str(dtype) for name, dtype in frame.schema.items()},
        "sha256": digest,
        "ingested_at": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "partition": relative(partition, root),
    }
    with staged([partition, manifest_path(partition)]) as temps:
        temps[partition].write_bytes(payload)
        write_json(manifest, temps[manifest_path(partition)])
    inputs = [root / f for f in origin.get("files", [])]
    record(
        lineage_file(cfg),
        "ingest",
        inputs,
        [partition],
        root,
        {"table": cfg.get("table") or main_table(cfg), "source": origin, "rows": frame.height},
    )
    return {"written": True, "partition": relative(partition, root), "rows": frame.height}


def _describe(origin: dict[str, Any]) -> str:
    kind = origin["kind"]
    if kind in ("csv", "parquet", "json"):
        files = origin["files"]
        return f"source file {files[0]}" if len(files) == 1 else f"source files {origin['path']}"
    if kind == "sklearn":
        return f"scikit-learn dataset {origin['dataset']!r}"
    if kind == "sql":
        return f"sql source ({origin['query']})"
    return f"synthetic source ({origin['rows']} rows, seed {origin['seed']})"
