"""report.html: one self-contained page (inline CSS and SVG, no scripts, nothing fetched at view time)."""

from __future__ import annotations

import math
from html import escape

from app.batch.stats import percentile
from app.experiment.report import DONE, Report, table_rows

COLOURS = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626")
BINS = 24
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#111827;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem}
.sub{color:#6b7280;margin:0 0 1.5rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #e5e7eb;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f9fafb;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:1rem}
.chart{border:1px solid #e5e7eb;border-radius:6px;padding:.5rem}
.status{color:#b91c1c;font-weight:600}.diff td{background:#fffbeb}
.answer{white-space:pre-wrap;max-height:12rem;overflow:auto}
"""


def render(report: Report, title: str, subtitle: str) -> str:
    """The whole page."""
    names = [v.name for v in report.variants]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(subtitle)}</p>',
        "<h2>Variants side by side</h2>",
        _summary(report, names),
        "<h2>Latency per question</h2>",
        _charts(report),
        _differences(report),
        "<h2>Answers</h2>",
        _answers(report, names),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(report: Report, names: list[str]) -> str:
    head = "".join(f'<th style="color:{_colour(i)}">{escape(n)}</th>' for i, n in enumerate(names))
    body = []
    for label, cells in table_rows(report):
        tds = "".join(f'<td class="num">{escape(c)}</td>' for c in cells)
        body.append(f"<tr><th>{escape(label)}</th>{tds}</tr>")
    return f'<table id="summary"><thead><tr><th></th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def _charts(report: Report) -> str:
    values = [ms for lat in report.latencies.values() for ms in lat]
    if not values:
        return "<p>No finished rows yet.</p>"
    top = max(percentile(values, 99), 1.0)
    width = _nice(top / BINS)
    charts = []
    for index, v in enumerate(report.variants):
        charts.append(_histogram(v.name, report.latencies[v.name], width, _colour(index)))
    return f'<div class="charts">{"".join(charts)}</div>'


def _nice(step: float) -> float:
    """A round bin width (1, 2 or 5 times a power of ten) of at least `step` milliseconds."""
    power = 10 ** math.floor(math.log10(step))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= step)


def _histogram(name: str, latencies: list[float], width: float, colour: str) -> str:
    """Counts per latency bin, the last bin holding everything slower, with p50 and p95 marked."""
    counts = [0] * BINS
    for ms in latencies:
        counts[min(int(ms // width), BINS - 1)] += 1
    w, h, left, bottom, top = 360, 200, 40, 36, 24
    plot_w, plot_h = w - left - 10, h - top - bottom
    peak = max(counts) or 1
    bar = plot_w / BINS
    shapes = []
    for i, count in enumerate(counts):
        bh = plot_h * count / peak
        x, y = left + i * bar, top + plot_h - bh
        label = f"{i * width:g}–{(i + 1) * width:g} ms: {count}" if i < BINS - 1 else f"≥ {i * width:g} ms: {count}"
        shapes.append(
            f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{bh:.1f}" fill="{colour}">'
            f"<title>{escape(label)}</title></rect>"
        )
    for q, dash in ((50, "4 3"), (95, "1 3")):
        if latencies:
            x = left + min(percentile(latencies, q) / width, BINS) * bar
            shapes.append(
                f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" stroke="#111827" '
                f'stroke-dasharray="{dash}"/><text x="{x + 3:.1f}" y="{top + 10}" font-size="10">p{q}</text>'
            )
    axis = [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#9ca3af"/>',
        f'<text x="{left}" y="{h - 18}" font-size="10">0</text>',
        f'<text x="{left + plot_w}" y="{h - 18}" font-size="10" text-anchor="end">{BINS * width / 1000:g} s</text>',
        f'<text x="{left + plot_w / 2}" y="{h - 4}" font-size="10" text-anchor="middle">latency</text>',
        f'<text x="{left - 6}" y="{top + 4}" font-size="10" text-anchor="end">{peak}</text>',
        f'<text x="{left}" y="14" font-size="12" font-weight="600" fill="{colour}">{escape(name)}'
        f" · {len(latencies)} rows</text>",
    ]
    svg = (
        f'<svg viewBox="0 0 {w} {h}" width="100%" role="img" '
        f'aria-label="latency of {escape(name)}">{"".join(axis + shapes)}</svg>'
    )
    return f'<div class="chart">{svg}</div>'


def _differences(report: Report) -> str:
    out = []
    for v in report.variants:
        if not v.differences:
            continue
        out.append(f"<h2>Answers of {escape(v.name)} that differ from {escape(report.baseline)}</h2>")
        rows = "".join(
            f"<tr class=diff><td>{escape(d['input'])}</td><td>{escape(str(d['repeat']))}</td>"
            f'<td class="answer">{escape(str(d["baseline_answer"]))}</td>'
            f'<td class="answer">{escape(str(d["answer"]))}</td></tr>'
            for d in v.differences
        )
        head = f"<th>question</th><th>repeat</th><th>{escape(report.baseline)}</th><th>{escape(v.name)}</th>"
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "".join(out)


def _answers(report: Report, names: list[str]) -> str:
    note = ""
    if report.total_questions > len(report.questions):
        note = f"<p>The first {len(report.questions)} of {report.total_questions} questions.</p>"
    head = "<th>question</th>" + "".join(f"<th>{escape(n)}</th>" for n in names)
    rows = []
    for q in report.questions:
        cells = []
        for n in names:
            parts = []
            for a in q["answers"].get(n, []):
                status = "" if a["status"] in DONE else f'<span class="status">[{escape(a["status"])}]</span> '
                parts.append(f"{status}{escape(str(a['output'] or ''))}")
            cells.append(f'<td class="answer">{"<hr>".join(parts)}</td>')
        rows.append(f"<tr><td>{escape(q['input'])}</td>{''.join(cells)}</tr>")
    return f'{note}<table id="answers"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
