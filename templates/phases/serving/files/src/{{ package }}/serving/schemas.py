"""Request schemas built from the model's metadata, so a bad payload gets a 422 naming the field.

A record carries the model features: numbers for numeric features (finite, and within float32,
the precision the ONNX model computes in) and one of the known categories for categorical ones.
A feature silver imputes (its metadata has a ``fill``) may be left out or sent as ``null``: it is
filled with silver's value, as training saw it, and named in the prediction's ``imputed``. A
numeric value beyond silver's fences (the range training saw) is, per ``serving.out_of_range``
in conf/, scored and named in ``out_of_range`` (``flag``, the default) or refused with a 422
(``reject``; the fences are then the published minimum/maximum). A record may also carry
``request_id`` (echoed back and used to join late labels), the id column and PII columns: those
are accepted but dropped, never scored and never logged. Any other field is an error, so a
misspelt feature name is caught.

A feature silver renamed (``mean radius`` -> ``mean_radius``) is accepted under either name (the
OpenAPI schema shows the original); sending both is a 422. A date column gold expanded into parts
(``date`` -> ``date_year``, ``date_month``, ...) is sent raw, as an ISO date or date-time under its
original (or silver) name, and expanded with gold's rule (``data/dates.py``); an impossible date is
a 422 naming the field. Sending all the parts instead of the date still works; sending both is a
422.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)

from ..data.dates import date_parts
from .model import Feature, ModelMetadata

MAX_RECORDS = 10_000
REQUEST_ID = "request_id"
#: the largest finite float32: the ONNX model computes in float32, so a larger number overflows
FLOAT32_MAX = float(np.finfo(np.float32).max)
OUT_OF_RANGE_POLICIES = ("flag", "reject")


class PayloadError(ValueError):
    """The request body does not match the schema; ``errors`` are FastAPI-style dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def _feature_type(feature: Feature, reject_out_of_range: bool) -> Any:
    if feature.kind == "numeric":
        lower, upper = -FLOAT32_MAX, FLOAT32_MAX
        if reject_out_of_range and feature.fences is not None:
            lower, upper = feature.fences
        kind: Any = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=lower, le=upper)]
    elif feature.categories:
        kind = Literal[feature.categories]  # type: ignore[valid-type]
    else:
        kind = Annotated[str, Field(strict=True, min_length=1)]
    if feature.fill is None:
        return (kind, ...)
    return (kind | None, Field(default=None, description=f"missing -> {feature.fill!r}"))


def _iso_date(text: str) -> str:
    date_parts(text)  # raises ValueError saying what a date must look like
    return text.strip()


IsoDate = Annotated[
    str,
    Field(strict=True, description="an ISO date (2031-07-04) or date-time (2031-07-04T08:30)"),
    AfterValidator(_iso_date),
]


@dataclass(frozen=True)
class DateColumn:
    """A date column of the request: its field, the name it is sent under, its gold parts."""

    field: str
    name: str
    parts: dict[str, str]  # part -> gold feature name


