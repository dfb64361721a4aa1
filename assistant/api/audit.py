"""/v1/audit: the audit log and its verification, for admins."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from assistant.api.deps import CurrentUser, Svc
from assistant.api.problems import PROBLEM_SCHEMA
from assistant.audit import verify_store
from assistant.auth import require

router = APIRouter(prefix="/v1/audit", tags=["audit"],
                   responses={k: PROBLEM_SCHEMA for k in (401, 403)})


@router.get("", summary="Audit records (admin), oldest first")
def list_audit(svc: Svc, p: CurrentUser, patient_id: str | None = None,
               after: int = Query(default=0, ge=0, le=2**31),
               limit: int = Query(default=100, ge=1, le=1000)) -> list[dict[str, Any]]:
    require(p, "audit.read")
    rows = svc.store.audit_records(patient_id=patient_id, after=after, limit=limit)
    svc.audit(p, "audit.read", patient_id=patient_id, purpose=f"{len(rows)} records")
    return [r.model_dump() for r in rows]


@router.get("/verify", summary="Verify the hash chain; names any edited, removed or reordered "
            "record")
def verify(svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "audit.read")
    return verify_store(svc.store).as_json()
