"""Request schemas built from the model's metadata, so a bad payload gets a 422 naming the field.

A record carries every model feature: numbers (finite) for numeric features and one of the known
categories for categorical ones. It may also carry ``request_id`` (echoed back and used to join
late labels), the id column and PII columns: those are accepted but dropped, never scored and
never logged. Any other field is an error, so a misspelt feature name is caught.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from .model import ModelMetadata

MAX_RECORDS = 10_000
REQUEST_ID = "request_id"


class PayloadError(ValueError):
    """The request body does not match the schema; ``errors`` are FastAPI-style dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def _feature_type(kind: str, categories: tuple[str, ...]) -> Any:
    if kind == "numeric":
        return Annotated[float, Field(strict=True, allow_inf_nan=False)]
    if categories:
        return Literal[categories]  # type: ignore[valid-type]
    return Annotated[str, Field(strict=True, min_length=1)]


@dataclass(frozen=True)
class RequestSchema:
    record: type[BaseModel]
    feature_names: tuple[str, ...]
    one: TypeAdapter[Any]
    many: TypeAdapter[Any]

    def parse(self, body: bytes) -> tuple[list[BaseModel], bool]:
        """Validate a JSON body (one record or a list); returns (records, was_a_single_record)."""
        stripped = body.lstrip()
        single = not stripped.startswith(b"[")
        try:
            parsed = self.one.validate_json(body) if single else self.many.validate_json(body)
        except ValidationError as exc:
            raise PayloadError(_clean(exc)) from None
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

    def columns(self, records: Iterable[BaseModel]) -> dict[str, list[Any]]:
        rows = list(records)
        return {name: [getattr(r, name) for r in rows] for name in self.feature_names}

    def features(self, record: BaseModel) -> dict[str, Any]:
        """The model features of one record: what is scored and logged (never PII)."""
        return {name: getattr(record, name) for name in self.feature_names}


def _error(loc: tuple[Any, ...], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": msg, "type": kind}


def _clean(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors without the offending input values (they may hold PII), field named."""
    errors = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ("body", *err["loc"])
        field = next((str(p) for p in reversed(err["loc"]) if isinstance(p, str)), None)
        msg = f"{field}: {err['msg']}" if field else err["msg"]
        errors.append(_error(loc, msg, err["type"]))
    return errors


def build_schema(
    metadata: ModelMetadata, *, pii_columns: Iterable[str] = (), id_column: str | None = None
) -> RequestSchema:
    """The pydantic record model for ``metadata``'s features (extra fields forbidden)."""
    fields: dict[str, Any] = {
        f.name: (_feature_type(f.kind, f.categories), ...) for f in metadata.features
    }
    fields[REQUEST_ID] = (
        Annotated[str, Field(strict=True, min_length=1, max_length=128)] | None,
        None,
    )
    for name in {*pii_columns, *([id_column] if id_column else [])}:
        if name not in fields:
            # accepted so callers may send whole customer records; dropped before scoring/logging
            fields[name] = (Any, Field(default=None, exclude=True))
    record = create_model(  # type: ignore[call-overload]
        "PredictionRecord", __config__=ConfigDict(extra="forbid"), **fields
    )
    return RequestSchema(
        record=record,
        feature_names=tuple(metadata.feature_names),
        one=TypeAdapter(record),
        many=TypeAdapter(list[record]),  # type: ignore[valid-type]
    )


def build_response_model(metadata: ModelMetadata) -> type[BaseModel]:
    """The response body of ``POST /predict`` (for the OpenAPI docs and for clients)."""
    fields: dict[str, Any] = {"request_id": (str, ...)}
    if metadata.task == "classification":
        fields["prediction"] = (Literal[tuple(metadata.classes)], ...)
        fields["probabilities"] = (dict[str, float], Field(description="class -> probability"))
    else:
        fields["prediction"] = (float, ...)
    prediction: Any = create_model("Prediction", **fields)
    response: type[BaseModel] = create_model(
        "PredictionResponse", model_version=(str, ...), predictions=(list[prediction], ...)
    )
    return response
