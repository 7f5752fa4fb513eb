"""Monitoring: data and prediction drift against the training reference, performance on late
labels, model staleness and schema mismatches; `python -m <package>.monitoring` writes the report
and exits 3 when retraining is due (see __main__.py for every exit code)."""
