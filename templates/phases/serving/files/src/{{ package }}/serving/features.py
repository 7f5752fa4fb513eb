"""The model's own feature code at serving time: raw records -> the model's features.

`make pipeline` packages, beside ``model.onnx``, a copy of ``data/features.py`` (``features.py``,
its sha256 in ``metadata.json``) and of gold's per-entity feature table
(``entity_features.parquet``, when the project has one). A model is therefore always served with
the feature code and the aggregates it was trained with, whatever ``src/`` holds today.

For a batch of records (a REST request, a chunk of a batch file), :meth:`FeaturePipeline.compute`

1. types the raw input columns as silver had them (numbers, text, dates),
2. looks up each row's entity features by the id column (an id the table does not hold, or no
   id, is a :class:`FeatureError` naming the row and the id),
3. applies the packaged ``derive_features`` (narwhals over a polars frame: the same code gold ran
   on every engine),
4. returns the model's features, numeric as float and categorical as text; a categorical value
   the feature code computes that the model never saw is an error naming the feature.

A feature the pipeline computes (derived, or looked up by id) that a client sends anyway is
ignored: the computed value wins (the response names it in ``ignored``).

The copy is imported by file path under a module name unique to the model version and the file's
sha256, so a champion and a challenger with different feature code live side by side.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..data.dates import date_parts
from .model import Input, ModelError, ModelMetadata

FEATURE_CODE_FILE = "features.py"
ENTITY_FILE = "entity_features.parquet"
DERIVE = "derive_features"
#: silver's type names -> polars types (the rest: by the input's kind)
INT64_MAX = 2**63 - 1
INTEGER_DTYPES = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")


class FeatureError(ValueError):
    """Records the feature code cannot turn into model features; ``errors`` are FastAPI-style
    dicts (``loc`` names the record and the field)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _module_name(metadata: ModelMetadata, sha256: str) -> str:
    package = __name__.partition(".")[0]
    version = re.sub(r"[^0-9A-Za-z_]", "_", metadata.model_version)
    return f"_{package}_model_features_{version}_{sha256[:12]}"


def _packaged(model_dir: Path, name: str, metadata: ModelMetadata, key: str) -> Path | None:
    """``model_dir/name`` when present; None when the model was packaged without it (no
    ``key`` entry in metadata); a clear error when metadata records it but the file is gone."""
    path = model_dir / name
    if path.is_file():
        return path
    if metadata.raw.get(key):
        raise ModelError(
            f"{path} not found but {metadata.path.name} says the model was packaged with it; "
            "re-run `make pipeline` to package the model again"
        )
    return None


