"""Data pipeline (owner: data engineer): bronze -> silver -> gold.

- ``ingest``: source -> ``data/bronze/ingest_date=YYYY-MM-DD/part-<ts>.parquet`` (+ manifest)
- ``silver``: validate against the contract, type, deduplicate, impute, clip outliers, mask PII
- ``gold``: model-ready ``features.parquet`` + ``contract.json`` + ``aggregates.parquet``

Run ``python -m <package>.data ingest|silver|gold|all`` (``make data``). ML code reads gold only.
"""

from .errors import DataError

__all__ = ["DataError"]
