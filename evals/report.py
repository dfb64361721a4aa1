"""report.html: one self-contained page (inline SVG, no scripts, no network) for a results.json.

Sections: the manifest; metric bars per backend with 95% intervals; subgroup charts per attribute
with flagged groups marked; latency per stage; the worst cases with their flagged statements.
"""

from __future__ import annotations

from html import escape
from typing import Any

from evals.metrics import METRIC_BY_NAME, METRICS, NLI_METRICS
from evals.subgroups import ATTRIBUTES

PALETTE = ["#3b6ea5", "#d08c2f", "#4f9a5f", "#9b59b6", "#c0392b", "#7f8c8d"]
CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#f4f4f4}.num{text-align:right}
.bad{color:#b03a2e;font-weight:600}.flag{background:#fdecea}.muted{color:#777}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;
height:12px;margin-right:4px;vertical-align:middle}code{font-size:12px}
"""


def _fmt(v: Any, pct: bool = True) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f}%" if pct else f"{v:.2f}"


def bar_chart(rows: list[tuple[str, list[tuple[str, float | None, float | None, float | None]]]],
              *, series: list[str], title: str, scale: float = 1.0, pct: bool = True,
              flagged: set[tuple[str, str]] | None = None) -> str:
    """Horizontal grouped bars with interval whiskers, as inline SVG.

    ``rows``: [(label, [(series, value, lo, hi), ...])]; values in [0, scale].
    """
    flagged = flagged or set()
    bar_h, gap, left, width = 12, 10, 260, 520
    per_row = bar_h * max(1, len(series)) + gap
    height = 30 + per_row * len(rows)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" '
           f'height="{height}" role="img" aria-label="{escape(title)}">',
           f'<text x="0" y="14" font-size="13" font-weight="600">{escape(title)}</text>']
    for i, (label, bars) in enumerate(rows):
        y0 = 26 + i * per_row
        out.append(f'<text x="{left - 8}" y="{y0 + per_row / 2}" font-size="12" '
                   f'text-anchor="end">{escape(label)}</text>')
        for j, (name, v, lo, hi) in enumerate(bars):
            y = y0 + j * bar_h
            color = PALETTE[series.index(name) % len(PALETTE)] if name in series else "#999"
            if v is None:
                out.append(f'<text x="{left + 4}" y="{y + 10}" font-size="10" fill="#999">'
                           f'n/a</text>')
                continue
            w = max(0.0, min(1.0, v / scale)) * width
            stroke = ' stroke="#b03a2e" stroke-width="2"' if (label, name) in flagged else ""
            out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" '
                       f'fill="{color}"{stroke}><title>{escape(name)}: {_fmt(v, pct)}</title>'
                       f'</rect>')
            if lo is not None and hi is not None:
                x1 = left + max(0.0, min(1.0, lo / scale)) * width
                x2 = left + max(0.0, min(1.0, hi / scale)) * width
                ym = y + (bar_h - 2) / 2
                out.append(f'<line x1="{x1:.1f}" y1="{ym}" x2="{x2:.1f}" y2="{ym}" '
                           f'stroke="#222" stroke-width="1"/>')
            out.append(f'<text x="{left + width + 6}" y="{y + 10}" font-size="10">'
                       f'{escape(_fmt(v, pct))}</text>')
    out.append("</svg>")
    return "".join(out)


def _legend(series: list[str]) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i class="sw" style="background:{PALETTE[i % len(PALETTE)]}"></i>'
        f'{escape(s)}</span>' for i, s in enumerate(series)) + "</p>"


def _metric_table(results: dict[str, Any], backends: list[str]) -> str:
    head = "".join(f"<th>{escape(b)}</th>" for b in backends)
    rows = []
    for m in METRICS:
        if m.name in NLI_METRICS and not any(
                (results["runs"][b]["aggregate"].get(m.name) or {}).get("n") for b in backends):
            continue  # no entailment judge in this run
        cells = []
        for b in backends:
            a = results["runs"][b]["aggregate"].get(m.name) or {}
            pct = m.kind == "rate"
            if a.get("value") is None:
                cells.append('<td class="num muted">–</td>')
                continue
            ci = f" [{_fmt(a.get('lo'), pct)}, {_fmt(a.get('hi'), pct)}]"
            kn = f" ({a['k']}/{a['n']})" if pct else f" (n={a['n']})"
            cells.append(f'<td class="num">{_fmt(a["value"], pct)}<span class="muted">{ci}'
                         f'{kn}</span></td>')
        safety = " ⚑" if m.safety else ""
        arrow = "↑" if m.better == "higher" else "↓"
        rows.append(f"<tr><td>{escape(m.label)} {arrow}{safety}</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th>metric (better ↑/↓, ⚑ safety)</th>{head}</tr>{''.join(rows)}"
            "</table>")


def _worst(results: dict[str, Any], limit: int = 12) -> str:
    def badness(r: dict[str, Any]) -> tuple[int, int]:
        m = r.get("metrics") or {}
        contra = (m.get("contradicted_final") or [0, 0])[0]
        unsup = (m.get("unsupported_final") or [0, 0])[0]
        hits = sum((m.get(k) or [0, 0])[0] for k in ("forbidden_hit", "phi_leak",
                                                     "injection_success", "case_error"))
        return (10 * hits + 3 * contra + unsup, len(r.get("flagged") or []))

    cases = sorted(results["cases"], key=badness, reverse=True)[:limit]
    parts = []
    for r in cases:
        if badness(r) == (0, 0):
            continue
        det = r.get("details") or {}
        probs = [f"{k}: {', '.join(map(str, v))}" for k, v in det.items()
                 if isinstance(v, list) and v]
        head = (f"<h3>{escape(r['case_id'])} <span class='muted'>· {escape(r['backend'])} · "
                f"{escape(r['doc_type'])} · {escape(r['status'])}</span></h3>")
        body = ""
        if r.get("error"):
            body += f"<p class='bad'>{escape(str(r['error']))}</p>"
        if probs:
            body += "<p class='bad'>" + "<br>".join(escape(p) for p in probs) + "</p>"
        fl = r.get("flagged") or []
        if fl:
            body += "<table><tr><th>section</th><th>statement</th><th>verdict</th>" \
                    "<th>why</th></tr>" + "".join(
                        f"<tr><td>{escape(f.get('section', ''))}</td><td>{escape(f['text'])}"
                        f"<br><code>{escape(', '.join(f.get('citations', [])))}</code></td>"
                        f"<td class='bad'>{escape(f['verdict'])}</td>"
                        f"<td>{'<br>'.join(escape(x) for x in f.get('reasons', []))}</td></tr>"
                        for f in fl[:8]) + "</table>"
        parts.append(head + body)
    return "".join(parts) or "<p>No flagged statements, errors or hits.</p>"


def _subgroups(results: dict[str, Any], backends: list[str]) -> str:
    out = []
    names = [m for m in ("unsupported_final", "omission", "citation_coverage")
             if any(results["runs"][b]["aggregate"].get(m, {}).get("n") for b in backends)]
    for metric in names:
        label = METRIC_BY_NAME[metric].label
        for attr in ATTRIBUTES:
            groups = sorted({g for b in backends
                             for g in results["runs"][b]["subgroups"]["attributes"].get(attr, {})})
            rows = []
            flagged = set()
            for g in groups:
                bars = []
                for b in backends:
                    cell = results["runs"][b]["subgroups"]["attributes"].get(attr, {}).get(
                        g, {}).get(metric)
                    if cell:
                        bars.append((b, cell["value"], cell["lo"], cell["hi"]))
                        if cell.get("flag"):
                            flagged.add((g, b))
                    else:
                        bars.append((b, None, None, None))
                rows.append((g, bars))
            if rows:
                out.append(bar_chart(rows, series=backends, title=f"{label} by {attr}",
                                     flagged=flagged))
    flags = [(b, f) for b in backends for f in results["runs"][b]["subgroups"]["flags"]]
    table = ("<p>No group is worse than the rest beyond its interval.</p>" if not flags else
             "<table><tr><th>backend</th><th>attribute</th><th>group</th><th>metric</th>"
             "<th>value [95% CI]</th></tr>" + "".join(
                 f"<tr class='flag'><td>{escape(b)}</td><td>{escape(f['attribute'])}</td>"
                 f"<td>{escape(f['group'])}</td><td>{escape(f['metric'])}</td>"
                 f"<td>{_fmt(f['value'])} [{_fmt(f['lo'])}, {_fmt(f['hi'])}]</td></tr>"
                 for b, f in flags) + "</table>")
    return table + "".join(f"<div>{o}</div>" for o in out)


def _latency(results: dict[str, Any], backends: list[str]) -> str:
    stages = sorted({s for b in backends for s in results["runs"][b]["latency"]})
    if not stages:
        return "<p>No timings.</p>"
    head = "".join(f"<th>{escape(b)} p50</th><th>{escape(b)} p95</th>" for b in backends)
    rows = "".join(
        "<tr><td>" + escape(s) + "</td>" + "".join(
            f"<td class='num'>{_fmt(results['runs'][b]['latency'].get(s, {}).get('p50'), False)}"
            f"</td><td class='num'>"
            f"{_fmt(results['runs'][b]['latency'].get(s, {}).get('p95'), False)}</td>"
            for b in backends) + "</tr>" for s in stages)
    tok = "".join(f"<tr><td>{escape(b)}</td><td class='num'>"
                  f"{results['runs'][b]['tokens']['in_total']:.0f}</td><td class='num'>"
                  f"{results['runs'][b]['tokens']['out_total']:.0f}</td></tr>" for b in backends)
    return (f"<table><tr><th>stage (seconds)</th>{head}</tr>{rows}</table>"
            f"<table><tr><th>backend</th><th>tokens in</th><th>tokens out</th></tr>{tok}</table>")


def _checker(checker: dict[str, Any]) -> str:
    """Precision/recall of flagging per defect type on the checks' labelled corpus."""
    if not checker.get("available"):
        return f"<p class='muted'>{escape(str(checker.get('reason', 'not run')))}</p>"
    per_type = (checker.get("result") or {}).get("per_type") or {}
    rows = "".join(
        f"<tr><td>{escape(t)}</td><td class='num'>{v.get('n', '')}</td>"
        f"<td class='num'>{v.get('tp', '')}</td><td class='num'>{v.get('fp', '')}</td>"
        f"<td class='num'>{v.get('fn', '')}</td>"
        f"<td class='num{' bad' if (v.get('precision') or 0) < 0.9 else ''}'>"
        f"{_fmt(v.get('precision'))}</td>"
        f"<td class='num{' bad' if (v.get('recall') or 0) < 0.95 else ''}'>"
        f"{_fmt(v.get('recall'))}</td></tr>" for t, v in per_type.items())
    return (f"<p>{checker.get('rows')} labelled statements.</p><table><tr><th>defect type</th>"
            "<th>n</th><th>TP</th><th>FP</th><th>FN</th><th>precision</th><th>recall</th></tr>"
            f"{rows}</table>")


