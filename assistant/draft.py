"""Draft and Section: what the pipeline produces and a clinician signs (DESIGN.md vocabulary)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from chartdraft_guardrails.statement import CheckResult, Statement, Verdict, worst
from pydantic import BaseModel, Field, computed_field

from retrieval.evidence import Evidence

DocType = Literal["summary", "discharge-instructions", "prior-auth"]
DOC_TYPES: tuple[DocType, ...] = ("summary", "discharge-instructions", "prior-auth")
DraftStatus = Literal["pending", "generating", "draft", "signed", "rejected", "failed"]


class DraftStatement(Statement):
    """A statement as it sits in a draft: its checks, and what the clinician did about them."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    results: list[CheckResult] = Field(default_factory=list)
    origin: Literal["model", "composed", "extractive", "clinician"] = "model"
    acknowledged: bool = False
    acknowledgement_note: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> Verdict:
        return worst(self.results)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def flagged(self) -> bool:
        return self.verdict != "supported"

    @property
    def open_flag(self) -> bool:
        return self.flagged and not self.acknowledged


class Section(BaseModel):
    title: str
    statements: list[DraftStatement] = Field(default_factory=list)


class Draft(BaseModel):
    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    patient_id: str
    doc_type: DocType
    encounter_id: str | None = None
    order_id: str | None = None
    status: DraftStatus = "pending"
    sections: list[Section] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list, description="What the model was shown.")
    checks: dict[str, Any] = Field(default_factory=dict, description="Draft-level check report.")
    backend: str = ""
    model: str = ""
    mode: str = ""
    fallback_reason: str | None = Field(
        default=None, description="Set when the extractive fallback replaced the model."
    )
    prompt_id: str = ""
    prompt_version: str = ""
    prompt_hash: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage.")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    extras: dict[str, Any] = Field(default_factory=dict, description="e.g. QuestionnaireResponse.")

    def statements(self) -> list[DraftStatement]:
        return [s for sec in self.sections for s in sec.statements]

    def open_flags(self) -> list[DraftStatement]:
        return [s for s in self.statements() if s.open_flag]