class Record(BaseModel):
    """The base of the generated record model: unknown fields are refused, a feature may come
    under one of its names only, and a raw date becomes gold's parts."""

    model_config = ConfigDict(extra="forbid")
    #: (name, other name) of one field: a record may use either, not both
    synonyms: ClassVar[tuple[tuple[str, str], ...]] = ()
    date_columns: ClassVar[tuple[DateColumn, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _one_name_per_field(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for first, second in cls.synonyms:
                if first in data and second in data:
                    raise ValueError(f"send {first!r} or {second!r} (the same feature), not both")
        return data

    @model_validator(mode="after")
    def _expand_dates(self) -> Record:
        for column in self.date_columns:
            raw = getattr(self, column.field)
            given = [n for n in column.parts.values() if getattr(self, n) is not None]
            if raw is not None:
                if given:
                    raise ValueError(
                        f"{column.name}: send the date or its parts ({', '.join(given)}), not both"
                    )
                parts = date_parts(raw)
                for part, name in column.parts.items():
                    setattr(self, name, parts[part])
            elif len(given) < len(column.parts):
                missing = [n for n in column.parts.values() if n not in given]
                raise ValueError(
                    f"{column.name}: field required (an ISO date such as 2031-07-04), or all of "
                    f"its parts (missing: {', '.join(missing)})"
                )
        return self


@dataclass(frozen=True)
class Checked:
    """What serving did to one record besides scoring it (both go to the response and the log)."""

    imputed: list[str]
    out_of_range: list[str]


@dataclass(frozen=True)
class RequestSchema:
    record: type[BaseModel]
    feature_names: tuple[str, ...]
    one: TypeAdapter[Any]
    many: TypeAdapter[Any]
    fills: dict[str, Any] = field(default_factory=dict)
    fences: dict[str, tuple[float, float]] = field(default_factory=dict)
    reject_fenced: frozenset[str] = frozenset()

    def parse(self, body: bytes) -> tuple[list[BaseModel], bool]:
        """Validate a JSON body (one record or a list); returns (records, was_a_single_record)."""
        stripped = body.lstrip()
        single = not stripped.startswith(b"[")
        try:
            parsed = self.one.validate_json(body) if single else self.many.validate_json(body)
        except ValidationError as exc:
            raise PayloadError(_clean(exc, self.reject_fenced)) from None
        records = [parsed] if single else list(parsed)
        if not records:
            raise PayloadError([_error(("body",), "send at least one record", "too_short")])
        if len(records) > MAX_RECORDS:
            raise PayloadError(
                [
                    _error(
                        ("body",),
                        f"at most {MAX_RECORDS} records per request; "
                        "split the batch or use batch scoring",
                        "too_long",
                    )
                ]
            )
        return records, single

    def value(self, record: BaseModel, name: str) -> Any:
        """The value scored for feature ``name``: the record's, or silver's fill when missing."""
        value = getattr(record, name)
        return self.fills[name] if value is None and name in self.fills else value

    def columns(self, records: Iterable[BaseModel]) -> dict[str, list[Any]]:
        rows = list(records)
        return {name: [self.value(r, name) for r in rows] for name in self.feature_names}

    def features(self, record: BaseModel) -> dict[str, Any]:
        """The model features of one record: what is scored and logged (never PII)."""
        return {name: self.value(record, name) for name in self.feature_names}

    def check(self, record: BaseModel) -> Checked:
        """The features filled in and the numbers beyond the range training saw."""
        imputed = [n for n in self.feature_names if n in self.fills and getattr(record, n) is None]
        outside = []
        for name, (lower, upper) in self.fences.items():
            value = getattr(record, name)
            if value is not None and not lower <= value <= upper:
                outside.append(name)
        return Checked(imputed, outside)


def _error(loc: tuple[Any, ...], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}


_BOUND_ERRORS = ("greater_than_equal", "less_than_equal")


def _clean(exc: ValidationError, fenced: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """pydantic errors without the offending input values (they may hold PII), field named."""
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ("body", *err["loc"])
        name = next((str(p) for p in reversed(err["loc"]) if isinstance(p, str)), None)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] in _BOUND_ERRORS:
            ctx = err.get("ctx") or {}
            bound = f"at least {ctx['ge']:.6g}" if "ge" in ctx else f"at most {ctx.get('le'):.6g}"
            msg = f"must be {bound}" + (
                " (the range seen in training; serving.out_of_range: reject)"
                if name in fenced
                else " (the float32 range the model computes in)"
            )
        errors.append(_error(loc, f"{name}: {msg}" if name else msg, err["type"]))
    return errors


def build_schema(
    metadata: ModelMetadata,
    *,
    pii_columns: Iterable[str] = (),
    id_column: str | None = None,
    out_of_range: str = "flag",
) -> RequestSchema:
    """The pydantic record model for ``metadata``'s features (extra fields forbidden).

    ``out_of_range``: ``flag`` scores a number beyond its feature's fences (``check`` names it);
    ``reject`` makes the fences the field's bounds, so such a record gets a 422."""
    if out_of_range not in OUT_OF_RANGE_POLICIES:
        choices = ", ".join(OUT_OF_RANGE_POLICIES)
        raise ValueError(f"serving.out_of_range {out_of_range!r} is not one of {choices}")
    reject = out_of_range == "reject"
    fields: dict[str, Any] = {}
    synonyms: list[tuple[str, str]] = []
    renamed = metadata.renamed
    dates = metadata.dates
    for feature in metadata.features:
        kind, default = _feature_type(feature, reject)
        if feature.name in renamed:
            original = renamed[feature.name]
            synonyms.append((original, feature.name))
            alias = AliasChoices(original, feature.name)  # the schema shows the original
            described = f"or {feature.name!r}"
            if feature.fill is None:
                default = Field(validation_alias=alias, description=described)
            else:
                described += f"; missing -> {feature.fill!r}"
                default = Field(default=None, validation_alias=alias, description=described)
        elif feature.part is not None and feature.source in dates:
            # a part may be left out when its date column is sent (Record._expand_dates)
            kind = kind if feature.fill is not None else kind | None
            default = Field(default=None, description=f"or send {feature.source!r}")
        fields[feature.name] = (kind, default)
    columns = []
    for index, (name, parts) in enumerate(dates.items()):
        some_part, some_feature = next(iter(parts.items()))
        silver = some_feature.removesuffix(f"_{some_part}")
        names = [name] if silver == name else [name, silver]
        if len(names) == 2:
            synonyms.append((name, silver))
        attr = f"raw_date_{index}"
        while attr in fields:
            attr += "_"
        fields[attr] = (IsoDate | None, Field(default=None, validation_alias=AliasChoices(*names)))
        columns.append(DateColumn(attr, name, parts))
    fields[REQUEST_ID] = (
        Annotated[str, Field(strict=True, min_length=1, max_length=128)] | None,
        None,
    )
    for name in {*pii_columns, *([id_column] if id_column else [])}:
        if name not in fields:
            # accepted so callers may send whole customer records; dropped before scoring/logging
            fields[name] = (Any, Field(default=None, exclude=True))
    record: type[Record] = create_model("PredictionRecord", __base__=Record, **fields)
    record.synonyms = tuple(synonyms)
    record.date_columns = tuple(columns)
    return RequestSchema(
        record=record,
        feature_names=tuple(metadata.feature_names),
        one=TypeAdapter(record),
        many=TypeAdapter(list[record]),  # type: ignore[valid-type]
        fills={f.name: f.fill for f in metadata.features if f.fill is not None},
        fences={f.name: f.fences for f in metadata.features if f.fences is not None},
        reject_fenced=frozenset(
            f.name for f in metadata.features if reject and f.fences is not None
        ),
    )


def build_response_model(metadata: ModelMetadata) -> type[BaseModel]:
    """The response body of ``POST /predict`` (for the OpenAPI docs and for clients)."""
    fields: dict[str, Any] = {"request_id": (str, ...)}
    if metadata.task == "classification":
        fields["prediction"] = (Literal[tuple(metadata.classes)], ...)
        fields["probabilities"] = (dict[str, float], Field(description="class -> probability"))
    else:
        fields["prediction"] = (float, ...)
    fields["model_version"] = (
        str,
        Field(description="the model that answered this record (champion or challenger)"),
    )
    fields["imputed"] = (list[str], Field(description="features filled with silver's value"))
    fields["out_of_range"] = (
        list[str],
        Field(description="numeric features beyond the range seen in training (flagged)"),
    )
    prediction: Any = create_model("Prediction", **fields)
    response: type[BaseModel] = create_model(
        "PredictionResponse", model_version=(str, ...), predictions=(list[prediction], ...)
    )
    return response
