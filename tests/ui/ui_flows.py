"""Steps the browser tests share: sign in, open a patient, ask for a draft and wait for it."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from api_service import Service
from playwright.sync_api import Locator, Page, ViewportSize, expect

ROOT = Path(__file__).parents[2]
SCREENSHOTS = Path(__file__).parent / "screenshots"  # committed: the README shows these
ARTIFACTS = ROOT / "test-artifacts" / "ui"  # everything else (gitignored)
CHROMIUM = os.environ.get("CHARTDRAFT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
LAPTOP = ViewportSize(width=1366, height=860)
TABLET = ViewportSize(width=820, height=1180)
DRAFT_TIMEOUT_MS = 90_000  # the first draft of a session also loads the embedding model


def dev_signin(page: Page, service: Service) -> None:
    page.goto(f"{service.url}/ui")
    page.get_by_role("button", name="Sign in as development clinician").click()
    expect(page.get_by_role("heading", name="Patients", level=1)).to_be_visible()


def patient_names(service: Service) -> dict[str, str]:
    with service.client(service.token("clinician")) as c:
        return {p["id"]: p["name"] for p in c.get("/v1/patients").json()}


def context(service: Service, patient_id: str) -> dict[str, Any]:
    with service.client(service.token("clinician")) as c:
        r = c.get(f"/ui/api/patients/{patient_id}/context")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def prior_auth_patient(service: Service) -> str:
    """A patient with an open order that a payer policy in the knowledge base covers."""
    for pid in service.patient_ids:
        if any(o["policy"] for o in context(service, pid)["orders"]):
            return pid
    raise AssertionError("no synthetic patient has an order covered by a payer policy")


def open_patient(page: Page, service: Service, patient_id: str) -> None:
    name = patient_names(service)[patient_id]
    page.get_by_label("Search patients").fill(name.split()[0])
    page.get_by_role("link", name=re.compile(re.escape(name))).click()
    expect(page.get_by_role("heading", name="Request a draft")).to_be_visible()
    expect(page.locator("#patient-name")).to_have_text(name)


def request_draft(page: Page, doc_label: str) -> None:
    page.get_by_label(doc_label, exact=True).check()
    page.get_by_role("button", name="Draft it").click()
    wait_ready(page)


def wait_ready(page: Page) -> None:
    expect(page.locator("#draft-status")).to_contain_text("Draft ready", timeout=DRAFT_TIMEOUT_MS)


def new_draft(page: Page, service: Service, patient_id: str,
              doc_label: str = "Discharge instructions") -> str:
    dev_signin(page, service)
    open_patient(page, service, patient_id)
    request_draft(page, doc_label)
    return page.url.rsplit("/", 1)[-1]


def statements(page: Page) -> Locator:
    return page.locator("#draft li.stmt")


def open_flags(page: Page) -> Locator:
    return page.locator("#draft li.stmt.flag")


def dosed_medicine(page: Page) -> tuple[str, str]:
    """(statement id, text) of a supported statement that cites one order and states a dose."""
    for li in statements(page).all():
        text = li.locator(".text").inner_text()
        cites = li.locator("button.chip").evaluate_all("bs => bs.map(b => b.dataset.cite)")
        if (li.get_attribute("data-verdict") == "supported" and len(cites) == 1
                and cites[0].startswith("MedicationRequest/") and re.search(r"\b\d+ mg\b", text)):
            return (li.get_attribute("id") or "").removeprefix("st-"), text
    raise AssertionError("no supported medicine statement with a dose in this draft")


def wrong_dose(text: str) -> str:
    """The same sentence with its first mg dose multiplied by ten."""
    return re.sub(r"\b(\d+) mg\b", lambda m: f"{int(m.group(1)) * 10} mg", text, count=1)
