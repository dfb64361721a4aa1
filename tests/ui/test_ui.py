"""The clinician's path through the real UI in a real browser, against the real service:
sign-in, each document type, citations, edit/re-check, acknowledge, sign with write-back, reject,
feedback, the patient print view, keyboard-only use, a tablet viewport and the fallback state."""

from __future__ import annotations

import os
import re

import httpx
import pytest
from api_service import Service
from playwright.sync_api import Page, expect
from ui_flows import (
    ARTIFACTS,
    DRAFT_TIMEOUT_MS,
    SCREENSHOTS,
    TABLET,
    context,
    dev_signin,
    dosed_medicine,
    new_draft,
    open_flags,
    open_patient,
    patient_names,
    prior_auth_patient,
    request_draft,
    statements,
    wait_ready,
    wrong_dose,
)


def _shot(page: Page, name: str, *, readme: bool = False) -> None:
    # The README's images change only on request (CHARTDRAFT_UPDATE_SCREENSHOTS=1), so a test run
    # does not leave modified tracked files behind; otherwise they go with the other artifacts.
    folder = SCREENSHOTS if readme and os.environ.get("CHARTDRAFT_UPDATE_SCREENSHOTS") \
        else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=not readme)


def test_sign_in_with_dev_login_token_paste_and_a_bad_token(page: Page, service: Service) -> None:
    page.goto(f"{service.url}/ui/drafts/not-signed-in-yet")
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    dev_signin(page, service)
    expect(page.locator("#patient-list li")).to_have_count(len(patient_names(service)))
    expect(page.locator("#account")).to_contain_text("clinician")
    page.get_by_role("button", name="Sign out").click()

    # A token that is not a JWT: refused by the API, the user is told why, no way in.
    page.get_by_label("Bearer token").fill("not-a-token")
    page.get_by_role("button", name="Sign in with token").click()
    expect(page.locator("#alerts .error-box")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()

    # A pasted token scoped to one patient: the UI honours the API's patient scope.
    pid = service.patient_ids[0]
    token = service.token("clinician", patient=pid)["Authorization"]
    page.get_by_label("Bearer token").fill(token)
    page.get_by_role("button", name="Sign in with token").click()
    expect(page.locator("#patient-count")).to_have_text("1 of 1 patients")
    other = service.patient_ids[1]
    page.goto(f"{service.url}/ui/patients/{other}")  # the same tab keeps its session token
    expect(page.locator("#alerts .error-box")).to_contain_text("no patient")
    _shot(page, "scoped-token-other-patient")


def test_patient_search_header_and_allergy_banner(page: Page, service: Service) -> None:
    dev_signin(page, service)
    names = patient_names(service)
    pid = service.patient_ids[0]
    page.get_by_label("Search patients").fill("zzz-nobody")
    expect(page.locator("#patient-count")).to_have_text(f"0 of {len(names)} patients")
    open_patient(page, service, pid)
    header = page.get_by_role("region", name="Patient")
    expect(header).to_contain_text(re.compile(r"\d+ years · (Female|Male)"))
    banner = page.get_by_role("region", name="Allergies")
    ctx = context(service, pid)
    for allergy in ctx["allergies"]:
        expect(banner).to_contain_text(allergy["substance"])
    if not ctx["allergies"]:
        expect(banner).to_contain_text(re.compile("No known allergies|No allergy information"))
    # Encounters and orders offered by the request form come from the chart.
    assert page.locator("#encounter option").count() == len(ctx["encounters"]) + 1
    _shot(page, "patient-request")


@pytest.mark.parametrize("doc_label", ["Discharge instructions", "Note summary",
                                       "Prior-authorization letter"])
def test_request_each_document_type(page: Page, service: Service, doc_label: str) -> None:
    pid = (prior_auth_patient(service) if doc_label.startswith("Prior")
           else service.patient_ids[0])
    dev_signin(page, service)
    open_patient(page, service, pid)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if r.url.endswith("/events") else None)
    if doc_label.startswith("Prior"):
        page.get_by_label(doc_label, exact=True).check()
        expect(page.get_by_label("Order")).to_be_visible()
        order = next(o for o in context(service, pid)["orders"] if o["policy"])
        page.get_by_label("Order").select_option(order["id"])
    request_draft(page, doc_label)
    expect(page.get_by_role("heading", name=doc_label, level=1)).to_be_visible()
    assert statements(page).count() > 0
    assert len(streams) == 1  # the statements came over the draft's event stream
    # Every statement that cites something shows a chip per citation.
    with service.client(service.token("clinician")) as c:
        draft = c.get(f"/v1/drafts/{page.url.rsplit('/', 1)[-1]}").json()
    cited = sum(len(s["citations"]) for sec in draft["sections"] for s in sec["statements"])
    assert page.locator("#draft button.chip").count() == cited
    assert open_flags(page).count() == len(draft["open_flags"])
    expect(page.locator("#extractive-banner")).to_be_visible()  # the backend is labelled
    expect(page.get_by_role("region", name="Allergies")).to_be_visible()
    _shot(page, f"draft-{draft['doc_type']}")


