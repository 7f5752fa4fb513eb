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
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from ..data.dates import date_parts
from .features import FeatureError, FeaturePipeline
from .model import Feature, Input, ModelMetadata

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


def _feature_type(feature: Feature, reject_out_of_range: bool, whole: bool = False) -> Any:
    """The field of one feature (or raw input); ``whole``: a categorical input silver holds as
    whole numbers, also accepted as JSON numbers (``0`` for ``"0"``)."""
    if feature.kind == "numeric":
        lower, upper = -FLOAT32_MAX, FLOAT32_MAX
        if reject_out_of_range and feature.fences is not None:
            lower, upper = feature.fences
        kind: Any = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=lower, le=upper)]
    elif feature.categories:
        numbers = tuple(int(c) for c in feature.categories if whole and _whole(c))
        kind = Literal[(*feature.categories, *numbers)]  # type: ignore[valid-type]
    else:
        kind = Annotated[str, Field(strict=True, min_length=1)]
    if feature.fill is None:
        return (kind, ...)
    return (kind | None, Field(default=None, description=f"missing -> {feature.fill!r}"))


def _whole(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def _iso_date(text: str) -> str:
    date_parts(text)  # raises ValueError saying what a date must look like
    return text.strip()


IsoDate = Annotated[
    str,
    Field(strict=True, description="an ISO date (2031-07-04) or date-time (2031-07-04T08:30)"),
    AfterValidator(_iso_date),
]


def _id_value(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise ValueError("send the id as text or a whole number (it must not be null)")
    return value


#: the id a model looks its per-entity features up by: text or a whole number, never null
IdValue = Annotated[
    Any,
    AfterValidator(_id_value),
    Field(json_schema_extra={"type": ["string", "integer"]}),
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
    #: the model features the packaged feature code computed for this record, and which
    #: schema's pipeline computed them (RequestSchema.parse)
    _features: dict[str, Any] | None = PrivateAttr(default=None)
    _computed_by: int | None = PrivateAttr(default=None)
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
class RawInput:
    """A raw input of the request: its record field and, for a date, where its value comes
    from (gold's parts of it, or the ISO text field)."""

    input: Input
    attr: str
    parts: dict[str, str] = field(default_factory=dict)  # part -> gold feature name


@dataclass(frozen=True)
class RequestSchema:
    record: type[BaseModel]
    feature_names: tuple[str, ...]
    one: TypeAdapter[Any]
    many: TypeAdapter[Any]
    fills: dict[str, Any] = field(default_factory=dict)
    fences: dict[str, tuple[float, float]] = field(default_factory=dict)
    reject_fenced: frozenset[str] = frozenset()
    #: the model's raw inputs (gold contract ``inputs``); empty: the record carries the features
    raw_inputs: tuple[RawInput, ...] = ()
    #: model features the packaged feature code computes: accepted, ignored (computed wins)
    computed: frozenset[str] = frozenset()
    #: the id column, when the model looks features up by it
    lookup_id: str | None = None
    #: the model's packaged feature code and entity table (serving/features.py)
    pipeline: FeaturePipeline | None = None

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
        if self.pipeline is not None and len(records) <= MAX_RECORDS:
            try:
                self.compute(records, single)
            except FeatureError as exc:
                raise PayloadError(exc.errors) from None
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

    def compute(self, records: list[BaseModel], single: bool = False) -> None:
        """Run the model's feature pipeline on ``records`` (raises ``FeatureError``) and keep
        each record's model features on it."""
        assert self.pipeline is not None
        columns = self.pipeline.compute(self.raw_columns(records), len(records), single)
        for i, record in enumerate(records):
            record._features = {n: columns[n][i] for n in self.feature_names}  # type: ignore[attr-defined]
            record._computed_by = id(self)  # type: ignore[attr-defined]

    def columns(self, records: Iterable[BaseModel]) -> dict[str, list[Any]]:
        """The model feature columns of the records: computed by the packaged feature code
        (parse() ran it; records parsed by another model's schema are computed here), or, for a
        model without one, the records' features as sent."""
        rows = list(records)
        if self.pipeline is None:
            return {name: [self.value(r, name) for r in rows] for name in self.feature_names}
        if any(getattr(r, "_computed_by", None) != id(self) for r in rows):
            try:
                self.compute(rows)
            except FeatureError as exc:
                raise PayloadError(exc.errors) from None
        return {
            name: [r._features[name] for r in rows]  # type: ignore[attr-defined]
            for name in self.feature_names
        }

    def _sent(self, records: Iterable[BaseModel]) -> dict[str, list[Any]]:
        """The model features the records carry themselves (not computed)."""
        rows = list(records)
        return {
            name: [self.value(r, name) for r in rows]
            for name in self.feature_names
            if name not in self.computed
        }

    def raw_columns(self, records: Iterable[BaseModel]) -> dict[str, list[Any]]:
        """What the model's feature pipeline takes (serving/features.py): every raw input
        (missing ones filled, a date as ``datetime.date``), the id column when features are
        looked up by it, and the model features the records carry."""
        from .features import iso_dates

        rows = list(records)
        out = self._sent(rows)
        for raw in self.raw_inputs:
            item = raw.input
            if item.kind in ("date", "datetime"):
                texts = [getattr(r, raw.attr) or item.fill for r in rows]
                if raw.parts and any(t is None for t in texts):
                    parts = {p: [self.value(r, n) for r in rows] for p, n in raw.parts.items()}
                    built = iso_dates(item, parts, len(rows))
                    texts = [t if t is not None else b for t, b in zip(texts, built, strict=True)]
                out[item.name] = texts
            else:
                out[item.name] = [self.value(r, raw.attr) for r in rows]
        if self.lookup_id is not None:
            out[self.lookup_id] = [getattr(r, self.lookup_id) for r in rows]
        return out

    def ignored(self, record: BaseModel) -> list[str]:
        """The computed features ``record`` sent anyway (their values were not used)."""
        return sorted(n for n in self.computed if n in record.model_fields_set)

    def features(self, record: BaseModel) -> dict[str, Any]:
        """The model features of one record: what is scored and logged (never PII)."""
        computed = getattr(record, "_features", None)
        if computed is not None and getattr(record, "_computed_by", None) == id(self):
            return dict(computed)
        return {
            name: self.value(record, name)
            for name in self.feature_names
            if name not in self.computed
        }

    def check(self, record: BaseModel) -> Checked:
        """The features (and raw inputs) filled in and the numbers beyond the range training
        saw."""
        names = [n for n in self.feature_names if n not in self.computed]
        names += [r.attr for r in self.raw_inputs if r.attr not in names and not r.parts]
        imputed = [n for n in names if n in self.fills and getattr(record, n) is None]
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
    computed = metadata.computed if metadata.inputs else frozenset()
    whole = {i.name for i in metadata.inputs if i.dtype in _INTEGER_DTYPES}
    for feature in metadata.features:
        if feature.name in computed:
            # computed by the model's feature code: accepted, ignored, not in the OpenAPI schema
            fields[feature.name] = (
                Annotated[Any, SkipJsonSchema()],
                Field(default=None, exclude=True),
            )
            continue
        kind, default = _feature_type(feature, reject, feature.name in whole)
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
    raw_inputs = _raw_inputs(metadata, fields, synonyms, columns, reject, whole)
    fields[REQUEST_ID] = (
        Annotated[str, Field(strict=True, min_length=1, max_length=128)] | None,
        None,
    )
    lookup_id = None
    if computed & set(metadata.entity_features):
        lookup_id = metadata.id_column or id_column
    if lookup_id is not None:
        looked_up = ", ".join(n for n in metadata.entity_features if n in computed)
        fields[lookup_id] = (
            IdValue,
            Field(exclude=True, description=f"the model looks {looked_up} up by it"),
        )
    for name in {*pii_columns, *([id_column] if id_column else [])}:
        if name not in fields:
            # accepted so callers may send whole customer records; dropped before scoring/logging
            fields[name] = (Any, Field(default=None, exclude=True))
    record: type[Record] = create_model("PredictionRecord", __base__=Record, **fields)
    pipeline = FeaturePipeline.load(metadata.path.parent, metadata) if metadata.inputs else None
    record.synonyms = tuple(synonyms)
    record.date_columns = tuple(columns)
    return RequestSchema(
        record=record,
        feature_names=tuple(metadata.feature_names),
        one=TypeAdapter(record),
        many=TypeAdapter(list[record]),  # type: ignore[valid-type]
        fills={
            **{r.attr: r.input.fill for r in raw_inputs if r.input.fill is not None},
            **{f.name: f.fill for f in metadata.features if f.fill is not None},
        },
        fences={
            f.name: f.fences
            for f in metadata.features
            if f.fences is not None and f.name not in computed
        },
        reject_fenced=frozenset(
            f.name for f in metadata.features if reject and f.fences is not None
        ),
        raw_inputs=tuple(raw_inputs),
        computed=computed,
        lookup_id=lookup_id,
        pipeline=pipeline,
    )


_INTEGER_DTYPES = ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64")


def _raw_inputs(
    metadata: ModelMetadata,
    fields: dict[str, Any],
    synonyms: list[tuple[str, str]],
    dates: list[DateColumn],
    reject: bool,
    whole: set[str],
) -> list[RawInput]:
    """The fields of the raw inputs that are not model features (added to ``fields``), and how
    the feature pipeline reads every input from a record."""
    out: list[RawInput] = []
    by_date = {d.name: d for d in dates}
    for item in metadata.inputs:
        if item.kind in ("date", "datetime"):
            column = by_date.get(item.source or item.name) or by_date.get(item.name)
            if column is not None:
                out.append(RawInput(item, column.field, column.parts))
                continue
            attr = item.name
            if attr not in fields:
                names = [item.source, item.name] if item.source else [item.name]
                if len(names) == 2:
                    synonyms.append((names[0], names[1]))
                required = item.fill is None
                fields[attr] = (
                    IsoDate if required else IsoDate | None,
                    Field(
                        default=... if required else None,
                        validation_alias=AliasChoices(*names),
                        description="an ISO date"
                        + ("" if required else f"; missing -> {item.fill}"),
                    ),
                )
            out.append(RawInput(item, attr))
            continue
        if item.name not in fields:
            feature = Feature(item.name, item.kind, item.categories, item.fill, item.fences)
            kind, default = _feature_type(feature, reject, item.name in whole)
            if item.source:
                synonyms.append((item.source, item.name))
                described = f"or {item.name!r}"
                if item.fill is not None:
                    described += f"; missing -> {item.fill!r}"
                default = Field(
                    default=... if item.fill is None else None,
                    validation_alias=AliasChoices(item.source, item.name),
                    description=described,
                )
            fields[item.name] = (kind, default)
        out.append(RawInput(item, item.name))
    return out


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
