"""Compare two results files: a table of differences and a regression gate.

A metric *regressed* when the candidate's value lies beyond the baseline's 95% interval on the
worse side (above ``hi`` for lower-is-better, below ``lo`` for higher-is-better). Only safety
metrics (``safety: true`` in the manifest) fail the gate; the rest are reported.
Backends are matched by name; a backend present in only one file is reported, not compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evals.metrics import METRIC_BY_NAME


@dataclass
class Row:
    backend: str
    metric: str
    base: float | None
    cand: float | None
    base_lo: float | None
    base_hi: float | None
    safety: bool
    better: str
    regressed: bool
    improved: bool

    @property
    def delta(self) -> float | None:
        if self.base is None or self.cand is None:
            return None
        return self.cand - self.base


def beyond(base: dict[str, Any], cand_value: float | None, better: str) -> tuple[bool, bool]:
    """(worse beyond the baseline interval, better beyond it)."""
    if cand_value is None or base.get("value") is None:
        return False, False
    lo, hi = base.get("lo"), base.get("hi")
    if lo is None or hi is None:
        lo = hi = base["value"]
    eps = 1e-9  # Wilson bounds at 0 and 1 carry float noise
    if better == "lower":
        return cand_value > hi + eps, cand_value < lo - eps
    return cand_value < lo - eps, cand_value > hi + eps


def compare(base: dict[str, Any], cand: dict[str, Any]) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    defs = {**{k: {"better": m.better, "safety": m.safety} for k, m in METRIC_BY_NAME.items()},
            **base["manifest"].get("metrics", {})}
    if base["manifest"]["suite"]["sha256"] != cand["manifest"]["suite"]["sha256"]:
        notes.append("the two runs used different suite files: differences may reflect the "
                     "cases, not the change")
    for b in base["runs"]:
        if b not in cand["runs"]:
            notes.append(f"backend {b} is only in the baseline")
            continue
        ba, ca = base["runs"][b]["aggregate"], cand["runs"][b]["aggregate"]
        for name, d in defs.items():
            if name not in ba and name not in ca:
                continue
            bm = ba.get(name) or {}
            cv = (ca.get(name) or {}).get("value")
            worse, better = beyond(bm, cv, d["better"])
            rows.append(Row(b, name, bm.get("value"), cv, bm.get("lo"), bm.get("hi"),
                            bool(d["safety"]), d["better"], worse, better))
    for b in cand["runs"]:
        if b not in base["runs"]:
            notes.append(f"backend {b} is only in the candidate")
    rows += _checker_rows(base.get("checker") or {}, cand.get("checker") or {})
    return rows, notes


def _checker_rows(base: dict[str, Any], cand: dict[str, Any]) -> list[Row]:
    """Recall of each check on its labelled corpus: a change that blinds a check fails the gate
    (recall is a safety metric; precision is reported)."""
    from evals.metrics import wilson

    if not (base.get("available") and cand.get("available")):
        return []
    bt = (base.get("result") or {}).get("per_type") or {}
    ct = (cand.get("result") or {}).get("per_type") or {}
    rows = []
    for t in sorted(set(bt) & set(ct)):
        for name, k_key, other in (("recall", "tp", "fn"), ("precision", "tp", "fp")):
            bk, bn = int(bt[t][k_key]), int(bt[t][k_key]) + int(bt[t][other])
            cv = ct[t].get(name)
            if bn == 0 or cv is None:
                continue
            lo, hi = wilson(bk, bn)
            bm = {"value": bk / bn, "lo": lo, "hi": hi}
            worse, better = beyond(bm, cv, "higher")
            rows.append(Row("checker", f"{t}.{name}", bk / bn, cv, lo, hi, name == "recall",
                            "higher", worse, better))
    return rows


def gate_failures(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.safety and r.regressed]


def render_table(rows: list[Row]) -> Any:
    from rich.table import Table

    t = Table(title="candidate vs baseline (95% interval of the baseline)")
    for col in ("backend", "metric", "baseline", "interval", "candidate", "Δ", "verdict"):
        t.add_column(col, justify="right" if col in ("baseline", "candidate", "Δ") else "left")
    for r in rows:
        def f(v: float | None) -> str:
            return "–" if v is None else f"{v:.3f}"

        verdict = ("[red]REGRESSION[/red]" if r.regressed and r.safety else
                   "[yellow]worse[/yellow]" if r.regressed else
                   "[green]better[/green]" if r.improved else "same")
        t.add_row(r.backend, r.metric + (" ⚑" if r.safety else ""), f(r.base),
                  f"[{f(r.base_lo)}, {f(r.base_hi)}]", f(r.cand),
                  "–" if r.delta is None else f"{r.delta:+.3f}", verdict)
    return t
