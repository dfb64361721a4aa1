"""CDS Hooks 2.0: discovery, three services, feedback (paths, JSON shapes, camelCase as specified).

A call answers at once: it checks it can get the chart (prefetch in the request, or a quick read
of the patient from ``fhirServer``, or a chart we already hold), starts ingest + generation in the
background and returns a card linking to the draft in the web UI (the spec's async pattern).
412 when no chart can be had. The client's JWT is verified per the spec (see assistant.cds_jwt);
with no trusted issuers configured, unauthenticated calls are accepted only when dev_auth is on.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assistant.api.deps import Services, Svc
from assistant.api.drafts import DraftCreate, submit
from assistant.api.problems import PROBLEM_SCHEMA, ProblemError
from assistant.auth import Principal
from assistant.draft import Draft
from assistant.orders import policy_for_evidence
from assistant.store import DraftRef
from retrieval.errors import AuthError, BadInput, ChartdraftError, NotFound
from retrieval.evidence import Code, Evidence
from retrieval.fhir_ids import is_fhir_id
from retrieval.fhir_load import LoadResult, load_json
from retrieval.fhir_server import load_server
from retrieval.ingest import ingest_loaded

log = logging.getLogger("chartdraft.cds")
router = APIRouter(prefix="/cds-services", tags=["cds-hooks"],
                   responses={k: PROBLEM_SCHEMA for k in (400, 401, 404, 412, 422)})

PID = "{{context.patientId}}"
CHART_PREFETCH = {
    "patient": f"Patient/{PID}",
    "conditions": f"Condition?patient={PID}",
    "medications": f"MedicationRequest?patient={PID}",
    "allergies": f"AllergyIntolerance?patient={PID}",
    "observations": f"Observation?patient={PID}&_sort=-date&_count=100",
    "encounters": f"Encounter?patient={PID}&_sort=-date&_count=20",
    "procedures": f"Procedure?patient={PID}",
    "immunizations": f"Immunization?patient={PID}",
    "notes": f"DocumentReference?patient={PID}&_sort=-date&_count=20",
    "coverage": f"Coverage?patient={PID}",
}
SERVICES: dict[str, dict[str, Any]] = {
    "chartdraft-patient-view": {
        "hook": "patient-view", "title": "chartdraft chart summary",
        "description": "Drafts a cited, checked summary of the patient's chart for review.",
        "prefetch": CHART_PREFETCH, "doc_type": "summary"},
    "chartdraft-discharge": {
        "hook": "encounter-discharge", "title": "chartdraft discharge instructions",
        "description": "Drafts plain-language discharge instructions for the encounter.",
        "prefetch": CHART_PREFETCH | {"encounter": "Encounter/{{context.encounterId}}"},
        "doc_type": "discharge-instructions"},
    "chartdraft-order-sign": {
        "hook": "order-sign", "title": "chartdraft prior authorization",
        "description": "When a draft order needs prior authorization under a payer policy, "
                       "drafts the letter of medical necessity.",
        "prefetch": CHART_PREFETCH,
        "doc_type": "prior-auth"},
}


class FhirAuthorization(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None


class HookRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    hook: str
    hookInstance: str  # noqa: N815 (CDS Hooks wire name)
    fhirServer: str | None = None  # noqa: N815
    fhirAuthorization: FhirAuthorization | None = None  # noqa: N815
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="allow")
    reason: dict[str, Any] | None = None
    userComment: str | None = None  # noqa: N815


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    card: str
    outcome: Literal["accepted", "overridden"]
    overrideReason: OverrideReason | None = None  # noqa: N815
    acceptedSuggestions: list[dict[str, Any]] | None = None  # noqa: N815
    outcomeTimestamp: str | None = None  # noqa: N815


class FeedbackRequest(BaseModel):
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)


@router.get("", summary="CDS Hooks discovery")
def discovery() -> dict[str, Any]:
    return {"services": [
        {"hook": s["hook"], "id": sid, "title": s["title"], "description": s["description"],
         "prefetch": s["prefetch"]} for sid, s in SERVICES.items()]}


def _caller(svc: Services, request: Request, service_id: str) -> Principal:
    authz = request.headers.get("authorization")
    audience = f"{svc.settings.public_url.rstrip('/')}/cds-services/{service_id}"
    if not authz and svc.settings.dev_auth and not svc.settings.cds_issuers:
        return Principal(subject="cds-client:dev-unauthenticated", role="ehr-service",
                         method="cds")
    claims = svc.cds.verify(authz, audience=audience)
    return Principal(subject=f"cds:{claims['iss']}|{claims.get('sub', '')}", role="ehr-service",
                     method="cds")


def _context_id(context: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    value = context.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not is_fhir_id(value):
        got = type(value).__name__ if not isinstance(value, str) else f"{len(value)} characters"
        raise BadInput(f"context.{key} must be a FHIR id (1-128 of A-Z a-z 0-9 - .), got {got}"
                       if value is not None else f"context.{key} is required",
                       where=f"context.{key}", fix=f"send the {key} as a plain FHIR id string")
    return value


def _normal_base(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def _check_fhir_server(svc: Services, url: str) -> None:
    """The service reads the chart at fhirServer with the caller's token: only at a configured
    server (settings.cds_fhir_servers), or at any when none is configured and dev_auth is on."""
    allowed = [_normal_base(u) for u in svc.settings.cds_fhir_servers]
    parts = urlsplit(url.strip())
    ok_shape = parts.scheme in ("http", "https") and bool(parts.netloc) \
        and not parts.query and not parts.fragment
    if ok_shape and (_normal_base(url) in allowed or (not allowed and svc.settings.dev_auth)):
        return
    raise ProblemError(400, "Bad input", f"fhirServer {url[:200]!r} is not an allowed FHIR server",
                       where="fhirServer",
                       fix="send the prefetch instead, or have the operator add this base URL "
                           "to CHARTDRAFT_CDS_FHIR_SERVERS")


def _prefetch_resources(prefetch: dict[str, Any] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for value in (prefetch or {}).values():
        if not isinstance(value, dict):
            continue  # null: the EHR could not prefetch this key
        if value.get("resourceType") == "Bundle":
            out.extend(e["resource"] for e in value.get("entry") or []
                       if isinstance(e, dict) and isinstance(e.get("resource"), dict))
        elif "resourceType" in value:
            out.append(value)
    return out


def _as_bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in resources]}


def _order_evidence(res: dict[str, Any]) -> Evidence | None:
    rt = res.get("resourceType")
    if rt not in ("ServiceRequest", "MedicationRequest") or not res.get("id"):
        return None
    concept = res.get("code") if rt == "ServiceRequest" else res.get("medicationCodeableConcept")
    codings = (concept or {}).get("coding") or []
    codes = [Code(system=c.get("system"), code=c.get("code"), display=c.get("display"))
             for c in codings if isinstance(c, dict)]
    title = (concept or {}).get("text") or next((c.display for c in codes if c.display), rt)
    return Evidence(id=f"{rt}/{res['id']}", resource_type=rt, title=str(title), text=str(title),
                    codes=codes, data={"status": res.get("status")})


def _chart_source(svc: Services, body: HookRequest, patient_id: str,
                  extra: list[dict[str, Any]]) -> tuple[str, Any]:
    """Decide (fast) where the chart comes from; the slow part runs later in the background."""
    resources = _prefetch_resources(body.prefetch) + extra
    if any(r.get("resourceType") == "Patient" and r.get("id") == patient_id for r in resources):
        return "prefetch", resources
    if body.fhirServer:
        _check_fhir_server(svc, body.fhirServer)
        token = body.fhirAuthorization.access_token if body.fhirAuthorization else None
        headers = {"Accept": "application/fhir+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            r = httpx.get(f"{body.fhirServer.rstrip('/')}/Patient/{quote(patient_id, safe='')}",
                          headers=headers, timeout=0.3, follow_redirects=False)
            if r.status_code == 200:
                return "server", (body.fhirServer, token, extra)
        except httpx.HTTPError:
            pass
    if svc.has_patient(patient_id):
        return "store", extra  # the EHR loaded this chart through /v1/charts already
    raise ProblemError(412, "Precondition failed",
                       f"no chart for patient {patient_id!r}: no usable prefetch and the FHIR "
                       "server could not be read", where="prefetch",
                       fix="send the prefetch from discovery, or fhirServer with "
                           "fhirAuthorization")


def _prepare(svc: Services, source: str, payload: Any, patient_id: str) -> Any:
    rt = svc.rt

    def ingest(loaded: LoadResult) -> None:
        ingest_loaded(loaded, store=rt.store, index=rt.index, embedder=rt.embedder)

    if source == "prefetch":
        return lambda: ingest(load_json(_as_bundle(payload), source="cds-prefetch"))
    if source == "server":
        base, token, extra = payload

        def fetch() -> None:
            loaded = load_server(base, token=token, patient_ids=[patient_id], timeout=30)
            if extra:
                loaded.extend(load_json(_as_bundle(extra), source="cds-context"))
            ingest(loaded)
        return fetch
    if payload:
        return lambda: ingest(load_json(_as_bundle(payload), source="cds-context"))
    return None


def _card(svc: Services, draft_id: str, summary: str, detail: str, indicator: str,
          label: str) -> dict[str, Any]:
    base = svc.settings.public_url.rstrip("/")
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary[:139],
        "detail": detail,
        "indicator": indicator,
        "source": {"label": "chartdraft", "topic": {"code": draft_id,
                                                    "system": "urn:chartdraft:draft"}},
        "links": [{"label": label, "url": f"{base}/ui/drafts/{draft_id}", "type": "smart",
                   "appContext": f'{{"draftId": "{draft_id}"}}'}],
    }


def _current_summary(svc: Services, patient_id: str, version: str) -> DraftRef | None:
    ref = svc.store.latest_draft_ref(patient_id, "summary")
    return ref if ref is not None and ref.chart_version == version else None


def _start(svc: Services, p: Principal, body: HookRequest, service_id: str,
           spec: dict[str, Any], source: str, payload: Any, patient_id: str,
           encounter_id: str | None, order_id: str | None) -> Draft:
    try:
        body_in = DraftCreate(patient_id=patient_id, doc_type=spec["doc_type"],
                              encounter_id=encounter_id, order_id=order_id)
    except ValidationError as exc:  # a 400 naming the field, never a 500
        first = exc.errors()[0]
        field = {"patient_id": "context.patientId", "encounter_id": "context.encounterId",
                 "order_id": "context.draftOrders"}.get(str(first["loc"][0]), str(first["loc"][0]))
        raise BadInput(f"{field}: {first['msg']}", where=field,
                       fix="send context ids as FHIR id strings") from None
    return submit(svc, p, body_in,
                  purpose=f"cds {service_id} ({body.hookInstance})",
                  prepare=_prepare(svc, source, payload, patient_id), check_exists=False,
                  reuse_inflight=True)


def _highlights(svc: Services, patient_id: str, version: str,
                current: DraftRef | None) -> list[str]:
    """Up to three unflagged statements of the latest finished summary of the current chart
    (``current``, the summary this call reuses, when it is finished: no second lookup)."""
    if current is None or current.status not in ("draft", "signed"):
        current = svc.store.latest_draft_ref(patient_id, "summary", statuses=("draft", "signed"))
        if current is None or current.chart_version != version:
            return []
    return list(svc.snapshots.get(svc.store, current).highlights)


@router.post("/{service_id}", summary="Invoke a CDS service (answers at once; drafts in the "
             "background)")
async def call_service(service_id: str, body: HookRequest, request: Request,
                       svc: Svc) -> dict[str, Any]:
    spec = SERVICES.get(service_id)
    if spec is None:
        raise NotFound(f"no CDS service {service_id!r}", where="service id",
                       fix="see GET /cds-services")
    if body.hook != spec["hook"]:
        raise ProblemError(400, "Bad input", f"service {service_id} answers hook "
                           f"{spec['hook']!r}, not {body.hook!r}", where="hook")
    # In a worker thread: verification may fetch the client's JWKS (blocking I/O).
    p = await asyncio.to_thread(_caller, svc, request, service_id)
    patient_id = _context_id(body.context, "patientId", required=True)
    assert patient_id is not None
    encounter_id = _context_id(body.context, "encounterId")
    return await asyncio.to_thread(_answer_hook, svc, p, body, service_id, spec, patient_id,
                                   encounter_id)


def _answer_hook(svc: Services, p: Principal, body: HookRequest, service_id: str,
                 spec: dict[str, Any], patient_id: str, encounter_id: str | None,
                 ) -> dict[str, Any]:
    """Everything after the request checks, in one worker-thread hop: the EHR waits on this."""
    order_id = None
    extra: list[dict[str, Any]] = []
    policy_title = None
    if spec["hook"] == "order-sign":
        orders = _prefetch_resources({"o": body.context.get("draftOrders")})
        for res in orders:
            ev = _order_evidence(res)
            policy = policy_for_evidence(ev) if ev else None
            if ev is not None and policy is not None:
                order_id, policy_title = ev.id, policy.title
                extra = orders
                break
        if order_id is None:
            svc.audit(p, "cds.call", patient_id=patient_id,
                      purpose=f"{service_id}: no order needs prior auth")
            return {"cards": []}
    source, payload = _chart_source(svc, body, patient_id, extra)
    reused: DraftRef | None = None
    version = ""
    if spec["hook"] == "patient-view":
        version = svc.rt.store.chart_version(patient_id)
    if source == "store" and spec["doc_type"] == "summary":
        # Nothing new arrived with the call: a summary of the current chart can be reused.
        reused = _current_summary(svc, patient_id, version)
    draft_id = reused.id if reused is not None else _start(
        svc, p, body, service_id, spec, source, payload, patient_id, encounter_id, order_id).id
    svc.audit(p, "cds.call", patient_id=patient_id, target=draft_id,
              purpose=f"{service_id} via {source}")
    if spec["hook"] == "patient-view":
        hl = _highlights(svc, patient_id, version, reused)
        detail = ("\n".join(f"- {h}" for h in hl) + "\n\n" if hl else "") + \
            "A cited, checked chart summary; open it to review."
        card = _card(svc, draft_id, "Chart summary draft ready for review", detail, "info",
                     "Open summary draft")
    elif spec["hook"] == "encounter-discharge":
        card = _card(svc, draft_id, "Discharge instructions drafted for review",
                     "Plain-language discharge instructions, every statement cited and checked.",
                     "info", "Review discharge instructions")
    else:
        card = _card(svc, draft_id, f"Prior authorization likely needed: {policy_title}",
                     f"Order {order_id} is covered by the payer policy '{policy_title}'. A letter "
                     "of medical necessity is being drafted.", "warning",
                     "Review prior-auth letter")
    return {"cards": [card]}


@router.post("/{service_id}/feedback", summary="CDS Hooks feedback: accepted or overridden cards")
async def service_feedback(service_id: str, body: FeedbackRequest, request: Request,
                           svc: Svc) -> dict[str, Any]:
    if service_id not in SERVICES:
        raise NotFound(f"no CDS service {service_id!r}", where="service id")
    try:
        p = _caller(svc, request, f"{service_id}/feedback")
    except AuthError:
        p = _caller(svc, request, service_id)
    for item in body.feedback:
        await asyncio.to_thread(
            svc.store.add_cds_feedback, service_id, item.card, item.outcome,
            override_reason=item.overrideReason.model_dump() if item.overrideReason else None,
            accepted_suggestions=item.acceptedSuggestions,
            outcome_timestamp=item.outcomeTimestamp, actor=p.subject)
        await asyncio.to_thread(svc.audit, p, "cds.feedback",
                                purpose=f"{service_id} {item.outcome}", target=item.card)
    return {"stored": len(body.feedback)}


__all__ = ["router", "ChartdraftError"]
