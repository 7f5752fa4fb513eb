"""ISO dates and date-times as features: which numeric parts gold makes of them, row by row.

Pure Python (no polars, no pandera), so the REST service, whose image has no data stack, expands a
raw date sent in a request with the same rule as gold. The engines (polars, SQL, Spark) compute
the same parts column-wise; the data tests check them against :func:`date_parts`.
"""

from __future__ import annotations

import datetime as dt
import re

DATE_KINDS = ("date", "datetime")
_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
#: an ISO date (``2016-01-31``); the date part of every value of a date or datetime feature
DATE_PATTERN = rf"^{_DATE}$"
#: an ISO date-time (``2016-01-31T08:30``, seconds, fraction and zone optional) or a date
DATETIME_PATTERN = (
    rf"^{_DATE}([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
#: numeric gold features a date (or date-time) feature expands into: ``<column>_<part>``
DATE_PARTS: dict[str, tuple[str, ...]] = {
    "date": ("year", "month", "day", "day_of_week"),
    "datetime": ("year", "month", "day", "day_of_week", "hour", "minute"),
}
_DATETIME = re.compile(DATETIME_PATTERN)


def date_parts(text: str) -> dict[str, float]:
    """Every part (``DATE_PARTS["datetime"]``) of an ISO date or date-time, as gold computes it:
    the date is the first 10 characters, the day of week ISO (Monday 1 .. Sunday 7), the time of a
    date-only value midnight, a zone ignored (the clock time as written).

    Raises ``ValueError`` (saying what is expected) for text that is not one, and for an
    impossible date such as ``2023-02-30`` (gold's contract check refuses it too)."""
    value = text.strip()
    if not _DATETIME.match(value):
        raise ValueError(
            "must be an ISO date (2016-01-31) or date-time (2016-01-31T08:30, seconds and zone "
            "optional)"
        )
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        raise ValueError(f"{value[:10]} is not a date of the calendar") from None
    hour = int(value[11:13]) if len(value) > 10 else 0
    minute = int(value[14:16]) if len(value) > 10 else 0
    parts = {
        "year": day.year,
        "month": day.month,
        "day": day.day,
        "day_of_week": day.isoweekday(),
        "hour": hour,
        "minute": minute,
    }
    return {name: float(number) for name, number in parts.items()}
