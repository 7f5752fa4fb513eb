"""``reports/business-report.html``: one self-contained page for stakeholders.

Tables are escaped HTML, charts are SVG drawn by matplotlib (text as paths, no fonts) inlined as
``data:`` URIs: nothing to fetch, so the file can be mailed or attached as it is. It is written to a
temporary file and renamed: a failure never leaves half a report.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .frames import Overview, prediction_distribution

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:64rem;color:#1f2933;line-height:1.45;padding:0 1rem}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #d9e2ec}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}
th,td{border:1px solid #d9e2ec;padding:.25rem .6rem;text-align:right}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}
.muted{color:#627d98}.ok{color:#0f7b3f;font-weight:600}.bad{color:#b42318;font-weight:600}
.chart img{max-width:100%;height:auto}
"""


def svg_chart(kind: str, labels: list[str], values: list[float], title: str, ylabel: str) -> str:
    """One bar or line chart as an inline image (SVG in a data: URI, no metadata)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": title}):
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        try:
            positions = list(range(len(labels)))
            if kind == "line":
                ax.plot(positions, values, marker="o", color="#2563eb")
            else:
                ax.bar(positions, values, color="#2563eb")
            step = max(1, len(labels) // 12)
            ax.set_xticks(positions[::step], labels[::step], rotation=30, ha="right")
            ax.set_title(title, fontsize=11)
            ax.set_ylabel(ylabel)
            ax.spines[["top", "right"]].set_visible(False)
            fig.tight_layout()
            buffer = io.StringIO()
            fig.savefig(
                buffer,
                format="svg",
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None},
            )
        finally:
            plt.close(fig)
    # an <img> with a data: URI keeps each chart's SVG ids (glyphs, clip paths) to itself
    encoded = base64.b64encode(buffer.getvalue().encode("utf-8")).decode("ascii")
    alt = html.escape(title, quote=True)
    return f'<div class="chart"><img alt="{alt}" src="data:image/svg+xml;base64,{encoded}"></div>'


def table(frame: pd.DataFrame, floats: str = "{:.3f}") -> str:
    """An escaped HTML table; floats formatted, datetimes shown as UTC minutes."""
    shown = frame.copy()
    for column in shown.columns:
        series = shown[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            shown[column] = series.dt.strftime("%Y-%m-%d %H:%M")
        elif pd.api.types.is_float_dtype(series):
            shown[column] = series.map(lambda v: "" if pd.isna(v) else floats.format(v))
    return shown.to_html(index=False, escape=True, border=0, na_rep="")


def _p(text: str, css: str = "") -> str:
    attr = f' class="{css}"' if css else ""
    return f"<p{attr}>{html.escape(text)}</p>"


def model_section(view: Overview) -> list[str]:
    out = ["<h2>Model</h2>"]
    model = view.model
    if model is None:
        out.append(_p("No blessed model yet: run `make pipeline`.", "muted"))
        return out
    score = model.get("score")
    gate = model.get("gate") or {}
    rows = [
        ("model version", model["model_version"]),
        ("trained at", model.get("trained_at", "")),
        ("estimator", model.get("estimator", model.get("framework", ""))),
        ("metric", model["metric"]),
        ("holdout score", "" if score is None else f"{float(score):.4f}"),
        ("last gate decision", gate.get("decision", "(no reports/gate.json)")),
    ]
    body = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    out.append(f"<table><tbody>{body}</tbody></table>")
    if gate.get("reasons"):
        css = "ok" if gate.get("passed") else "bad"
        out.extend(_p(str(reason), css) for reason in gate["reasons"])
    return out


def gold_section(view: Overview) -> list[str]:
    out = [
        "<h2>Gold: business aggregates</h2>",
        _p(
            f"{view.gold_rows:,} rows in data/gold/features.parquet; target `{view.target}` "
            f"({view.task})."
        ),
        table(view.target_summary),
    ]
    for dimension, group in view.aggregates.groupby("dimension", sort=True):
        out.append(f"<h3>{html.escape(str(dimension))}</h3>")
        out.append(table(group.drop(columns=["dimension"])))
        means = group["target_mean"]
        if means.notna().any():
            out.append(
                svg_chart(
                    "bar",
                    group["value"].tolist(),
                    means.fillna(0.0).tolist(),
                    f"{view.target} (mean) by {dimension}",
                    f"mean {view.target}",
                )
            )
    return out


def predictions_section(view: Overview) -> list[str]:
    out = ["<h2>Predictions</h2>"]
    requests = view.requests
    if requests.empty:
        out.append(
            _p(
                f"No predictions logged yet ({view.src.show(view.src.requests)} is missing or "
                "empty): run `make serve` and send requests, or batch-score gold.",
                "muted",
            )
        )
    else:
        first, last = requests["timestamp"].min(), requests["timestamp"].max()
        out.append(
            _p(
                f"{len(requests):,} scored records from {first:%Y-%m-%d %H:%M} to "
                f"{last:%Y-%m-%d %H:%M} UTC ({view.src.show(view.src.requests)})."
            )
        )
        out.append("<h3>By model version</h3>")
        out.append(table(view.by_model_version()))
        volume = view.volume_by_day()
        out.append("<h3>Volume per day</h3>")
        out.append(table(volume))
        out.append(
            svg_chart(
                "line" if len(volume) > 1 else "bar",
                volume["day"].tolist(),
                volume["requests"].astype(float).tolist(),
                "scored records per day (UTC)",
                "records",
            )
        )
        dist = view.prediction_distribution()
        key = dist.columns[0]
        out.append("<h3>Prediction distribution</h3>")
        out.append(table(dist))
        out.append(
            svg_chart(
                "bar",
                dist[key].tolist(),
                dist["share"].astype(float).tolist(),
                "share of predictions",
                "share",
            )
        )
        out.append("<h3>Segments: observed in gold vs predicted</h3>")
        out.append(table(view.segments()))
    if view.batch is not None:
        out.append("<h3>Latest batch scoring (reports/predictions.parquet)</h3>")
        batch = view.batch
        detail = f"{len(batch):,} rows"
        if "model_version" in batch.columns and len(batch):
            detail += f", model {batch['model_version'].iloc[0]}"
        if "scored_at" in batch.columns and len(batch):
            detail += f", scored at {batch['scored_at'].iloc[0]}"
        out.append(_p(detail + "."))
        out.append(table(prediction_distribution(batch["prediction"], view.task)))
    return out


def render(view: Overview, generated_at: str | None = None) -> str:
    """The whole page as a string."""
    stamp = generated_at or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"{view.project}: business report"
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        _p(f"Generated {stamp} from the gold layer and the model's outputs.", "muted"),
        *model_section(view),
        *gold_section(view),
        *predictions_section(view),
        "</body></html>",
    ]
    page = "\n".join(parts) + "\n"
    external = re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.IGNORECASE)
    if external:  # a guarantee, not a hope: the page must stand alone
        raise RuntimeError(f"report would reference an external asset: {external.group(0)!r}")
    return page


def write(view: Overview, output: Path) -> Path:
    """Render and write atomically (temporary file in the same folder, then rename)."""
    page = render(view)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return output


def summary(view: Overview) -> dict[str, Any]:
    """A few figures for the command line."""
    return {
        "gold_rows": view.gold_rows,
        "segments": len(view.aggregates),
        "requests": len(view.requests),
        "model_version": view.model["model_version"] if view.model else None,
    }