def test_open_a_citation(page: Page, service: Service) -> None:
    new_draft(page, service, service.patient_ids[0])
    _, text = dosed_medicine(page)
    li = page.locator("#draft li.stmt", has_text=text).first
    chip = li.locator("button.chip").first
    chip.click()
    panel = page.get_by_role("complementary", name=re.compile("."))
    expect(panel).to_be_visible()
    expect(page.locator("#panel-title")).to_be_focused()
    expect(page.locator("#panel")).not_to_contain_text("null")  # nothing empty shown as text
    expect(page.locator("#source-date")).to_contain_text(
        re.compile(r"\d{4}-\d\d-\d\d \((today|.* ago|in .*)\)"))
    # The statement's words are highlighted in the source text.
    assert page.locator("#source-text mark").count() > 0
    _shot(page, "draft-citation-panel", readme=True)
    page.get_by_role("button", name="Show raw FHIR JSON").click()
    expect(page.locator("#raw-json")).to_contain_text('"resourceType": "MedicationRequest"')
    page.keyboard.press("Escape")
    expect(page.locator("#panel")).to_be_hidden()
    expect(chip).to_be_focused()


def test_edit_a_flagged_statement_then_acknowledge_and_sign(page: Page, service: Service) -> None:
    draft_id = new_draft(page, service, service.patient_ids[0])
    sid, text = dosed_medicine(page)
    item = page.locator(f"#st-{sid}")

    # A wrong dose: re-checked at once, flagged, with the reason in words.
    item.hover()  # the actions show on hover or focus
    item.get_by_role("button", name="Edit").click()
    page.get_by_label(re.compile("Edit the statement")).fill(wrong_dose(text))
    page.get_by_role("button", name="Save and re-check").click()
    expect(item).not_to_have_attribute("data-verdict", "supported")
    expect(item).to_have_class(re.compile(r"\bflag\b"))
    expect(item.locator(".reasons li").first).not_to_be_empty()
    expect(page.locator("#sign")).to_be_disabled()
    _shot(page, "edited-wrong-dose")

    # Fixed: supported again.
    item.hover()  # the actions show on hover or focus
    item.get_by_role("button", name="Edit").click()
    page.get_by_label(re.compile("Edit the statement")).fill(text)
    page.get_by_role("button", name="Save and re-check").click()
    expect(item).to_have_attribute("data-verdict", "supported")
    expect(item).to_contain_text("edited by clinician")

    # Remove a statement: gone at once with an Undo (no browser confirm), the page stays put.
    n_before = statements(page).count()
    victim = page.locator(f"#draft li.stmt:not(#st-{sid})").nth(n_before - 3)
    victim_id = victim.get_attribute("id") or ""
    victim_text = victim.locator(".text").inner_text()
    browser_dialogs: list[str] = []
    page.on("dialog", lambda d: browser_dialogs.append(d.message))
    victim.hover()
    victim.get_by_role("button", name="Remove").click()
    expect(statements(page)).to_have_count(n_before - 1)
    toast = page.locator("#toast")
    expect(toast).to_contain_text("Removed")
    assert page.evaluate("window.scrollY") > 0  # no jump to the top
    expect(page.locator("#draft li.stmt:focus")).to_have_count(1)  # focus on the next one
    toast.get_by_role("button", name="Undo").click()
    expect(statements(page)).to_have_count(n_before)
    expect(page.locator(f"#{victim_id}")).to_be_focused()
    # The undo time is up: the toast goes and the removal is sent to the server.
    with page.expect_response(lambda r: r.request.method == "PATCH", timeout=15_000):
        page.locator(f"#{victim_id}").hover()
        page.locator(f"#{victim_id}").get_by_role("button", name="Remove").click()
    expect(toast).not_to_have_class(re.compile(r"\bshown\b"))
    expect(toast).to_have_text("")
    expect(statements(page)).to_have_count(n_before - 1)
    expect(page.locator("#draft")).not_to_contain_text(victim_text)
    with service.client(service.token("clinician")) as c:
        server = c.get(f"/v1/drafts/{draft_id}").json()
    assert victim_id.removeprefix("st-") not in {
        s["id"] for sec in server["sections"] for s in sec["statements"]}
    assert browser_dialogs == []

    # Make one flag for sure, then acknowledge every open flag with a note.
    item.hover()  # the actions show on hover or focus
    item.get_by_role("button", name="Edit").click()
    page.get_by_label(re.compile("Edit the statement")).fill(wrong_dose(text))
    page.get_by_role("button", name="Save and re-check").click()
    expect(item).to_have_class(re.compile(r"\bflag\b"))
    while (n := open_flags(page).count()) > 0:
        expect(page.locator("#sign")).to_be_disabled()
        open_flags(page).first.get_by_role("button", name="Acknowledge").click()
        page.get_by_label(re.compile("Why is this statement acceptable")).fill(
            "Reviewed against the chart.")
        page.get_by_role("button", name="Acknowledge flag", exact=True).click()
        expect(open_flags(page)).to_have_count(n - 1)
    expect(item).to_contain_text("Acknowledged")
    expect(item).to_contain_text("Your note: Reviewed against the chart.")

    expect(page.locator("#sign")).to_be_enabled()
    page.locator("#sign").click()
    dialog = page.get_by_role("dialog", name=re.compile("Sign"))
    expect(dialog).to_contain_text("Filed with")  # what will be filed, before the final yes
    expect(dialog).to_contain_text("Reviewed against the chart.")
    expect(dialog.locator("#sign-reason")).to_have_count(0)  # every contradiction has a note
    dialog.get_by_role("button", name="Sign and file").click()
    expect(page.locator("#draft-status")).to_have_text("Signed.")
    expect(page.locator("#writeback-status")).to_contain_text("Filed in the chart",
                                                              timeout=30_000)
    with service.client(service.token("clinician")) as c:
        d = c.get(f"/v1/drafts/{draft_id}").json()
    assert d["status"] == "signed" and d["writeback"]["status"] == "sent"
    assert not page.locator("#draft button", has_text="Edit").count()  # signed: read-only
    _shot(page, "signed")


