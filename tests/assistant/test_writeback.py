"""Write-back: a valid transaction Bundle; sent to a real FHIR server (fhirsnake); a failing
server keeps the signed draft in the outbox and a later retry delivers it (nothing lost)."""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from chartdraft_guardrails.statement import CheckResult
from fhir.resources.R4B.bundle import Bundle

from assistant.audit import verify_store
from assistant.draft import Draft, DraftStatement, Section
from assistant.store import Store
from assistant.writeback import (
    LOINC_TYPES,
    build_bundle,
    cited_resources,
    process_outbox,
    render_text,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
from fhirsnake_server import fhirsnake, free_port  # noqa: E402


def _draft(doc_type: str = "discharge-instructions") -> Draft:
    ok = [CheckResult(check="support", verdict="supported")]
    return Draft(
        patient_id="p-1", doc_type=doc_type, status="signed", encounter_id="enc-7",  # type: ignore[arg-type]
        model="smollm2-135m", prompt_version="3",
        sections=[Section(title="Medicines", statements=[
            DraftStatement(text="Take lisinopril 10 mg once daily.",
                           citations=["MedicationRequest/m1"], results=ok),
            DraftStatement(text="Limit salt.", citations=["kb:hf-discharge#diet",
                                                          "DocumentReference/n1#2"], results=ok),
        ])])


@pytest.mark.parametrize("doc_type", sorted(LOINC_TYPES))
def test_bundle_is_valid_fhir_with_provenance(doc_type: str) -> None:
    d = _draft(doc_type)
    bundle = build_bundle(d, signer="dr-a", signed_at=datetime(2026, 1, 2, tzinfo=UTC))
    Bundle.model_validate(bundle)  # R4 (R4B models) accepts it
    doc, prov = (e["resource"] for e in bundle["entry"])
    assert bundle["type"] == "transaction"
    assert doc["docStatus"] == "final" and doc["type"]["coding"][0]["code"] == LOINC_TYPES[
        doc_type][0]
    assert doc["context"]["encounter"][0]["reference"] == "Encounter/enc-7"
    text = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    assert text == render_text(d) and "lisinopril 10 mg" in text
    agents = {a["who"]["type"]: a for a in prov["agent"]}
    assert agents["Device"]["who"]["identifier"]["value"] == "smollm2-135m"
    assert agents["Practitioner"]["who"]["identifier"]["value"] == "dr-a"
    sources = {e["what"].get("reference") or e["what"]["identifier"]["value"]
               for e in prov["entity"]}
    refs, kb = cited_resources(d)
    assert sources == set(refs) | set(kb) == {"MedicationRequest/m1", "DocumentReference/n1",
                                              "kb:hf-discharge#diet"}
    assert prov["target"][0]["reference"] == f"DocumentReference/{doc['id']}"


def test_same_draft_same_ids_so_retries_are_idempotent() -> None:
    d = _draft()
    a, b = build_bundle(d, signer="dr-a"), build_bundle(d, signer="dr-a")
    assert [e["request"] for e in a["entry"]] == [e["request"] for e in b["entry"]]
    assert all(e["request"]["method"] == "PUT" for e in a["entry"])


def test_failing_server_keeps_outbox_then_retry_delivers(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    d = _draft()
    store.enqueue_outbox(d.id, build_bundle(d, signer="dr-a"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Nothing listens yet: the attempt fails, the item stays, backed off.
    assert process_outbox(store, base_url=base) == {"sent": 0, "failed": 1}
    item = store.outbox_item(d.id)
    assert item is not None and item["status"] == "pending" and item["attempts"] == 1
    assert process_outbox(store, base_url=base) == {"sent": 0, "failed": 0}  # not due yet
    later = datetime.now(UTC) + timedelta(hours=2)
    with fhirsnake(tmp_path / "fhir", port=port) as url:
        assert process_outbox(store, base_url=url, now=later) == {"sent": 1, "failed": 0}
        doc_id = build_bundle(d, signer="dr-a")["entry"][0]["resource"]["id"]
        got = httpx.get(f"{url}/DocumentReference/{doc_id}").json()
        assert got["docStatus"] == "final" and got["subject"]["reference"] == "Patient/p-1"
        prov = httpx.get(f"{url}/Provenance", params={"_id": got["id"].replace(
            got["id"], build_bundle(d, signer="dr-a")["entry"][1]["resource"]["id"])}).json()
        assert prov["total"] == 1
    item = store.outbox_item(d.id)
    assert item is not None and item["status"] == "sent" and item["attempts"] == 2
    actions = [r.action for r in store.audit_records()]
    assert actions == ["writeback.failed", "writeback.sent"]
    assert verify_store(store).ok