def load_feature_code(model_dir: Path, metadata: ModelMetadata) -> Callable[[Any], Any] | None:
    """The packaged copy's ``derive_features`` (None when the model has no feature code).

    The file must match the sha256 packaging recorded, so an edited copy is refused."""
    recorded = metadata.raw.get("feature_code") or {}
    path = _packaged(model_dir, FEATURE_CODE_FILE, metadata, "feature_code")
    if path is None:
        return None
    sha256 = sha256_file(path)
    if recorded.get("sha256") and recorded["sha256"] != sha256:
        raise ModelError(
            f"{path}: sha256 {sha256[:12]} differs from {recorded['sha256'][:12]} recorded in "
            f"{metadata.path.name}: the model's copy of the feature code was edited; "
            "re-run `make pipeline` instead (change src/.../data/features.py)"
        )
    name = _module_name(metadata, sha256)
    module: ModuleType | None = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ModelError(f"{path}: cannot be imported as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and typing look their module up here
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: any error means the copy is unusable
            del sys.modules[name]
            raise ModelError(
                f"{path}: importing the model's feature code failed "
                f"({type(exc).__name__}: {exc}); it may import only narwhals, polars and the "
                "standard library (a copy travels with the model)"
            ) from None
    derive = getattr(module, DERIVE, None)
    if not callable(derive):
        raise ModelError(f"{path}: defines no function {DERIVE}(frame); re-run `make pipeline`")
    result: Callable[[Any], Any] = derive
    return result


@dataclass(frozen=True)
class EntityTable:
    """The packaged per-entity features: one row per id."""

    path: Path
    id_column: str
    frame: Any  # polars.DataFrame: the id and the entity features

    @property
    def names(self) -> list[str]:
        return [c for c in self.frame.columns if c != self.id_column]

    @property
    def rows(self) -> int:
        return int(self.frame.height)


def load_entity_table(model_dir: Path, metadata: ModelMetadata) -> EntityTable | None:
    path = _packaged(model_dir, ENTITY_FILE, metadata, "entity_table")
    if path is None:
        return None
    import polars as pl

    id_column = metadata.id_column
    if id_column is None:
        raise ModelError(
            f"{path}: per-entity features need the model's `id_column` (none in "
            f"{metadata.path.name}); set data.id_column and re-run `make pipeline`"
        )
    try:
        frame = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise ModelError(f"{path}: not a readable parquet file ({exc})") from None
    if id_column not in frame.columns:
        raise ModelError(f"{path}: has no id column {id_column!r}; re-run `make pipeline`")
    if frame[id_column].null_count() or frame[id_column].n_unique() != frame.height:
        raise ModelError(
            f"{path}: the id column {id_column!r} must be unique and never null (one row per "
            "entity); fix aggregate_features in data/features.py and re-run `make pipeline`"
        )
    wanted = [n for n in metadata.entity_features if n in frame.columns]
    missing = [n for n in metadata.entity_features if n not in frame.columns]
    if missing:
        raise ModelError(
            f"{path}: entity features {', '.join(missing)} (metadata.json) are missing; "
            "re-run `make pipeline`"
        )
    return EntityTable(path, id_column, frame.select([id_column, *wanted]))


def _polars_type(item: Input) -> Any:
    import polars as pl

    if item.kind in ("date", "datetime"):
        # silver keeps dates as ISO text unless its dtype says otherwise
        return {"Date": pl.Date, "Datetime": pl.Datetime("us")}.get(item.dtype or "", pl.String)
    if item.kind == "numeric":
        return pl.Int64 if item.dtype in INTEGER_DTYPES else pl.Float64
    if item.dtype in INTEGER_DTYPES:
        return pl.Int64
    if item.dtype == "Boolean":
        return pl.Boolean
    return pl.String


def _error(row: int | None, name: str, msg: str, kind: str) -> dict[str, Any]:
    loc: list[Any] = ["body"] if row is None else ["body", row]
    return {"loc": [*loc, name], "msg": f"{name}: {msg}", "type": kind}


_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _typed_column(
    item: Input, values: Sequence[Any], single: bool
) -> tuple[Any, list[dict[str, Any]]]:
    """A polars Series of ``values`` with the input's silver type, and the rows that cannot be."""
    import polars as pl

    dtype = _polars_type(item)
    errors: list[dict[str, Any]] = []

    def where(i: int) -> int | None:
        return None if single else i

    if dtype == pl.Int64 and item.kind == "numeric":
        out: list[Any] = []
        for i, v in enumerate(values):
            if v is None or float(v).is_integer():
                out.append(v)
            else:
                out.append(None)
                errors.append(
                    _error(
                        where(i),
                        item.name,
                        f"must be a whole number (silver's {item.dtype})",
                        "int_from_float",
                    )
                )
        if any(v is not None and abs(v) > INT64_MAX for v in out):
            # beyond int64 (never in silver): scored as a number, the model's overflow check
            # then names it
            return pl.Series(item.name, out, dtype=pl.Float64, strict=False), errors
        return pl.Series(
            item.name, [None if v is None else int(v) for v in out], dtype=pl.Int64
        ), errors
    if dtype == pl.Int64 or dtype == pl.Boolean:
        out = []
        for i, v in enumerate(values):
            text = None if v is None else str(v).strip().lower()
            if text is None:
                out.append(None)
            elif dtype == pl.Boolean and text in _TRUE | _FALSE:
                out.append(text in _TRUE)
            elif (
                dtype == pl.Int64
                and re.fullmatch(r"[+-]?[0-9]{1,19}", text)
                and abs(int(text)) <= INT64_MAX
            ):
                out.append(int(text))
            else:
                out.append(None)
                errors.append(_error(where(i), item.name, f"{v!r} is not a {item.dtype}", "type"))
        return pl.Series(item.name, out, dtype=dtype), errors
    if item.kind in ("date", "datetime"):
        texts = pl.Series(
            item.name, [None if v is None else str(v) for v in values], dtype=pl.String
        )
        if dtype == pl.Date:
            return texts.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False), errors
        if dtype != pl.String:
            return texts.str.to_datetime(strict=False, time_unit="us"), errors
        return texts, errors
    if dtype == pl.Float64:
        return pl.Series(
            item.name, [None if v is None else float(v) for v in values], dtype=pl.Float64
        ), errors
    return pl.Series(
        item.name, [None if v is None else str(v) for v in values], dtype=pl.String
    ), errors


