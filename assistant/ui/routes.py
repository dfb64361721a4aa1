"""Routes of the web UI: the page shell, its static files, and three small JSON helpers.

The helpers only exist because the UI needs what /v1 does not serve: the settings a sign-in page
needs (is the development login on?), the development login itself, and a patient's allergies,
encounters and orders for the banner and the request form. They use the same authentication,
role and patient-scope checks as /v1 (a patient-scoped token sees its own patient only).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from assistant.api.deps import CurrentUser, Svc
from assistant.api.problems import PROBLEM_SCHEMA
from assistant.auth import check_patient, mint_dev_token, require
from assistant.orders import ORDER_TYPES, policy_for_evidence
from retrieval.errors import NotFound
from retrieval.evidence import Evidence
from retrieval.plans import PENDING_ORDER

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False,
                   responses={k: PROBLEM_SCHEMA for k in (401, 403, 404)})
# A hash of the static files in their URLs, so a browser never runs a stale app.js.
ASSET_VERSION = hashlib.sha256(b"".join(
    p.read_bytes() for p in sorted((HERE / "static").glob("*.*")))).hexdigest()[:10]


def mount(app: FastAPI) -> None:
    """Serve the UI at /ui (called by assistant.api.app.create_app)."""
    # The static mount goes first: the page routes below would otherwise match /ui/static/...
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    app.include_router(router)
    if not any(getattr(r, "path", None) == "/" for r in app.routes):
        # Someone typing the bare address is a person: send them to the UI.
        app.add_api_route("/", lambda: RedirectResponse("/ui"), include_in_schema=False)


def _shell(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "shell.html", {"v": ASSET_VERSION})


# Every page is the same shell; app.js renders the view the path names (links stay shareable:
# the API's draft links point at /ui/drafts/{id}).
@router.get("", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    return _shell(request)


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> HTMLResponse:
    return _shell(request)


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(request: Request, patient_id: str) -> HTMLResponse:
    return _shell(request)


@router.get("/drafts/{draft_id}", response_class=HTMLResponse)
def draft_page(request: Request, draft_id: str) -> HTMLResponse:
    return _shell(request)


@router.get("/drafts/{draft_id}/print", response_class=HTMLResponse)
def print_page(request: Request, draft_id: str) -> HTMLResponse:
    return _shell(request)


@router.get("/api/config")
def config(svc: Svc) -> dict[str, Any]:
    """What the sign-in page and the draft view need to know; nothing secret."""
    s = svc.settings
    return {"dev_auth": s.dev_auth, "backend": s.backend,
            "reading_grade_target": s.reading_grade_target,
            "writeback": bool(s.fhir_server_url)}


class DevLogin(BaseModel):
    patient: str | None = Field(default=None, max_length=128,
                                description="Scope the token to one patient (optional).")


@router.post("/api/dev-login")
def dev_login(svc: Svc, body: DevLogin | None = None) -> dict[str, str]:
    """A clinician token signed with the development key; only when dev_auth is on."""
    if not svc.settings.dev_auth:
        raise NotFound("the development login is off on this server", where="dev_auth",
                       fix="paste a bearer token from your identity provider instead")
    patient = body.patient if body else None
    token = mint_dev_token("clinician", patient, settings=svc.settings, subject="dev-clinician")
    return {"token": token, "role": "clinician"}


def _allergy(e: Evidence) -> dict[str, Any]:
    d = e.data
    reactions = [r.get("manifestation") for r in d.get("reactions") or [] if r.get("manifestation")]
    return {"id": e.id, "substance": d.get("substance") or e.title, "text": e.text,
            "criticality": d.get("criticality"), "status": d.get("clinical_status") or
            d.get("status"), "reactions": reactions}


def _encounter(e: Evidence) -> dict[str, Any]:
    d = e.data
    return {"id": e.id, "title": e.title, "start": d.get("start") or e.date, "end": d.get("end"),
            "class": d.get("class"), "reason": d.get("reason")}


def _order(e: Evidence) -> dict[str, Any]:
    policy = policy_for_evidence(e)
    return {"id": e.id, "title": e.title, "date": e.date, "status": e.data.get("status"),
            "resource_type": e.resource_type,
            "policy": f"{policy.payer}: {policy.title}" if policy else None}


def _no_known(e: Evidence) -> bool:
    """'No known allergy' records are not allergies; the banner says so in its own words."""
    text = f"{e.data.get('substance') or ''} {e.title}".lower()
    return "no known" in text


@router.get("/api/patients/{patient_id}/context")
def patient_context(patient_id: str, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    """Allergies (banner), encounters and orders (request form) of one patient."""
    require(p, "chart.read")
    check_patient(p, patient_id)
    store = svc.rt.store
    if store.patient(patient_id) is None:
        raise NotFound(f"no patient {patient_id!r}", where="patient id",
                       fix="pick a patient from the list")
    chart = store.evidence_for(patient_id, ["AllergyIntolerance", "Encounter", *ORDER_TYPES])
    allergies = [e for e in chart if e.resource_type == "AllergyIntolerance"
                 and (e.data.get("clinical_status") or e.data.get("status")) != "resolved"]
    real = [e for e in allergies if not _no_known(e)]
    encounters = sorted((e for e in chart if e.resource_type == "Encounter"),
                        key=lambda e: e.date or "", reverse=True)
    orders = sorted((e for e in chart if e.resource_type in ORDER_TYPES
                     and e.data.get("status") in PENDING_ORDER),
                    key=lambda e: e.date or "", reverse=True)
    svc.audit(p, "chart.read", patient_id=patient_id, purpose="ui: allergies, encounters, orders",
              evidence_ids=[e.id for e in real])
    return {"allergies": [_allergy(e) for e in real],
            "allergies_recorded": bool(allergies),
            "encounters": [_encounter(e) for e in encounters],
            "orders": [_order(e) for e in orders]}
