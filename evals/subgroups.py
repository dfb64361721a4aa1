"""Every rate metric broken down by age band, sex, race, ethnicity and payer.

A group is *flagged* when it is worse than the rest of the cases beyond both intervals: for a
lower-is-better metric, the group's Wilson lower bound is above the rest's upper bound (and the
mirror image for higher-is-better). Non-overlapping 95% intervals are a conservative test, so a
flag is worth a look; no flag does not prove parity on a small suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evals.metrics import METRICS, wilson

ATTRIBUTES = ("age_band", "sex", "race", "ethnicity", "payer")


def _pool(rows: Sequence[dict[str, Any]], name: str) -> tuple[int, int]:
    k = n = 0
    for r in rows:
        v = (r.get("metrics") or {}).get(name)
        if isinstance(v, list) and len(v) == 2:
            k += int(v[0])
            n += int(v[1])
    return k, n


def worse_beyond_interval(group: tuple[int, int], rest: tuple[int, int], better: str) -> bool:
    """Is the group worse than the rest with non-overlapping Wilson intervals?"""
    (gk, gn), (rk, rn) = group, rest
    if gn == 0 or rn == 0:
        return False
    glo, ghi = wilson(gk, gn)
    rlo, rhi = wilson(rk, rn)
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
                k, n = _pool(members, m.name)
                if n == 0:
                    continue
                lo, hi = wilson(k, n)
                flag = worse_beyond_interval((k, n), _pool(others, m.name), m.better)
                row[m.name] = {"value": k / n, "lo": lo, "hi": hi, "k": k, "n": n, "flag": flag}
                if flag:
                    out["flags"].append({"attribute": attr, "group": g, "metric": m.name,
                                         "value": k / n, "lo": lo, "hi": hi})
            table[g] = row
        out["attributes"][attr] = table
    return out
