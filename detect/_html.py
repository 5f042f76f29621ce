"""A self-contained HTML report of a scan: one file, inline CSS/JS/SVG, no network.

Every string from the traffic (account ids, prompts quoted in reasons, evidence values) is
attacker-controlled, so everything is escaped and the page carries a Content-Security-Policy
that allows only its own inline script (by hash) and style: an injected ``<script>`` or
``onerror=`` attribute would neither parse as markup nor run.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections import Counter
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np

from stillroom.detect._layout import spring_layout

PALETTE = (
    "#c0392b",
    "#2471a3",
    "#229954",
    "#d68910",
    "#7d3c98",
    "#17a589",
    "#a04000",
    "#2e4053",
    "#cb4335",
    "#1f618d",
    "#b7950b",
    "#6c3483",
)
LINK_COLORS = (
    "#5d6d7e",
    "#e67e22",
    "#16a085",
    "#8e44ad",
    "#b03a2e",
    "#2874a6",
    "#7dcea0",
    "#f4d03f",
)
MAX_GRAPH_NODES = 600
MAX_ACCOUNT_ROWS = 1000


def esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _asset(name: str) -> str:
    return resources.files("stillroom.detect").joinpath("assets", name).read_text(encoding="utf-8")


def write_html_report(report: dict, path: Path | str) -> None:
    """Write ``report`` (a scan's report dict) as one self-contained HTML file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")


def render_html(report: dict) -> str:
    campaigns = list(report.get("campaigns") or [])
    colors = {c["id"]: PALETTE[i % len(PALETTE)] for i, c in enumerate(campaigns)}
    script = _asset("report.js")
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'; img-src data:"
    body = "\n".join(
        [
            _summary(report, campaigns),
            _campaigns(report, campaigns, colors),
            _graph(report.get("graph") or {}, colors),
            _timeline(report.get("timeline") or [], campaigns, colors),
            _features(report.get("features") or {}),
            _accounts(report.get("accounts") or []),
        ]
    )
    summary = report.get("summary") or {}
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>stillroom detect report</title>"
        f"<style>{_asset('report.css')}</style></head><body>"
        "<header><h1>Distillation campaign report</h1>"
        f"<p>{esc(_fmt(summary.get('rows', 0)))} rows scanned · {esc(len(campaigns))} campaigns · "
        f"{esc(summary.get('flagged', 0))} accounts flagged</p></header>"
        f"<main>{body}</main><script>{script}</script></body></html>\n"
    )


# --- sections ---------------------------------------------------------------------------


def _served_before(campaign: dict, timeline: list[dict]) -> int | None:
    evidence = campaign.get("evidence") or {}
    if isinstance(evidence.get("requests_before_flag"), int | float):
        return int(evidence["requests_before_flag"])
    flagged_at = _parse(campaign.get("flagged_at"))
    if flagged_at is None:
        return None
    return sum(
        int(t.get("requests", 0))
        for t in timeline
        if t.get("campaign") == campaign.get("id")
        and (_parse(t.get("bucket")) or flagged_at) < flagged_at
    )


def _summary(report: dict, campaigns: list[dict]) -> str:
    summary = dict(report.get("summary") or {})
    served = [_served_before(c, report.get("timeline") or []) for c in campaigns]
    summary.setdefault("campaigns", len(campaigns))
    if "requests_before_flag" not in summary:
        summary["served_before_detection"] = sum(s for s in served if s is not None)
    cards = "".join(
        f'<div class="card"><b>{esc(_fmt(v))}</b><span>{esc(k.replace("_", " "))}</span></div>'
        for k, v in summary.items()
        if isinstance(v, int | float | str)
    )
    return f'<section id="summary"><h2>Summary</h2><div class="cards">{cards}</div></section>'


