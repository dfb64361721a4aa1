"""Write-back on sign: a signed draft becomes a FHIR DocumentReference plus a Provenance.

Both go in one ``transaction`` Bundle, validated with ``fhir.resources.R4B`` before it leaves, and
POSTed to ``settings.fhir_server_url``. Entries use ``PUT`` with ids derived from the draft id, so
sending the same bundle twice (a retry after a timeout) cannot file the document twice.

Signing never waits on the FHIR server: the bundle goes into the outbox in the same request that
signs, and ``process_outbox`` sends it, backing off on failure. Nothing leaves the outbox until the
server said yes. A server without transaction support (it answers 404/405/501 to a POST on its base)
gets the same entries as individual PUTs, in order.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from assistant.audit import AuditEvent, output_hash
from assistant.draft import Draft
from retrieval.errors import CheckFailed, StoreError

# LOINC document types (LOINC Document Ontology):
#   34133-9 "Summary of episode note"; 8653-8 "Hospital Discharge instructions";
#   51852-2 "Letter" for the letter of medical necessity a clinician sends a payer.
#   (52034-6 "Payer letter" is a letter *from* the payer, so it is not used.)
LOINC_TYPES: dict[str, tuple[str, str]] = {
    "summary": ("34133-9", "Summary of episode note"),
    "discharge-instructions": ("8653-8", "Hospital Discharge instructions"),
    "prior-auth": ("51852-2", "Letter"),
}
_NS = uuid.UUID("0f0e3a1c-7c55-4f7e-9a51-3c2a5d2b8e11")
MAX_BACKOFF_S = 3600.0


def render_text(draft: Draft) -> str:
    """The signed document as plain text (citations travel in the Provenance)."""
    title = LOINC_TYPES[draft.doc_type][1]
    lines = [title, ""]
    for sec in draft.sections:
        lines.append(sec.title)
        lines.extend(f"- {st.text}" for st in sec.statements)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def resource_ids(draft: Draft) -> tuple[str, str]:
    return (str(uuid.uuid5(_NS, f"docref:{draft.id}")), str(uuid.uuid5(_NS, f"prov:{draft.id}")))


def _user_ref(subject: str, display: str | None = None) -> dict[str, Any]:
    return {"type": "Practitioner", "identifier": {"system": "urn:chartdraft:user",
                                                   "value": subject},
            "display": display or subject}


def cited_resources(draft: Draft) -> tuple[list[str], list[str]]:
    """(FHIR references, knowledge-base ids) of everything the signed statements cite."""
    refs: list[str] = []
    kb: list[str] = []
    for st in draft.statements():
        for c in st.citations:
            if c.startswith("kb:"):
                kb.append(c)
            else:
                refs.append(c.split("#", 1)[0])
    return sorted(set(refs)), sorted(set(kb))


def build_bundle(draft: Draft, *, signer: str, signed_at: datetime | None = None,
                 signer_display: str | None = None) -> dict[str, Any]:
    """The transaction Bundle for a signed draft, validated; raises CheckFailed if invalid."""
    when = (signed_at or datetime.now(UTC)).isoformat(timespec="seconds")
    doc_id, prov_id = resource_ids(draft)
    text = render_text(draft)
    raw = text.encode()
    code, display = LOINC_TYPES[draft.doc_type]
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": doc_id,
        "identifier": [{"system": "urn:chartdraft:draft", "value": draft.id}],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
        "category": [{"coding": [{
            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
            "code": "clinical-note", "display": "Clinical Note"}]}],
        "subject": {"reference": f"Patient/{draft.patient_id}"},
        "date": when,
        "author": [_user_ref(signer, signer_display)],
        "authenticator": _user_ref(signer, signer_display),
        "description": f"{display} drafted by chartdraft ({draft.model}), signed by clinician",
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "language": "en",
            "data": base64.b64encode(raw).decode(),
            "size": len(raw),
            "hash": base64.b64encode(hashlib.sha1(raw).digest()).decode(),
            "title": display,
            "creation": when,
        }}],
    }
    if draft.encounter_id:
        enc = draft.encounter_id if "/" in draft.encounter_id else f"Encounter/{draft.encounter_id}"
        doc["context"] = {"encounter": [{"reference": enc}]}
    refs, kb = cited_resources(draft)
    entities: list[dict[str, Any]] = [{"role": "source", "what": {"reference": r}} for r in refs]
    entities += [{"role": "source", "what": {"identifier": {"system": "urn:chartdraft:kb",
                                                            "value": k}, "display": k}}
                 for k in kb]
    prov: dict[str, Any] = {
        "resourceType": "Provenance",
        "id": prov_id,
        "target": [{"reference": f"DocumentReference/{doc_id}"}],
        "recorded": when,
        "activity": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": "CREATE", "display": "create"}]},
        "agent": [
            {"type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "assembler", "display": "Assembler"}]},
             "who": {"type": "Device", "identifier": {"system": "urn:chartdraft:model",
                                                      "value": draft.model or "unknown"},
                     "display": f"chartdraft model {draft.model} (prompt {draft.prompt_version})"}},
            {"type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "author", "display": "Author"}]},
             "who": _user_ref(signer, signer_display)},
        ],
        "entity": entities,
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": f"urn:uuid:{doc_id}", "resource": doc,
             "request": {"method": "PUT", "url": f"DocumentReference/{doc_id}"}},
            {"fullUrl": f"urn:uuid:{prov_id}", "resource": prov,
             "request": {"method": "PUT", "url": f"Provenance/{prov_id}"}},
        ],
    }
    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CheckFailed(f"the write-back bundle is not valid FHIR R4: {first['msg']}",
                          where=".".join(str(x) for x in first["loc"]),
                          fix="this is a chartdraft bug; the draft stays signed in the outbox"
                          ) from exc
    return bundle


def bundle_output_hash(bundle: dict[str, Any]) -> str:
    data = bundle["entry"][0]["resource"]["content"][0]["attachment"]["data"]
    return output_hash(base64.b64decode(data).decode())


def post_bundle(base_url: str, bundle: dict[str, Any], *, token: str | None = None,
                client: httpx.Client | None = None, timeout: float = 10.0) -> dict[str, Any]:
    """Send the bundle; returns {"mode": "transaction"|"entries", "locations": [...]}."""
    headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    base = base_url.rstrip("/")
    try:
        resp = http.post(base, json=bundle, headers=headers)
        if resp.status_code in (404, 405, 501):
            locations = []
            for e in bundle["entry"]:
                r = http.put(f"{base}/{e['request']['url']}", json=e["resource"], headers=headers)
                _raise_for(r, e["request"]["url"])
                locations.append(e["request"]["url"])
            return {"mode": "entries", "locations": locations}
        _raise_for(resp, "transaction")
        body = resp.json() if resp.content else {}
        locs = [x.get("response", {}).get("location") for x in body.get("entry", [])]
        return {"mode": "transaction", "locations": [x for x in locs if x]}
    except httpx.HTTPError as exc:
        raise StoreError(f"FHIR server unreachable: {type(exc).__name__}",
                         where="fhir_server_url", fix="it will be retried from the outbox") from exc
    finally:
        if own:
            http.close()


def _raise_for(resp: httpx.Response, what: str) -> None:
    if resp.status_code >= 300:
        raise StoreError(f"FHIR server answered {resp.status_code} to {what}",
                         where="fhir_server_url", fix="it will be retried from the outbox")


def backoff_s(attempts: int) -> float:
    return float(min(MAX_BACKOFF_S, 15 * 2 ** max(attempts, 0)))


def process_outbox(store: Any, *, base_url: str | None, token: str | None = None,
                   client: httpx.Client | None = None, now: datetime | None = None
                   ) -> dict[str, int]:
    """Try every due outbox item once; returns counts. Each attempt is an audit record."""
    sent = failed = 0
    if not base_url:
        return {"sent": 0, "failed": 0}
    for item in store.due_outbox(now):
        bundle, draft_id = item["bundle"], item["draft_id"]
        patient = bundle["entry"][0]["resource"]["subject"]["reference"].split("/", 1)[1]
        try:
            post_bundle(base_url, bundle, token=token, client=client)
        except StoreError as exc:
            failed += 1
            store.outbox_result(draft_id, ok=False, error=exc.detail,
                                retry_in=backoff_s(int(item["attempts"])))
            store.append_audit(AuditEvent(actor="system:writeback", role="admin",
                                          action="writeback.failed", patient_id=patient,
                                          target=draft_id, purpose=exc.detail))
            continue
        sent += 1
        store.outbox_result(draft_id, ok=True)
        store.append_audit(AuditEvent(actor="system:writeback", role="admin",
                                      action="writeback.sent", patient_id=patient,
                                      target=draft_id, output_hash=bundle_output_hash(bundle)))
    return {"sent": sent, "failed": failed}
