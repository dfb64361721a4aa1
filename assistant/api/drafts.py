"""/v1/drafts: ask for a draft, read it, stream it, edit, acknowledge, sign, reject, rate it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse

from assistant.api.deps import CurrentUser, Svc
from assistant.api.problems import PROBLEM_SCHEMA, ProblemError
from assistant.api.snapshots import DraftSnapshot
from assistant.auth import Principal, check_patient, require
from assistant.draft import Draft, DraftStatement
from assistant.jobs import TERMINAL, draft_output_hash, statement_event
from assistant.orders import ORDER_TYPES, find_order
from assistant.pipeline import DraftRequest
from assistant.verify import recheck_draft
from assistant.writeback import build_bundle, cited_resources
from retrieval.errors import BadInput, Conflict, NotFound
from retrieval.plans import find_encounter

router = APIRouter(prefix="/v1/drafts", tags=["drafts"],
                   responses={k: PROBLEM_SCHEMA for k in (400, 401, 403, 404, 409, 422)})

DocTypeIn = Literal["summary", "discharge-instructions", "prior-auth"]
BackendIn = Literal["embedded", "openai", "extractive"]


class DraftCreate(BaseModel):
    patient_id: str = Field(min_length=1, max_length=128)
    doc_type: DocTypeIn
    encounter_id: str | None = Field(default=None, max_length=128)
    order_id: str | None = Field(default=None, max_length=128)
    backend: BackendIn | None = None


class Accepted(BaseModel):
    id: str
    status: str
    links: dict[str, str]


class StatementEdit(BaseModel):
    statement_id: str
    text: str | None = Field(default=None, min_length=1, max_length=4000)
    citations: list[str] | None = None
    remove: bool = False


class DraftPatch(BaseModel):
    edits: list[StatementEdit] = Field(min_length=1, max_length=200)


class Ack(BaseModel):
    statement_id: str
    note: str | None = Field(default=None, max_length=2000)


class SignIn(BaseModel):
    acknowledge: list[str] = Field(default_factory=list, max_length=500)
    note: str | None = Field(default=None, max_length=2000)


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class FeedbackIn(BaseModel):
    rating: Literal["up", "down"]
    comment: str | None = Field(default=None, max_length=4000)


def links(svc: Svc, draft_id: str) -> dict[str, str]:
    base = svc.settings.public_url.rstrip("/")
    return {"self": f"/v1/drafts/{draft_id}", "events": f"/v1/drafts/{draft_id}/events",
            "ui": f"{base}/ui/drafts/{draft_id}"}


def draft_view(svc: Svc, draft: Draft) -> dict[str, Any]:
    out = draft.model_dump(mode="json")
    out["open_flags"] = [s.id for s in draft.open_flags()]
    out["links"] = links(svc, draft.id)
    out["writeback"] = _writeback_state(svc, draft.id)
    # Why a draft failed (a safe message saved by the worker; never a traceback).
    out["error"] = svc.store.draft_meta(draft.id).get("error") if draft.status == "failed" \
        else None
    return out


def draft_response(svc: Svc, draft: Draft) -> JSONResponse:
    """``draft_view`` as a ready response. The view is JSON-safe already (model_dump mode=json),
    so this skips FastAPI's jsonable_encoder, which costs several ms per draft."""
    return JSONResponse(draft_view(svc, draft))


def snapshot_response(svc: Svc, snap: DraftSnapshot) -> Response:
    """What ``draft_response`` sends, from a cached snapshot (see assistant.api.snapshots)."""
    error = svc.store.draft_meta(snap.id).get("error") if snap.status == "failed" else None
    live = {"links": links(svc, snap.id), "writeback": _writeback_state(svc, snap.id),
            "error": error}
    return Response(snap.body(live), media_type="application/json")


def _writeback_state(svc: Svc, draft_id: str) -> dict[str, Any] | None:
    item = svc.store.outbox_item(draft_id)
    if item is None:
        return None
    return {"status": item["status"], "attempts": item["attempts"],
            "last_error": item["last_error"]}


def load_visible(svc: Svc, p: Principal, draft_id: str) -> Draft:
    draft = svc.store.get_draft(draft_id)
    check_patient(p, draft.patient_id)  # another patient's draft is simply not there
    return draft


