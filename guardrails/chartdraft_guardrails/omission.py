"""Omission check: the facts a document must include are in the draft.

The plan marks required evidence (every active medication and allergy for discharge
instructions; evidence for each payer criterion in a prior-auth letter). Each required id must be
cited by some statement, or its drug / substance named in the draft's text.
"""

from __future__ import annotations

import re

from chartdraft_guardrails import lexicon
from chartdraft_guardrails.facts import drug_names
from chartdraft_guardrails.statement import Statement
from retrieval.evidence import Evidence


def check_omissions(
    sections: list[tuple[str, list[Statement]]],
    *,
    required_ids: set[str] | frozenset[str],
    chart_by_id: dict[str, Evidence],
) -> list[dict[str, str]]:
    cited = {c for _, sts in sections for s in sts for c in s.citations}
    text = lexicon.canonical(" ".join(s.text for _, sts in sections for s in sts))
    missing: list[dict[str, str]] = []
    for rid in sorted(required_ids):
        if rid in cited or any(c.split("#", 1)[0] == rid for c in cited):
            continue
        e = chart_by_id.get(rid)
        if e is not None:
            names = drug_names(str(e.data.get("drug") or e.data.get("substance") or e.title))
            if names and any(re.search(r"\b" + re.escape(n) + r"\b", text) for n in names):
                continue
        title = e.title if e is not None else rid
        missing.append(
            {
                "evidence_id": rid,
                "title": title,
                "reason": f"required {e.resource_type if e else 'evidence'} "
                f"{title!r} ({rid}) is not in the draft",
            }
        )
    return missing


def check_sections(titles: list[str], required: list[str]) -> list[str]:
    have = {t.strip().lower() for t in titles}
    return [r for r in required if r.strip().lower() not in have]