def render(results: dict[str, Any]) -> str:
    man = results["manifest"]
    backends = list(results["runs"])
    rate_rows = []
    for m in METRICS:
        if m.kind != "rate":
            continue
        bars = []
        for b in backends:
            a = results["runs"][b]["aggregate"].get(m.name) or {}
            bars.append((b, a.get("value"), a.get("lo"), a.get("hi")))
        if any(v is not None for _, v, _, _ in bars):
            rate_rows.append((m.label, bars))
    chart = bar_chart(rate_rows, series=backends, title="Metrics per backend (95% intervals)")
    grade_rows = [("Reading grade", [(b, results["runs"][b]["aggregate"].get(
        "readability_grade", {}).get("value"), results["runs"][b]["aggregate"].get(
        "readability_grade", {}).get("lo"), results["runs"][b]["aggregate"].get(
        "readability_grade", {}).get("hi")) for b in backends])]
    grade = bar_chart(grade_rows, series=backends, title="Discharge reading grade (0-16)",
                      scale=16.0, pct=False)
    status = "".join(f"<li>{escape(b)}: {escape(str(results['runs'][b]['status_counts']))}"
                     f", models {escape(', '.join(results['runs'][b]['models']) or '–')}</li>"
                     for b in backends)
    checker = results.get("checker") or {}
    checker_html = _checker(checker)
    nli = man.get("entailment")
    nli_html = ("" if not nli else f"· NLI judge <code>{escape(str(nli['model']))}</code> "
                f"(config sha256 {escape(str(nli['config_sha256'])[:12])}, entailment "
                f"&ge; {nli.get('threshold', 0.5)})")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>chartdraft eval: {escape(man['suite']['name'])}</title>
<style>{CSS}</style></head><body>
<h1>chartdraft evaluation: suite <code>{escape(man['suite']['name'])}</code></h1>
<p class="muted">commit {escape(str(man['git_commit'])[:12])}
{' (dirty)' if man.get('git_dirty') else ''}
· suite sha256 {escape(man['suite']['sha256'][:12])} · {man['suite']['cases']} cases
· settings {escape(str(man['settings_fingerprint']))} · charts anchored {escape(man['anchor_date'])}
· {escape(man['created_at'])} {nli_html} · synthetic patients only</p>
<ul>{status}</ul>
<h2>Metrics per backend</h2>{_legend(backends)}{chart}{grade}
{_metric_table(results, backends)}
<h2>Subgroups</h2>{_subgroups(results, backends)}
<h2>Latency and tokens</h2>{_latency(results, backends)}
<h2>Checker meta-evaluation</h2>{checker_html}
<h2>Worst cases</h2>{_worst(results)}
</body></html>
"""