def _statement(draft: Draft, statement_id: str) -> tuple[int, int, DraftStatement]:
    for i, sec in enumerate(draft.sections):
        for j, st in enumerate(sec.statements):
            if st.id == statement_id:
                return i, j, st
    raise NotFound(f"no statement {statement_id!r} in draft {draft.id}", where="statement_id",
                   fix="use a statement id from GET /v1/drafts/{id}")


def _editable(draft: Draft) -> None:
    if draft.status in ("signed", "rejected"):
        raise Conflict(f"draft {draft.id} is {draft.status}; it cannot change",
                       where="status", fix="ask for a new draft")
    if draft.status != "draft":
        raise Conflict(f"draft {draft.id} is {draft.status}", where="status",
                       fix="wait for it to finish (GET /v1/drafts/{id}/events)")


def _check_ids(svc: Svc, body: DraftCreate) -> None:
    """A named encounter or order must be in this patient's chart: say so now (404), rather
    than queue a draft that can only fail."""
    if body.encounter_id:
        encounters = svc.rt.store.evidence_for(body.patient_id, ["Encounter"])
        if find_encounter(encounters, body.encounter_id) is None:
            raise NotFound(f"encounter {body.encounter_id!r} is not in the chart of patient "
                           f"{body.patient_id!r}", where="encounter_id",
                           fix="pass an Encounter id of this patient, or leave it out")
    if body.order_id:
        find_order(svc.rt.store.evidence_for(body.patient_id, ORDER_TYPES), body.order_id)


def submit(svc: Svc, p: Principal, body: DraftCreate, *, purpose: str = "draft requested",
           prepare: Any = None, check_exists: bool = True, reuse_inflight: bool = False) -> Draft:
    require(p, "draft.create")
    check_patient(p, body.patient_id)
    if check_exists and svc.rt.store.patient(body.patient_id) is None:
        raise NotFound(f"no patient {body.patient_id!r}", where="patient_id",
                       fix="ingest the chart first (POST /v1/charts) or use GET /v1/patients")
    if check_exists:
        _check_ids(svc, body)
    req = DraftRequest(patient_id=body.patient_id, doc_type=body.doc_type,
                       encounter_id=body.encounter_id, order_id=body.order_id,
                       backend=body.backend)
    return svc.jobs.submit(req, actor=p.subject, role=p.role, prepare=prepare, purpose=purpose,
                           reuse_inflight=reuse_inflight)


@router.post("", status_code=202, response_model=Accepted,
             summary="Ask for a draft; generation runs in the background")
def create_draft(body: DraftCreate, svc: Svc, p: CurrentUser) -> Accepted:
    draft = submit(svc, p, body)
    return Accepted(id=draft.id, status=draft.status, links=links(svc, draft.id))


@router.get("/{draft_id}", summary="A draft: status, sections, statements, citations, verdicts",
            response_model=dict[str, Any])
def get_draft(draft_id: str, svc: Svc, p: CurrentUser) -> JSONResponse:
    require(p, "draft.read")
    draft = load_visible(svc, p, draft_id)
    svc.audit(p, "draft.read", patient_id=draft.patient_id, target=draft.id)
    return draft_response(svc, draft)


@router.get("/{draft_id}/events", summary="Server-sent events: statements as they are checked",
            response_class=EventSourceResponse)
