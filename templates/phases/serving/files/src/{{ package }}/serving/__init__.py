"""Serving: the registry's ONNX models behind a FastAPI app (REST) or a batch scorer.

`python -m <package>.serving` starts the REST service; `python -m <package>.serving.batch` scores a
gold-shaped parquet file. Both load the champion of `models/aliases.json` (the REST service also
the challenger, per serving.strategy: see serving/rollout.py and docs/runbook.md).
"""