def test_reject_with_a_reason_and_send_feedback(page: Page, service: Service) -> None:
    draft_id = new_draft(page, service, service.patient_ids[1], "Note summary")
    page.get_by_role("button", name="Reject…").click()
    reason = page.get_by_label("Reason for rejecting (required)")
    expect(reason).to_be_focused()
    page.get_by_role("button", name="Reject draft").click()  # no reason: not sent
    expect(page.locator("#alerts")).to_contain_text("Say why")
    reason.fill("Misses the recent admission.")
    page.get_by_role("button", name="Reject draft").click()
    expect(page.locator("#rejected-banner")).to_contain_text("Misses the recent admission.")

    page.get_by_role("button", name="Thumbs down").click()
    expect(page.locator("#thumb-down")).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Comment (optional)").fill("Too long for a handover.")
    page.get_by_role("button", name="Send feedback").click()
    expect(page.locator("#feedback-status")).to_contain_text("feedback sent")
    with service.client(service.token("clinician")) as c:
        d = c.get(f"/v1/drafts/{draft_id}").json()
    assert d["status"] == "rejected"
    assert d["extras"]["reject_reason"] == "Misses the recent admission."


def test_patient_print_view(page: Page, service: Service) -> None:
    new_draft(page, service, service.patient_ids[0])
    n = statements(page).count()
    page.get_by_role("link", name="Patient print view").click()
    doc = page.locator("article.patient-doc")
    expect(doc.get_by_role("heading", name="Your discharge instructions")).to_be_visible()
    assert doc.locator("li").count() == n
    assert doc.locator("button, .chip, .grade, .badge").count() == 0  # no chips, no checks
    expect(doc).not_to_contain_text("Reading grade")
    body_px = float(doc.evaluate("e => parseFloat(getComputedStyle(e).fontSize)"))
    assert body_px >= 20, body_px  # large type
    clinician = page.get_by_role("region", name="For the clinician")
    expect(clinician).to_contain_text(re.compile(r"reading grade up to [\d.]+ \(target"))
    _shot(page, "print-view", readme=True)
    page.emulate_media(media="print")
    expect(clinician).to_be_hidden()  # the grade is for the clinician only
    expect(doc).to_be_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.pdf(path=str(ARTIFACTS / "print-view.pdf"))  # what the patient gets on paper


