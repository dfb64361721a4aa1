"""The review screen's parts, each on its own: the sticky bar and its flag links, a disabled
Sign that leads to the flag, accept per statement and per section, shortcuts that stay quiet while
typing, origin marks, readable chip names while streaming, Cancel, and a flag that opens its
source with the passage highlighted."""

from __future__ import annotations

import re
import time

from api_service import Service
from playwright.sync_api import Page, Route, expect
from test_review_speed import two_flag_draft
from ui_flows import dev_signin, new_draft, statements


def _open(page: Page, service: Service, draft_id: str) -> None:
    dev_signin(page, service)
    page.goto(f"{service.url}/ui/drafts/{draft_id}")
    expect(page.locator("#draft-status")).to_contain_text("Draft ready")


def test_bar_stays_visible_and_its_flag_links_lead_to_the_flags(page: Page,
                                                                service: Service) -> None:
    d = two_flag_draft(service)
    _open(page, service, d["id"])
    bar = page.get_by_role("region", name="Review")
    expect(bar.locator("#flag-links")).to_contain_text("2 open flags")
    expect(bar.locator("#review-progress")).to_have_text(re.compile(r"Reviewed 0 of \d+"))
    expect(bar.locator("#key-help")).to_contain_text("n / p")
    page.mouse.wheel(0, 5000)
    page.wait_for_function("window.scrollY > 500")
    expect(bar).to_be_in_viewport()  # sticky: still on screen far down the page
    # A disabled Sign leads to the first open flag.
    expect(page.locator("#sign")).to_be_disabled()
    page.locator("#sign").click(force=True)  # aria-disabled: it stays clickable and focusable
    first = page.locator(f"#st-{d['open_flags'][0]}")
    expect(first).to_be_focused()
    expect(first).to_be_in_viewport()
    # Each flag link scrolls to and focuses its statement.
    page.locator("#flag-links a").nth(1).click()
    second = page.locator(f"#st-{d['open_flags'][1]}")
    expect(second).to_be_focused()
    expect(second).to_be_in_viewport()
    # The help lists every key.
    page.keyboard.press("?")
    keys = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(keys).to_contain_text("accept the whole section")
    page.keyboard.press("Escape")


def test_accept_per_statement_and_per_section(page: Page, service: Service) -> None:
    d = two_flag_draft(service)
    _open(page, service, d["id"])
    n = statements(page).count()
    plain = page.locator("#draft li.stmt:not(.flag)").first
    plain.hover()
    plain.get_by_role("button", name="Accept").click()
    expect(page.locator("#review-progress")).to_have_text(f"Reviewed 1 of {n}")
    expect(plain).to_have_class(re.compile(r"\breviewed\b"))
    # A section with a flag: accepting the section leaves the flag open.
    flagged_sec = page.locator("#draft section.dsec", has=page.locator("li.stmt.flag")).first
    in_sec = flagged_sec.locator("li.stmt").count()
    flags_in_sec = flagged_sec.locator("li.stmt.flag").count()
    flagged_sec.get_by_role("button", name=re.compile("^Accept section")).click()
    expect(flagged_sec.locator("li.stmt.reviewed")).to_have_count(in_sec - flags_in_sec)
    expect(flagged_sec.locator("li.stmt.flag")).to_have_count(flags_in_sec)
    expect(page.locator("#flag-links a")).to_have_count(2)
    # Progress is kept for this tab across a reload.
    page.reload()
    expect(page.locator("#draft-status")).to_contain_text("Draft ready")
    expect(flagged_sec.locator("li.stmt.reviewed")).to_have_count(in_sec - flags_in_sec)


def test_shortcuts_do_not_fire_while_typing(page: Page, service: Service) -> None:
    d = two_flag_draft(service)
    _open(page, service, d["id"])
    page.keyboard.press("j")
    cur = page.locator("#draft li.stmt:focus")
    expect(cur).to_have_count(1)
    sid = cur.get_attribute("id") or ""
    page.keyboard.press("e")
    box = page.locator(f"#edit-{sid.removeprefix('st-')}")
    expect(box).to_be_focused()
    box.press("End")
    page.keyboard.type(" nasx?")  # n, a, s, x and ? are shortcuts elsewhere
    expect(box).to_have_value(re.compile(r" nasx\?$"))
    expect(page.locator("#sign-dialog")).to_have_count(0)
    expect(page.locator("#keys-dialog")).to_have_count(0)
    expect(page.locator("#review-progress")).to_have_text(re.compile(r"Reviewed 0 of"))


def test_every_statement_is_marked_by_origin(page: Page, service: Service) -> None:
    d = two_flag_draft(service)
    _open(page, service, d["id"])
    words = {"composed": "composed", "extractive": "composed", "clinician": "edited by clinician"}
    for sec in d["sections"]:
        for st in sec["statements"]:
            mark = page.locator(f"#st-{st['id']} .origin")
            expect(mark).to_have_text(words.get(st["origin"], re.compile("model")))
    # The two edited statements say so; the extractive draft says no model wrote it.
    expect(page.locator("#draft .origin", has_text="edited by clinician")).to_have_count(2)
    expect(page.locator("#extractive-banner")).to_contain_text("without a language model")


def test_a_draft_with_no_model_sentence_says_so_in_one_line(page: Page, service: Service) -> None:
    """A model backend that wrote nothing (constrained summary: all composed) is labelled."""
    d = two_flag_draft(service)

    def as_model_backend(route: Route) -> None:
        body = route.fetch().json()
        body["backend"], body["mode"] = "openai", "constrained"
        route.fulfill(json=body)

    page.route(f"**/v1/drafts/{d['id']}", as_model_backend)
    _open(page, service, d["id"])
    expect(page.locator("#composed-banner")).to_have_text(
        "Composed without the language model. Every sentence is built from the chart by rules, "
        "each cited.")
    expect(page.locator("#extractive-banner")).to_have_count(0)