def _campaigns(report: dict, campaigns: list[dict], colors: dict) -> str:
    if not campaigns:
        return '<section id="campaigns"><h2>Campaigns</h2><p class="muted">No campaign crossed the threshold.</p></section>'
    reasons: dict[str, Counter] = {}
    for a in report.get("accounts") or []:
        if a.get("campaign"):
            reasons.setdefault(a["campaign"], Counter()).update(a.get("reasons") or [])
    timeline = report.get("timeline") or []
    items, lone = [], []
    for c in campaigns:
        cid, served = c.get("id"), _served_before(c, timeline)
        top = reasons.get(cid, Counter()).most_common(8)
        reason_html = "".join(
            f'<li>{esc(r)} <span class="muted">({n} accounts)</span></li>' for r, n in top
        )
        members = c.get("accounts") or []
        shown = ", ".join(f"<code>{esc(a)}</code>" for a in members[:40])
        more = f" … and {len(members) - 40} more" if len(members) > 40 else ""
        served_pill = (
            f'<span class="pill warn">{esc(_fmt(served))} exchanges served before detection</span>'
            if served is not None
            else ""
        )
        evidence = c.get("evidence") or {}
        deciding = ", ".join(evidence.get("families") or []) or str(evidence.get("signal", ""))
        (items if len(members) > 1 else lone).append(
            f'<details class="campaign" data-campaign="{esc(cid)}"><summary>'
            f'<span class="swatch" style="background:{colors[cid]}"></span><b>{esc(cid)}</b>'
            f'<span class="pill">{esc(len(members))} accounts</span>'
            f'<span class="pill">decided by {esc(evidence.get("decided_by", "content"))}: '
            f"{esc(deciding)}</span>"
            f'<span class="pill">{esc(_fmt(c.get("requests")))} requests</span>'
            f'<span class="pill">score {esc(_fmt(c.get("score")))}</span>'
            f'<span class="muted">first seen {esc(c.get("first_seen"))} · flagged at {esc(c.get("flagged_at"))}</span>'
            f'{served_pill}<a href="#graph" data-focus-campaign="{esc(cid)}">show in graph</a></summary>'
            f'<div class="body"><div><h3>Evidence</h3>{_evidence(c.get("evidence") or {})}</div>'
            f'<div><h3>Reasons</h3><ul class="reasons">{reason_html or "<li class=muted>none</li>"}</ul>'
            f"<h3>Accounts</h3><p>{shown}{esc(more)}</p></div></div></details>"
        )
    return (
        f'<section id="campaigns"><h2>Campaigns ({len(campaigns)})</h2>'
        f"<h3>Multi-account campaigns ({len(items)})</h3>{''.join(items)}"
        f"<h3>Lone accounts ({len(lone)})</h3>{''.join(lone)}</section>"
    )


def _evidence(evidence: dict, depth: int = 0) -> str:
    rows = []
    for key, value in evidence.items():
        if isinstance(value, dict) and depth < 3:
            inner = _evidence(value, depth + 1) if value else '<span class="muted">—</span>'
        elif isinstance(value, list | tuple):
            inner = esc(", ".join(_fmt(v) for v in value[:50]))
        else:
            inner = esc(_fmt(value))
        rows.append(f"<dt>{esc(key)}</dt><dd>{inner}</dd>")
    return f'<dl class="evidence">{"".join(rows)}</dl>'


