"""Statement and verdict vocabulary shared by every check (see DESIGN.md, Verification)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Verdict = Literal[
    "supported", "not_verified", "unsupported", "contradicted", "uncited", "invalid_citation"
]

# Worst first: a statement's overall verdict is the worst of its checks' verdicts.
VERDICT_SEVERITY: dict[str, int] = {
    "contradicted": 4,
    "invalid_citation": 3,
    "unsupported": 2,
    "uncited": 1,
    # Clinical content the checks could not tie to what it cites (an unknown term, an
    # interpretation with no known range): flagged, but not evidence of an error.
    "not_verified": 1,
    "supported": 0,
}


class Statement(BaseModel):
    """One sentence of a draft and the evidence ids it cites."""

    text: str
    citations: list[str] = Field(default_factory=list)


class CheckResult(BaseModel):
    """What one check said about one statement, with a reason a clinician can read."""

    check: str
    verdict: Verdict
    reason: str = ""
    evidence_ids: list[str] = Field(default_factory=list)


def worst(results: list[CheckResult]) -> Verdict:
    if not results:
        return "supported"
    return max(results, key=lambda r: VERDICT_SEVERITY[r.verdict]).verdict
