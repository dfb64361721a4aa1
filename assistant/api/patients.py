"""/v1/patients: the patients a caller may see, and the EHR's one-call summary."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from assistant.api.deps import CurrentUser, Services, Svc
from assistant.api.drafts import DraftCreate, links, snapshot_response, submit
from assistant.api.problems import PROBLEM_SCHEMA
from assistant.auth import Principal, check_patient, require
from assistant.store import DraftRef
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


def _summary_now(svc: Services, p: Principal, patient_id: str) -> str | Response:
    """The whole fast path in one worker-thread hop: the finished summary of the current chart
    as a response (audited), else the id of the draft still to wait for (submitted if the chart
    changed)."""
    if not svc.has_patient(patient_id):
        raise NotFound(f"no patient {patient_id!r}", where="patient id",
                       fix="ingest the chart first (POST /v1/charts)")
    version = svc.rt.store.chart_version(patient_id)
    ref = svc.store.latest_draft_ref(patient_id, "summary")
    if ref is None or ref.chart_version != version:
        return submit(svc, p, DraftCreate(patient_id=patient_id, doc_type="summary"),
                      purpose="summary (chart changed)").id  # saved as pending
    return ref.id if ref.status in ("pending", "generating") else _answer(svc, p, ref)


def _answer(svc: Services, p: Principal, ref: DraftRef) -> Response:
    if ref.status in ("pending", "generating"):
        return JSONResponse({"id": ref.id, "status": ref.status,
                             "links": links(svc, ref.id)}, status_code=202)
    snap = svc.snapshots.get(svc.store, ref)
    svc.audit(p, "draft.read", patient_id=snap.patient_id, target=snap.id, purpose="summary")
    return snapshot_response(svc, snap)


@router.get("/{patient_id}/summary", summary="The latest current summary; regenerated when the "
            "chart changed. `wait` bounds synchronous generation, else 202 and a draft id.",
            response_model=dict[str, Any],
            responses={202: {"description": "Still generating: the draft id and links"}})
async def summary(patient_id: str, svc: Svc, p: CurrentUser,
                  wait: float = Query(default=0, ge=0, le=60,
                                      description="Seconds to wait for generation")) -> Response:
    require(p, "chart.read")
    check_patient(p, patient_id)
    got = await asyncio.to_thread(_summary_now, svc, p, patient_id)
    if isinstance(got, Response):
        return got
    if wait > 0:
        await svc.jobs.wait(got, wait)
    ref = await asyncio.to_thread(svc.store.draft_ref, got)
    return await asyncio.to_thread(_answer, svc, p, ref)
