"""Counts and intervals over the cited records: "two doses of the HPV vaccine" must cite two
Immunizations, "given six weeks apart" must match the gap between the cited dates."""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from chartdraft_guardrails.facts import EvidenceFacts, StatementFacts

_DATA = Path(__file__).with_name("data")


@lru_cache(maxsize=1)
def _table() -> tuple[
    dict[str, int], dict[str, tuple[float, float]], re.Pattern[str], re.Pattern[str]
]:
    path = _DATA / "number_words.yaml"
    raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    nums = {str(k).lower(): int(v) for k, v in (raw.get("numbers") or {}).items()}
    ivals = {
        str(k): (float(v["days"]), float(v["tolerance"]))
        for k, v in (raw.get("intervals") or {}).items()
    }
    if not nums or not ivals:
        raise ValueError(f"{path}: expected 'numbers' and 'intervals'")
    n = r"(\d+|" + "|".join(sorted(map(re.escape, nums), key=len, reverse=True)) + r")"
    doses = re.compile(
        r"\b" + n + r"\s+(?:[\w-]+\s+){0,4}?(?:doses|shots|injections|vaccinations)\b"
    )
    apart = re.compile(r"\b" + n + r"\s+(" + "|".join(ivals) + r")s?\s+apart\b")
    return nums, ivals, doses, apart


def _number(word: str) -> int | None:
    nums = _table()[0]
    return int(word) if word.isdigit() else nums.get(word)


def _day(e: EvidenceFacts) -> date | None:
    d = e.evidence.data
    for k in ("occurrence", "performed", "effective", "authored_on", "onset"):
        v = d.get(k)
        if isinstance(v, str):
            try:
                return date.fromisoformat(v[:10])
            except ValueError:
                continue
    try:
        return date.fromisoformat(str(e.evidence.date)[:10]) if e.evidence.date else None
    except ValueError:
        return None


def count_problems(facts: StatementFacts, cited: list[EvidenceFacts]) -> list[str]:
    _, ivals, doses, apart = _table()
    problems: list[str] = []
    shots = [c for c in cited if c.evidence.resource_type == "Immunization"]
    if shots:
        for m in doses.finditer(facts.canon):
            n = _number(m.group(1))
            if n is not None and n > 1 and n != len(shots):
                problems.append(
                    f"says {m.group(0)!r} but cites {len(shots)} Immunization record"
                    + ("s" if len(shots) != 1 else "")
                )
    days = sorted({d for c in cited if (d := _day(c)) is not None})
    for m in apart.finditer(facts.canon):
        n = _number(m.group(1))
        if n is None or len(days) != 2:
            continue
        per, tol = ivals[m.group(2)]
        gap = (days[1] - days[0]).days
        if abs(gap / per - n) > tol:
            problems.append(
                f"says {m.group(0)!r} but the cited dates {days[0]} and {days[1]} are "
                f"{gap} days apart"
            )
    return problems