async def draft_events(draft_id: str, request: Request, svc: Svc,
                       p: CurrentUser) -> EventSourceResponse:
    require(p, "draft.read")
    draft = await asyncio.to_thread(load_visible, svc, p, draft_id)
    await asyncio.to_thread(svc.audit, p, "draft.read", patient_id=draft.patient_id,
                            target=draft.id, purpose="events")
    ch = svc.jobs.channel(draft_id)

    async def from_store() -> AsyncIterator[dict[str, str]]:
        final = await asyncio.to_thread(svc.store.get_draft, draft_id)
        for sec in final.sections:
            for st in sec.statements:
                yield {"event": "statement",
                       "data": json.dumps(statement_event(sec.title, st, final.evidence))}
        yield {"event": "done", "data": json.dumps({"type": "done", "draft_id": draft_id,
                                                    "status": final.status})}

    async def stream() -> AsyncIterator[dict[str, str]]:
        if ch is None:  # generated by an earlier process, or long finished: replay what is kept
            async for ev in from_store():
                yield ev
            return
        history, q = ch.subscribe(asyncio.get_running_loop())
        try:
            for ev in history:
                yield {"event": ev["type"], "data": json.dumps(ev)}
                if ev["type"] == "done":
                    return
            while True:
                if await request.is_disconnected():
                    return
                try:
                    ev = await asyncio.wait_for(q.get(), timeout=15)
                except TimeoutError:
                    continue  # sse-starlette sends pings; check the client is still there
                yield {"event": ev["type"], "data": json.dumps(ev)}
                if ev["type"] == "done":
                    return
        finally:
            ch.unsubscribe(q)

    return EventSourceResponse(stream(), ping=10)


@router.post("/{draft_id}/cancel", summary="Stop a draft that is still being generated",
             response_model=dict[str, Any])
async def cancel(draft_id: str, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "draft.review")
    draft = await asyncio.to_thread(load_visible, svc, p, draft_id)
    if draft.status in TERMINAL:
        raise Conflict(f"draft {draft.id} is already {draft.status}; there is nothing to cancel",
                       where="status", fix="reject it instead (POST /v1/drafts/{id}/reject)")
    await asyncio.to_thread(svc.audit, p, "draft.cancel", patient_id=draft.patient_id,
                            target=draft.id)
    if svc.jobs.cancel(draft.id, p.subject):
        # The worker stops at its next statement; a model call under way finishes first.
        await svc.jobs.wait(draft.id, timeout=30)
    else:  # left pending or generating by a process that is gone: nothing will finish it
        draft.status = "failed"
        draft.extras["cancelled_by"] = p.subject
        await asyncio.to_thread(svc.store.save_draft, draft,
                                error=f"cancelled by {p.subject} before it was finished")
    draft = await asyncio.to_thread(svc.store.get_draft, draft.id)
    if draft.status == "draft":
        raise Conflict(f"draft {draft.id} was finished before it could be cancelled",
                       where="status", fix="review it, or reject it with a reason")
    return await asyncio.to_thread(draft_view, svc, draft)


@router.patch("/{draft_id}", summary="A clinician's edit; every statement is checked again at once")
def patch_draft(draft_id: str, body: DraftPatch, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "draft.review")
    draft = load_visible(svc, p, draft_id)
    _editable(draft)
    removed: list[str] = []
    for e in body.edits:
        i, j, st = _statement(draft, e.statement_id)
        if e.remove:
            draft.sections[i].statements.pop(j)
            removed.append(st.id)
            continue
        if e.text is None and e.citations is None:
            raise BadInput("an edit needs text, citations or remove", where="edits",
                           fix='e.g. {"statement_id": "...", "text": "..."}')
        if e.text is not None:
            st.text = e.text
        if e.citations is not None:
            st.citations = e.citations
        st.origin, st.acknowledged, st.acknowledgement_note = "clinician", False, None
    recheck_draft(svc.rt.store.evidence_for(draft.patient_id), draft,
                  svc.rt.store.issues_for(draft.patient_id))
    svc.store.save_draft(draft)
    for e in body.edits:
        svc.store.add_review(draft.id, p.subject, "remove" if e.remove else "edit",
                             statement_id=e.statement_id)
    svc.audit(p, "draft.edit", patient_id=draft.patient_id, target=draft.id,
              output_hash=draft_output_hash(draft), model=draft.model,
              prompt_version=draft.prompt_version or None)
    return draft_view(svc, draft)


def _acknowledge(svc: Svc, p: Principal, draft: Draft, statement_id: str,
                 note: str | None) -> None:
    _, _, st = _statement(draft, statement_id)
    if not st.flagged:
        raise BadInput(f"statement {statement_id} is not flagged", where="statement_id",
                       fix="only flagged statements need acknowledging")
    st.acknowledged, st.acknowledgement_note = True, note
    svc.store.add_review(draft.id, p.subject, "acknowledge", statement_id=statement_id,
                         detail={"verdict": st.verdict})


