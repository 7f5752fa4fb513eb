"""The data pipeline's error: its message names the file, the column or key, and the fix."""

from __future__ import annotations


class DataError(RuntimeError):
    """Bad input or configuration for a data step; nothing has been written to silver or gold."""
