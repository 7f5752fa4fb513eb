"""The ML pipeline: gold features -> trained, evaluated, explained, ONNX-packaged, gated model.

Run it with ``python -m <package>.ml train|evaluate|explain|package|gate|card|all``. ML code reads
the gold layer only (``data/gold/features.parquet`` and its ``contract.json``).
"""