def _graph(graph: dict, colors: dict) -> str:
    nodes, edges = _trim_graph(graph.get("nodes") or [], graph.get("edges") or [])
    head = '<section id="graph-section"><h2>Linked accounts</h2>'
    if not nodes:
        return head + '<p class="muted">No links between flagged accounts.</p></section>'
    pos, height = spring_layout(
        [n["id"] for n in nodes],
        [(e["source"], e["target"], float(e.get("weight", 1))) for e in edges],
    )
    camp = {n["id"]: n.get("campaign") for n in nodes}
    vias = sorted({(e.get("via") or ["link"])[0] for e in edges})
    via_color = {v: LINK_COLORS[i % len(LINK_COLORS)] for i, v in enumerate(vias)}
    lines = []
    for e in edges:
        (x1, y1), (x2, y2) = pos[e["source"]], pos[e["target"]]
        via = e.get("via") or ["link"]
        lines.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{via_color[via[0]]}" '
            f'stroke-width="{0.6 + 2 * min(1.0, float(e.get("weight", 1))):.2f}" '
            f'data-campaign="{esc(camp.get(e["source"]))}" data-campaign2="{esc(camp.get(e["target"]))}">'
            f"<title>{esc(e['source'])} — {esc(e['target'])}: {esc(', '.join(map(str, via)))}</title></line>"
        )
    circles = []
    for n in nodes:
        x, y = pos[n["id"]]
        cid = n.get("campaign")
        fill = colors.get(cid, PALETTE[0]) if n.get("flagged") and cid in colors else None
        cls = "node" if n.get("flagged") else "node unflagged"
        style = f' fill="{fill}"' if fill else (' fill="#7f8c8d"' if n.get("flagged") else "")
        r = 3.0 + 4.0 * min(1.0, max(0.0, float(n.get("score") or 0)))
        circles.append(
            f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}"{style} data-campaign="{esc(cid)}">'
            f"<title>{esc(n['id'])} · campaign {esc(cid or '—')} · score {esc(_fmt(n.get('score')))}</title></circle>"
        )
    legend = "".join(
        f'<span><span class="bar" style="background:{c}"></span> {esc(v)}</span>'
        for v, c in via_color.items()
    )
    note = f"{len(nodes)} accounts, {len(edges)} links"
    return (
        f'{head}<p class="muted">{esc(note)}; a dot is an account coloured by campaign (grey: not '
        f"flagged; size: score); a line is a link coloured by the first thing the accounts share "
        f'(hover for all).</p><div class="legend">{legend}</div>'
        f'<div id="graph"><svg viewBox="0 0 1000 {height:.0f}" role="img" aria-label="graph of linked accounts">'
        f'<g class="edges">{"".join(lines)}</g><g class="nodes">{"".join(circles)}</g></svg></div></section>'
    )


def _trim_graph(nodes: list[dict], edges: list[dict]) -> tuple[list[dict], list[dict]]:
    if len(nodes) > MAX_GRAPH_NODES:
        ranked = sorted(nodes, key=lambda n: (not n.get("flagged"), -float(n.get("score") or 0)))
        nodes = ranked[:MAX_GRAPH_NODES]
    keep = {n["id"] for n in nodes}
    return nodes, [e for e in edges if e.get("source") in keep and e.get("target") in keep]


def _timeline(timeline: list[dict], campaigns: list[dict], colors: dict) -> str:
    head = '<section id="timeline"><h2>Timeline (requests per hour)</h2>'
    points = [
        (t.get("campaign"), _parse(t.get("bucket")), int(t.get("requests") or 0)) for t in timeline
    ]
    points = [p for p in points if p[1] is not None]
    if not points:
        return head + '<p class="muted">No campaign activity to plot.</p></section>'
    t0 = min(p[1] for p in points).timestamp()
    t1 = max(max(p[1] for p in points).timestamp(), t0 + 3600)
    peak = max(p[2] for p in points) or 1
    w, h, left, bottom = 1000.0, 260.0, 50.0, 24.0

    def x(ts: float) -> float:
        return left + (ts - t0) / (t1 - t0) * (w - left - 10)

    def y(v: float) -> float:
        return h - bottom - v / peak * (h - bottom - 10)

    series: dict[str, list] = {}
    for cid, ts, v in sorted(points, key=lambda p: p[1]):
        series.setdefault(cid, []).append((ts.timestamp(), v))
    parts = [
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - 10}" y2="{h - bottom}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{y(peak) + 4:.1f}" text-anchor="end">{peak}</text>',
        f'<text x="{left}" y="{h - 6}">{esc(min(p[1] for p in points).isoformat())}</text>',
        f'<text x="{w - 10}" y="{h - 6}" text-anchor="end">{esc(max(p[1] for p in points).isoformat())}</text>',
    ]
    for cid, pts in series.items():
        color = colors.get(cid, "#7f8c8d")
        path = " ".join(f"{x(ts):.1f},{y(v):.1f}" for ts, v in pts)
        parts.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="1.2" points="{path}" '
            f'data-campaign="{esc(cid)}"><title>{esc(cid)}</title></polyline>'
        )
    for c in campaigns:
        at = _parse(c.get("flagged_at"))
        if at is not None and c.get("id") in series:
            xf = min(max(x(at.timestamp()), left), w - 10)
            parts.append(
                f'<line class="flag" x1="{xf:.1f}" y1="10" x2="{xf:.1f}" y2="{h - bottom}" '
                f'stroke="{colors.get(c["id"], "#333")}" stroke-dasharray="4 3">'
                f"<title>{esc(c['id'])} flagged at {esc(c.get('flagged_at'))}</title></line>"
            )
    return (
        f'{head}<p class="muted">Solid: requests per hour per campaign; dashed: when the campaign was flagged.</p>'
        + '<div class="legend">'
        + "".join(
            f'<span><span class="swatch" style="background:{colors.get(c, "#7f8c8d")}"></span> {esc(c)}</span>'
            for c in series
        )
        + "</div>"
        f'<svg viewBox="0 0 {w:.0f} {h:.0f}" width="100%" role="img" aria-label="timeline">{"".join(parts)}</svg></section>'
    )