@router.post("/{draft_id}/acknowledge", summary="Acknowledge one flagged statement")
def acknowledge(draft_id: str, body: Ack, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "draft.review")
    draft = load_visible(svc, p, draft_id)
    _editable(draft)
    _acknowledge(svc, p, draft, body.statement_id, body.note)
    svc.store.save_draft(draft)
    svc.audit(p, "draft.acknowledge", patient_id=draft.patient_id, target=draft.id,
              evidence_ids=[body.statement_id])
    return draft_view(svc, draft)


@router.post("/{draft_id}/sign", summary="Sign; refused (409) while flags are unacknowledged")
def sign(draft_id: str, body: SignIn, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "draft.sign")
    draft = load_visible(svc, p, draft_id)
    _editable(draft)
    for sid in body.acknowledge:
        _acknowledge(svc, p, draft, sid, body.note)
    open_flags = draft.open_flags()
    if open_flags:
        svc.store.save_draft(draft)  # the acknowledgements given so far stand
        raise ProblemError(
            409, "Conflict", f"{len(open_flags)} flagged statement(s) are not acknowledged",
            where="acknowledge", fix="review each one and list its id in 'acknowledge'",
            open_flags=[{"statement_id": s.id, "verdict": s.verdict,
                         "reasons": [r.reason for r in s.results if r.verdict != "supported"]}
                        for s in open_flags])
    if not draft.statements():
        raise Conflict("an empty draft cannot be signed", where="sections",
                       fix="reject it instead")
    now = datetime.now(UTC)
    draft.status = "signed"
    draft.extras["signed_by"], draft.extras["signed_at"] = p.subject, now.isoformat()
    bundle = build_bundle(draft, signer=p.subject, signed_at=now)
    svc.store.save_draft(draft)
    svc.store.add_review(draft.id, p.subject, "sign")
    svc.store.enqueue_outbox(draft.id, bundle)
    refs, kb = cited_resources(draft)
    svc.audit(p, "draft.sign", patient_id=draft.patient_id, target=draft.id,
              evidence_ids=refs + kb, model=draft.model,
              prompt_version=draft.prompt_version or None, output_hash=draft_output_hash(draft))
    svc.outbox_wake.set()
    return draft_view(svc, draft)


@router.post("/{draft_id}/reject", summary="Reject with a reason")
def reject(draft_id: str, body: RejectIn, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "draft.review")
    draft = load_visible(svc, p, draft_id)
    if draft.status in ("signed", "rejected"):
        raise Conflict(f"draft {draft.id} is already {draft.status}", where="status")
    draft.status = "rejected"
    draft.extras["rejected_by"], draft.extras["reject_reason"] = p.subject, body.reason
    svc.store.save_draft(draft)
    svc.store.add_review(draft.id, p.subject, "reject", detail={"reason": body.reason})
    svc.audit(p, "draft.reject", patient_id=draft.patient_id, target=draft.id)
    return draft_view(svc, draft)


@router.post("/{draft_id}/feedback", status_code=201, summary="Rate a draft (up or down)")
def feedback(draft_id: str, body: FeedbackIn, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "draft.feedback")
    draft = load_visible(svc, p, draft_id)
    fid = svc.store.add_feedback(draft.id, p.subject, body.rating, body.comment)
    svc.audit(p, "draft.feedback", patient_id=draft.patient_id, target=draft.id)
    return {"id": fid, "draft_id": draft.id, "rating": body.rating}


@router.get("", summary="Drafts visible to the caller, newest first")
def list_drafts(svc: Svc, p: CurrentUser, patient_id: str | None = None,
                limit: int = 50) -> list[dict[str, Any]]:
    require(p, "draft.read")
    if p.patient is not None:
        check_patient(p, patient_id or p.patient)
        patient_id = p.patient
    rows = svc.store.list_drafts(patient_id, limit=max(1, min(limit, 500)))
    svc.audit(p, "draft.read", patient_id=patient_id, purpose="list")
    return [dict(r, created_at=r["created_at"].isoformat() if r["created_at"] else None)
            for r in rows]


__all__ = ["router", "submit", "draft_view", "draft_response", "snapshot_response",
           "TERMINAL"]
