"""Every rate metric broken down by age band, sex, race, ethnicity and payer.

A group is *flagged* when it is worse than the rest of the cases beyond both intervals: for a
lower-is-better metric, the group's lower bound is above the rest's upper bound (and the mirror
image for higher-is-better). Intervals are ``metrics.pooled_ci``: the wider of Wilson and a
bootstrap over cases, so one looping draft cannot flag a whole group. Non-overlapping 95%
intervals are a conservative test, so a flag is worth a look; no flag does not prove parity on a
small suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evals.metrics import METRICS, pooled_ci

ATTRIBUTES = ("age_band", "sex", "race", "ethnicity", "payer")


def _pairs(rows: Sequence[dict[str, Any]], name: str) -> list[tuple[int, int]]:
    """Each case's ``[k, n]`` for one metric (cases that did not measure it left out)."""
    out = []
    for r in rows:
        v = (r.get("metrics") or {}).get(name)
        if isinstance(v, list) and len(v) == 2:
            out.append((int(v[0]), int(v[1])))
    return out


def worse_beyond_interval(group: Sequence[tuple[int, int]], rest: Sequence[tuple[int, int]],
                          better: str) -> bool:
    """Is the group worse than the rest, with non-overlapping intervals? (per-case pairs)"""
    if sum(n for _, n in group) == 0 or sum(n for _, n in rest) == 0:
        return False
    glo, ghi = pooled_ci(group)
    rlo, rhi = pooled_ci(rest)
    return glo > rhi if better == "lower" else ghi < rlo


def breakdown(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """{attribute: {group: {metric: {value, lo, hi, k, n, flag}}}} plus a flat list of flags."""
    scored = [r for r in records if r.get("status") in ("ok", "error", "expected_error")]
    out: dict[str, Any] = {"attributes": {}, "flags": []}
    for attr in ATTRIBUTES:
        groups = sorted({str((r.get("groups") or {}).get(attr, "unknown")) for r in scored})
        table: dict[str, Any] = {}
        for g in groups:
            members = [r for r in scored if str((r.get("groups") or {}).get(attr)) == g]
            others = [r for r in scored if str((r.get("groups") or {}).get(attr)) != g]
            row: dict[str, Any] = {"cases": len(members)}
            for m in METRICS:
                if m.kind != "rate":
                    continue
                pairs = _pairs(members, m.name)
                k, n = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
                if n == 0:
                    continue
                lo, hi = pooled_ci(pairs)
                flag = worse_beyond_interval(pairs, _pairs(others, m.name), m.better)
                row[m.name] = {"value": k / n, "lo": lo, "hi": hi, "k": k, "n": n, "flag": flag}
                if flag:
                    out["flags"].append({"attribute": attr, "group": g, "metric": m.name,
                                         "value": k / n, "lo": lo, "hi": hi})
            table[g] = row
        out["attributes"][attr] = table
    return out
