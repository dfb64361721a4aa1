"""How fast is a review? Counts the clicks and keystrokes of the fastest path through a
discharge-instructions draft with about 25 statements and two open flags, and the Tab stops
from the top of the page to Sign. pytest -s prints both."""

from __future__ import annotations

import re
import time
from typing import Any

from api_service import Service
from playwright.sync_api import Page, expect
from ui_flows import dev_signin, wrong_dose


def _wait_done(c: Any, draft_id: str) -> dict[str, Any]:
    for _ in range(300):
        d: dict[str, Any] = c.get(f"/v1/drafts/{draft_id}").json()
        if d["status"] not in ("pending", "generating"):
            return d
        time.sleep(0.3)
    raise AssertionError(f"draft {draft_id} did not finish")


def two_flag_draft(service: Service) -> dict[str, Any]:
    """The largest discharge draft of the synthetic patients, with exactly two open flags: two
    doses made ten times too big by an edit (contradicted), any other flag acknowledged."""
    with service.client(service.token("clinician")) as c:
        drafts = []
        for pid in service.patient_ids:
            r = c.post("/v1/drafts", json={"patient_id": pid, "doc_type": "discharge-instructions"})
            assert r.status_code == 202, r.text
            drafts.append(_wait_done(c, r.json()["id"]))
        d = max(drafts, key=lambda x: sum(len(s["statements"]) for s in x["sections"]))
        for sid in d["open_flags"]:
            c.post(f"/v1/drafts/{d['id']}/acknowledge", json={"statement_id": sid, "note": "setup"})
        dosed = [s for sec in d["sections"] for s in sec["statements"]
                 if s["verdict"] == "supported" and re.search(r"\b\d+ mg\b", s["text"])
                 and any(x.startswith("MedicationRequest/") for x in s["citations"])][:2]
        assert len(dosed) == 2, "the draft needs two dosed medicine statements"
        r = c.patch(f"/v1/drafts/{d['id']}", json={"edits": [
            {"statement_id": s["id"], "text": wrong_dose(s["text"])} for s in dosed]})
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        assert len(out["open_flags"]) == 2, out["open_flags"]
        return out


class Counter:
    """Every click and key press of the reviewer goes through here; filling one text field
    counts as one action (its characters are reported separately)."""

    def __init__(self, page: Page) -> None:
        self.page, self.clicks, self.keys, self.typed = page, 0, 0, 0

    def click(self, selector: str) -> None:
        self.page.locator(selector).first.click()
        self.clicks += 1

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)
        self.keys += 1

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)
        self.keys += 1
        self.typed += len(text)

    @property
    def actions(self) -> int:
        return self.clicks + self.keys


def tab_stops_to_sign(page: Page, limit: int = 400) -> int:
    """Tab presses from the top of the page until Sign has the focus: a click on the empty
    top-left corner of the page header puts the browser's Tab starting point there."""
    page.evaluate("() => { document.activeElement.blur(); window.scrollTo(0, 0); }")
    page.mouse.click(2, 2)
    for n in range(1, limit + 1):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement && document.activeElement.id === 'sign'"):
            return n
    raise AssertionError(f"Sign not reached in {limit} Tab presses")


def _open_review(page: Page, service: Service, d: dict[str, Any]) -> tuple[int, int]:
    dev_signin(page, service)
    page.goto(f"{service.url}/ui/drafts/{d['id']}")
    expect(page.locator("#draft-status")).to_contain_text("Draft ready")
    expect(page.locator("#flag-links a")).to_have_count(2)
    n = sum(len(s["statements"]) for s in d["sections"])
    return n, int(page.evaluate("() => document.documentElement.scrollHeight"))


def _sign_in_dialog(page: Page, count: Counter) -> None:
    """s opens the sign dialog; a contradiction acknowledged without a note needs a reason."""
    count.press("s")
    dialog = page.get_by_role("dialog", name=re.compile("Sign"))
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Filed with 2 acknowledged flags")
    if page.locator("#sign-reason").count():
        expect(page.locator("#sign-reason")).to_be_focused()
        count.press("Enter")  # an empty reason is refused, in the dialog
        expect(page.locator("#sign-error")).to_contain_text("Give a reason")
        count.keys -= 1  # the refused attempt is part of the test, not of the path
        count.type("Doses confirmed with pharmacy")
    count.press("Enter")
    expect(page.locator("#draft-status")).to_have_text("Signed.")


def _report(what: str, n: int, count: Counter, tabs: int, height: int) -> None:
    print(f"\nREVIEW SPEED ({what}): {n} statements, 2 flags: {count.actions} actions "
          f"({count.clicks} clicks, {count.keys} keystrokes, {count.typed} characters typed "
          f"in one field); {tabs} Tab stops from the top to Sign; page {height}px high")


def test_review_and_sign_fastest_path(page: Page, service: Service) -> None:
    """n, a, n, a (next flag, acknowledge; twice), s (sign), the reason, Enter."""
    d = two_flag_draft(service)
    n, height = _open_review(page, service, d)
    count = Counter(page)
    for left in (1, 0):
        count.press("n")
        expect(page.locator("#draft li.stmt.flag:focus")).to_have_count(1)
        count.press("a")
        expect(page.locator("#flag-links a")).to_have_count(left)  # the server said yes
    expect(page.locator("#flag-links")).to_contain_text("No open flags")
    expect(page.locator("#sign")).to_be_enabled()
    tabs = tab_stops_to_sign(page)
    _sign_in_dialog(page, count)
    _report("fastest path", n, count, tabs, height)
    with service.client(service.token("clinician")) as c:
        signed = c.get(f"/v1/drafts/{d['id']}").json()
    assert signed["status"] == "signed"
    flagged = [s for sec in signed["sections"] for s in sec["statements"] if s["flagged"]]
    assert flagged and all(s["acknowledged"] for s in flagged)
    assert all(s["acknowledgement_note"] for s in flagged if s["verdict"] == "contradicted")
    assert count.actions < 10, count.actions
    assert tabs <= 10, tabs


def test_review_every_section_then_sign(page: Page, service: Service) -> None:
    """The full review: every section accepted with one key each (A), both flags acknowledged
    one by one, then sign. Progress reaches every statement."""
    d = two_flag_draft(service)
    n, height = _open_review(page, service, d)
    sections = sum(1 for sec in d["sections"] if sec["statements"])
    count = Counter(page)
    count.press("j")  # the first statement; A accepts its section and moves to the next one
    for _ in range(sections):
        count.press("A")
    for left in (1, 0):  # flags are never accepted wholesale: each one on its own
        count.press("n")
        count.press("a")
        expect(page.locator("#flag-links a")).to_have_count(left)
    expect(page.locator("#review-progress")).to_have_text(f"Reviewed {n} of {n}")
    tabs = tab_stops_to_sign(page)
    _sign_in_dialog(page, count)
    _report(f"every section accepted, {sections} sections", n, count, tabs, height)
    assert count.actions <= sections + 8, count.actions
