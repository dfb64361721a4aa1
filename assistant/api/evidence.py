"""/v1/evidence/{id}: one cited source and its raw FHIR resource, for the citation panel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from assistant.api.deps import CurrentUser, Svc
from assistant.api.problems import PROBLEM_SCHEMA
from assistant.auth import check_patient, require
from retrieval.errors import NotFound

router = APIRouter(prefix="/v1/evidence", tags=["evidence"],
                   responses={k: PROBLEM_SCHEMA for k in (401, 403, 404)})


@router.get("/{evidence_id:path}", summary="Evidence by id (Condition/1, DocumentReference/9#2, "
            "kb:...) with its raw FHIR resource")
def get_evidence(evidence_id: str, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "chart.read")
    missing = NotFound(f"no evidence {evidence_id!r}", where="evidence id",
                       fix="use a citation id from a draft")
    if evidence_id.startswith("kb:"):
        kb = next((e for e in svc.rt.knowledge if e.id == evidence_id), None)
        if kb is None:
            raise missing
        return {"evidence": kb.model_dump(mode="json"), "resource": None}
    ev = svc.rt.store.get_evidence(evidence_id)
    if ev is None:
        raise missing
    try:
        check_patient(p, ev.patient_id)
    except NotFound:
        raise missing from None  # same answer as for an id that does not exist
    svc.audit(p, "evidence.read", patient_id=ev.patient_id, target=ev.id, evidence_ids=[ev.id])
    return {"evidence": ev.model_dump(mode="json"),
            "resource": svc.rt.store.get_resource(ev.resource_id)}