def test_chips_have_readable_names_while_streaming(page: Page, service: Service) -> None:
    """The final draft (with its evidence list) is held back: the chips are named from the
    streamed events alone."""
    dev_signin(page, service)
    with service.client(service.token("clinician")) as c:
        r = c.post("/v1/drafts", json={"patient_id": service.patient_ids[0],
                                       "doc_type": "discharge-instructions"})
        draft_id = r.json()["id"]
        for _ in range(300):
            if c.get(f"/v1/drafts/{draft_id}").json()["status"] == "draft":
                break
            time.sleep(0.2)
        final = c.get(f"/v1/drafts/{draft_id}").json()
    # Replayed as if it were running: the page is told the draft is still generating, and the
    # GET that would bring the finished draft is held until the chips have been checked.
    held: list[Route] = []

    def first_as_generating(route: Route) -> None:
        if not held and not getattr(first_as_generating, "done", False):
            first_as_generating.done = True  # type: ignore[attr-defined]
            route.fulfill(json=dict(final, status="generating", sections=[], evidence=[]))
        else:
            held.append(route)

    page.route(f"**/v1/drafts/{draft_id}", first_as_generating)
    page.goto(f"{service.url}/ui/drafts/{draft_id}")
    titles = {e["id"]: e["title"] for e in final["evidence"]}
    chip = page.locator("#draft button.chip").first
    expect(chip).to_be_visible()
    expect(page.locator("#draft-status")).to_contain_text("Drafting")  # still streaming
    cid = chip.get_attribute("data-cite") or ""
    expect(chip).to_have_attribute("aria-label", re.compile(re.escape(titles[cid])))
    assert chip.inner_text().strip().startswith(f"[1] {titles[cid][:20]}")
    expect(page.locator("#cancel-draft")).to_be_visible()  # Cancel is offered while streaming
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(100)
    assert len(held) == 1, "the page should now be asking for the finished draft"
    held[0].continue_()
    expect(page.locator("#draft-status")).to_contain_text("Draft ready", timeout=15_000)


def test_cancel_button_reports_a_draft_that_already_finished(page: Page,
                                                             service: Service) -> None:
    """The event stream is held open so the page still shows a running draft; the draft itself
    has finished on the server, which answers the cancel with 409, shown as an error."""
    dev_signin(page, service)
    with service.client(service.token("clinician")) as c:
        draft_id = c.post("/v1/drafts", json={"patient_id": service.patient_ids[1],
                                              "doc_type": "summary"}).json()["id"]
    page.route(f"**/v1/drafts/{draft_id}/events", lambda route: None)  # never answered
    page.route(f"**/v1/drafts/{draft_id}", lambda route: route.fulfill(
        json=dict(route.fetch().json(), status="generating", sections=[])))
    page.goto(f"{service.url}/ui/drafts/{draft_id}")
    cancel_calls: list[str] = []
    page.on("request",
            lambda r: cancel_calls.append(r.method) if r.url.endswith("/cancel") else None)
    for _ in range(300):  # let the server finish it
        with service.client(service.token("clinician")) as c:
            if c.get(f"/v1/drafts/{draft_id}").json()["status"] == "draft":
                break
        time.sleep(0.2)
    page.get_by_role("button", name="Cancel draft").click()
    expect(page.locator("#alerts .error-box")).to_contain_text("nothing to cancel")
    assert cancel_calls == ["POST"]
    expect(page.get_by_role("button", name="Cancel draft")).to_be_enabled()


def test_a_flag_opens_its_source_with_the_passage_highlighted(page: Page,
                                                             service: Service) -> None:
    d = two_flag_draft(service)
    _open(page, service, d["id"])
    st = next(s for sec in d["sections"] for s in sec["statements"] if s["id"] in d["open_flags"]
              and any(r["verdict"] != "supported" and r["evidence_ids"] for r in s["results"]))
    flag = next(r for r in st["results"] if r["verdict"] != "supported" and r["evidence_ids"])
    want = next((e for e in flag["evidence_ids"] if e in st["citations"]), flag["evidence_ids"][0])
    li = page.locator(f"#st-{st['id']}")
    li.locator(".reason-link").first.click()
    expect(page.locator("#panel")).to_be_visible()
    expect(page.locator("#panel code")).to_have_text(want)
    expect(page.locator("#panel-flag")).to_contain_text(flag["reason"][:40])
    passage = page.locator("#source-text mark.passage")
    expect(passage).to_have_count(1)
    assert len(passage.inner_text().split()) >= 3  # a passage, not a single word
    page.keyboard.press("Escape")
    expect(li.locator(".reason-link").first).to_be_focused()
    # The same from the keyboard: o on a flagged statement opens the flag's source.
    li.focus()
    page.keyboard.press("o")
    expect(page.locator("#panel code")).to_have_text(want)


def test_not_verified_is_styled_apart_from_a_contradiction(page: Page, service: Service) -> None:
    new_draft(page, service, service.patient_ids[0])
    styles = page.evaluate("""(() => {
        const probe = (v) => {
          const li = document.createElement('li');
          li.className = 'stmt flag'; li.dataset.verdict = v;
          document.querySelector('#draft ol').append(li);
          const s = getComputedStyle(li);
          const out = [s.borderLeftStyle, s.backgroundColor];
          li.remove(); return out; };
        return { nv: probe('not_verified'), c: probe('contradicted') }; })()""")
    assert styles["nv"][0] == "dashed" and styles["c"][0] == "solid"
    assert styles["nv"][1] != styles["c"][1]
