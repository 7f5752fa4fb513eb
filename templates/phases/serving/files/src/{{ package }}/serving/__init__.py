"""Serving: the blessed ONNX model behind a FastAPI app (REST) or a batch scorer.

`python -m <package>.serving` starts the REST service; `python -m <package>.serving.batch` scores a
gold-shaped parquet file. Both read `models/blessed/` (see docs/runbook.md).
"""
