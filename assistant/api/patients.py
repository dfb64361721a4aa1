"""/v1/patients: the patients a caller may see, and the EHR's one-call summary."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from assistant.api.deps import CurrentUser, Svc
from assistant.api.drafts import DraftCreate, draft_view, links, submit
from assistant.api.problems import PROBLEM_SCHEMA
from assistant.auth import check_patient, require
from retrieval.errors import NotFound

router = APIRouter(prefix="/v1/patients", tags=["patients"],
                   responses={k: PROBLEM_SCHEMA for k in (401, 403, 404, 422)})


def _row(r: Any) -> dict[str, Any]:
    return {k: getattr(r, k, None) for k in ("id", "name", "birth_date", "gender", "evidence")}


@router.get("", summary="Patients in the chart store (a patient-scoped token sees one)")
def list_patients(svc: Svc, p: CurrentUser) -> list[dict[str, Any]]:
    require(p, "chart.read")
    rows = [r for r in svc.rt.store.patients() if p.patient is None or r.id == p.patient]
    svc.audit(p, "chart.list", purpose=f"{len(rows)} patients")
    return [_row(r) for r in rows]


@router.get("/{patient_id}", summary="One patient")
def get_patient(patient_id: str, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "chart.read")
    check_patient(p, patient_id)
    row = svc.rt.store.patient(patient_id)
    if row is None:
        raise NotFound(f"no patient {patient_id!r}", where="patient id",
                       fix="use an id from GET /v1/patients")
    svc.audit(p, "chart.read", patient_id=patient_id)
    return _row(row) | {"chart_version": svc.rt.store.chart_version(patient_id)}


@router.get("/{patient_id}/summary", summary="The latest current summary; regenerated when the "
            "chart changed. `wait` bounds synchronous generation, else 202 and a draft id.",
            responses={202: {"description": "Still generating: the draft id and links"}})
async def summary(patient_id: str, svc: Svc, p: CurrentUser,
                  wait: float = Query(default=0, ge=0, le=60,
                                      description="Seconds to wait for generation")) -> Any:
    import asyncio

    require(p, "chart.read")
    check_patient(p, patient_id)
    if await asyncio.to_thread(svc.rt.store.patient, patient_id) is None:
        raise NotFound(f"no patient {patient_id!r}", where="patient id",
                       fix="ingest the chart first (POST /v1/charts)")
    version = await asyncio.to_thread(svc.rt.store.chart_version, patient_id)
    latest = await asyncio.to_thread(svc.store.latest_draft, patient_id, "summary")
    draft = None
    if latest is not None and latest[1] == version:
        draft = latest[0]
    if draft is None:
        draft = await asyncio.to_thread(submit, svc, p, DraftCreate(
            patient_id=patient_id, doc_type="summary"), purpose="summary (chart changed)")
    if draft.status in ("pending", "generating"):
        if wait > 0:
            await svc.jobs.wait(draft.id, wait)
        draft = await asyncio.to_thread(svc.store.get_draft, draft.id)
    if draft.status in ("pending", "generating"):
        return JSONResponse({"id": draft.id, "status": draft.status,
                             "links": links(svc, draft.id)}, status_code=202)
    await asyncio.to_thread(svc.audit, p, "draft.read", patient_id=patient_id, target=draft.id,
                            purpose="summary")
    return draft_view(svc, draft)