def _tab_to(page: Page, js_predicate: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(() => { const el = document.activeElement; "
                         f"return !!({js_predicate}); }})()"):
            return
    raise AssertionError(f"Tab never reached an element where {js_predicate}")


def _focus_visible(page: Page) -> None:
    style = page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                          " return [s.outlineStyle, s.outlineWidth]; })()")
    assert style[0] != "none" and style[1] != "0px", style


def test_keyboard_only(page: Page, service: Service) -> None:
    """Sign in, find a patient, ask for discharge instructions, open a citation, edit a
    statement into a flag, acknowledge it — keys only, with a visible focus at every step."""
    pid = service.patient_ids[0]
    name = patient_names(service)[pid]
    page.goto(f"{service.url}/ui")
    _tab_to(page, "el.id === 'dev-login'")
    _focus_visible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Patients", level=1)).to_be_visible()
    _tab_to(page, "el.id === 'patient-search'")
    page.keyboard.type(name.split()[0])
    _tab_to(page, "el.classList.contains('patient-link')")
    _focus_visible(page)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Request a draft")).to_be_visible()
    _tab_to(page, "el.id === 'dt-discharge-instructions'")
    page.keyboard.press("Space")
    _tab_to(page, "el.type === 'submit'")
    _focus_visible(page)
    page.keyboard.press("Enter")
    wait_ready(page)
    _tab_to(page, "el.classList.contains('chip')")
    _focus_visible(page)
    page.keyboard.press("Enter")
    expect(page.locator("#panel-title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#panel")).to_be_hidden()
    expect(page.locator("button.chip").first).to_be_focused()

    sid, text = dosed_medicine(page)
    _tab_to(page, f"el.textContent === 'Edit' && el.closest('#st-{sid}')", limit=400)
    page.keyboard.press("Enter")
    expect(page.locator(f"#edit-{sid}")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type(wrong_dose(text))
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Save and re-check"
    item = page.locator(f"#st-{sid}")
    expect(item).to_have_class(re.compile(r"\bflag\b"))
    expect(item.get_by_role("button", name="Edit")).to_be_focused()  # focus stays put
    _tab_to(page, f"el.textContent === 'Acknowledge' && el.closest('#st-{sid}')")
    page.keyboard.press("Enter")
    page.keyboard.type("Dose confirmed with the patient.")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # "Acknowledge flag"
    expect(item).to_contain_text("Your note: Dose confirmed with the patient.")


def test_tablet_layout_and_labels(page: Page, service: Service) -> None:
    page.set_viewport_size(TABLET)
    new_draft(page, service, service.patient_ids[0])
    # Nothing sticks out sideways, and the citation panel slides over the draft.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.locator("#draft button.chip").first.click()
    expect(page.locator("#panel")).to_be_visible()
    assert page.locator("#panel").evaluate("e => getComputedStyle(e).position") == "fixed"
    _shot(page, "tablet-citation")
    # Every form control has an accessible name (label, aria-label or visible text).
    unnamed = page.evaluate("""(() =>
        [...document.querySelectorAll('input, select, textarea, button')]
        .filter(e => !e.hidden && e.offsetParent !== null)
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !e.textContent.trim())
        .map(e => e.outerHTML.slice(0, 80)))()""")
    assert unnamed == []


def test_model_unavailable_shows_the_labelled_fallback(page: Page, service: Service) -> None:
    """A draft asked of the OpenAI-compatible backend while no server listens there falls back
    to the extractive composer; the UI says so plainly."""
    with service.client(service.token("clinician")) as c:
        r = c.post("/v1/drafts", json={"patient_id": service.patient_ids[0], "doc_type": "summary",
                                       "backend": "openai"})
        assert r.status_code == 202, r.text
    dev_signin(page, service)
    page.goto(f"{service.url}/ui/drafts/{r.json()['id']}")
    expect(page.locator("#draft-status")).to_contain_text("Draft ready", timeout=DRAFT_TIMEOUT_MS)
    banner = page.locator("#fallback-banner")
    expect(banner).to_contain_text("Model unavailable")
    expect(banner).to_contain_text("extractive")
    _shot(page, "fallback")


def test_errors_are_shown_not_swallowed(page: Page, service: Service) -> None:
    dev_signin(page, service)
    page.goto(f"{service.url}/ui/drafts/does-not-exist")
    expect(page.locator("#alerts .error-box")).to_contain_text("does-not-exist")
    expect(page.get_by_role("link", name="Back to patients")).to_be_visible()
    assert httpx.get(f"{service.url}/ui/static/app.js").status_code == 200