class FeaturePipeline:
    """Raw input columns -> model feature columns, with the model's packaged feature code."""

    def __init__(
        self,
        metadata: ModelMetadata,
        derive: Callable[[Any], Any] | None,
        entity: EntityTable | None,
    ) -> None:
        self.metadata = metadata
        self.derive = derive
        self.entity = entity
        self.inputs = {i.name: i for i in metadata.inputs}
        self.computed = metadata.computed
        self._categories = {
            f.name: set(f.categories)
            for f in metadata.features
            if f.kind == "categorical" and f.categories
        }

    @classmethod
    def load(cls, model_dir: Path, metadata: ModelMetadata) -> FeaturePipeline | None:
        """The model's pipeline, checked on an empty frame of its inputs; None for a model
        packaged without ``inputs`` (scored on its features, as sent)."""
        if not metadata.inputs:
            return None
        pipeline = cls(
            metadata, load_feature_code(model_dir, metadata), load_entity_table(model_dir, metadata)
        )
        missing = sorted(
            n
            for n in metadata.entity_features
            if n in metadata.computed and pipeline.entity is None
        )
        if missing:
            raise ModelError(
                f"{model_dir / ENTITY_FILE} not found: the model's features {', '.join(missing)} "
                "are looked up by id in it; re-run `make pipeline` to package the model again"
            )
        pipeline._check_empty(model_dir)
        return pipeline

    def _check_empty(self, model_dir: Path) -> None:
        """Run the feature code on zero rows: a column it needs that no request carries, or a
        model feature it does not make, is found at start-up instead of on the first request."""
        try:
            self.compute({name: [] for name in self.inputs}, 0)
        except FeatureError as exc:
            raise ModelError(f"{model_dir / FEATURE_CODE_FILE}: {exc}") from None
        if self.derive is not None and _passes_through(self.derive):
            self.derive = None  # `return frame`: nothing to run per request

    @property
    def needs_id(self) -> bool:
        return self.entity is not None

    def compute(
        self, columns: Mapping[str, Sequence[Any]], rows: int, single: bool = False
    ) -> dict[str, list[Any]]:
        """The model feature columns of ``rows`` records.

        ``columns``: every input (silver name; dates as ``datetime.date``/``datetime``, missing
        values already filled), the id column when the model looks features up by it, and the
        model features the records carry themselves (a date's parts). ``single``: errors are
        located as in a one-record request body."""
        import narwhals as nw
        import polars as pl

        errors: list[dict[str, Any]] = []
        series = []
        for name, item in self.inputs.items():
            values = columns.get(name)
            if values is None:
                values = [None] * rows
            column, bad = _typed_column(item, values, single)
            if item.fill is not None and column.null_count():
                column = column.fill_null(_typed_column(item, [item.fill], True)[0][0])
            series.append(column)
            errors += bad
        given = [
            pl.Series(n, list(v), strict=False)
            for n, v in columns.items()
            if n not in self.inputs and n not in self.computed
        ]
        frame = pl.DataFrame([*series, *given], height=rows) if series or given else None
        if frame is None:
            frame = pl.DataFrame(height=rows)
        frame, bad = self._date_parts(frame, columns, single)
        errors += bad
        if errors:
            raise FeatureError(errors)
        if self.entity is not None:
            frame = self._lookup(frame, columns, rows, single)
        if self.derive is not None:
            before = frame.drop([n for n in self.metadata.derived if n in frame.columns])
            try:
                derived = self.derive(nw.from_native(before.lazy()))
                frame = nw.to_native(derived.lazy().collect())
            except Exception as exc:  # the user's code
                raise FeatureError(
                    [
                        {
                            "loc": ["body"],
                            "msg": f"the model's feature code ({FEATURE_CODE_FILE}, "
                            f"{DERIVE}) failed on these records: {type(exc).__name__}: {exc}",
                            "type": "feature_code",
                        }
                    ]
                ) from None
            if not isinstance(frame, pl.DataFrame) or frame.height != rows:
                raise FeatureError(
                    [
                        {
                            "loc": ["body"],
                            "msg": f"{DERIVE} in the model's {FEATURE_CODE_FILE} must keep one "
                            "row per record (no filter, aggregation or explode)",
                            "type": "feature_code",
                        }
                    ]
                )
        missing = [n for n in self.metadata.feature_names if n not in frame.columns]
        if missing:
            raise FeatureError(
                [
                    {
                        "loc": ["body"],
                        "msg": f"the model's features {', '.join(missing)} are neither sent nor "
                        f"computed by its feature code ({FEATURE_CODE_FILE})",
                        "type": "missing",
                    }
                ]
            )
        return self._model_columns(frame, rows, single)

    def _date_parts(
        self, frame: Any, columns: Mapping[str, Sequence[Any]], single: bool
    ) -> tuple[Any, list[dict[str, Any]]]:
        """Gold's numeric parts of each date input the records did not send as parts
        (data/dates.py's rule, as gold expands them)."""
        import polars as pl

        errors: list[dict[str, Any]] = []
        dates = self.metadata.dates
        for item in self.inputs.values():
            if item.kind not in ("date", "datetime"):
                continue
            parts = dates.get(item.source or item.name) or dates.get(item.name) or {}
            todo = {p: n for p, n in parts.items() if n not in columns}
            if not todo:
                continue
            values: dict[str, list[float | None]] = {n: [] for n in todo.values()}
            texts = frame[item.name].cast(pl.String).to_list()
            for i, text in enumerate(texts):
                got: dict[str, float] = {}
                if text is not None:
                    try:
                        got = date_parts(text)
                    except ValueError as exc:
                        errors.append(_error(None if single else i, item.name, str(exc), "date"))
                for part, name in todo.items():
                    values[name].append(got.get(part))
            frame = frame.with_columns(pl.Series(n, v, dtype=pl.Float64) for n, v in values.items())
        return frame, errors

    def _lookup(
        self, frame: Any, columns: Mapping[str, Sequence[Any]], rows: int, single: bool
    ) -> Any:
        import polars as pl

        assert self.entity is not None
        table, key = self.entity.frame, self.entity.id_column
        ids = list(columns.get(key) or [None] * rows)
        errors = []
        for i, value in enumerate(ids):
            if value is None:
                errors.append(
                    _error(
                        None if single else i,
                        key,
                        f"field required: the model looks its features "
                        f"{', '.join(self.entity.names)} up by {key}",
                        "missing",
                    )
                )
        if errors:
            raise FeatureError(errors)
        wanted = table.schema[key]
        keys = pl.Series(key, ids, strict=False)
        try:
            keys = keys.cast(wanted, strict=True)
        except pl.exceptions.PolarsError:
            keys = keys.cast(pl.String).cast(wanted, strict=False)
        frame = frame.drop([c for c in (key, *self.entity.names) if c in frame.columns])
        marker = "__entity_row__"
        joined = frame.with_columns(keys).join(
            table.with_row_index(marker), on=key, how="left", maintain_order="left"
        )
        unknown = [i for i, hit in enumerate(joined[marker].is_null().to_list()) if hit]
        if unknown:
            raise FeatureError(
                [
                    _error(
                        None if single else i,
                        key,
                        f"unknown {key} {ids[i]!r}: not in the model's entity feature table "
                        f"({ENTITY_FILE}, {self.entity.rows} ids of gold at training time); "
                        f"send a known {key}, or retrain after `make data` to include it",
                        "unknown_id",
                    )
                    for i in unknown
                ]
            )
        return joined.drop(marker)

    def _model_columns(self, frame: Any, rows: int, single: bool) -> dict[str, list[Any]]:
        import polars as pl

        errors = []
        exprs = []
        for feature in self.metadata.features:
            expr = pl.col(feature.name).cast(
                pl.Float64 if feature.kind == "numeric" else pl.String, strict=False
            )
            if feature.fill is not None:
                expr = expr.fill_null(feature.fill)
            exprs.append(expr)
        out: dict[str, list[Any]] = frame.select(exprs).to_dict(as_series=False)  # one pass
        for feature in self.metadata.features:
            values = out[feature.name]
            known = self._categories.get(feature.name)
            for i, value in enumerate(values):
                if value is None or (isinstance(value, float) and value != value):
                    errors.append(
                        _error(
                            None if single else i,
                            feature.name,
                            "is missing after the model's feature code ran (no value and no "
                            "fill); send the inputs it is computed from",
                            "missing",
                        )
                    )
                elif known is not None and feature.name in self.computed and value not in known:
                    errors.append(
                        _error(
                            None if single else i,
                            feature.name,
                            f"the feature code computed {value!r}, a category the model never "
                            f"saw (it knows {', '.join(sorted(known))})",
                            "unknown_category",
                        )
                    )
        if errors:
            raise FeatureError(errors)
        return out


def _passes_through(derive: Callable[[Any], Any]) -> bool:
    """True when ``derive`` returns the very frame it is given (the one-table template's
    ``derive_features``), so serving can skip it."""
    import narwhals as nw
    import polars as pl

    frame = nw.from_native(pl.DataFrame({"x": [1.0]}).lazy())
    try:
        return derive(frame) is frame
    except Exception:  # it needs its columns: it does something
        return False


def iso_dates(item: Input, parts: Mapping[str, Sequence[Any]], rows: int) -> list[str | None]:
    """A date input's ISO text, as silver holds it, from gold's parts of it (year, month, day
    and, for a date-time, hour and minute): for a record that sent the parts, not the date."""
    out: list[str | None] = []
    for i in range(rows):
        year, month, day = (parts.get(p, [None] * rows)[i] for p in ("year", "month", "day"))
        if year is None or month is None or day is None:
            out.append(None)
            continue
        try:
            text = dt.date(int(year), int(month), int(day)).isoformat()
        except ValueError:
            out.append(None)
            continue
        if item.kind == "datetime":
            hour, minute = (parts.get(p, [0] * rows)[i] or 0 for p in ("hour", "minute"))
            text += f"T{int(hour):02d}:{int(minute):02d}"
        out.append(text)
    return out