def _features(features: dict) -> str:
    head = '<section id="features"><h2>Feature distributions (flagged vs not flagged accounts)</h2>'
    if not features:
        return head + '<p class="muted">No feature histograms in this report.</p></section>'
    blocks = []
    for name, hist in features.items():
        flagged = np.asarray(hist.get("flagged") or [], float)
        other = np.asarray(hist.get("unflagged") or [], float)
        bins = list(hist.get("bins") or [])
        k = max(len(flagged), len(other))
        if k == 0:
            continue
        flagged, other = (
            np.resize(flagged, k) if len(flagged) else np.zeros(k),
            np.resize(other, k) if len(other) else np.zeros(k),
        )
        fd, od = flagged / max(flagged.sum(), 1), other / max(other.sum(), 1)
        top = max(fd.max(), od.max(), 1e-9)
        bw = 240.0 / k
        bars = []
        for i in range(k):
            for j, (v, color) in enumerate(((od[i], "#9aa5b8"), (fd[i], "#c0392b"))):
                hgt = v / top * 90
                bars.append(
                    f'<rect x="{10 + i * bw + j * bw / 2:.1f}" y="{100 - hgt:.1f}" width="{bw / 2:.1f}" '
                    f'height="{hgt:.1f}" fill="{color}"><title>{int((other if j == 0 else flagged)[i])} accounts</title></rect>'
                )
        lo, hi = (_fmt(bins[0]), _fmt(bins[-1])) if bins else ("", "")
        blocks.append(
            f'<div class="hist"><h3>{esc(name)}</h3><svg viewBox="0 0 260 120" width="100%" role="img">'
            f'{"".join(bars)}<text x="10" y="114">{esc(lo)}</text><text x="250" y="114" text-anchor="end">{esc(hi)}</text></svg></div>'
        )
    legend = (
        '<div class="legend"><span><span class="swatch" style="background:#c0392b"></span> flagged</span>'
        '<span><span class="swatch" style="background:#9aa5b8"></span> not flagged</span></div>'
    )
    return f'{head}{legend}<div class="hists">{"".join(blocks)}</div></section>'


def _accounts(accounts: list[dict]) -> str:
    flagged = [a for a in accounts if a.get("flagged")][:MAX_ACCOUNT_ROWS]
    rows = "".join(
        f"<tr><td><code>{esc(a.get('account_id'))}</code></td><td>{esc(a.get('campaign') or '—')}</td>"
        f'<td class="num">{esc(_fmt(a.get("score")))}</td><td>{"<br>".join(esc(r) for r in a.get("reasons") or [])}</td></tr>'
        for a in flagged
    )
    n = sum(1 for a in accounts if a.get("flagged"))
    note = f" (first {MAX_ACCOUNT_ROWS} shown)" if n > MAX_ACCOUNT_ROWS else ""
    return (
        f'<section id="accounts-section"><h2>Flagged accounts ({n}{esc(note)})</h2>'
        '<input type="search" id="account-filter" placeholder="filter accounts, campaigns, reasons">'
        '<div class="scroll"><table id="accounts"><thead><tr><th>account</th><th>campaign</th>'
        f'<th class="num">score</th><th>reasons</th></tr></thead><tbody>{rows}</tbody></table></div></section>'
    )


def _fmt(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return f"{float(value):,.3g}" if abs(value) < 1000 else f"{float(value):,.0f}"
    if isinstance(value, dict):
        return json.dumps(value, default=str)[:200]
    return str(value)


def _parse(value) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
