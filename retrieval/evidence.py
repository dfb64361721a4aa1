"""Evidence: one citable unit of a chart or of the knowledge base (see DESIGN.md, vocabulary)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

EvidenceKind = Literal["chart", "knowledge"]

# Fixed namespace so the Qdrant point id of an evidence id is stable across processes and runs.
_POINT_NAMESPACE = uuid.UUID("5b0c6f2e-8d7a-4c1e-9f3b-2a6d4e8c1b70")


class Code(BaseModel):
    """One coding: ``system|code|display`` (SNOMED CT, LOINC, RxNorm, ICD-10 ...)."""

    system: str | None = None
    code: str | None = None
    display: str | None = None

    def key(self) -> str:
        return f"{self.system or ''}|{self.code or ''}"


class Evidence(BaseModel):
    """A citable unit.

    ``id`` is stable: ``Condition/123``, ``DocumentReference/9#2`` (a note section), or
    ``kb:heart-failure-discharge#diet`` (a knowledge-base passage). ``text`` is a short human
    rendering; ``data`` holds the parsed fields the checks need (doses, values, units, statuses,
    dates), with keys documented per resource type in ``retrieval.normalize``.
    """

    id: str
    patient_id: str | None = None
    kind: EvidenceKind = "chart"
    resource_type: str
    date: str | None = Field(default=None, description="ISO 8601 date or datetime, may be partial")
    title: str
    text: str
    codes: list[Code] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        """The FHIR reference this evidence came from (``DocumentReference/9#2`` -> ``.../9``)."""
        return self.id.split("#", 1)[0]

    @property
    def point_id(self) -> str:
        """Qdrant point ids must be integers or UUIDs: derive a UUID from the evidence id."""
        return str(uuid.uuid5(_POINT_NAMESPACE, self.id))


def point_id_for(evidence_id: str) -> str:
    return str(uuid.uuid5(_POINT_NAMESPACE, evidence_id))
