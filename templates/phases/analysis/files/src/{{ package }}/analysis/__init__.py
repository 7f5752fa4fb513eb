"""Business analysis for stakeholders: gold aggregates and model outputs.

``python -m <package>.analysis report`` writes ``reports/business-report.html`` (self-contained);
``make dashboard`` runs ``dashboard.py`` with Streamlit. Both use :mod:`.frames`, which reads the
gold layer, the blessed model's metadata and the prediction logs only.
"""
