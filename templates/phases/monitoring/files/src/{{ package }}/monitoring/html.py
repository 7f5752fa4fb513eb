"""The monitoring report as one self-contained HTML page (inline CSS and SVG, no assets)."""

from __future__ import annotations

from html import escape
from typing import Any

REF_COLOUR = "#4e79a7"
CUR_COLOUR = "#f28e2b"

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{margin-bottom:.2rem}.muted{color:#666}.badge{display:inline-block;padding:.3rem .8rem;
border-radius:1rem;color:#fff;font-weight:600}.ok{background:#2e7d32}.due{background:#c62828}
.warn{background:#ef6c00}table{border-collapse:collapse;margin:.8rem 0}
td,th{border-bottom:1px solid #ddd;padding:.3rem .7rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}.drifted{color:#c62828;font-weight:600}.grid{display:flex;flex-wrap:wrap;
gap:1rem}.card{border:1px solid #ddd;border-radius:.4rem;padding:.6rem}
.legend span{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 1rem}
code{background:#f5f5f5;padding:0 .2rem}
"""


def bar_chart(bins: list[dict[str, Any]], width: int = 420, height: int = 170) -> str:
    """Grouped bars: reference vs current share per bin (hover a bar for its bin and value)."""
    if not bins:
        return ""
    left, bottom, top = 34, 22, 8
    plot_w, plot_h = width - left - 6, height - bottom - top
    peak = max(max(b["reference"], b["current"]) for b in bins) or 1.0
    slot = plot_w / len(bins)
    bar = max(1.0, slot * 0.38)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="reference vs current distribution">']  # fmt: skip
    for frac in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e0e0e0"/><text x="{left - 4}" y="{y + 3:.1f}" font-size="9" '
                     f'text-anchor="end">{peak * frac:.0%}</text>')  # fmt: skip
    for i, b in enumerate(bins):
        x = left + i * slot + slot * 0.12
        for j, (key, colour) in enumerate((("reference", REF_COLOUR), ("current", CUR_COLOUR))):
            h = plot_h * b[key] / peak
            label = escape(f"{b['bin']}: {key} {b[key]:.1%}")
            parts.append(f'<rect x="{x + j * bar:.1f}" y="{top + plot_h - h:.1f}" '
                         f'width="{bar:.1f}" height="{h:.1f}" fill="{colour}">'
                         f"<title>{label}</title></rect>")  # fmt: skip
        name = str(b["bin"])
        short = name if len(name) <= 10 else name[:9] + "…"
        parts.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{height - 6}" font-size="9" '
                     f'text-anchor="middle">{escape(short)}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return escape(str(value))


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in pairs)


def _drift_card(item: dict[str, Any], metric: str) -> str:
    status = '<span class="drifted">drifted</span>' if item["drifted"] else "stable"
    second = (f"KS {_fmt(item['ks_statistic'])}, p={_fmt(item['p_value'], 3)}"
              if item["test"] == "ks" else f"chi² p={_fmt(item['p_value'], 3)}")  # fmt: skip
    return (f'<div class="card"><b>{escape(item["name"])}</b> <span class="muted">'
            f'({escape(item["kind"])})</span> — {status}<br><span class="muted">PSI '
            f'{_fmt(item["psi"])} · {second} · {metric} score {_fmt(item["score"])}</span>'
            f'<br>{bar_chart(item["bins"])}</div>')  # fmt: skip


def _comparison_html(report: dict[str, Any]) -> str:
    """Champion vs challenger: the decision, why, and the evidence (none without a challenger)."""
    comparison = report.get("comparison")
    tenure = report.get("champion_tenure")
    out = ""
    if comparison:
        decision = comparison["decision"]
        css = {"rollback": "due", "promote": "ok"}.get(decision, "warn")
        moved = comparison.get("moved")
        if moved:
            acted = "; ".join(
                f"{escape(c['alias'])} {escape(str(c['from'] or '-'))} -&gt; "
                f"{escape(str(c['to'] or '-'))}"
                for c in moved["changes"]
            )
            who, when = escape(str(moved["who"])), escape(str(moved["when"]))
            action = f"moved: {acted} (by {who}, {when})"
        elif decision == "keep_testing":
            action = "none: keep serving both and collecting labels"
        else:
            action = (
                "none (not automatic: monitoring.comparison.auto_"
                + ("promote" if decision == "promote" else "rollback")
                + " is off; run `make "
                + ("promote" if decision == "promote" else "rollback ALIAS=challenger")
                + "`)"
            )
        interval = comparison.get("interval")
        out += (
            f"<h2>Champion vs challenger ({escape(comparison['mode'])})</h2>"
            f'<p><span class="badge {css}">{escape(decision.replace("_", " "))}</span> '
            f"{escape(comparison['reason'])}</p><table>"
            + _rows(
                [
                    ("champion", comparison["champion"]),
                    ("challenger", comparison["challenger"]),
                    ("metric", comparison["metric"]),
                    (
                        "score champion / challenger",
                        f"{_fmt(comparison['score']['champion'])} / "
                        f"{_fmt(comparison['score']['challenger'])}",
                    ),
                    ("difference (> 0: challenger better)", comparison["difference"]),
                    (
                        f"{comparison['confidence']:.0%} interval",
                        f"[{_fmt(interval[0])}, {_fmt(interval[1])}]" if interval else "n/a",
                    ),
                    (
                        "labelled requests champion / challenger",
                        f"{comparison['labelled']['champion']} / "
                        f"{comparison['labelled']['challenger']}",
                    ),
                    (
                        "requests champion / challenger",
                        f"{comparison['requests']['champion']} / "
                        f"{comparison['requests']['challenger']}",
                    ),
                    ("minimum labelled per model", comparison["min_samples"]),
                    ("method", comparison["method"]),
                    ("registry action", action),
                ]
            )
            + "</table>"
        )
    if tenure and tenure["terms"]:
        rows = "".join(
            f"<tr><td>{escape(str(t['model_version']))}</td><td>{escape(str(t['since']))}</td>"
            f"<td>{escape(str(t['until'] or 'serving'))}</td><td>{_fmt(t['days'], 2)}</td>"
            f"<td>{escape(str(t['ended_by'] or ''))}</td></tr>"
            for t in tenure["terms"]
        )
        median = tenure["median_days_until_replaced"]
        out += (
            '<h2>Champion tenure</h2><p class="muted">how long each champion served before it '
            f"was replaced: median {_fmt(median, 2) if median is not None else 'n/a'} days over "
            f"{tenure['replaced']} replaced</p><table><tr><th>version</th><th>since</th>"
            f"<th>until</th><th>days</th><th>ended by</th></tr>{rows}</table>"
        )
    return out


def render_html(report: dict[str, Any], title: str) -> str:
    due = report["retraining_due"]
    badge = ('<span class="badge due">retraining due</span>' if due
             else '<span class="badge ok">healthy</span>')  # fmt: skip
    metric = report["thresholds"]["drift_metric"]
    reasons = "".join(f"<li>{escape(r)}</li>" for r in report["reasons"]) or "<li>none</li>"
    alerts = "".join(f'<li><span class="badge warn">alert</span> {escape(a)}</li>'
                     for a in report["alerts"])  # fmt: skip
    model, window, schema, perf = (report["model"], report["window"], report["schema"],
                                   report["performance"])  # fmt: skip
    drift = report["data_drift"]
    if drift["judged"]:
        table = "".join(
            f"<tr><td>{escape(f['name'])}</td><td>{escape(f['kind'])}</td><td>{_fmt(f['psi'])}"
            f"</td><td>{_fmt(f['ks_statistic'])}</td><td>{_fmt(f['p_value'], 3)}</td><td>"
            + ('<span class="drifted">yes</span>' if f["drifted"] else "no")
            + "</td></tr>"
            for f in drift["features"]
        )
        cards = "".join(_drift_card(f, metric) for f in drift["features"])
        pred = report["prediction_drift"]
        drift_html = (
            "<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>KS</th><th>p-value</th>"
            f"<th>drifted</th></tr>{table}</table>"
            '<p class="legend">bars: share of rows per bin<span style="background:'
            f'{REF_COLOUR}"></span>reference (training)<span style="background:{CUR_COLOUR}">'
            f'</span>current (logged requests)</p><div class="grid">{cards}</div>'
            f"<h2>Prediction drift</h2>{_drift_card(pred, metric) if pred else ''}"
        )
    else:
        drift_html = f'<p class="muted">Not judged: {escape(str(drift["reason"]))}</p>'
    codes = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                    for k, v in report["exit_codes"].items())  # fmt: skip
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} — monitoring</title><style>{CSS}</style></head><body>
<h1>{escape(title)} — model monitoring</h1>
<p class="muted">generated {escape(report["generated_at"])} · exit code {report["exit_code"]}</p>
<p>{badge}</p><h2>Why</h2><ul>{reasons}{alerts}</ul>
<h2>Model</h2><table>{
        _rows(
            [
                ("version", model["model_version"]),
                ("trained at", model["trained_at"]),
                ("age (days)", model["age_days"]),
                ("max age (days)", model["max_model_age_days"]),
                ("stale", "yes" if model["stale"] else "no"),
            ]
        )
    }</table>
<h2>Traffic</h2><table>{
        _rows(
            [
                ("requests in window", window["requests"]),
                ("first", window["first"]),
                ("last", window["last"]),
                ("reference rows", window["reference_rows"]),
                ("rejected (schema mismatch)", schema["rejected_requests"]),
                ("schema mismatch rate", f"{schema['mismatch_rate']:.2%}"),
            ]
        )
    }</table>
<h2>Data drift ({escape(metric)}, threshold {_fmt(report["thresholds"]["drift_threshold"])})</h2>
{drift_html}
<h2>Performance on labelled traffic</h2><table>{
        _rows(
            [
                ("labelled requests", perf["labelled"]),
                ("metric", perf["metric"]),
                ("value", perf["value"]),
                ("training score", perf["training_score"]),
                ("gate (ml.min_score)", perf["min_score"]),
                ("status", "degraded" if perf["degraded"] else perf.get("reason") or "ok"),
            ]
        )
    }</table>
{_comparison_html(report)}
<h2>Exit codes of <code>make monitor</code></h2><table>{codes}</table>
</body></html>
"""
