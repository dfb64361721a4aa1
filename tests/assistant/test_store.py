"""The service store on SQLite and PostgreSQL: drafts round-trip, reviews, feedback, outbox."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from chartdraft_guardrails.statement import CheckResult
from service_store_fixtures import BACKENDS, open_store

from assistant.draft import Draft, DraftStatement, Section
from assistant.store import Store
from retrieval.errors import Conflict, NotFound


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from open_store(request.param, tmp_path)


def _draft(patient: str = "p-1") -> Draft:
    st = DraftStatement(text="Synthetic statement.", citations=["Condition/c1"],
                        results=[CheckResult(check="support", verdict="unsupported", reason="x")])
    return Draft(patient_id=patient, doc_type="summary", status="draft",
                 sections=[Section(title="Problems", statements=[st])])


def test_draft_round_trip_keeps_statements_and_verdicts(store: Store) -> None:
    d = _draft()
    store.save_draft(d, chart_version="v1", created_by="clin-1")
    got = store.get_draft(d.id)
    assert got.model_dump() == d.model_dump()
    assert got.statements()[0].flagged and got.open_flags()[0].id == d.statements()[0].id
    assert store.draft_meta(d.id)["chart_version"] == "v1"


def test_update_and_latest(store: Store) -> None:
    old, new = _draft(), _draft()
    store.save_draft(old, chart_version="v1")
    store.save_draft(new, chart_version="v2")
    new.status = "signed"
    store.save_draft(new)  # no chart_version given: the stored one stays
    latest = store.latest_draft("p-1", "summary")
    assert latest is not None and latest[0].id == new.id and latest[1] == "v2"
    assert latest[0].status == "signed"
    assert store.latest_draft("p-2", "summary") is None
    assert {r["id"] for r in store.list_drafts("p-1")} == {old.id, new.id}


def test_unknown_draft_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound) as exc:
        store.get_draft("nope")
    assert exc.value.fix


def test_unfinished_drafts_marked_failed_at_start(store: Store) -> None:
    d = _draft()
    d.status = "generating"
    store.save_draft(d)
    assert store.mark_unfinished_failed("service restarted") == 1
    assert store.get_draft(d.id).status == "failed"
    assert store.draft_meta(d.id)["error"] == "service restarted"


def test_reviews_feedback_and_cds_feedback(store: Store) -> None:
    d = _draft()
    store.save_draft(d)
    store.add_review(d.id, "clin-1", "acknowledge", statement_id="s1", detail={"note": "ok"})
    store.add_review(d.id, "clin-1", "sign")
    assert [r["action"] for r in store.reviews(d.id)] == ["acknowledge", "sign"]
    store.add_feedback(d.id, "clin-1", "down", "missed a med")
    assert store.feedback_for(d.id)[0]["rating"] == "down"
    store.add_cds_feedback("chartdraft-patient-view", "card-1", "overridden",
                           override_reason={"reason": {"code": "not-relevant"}}, actor="ehr")
    rows = store.cds_feedback("chartdraft-patient-view")
    assert rows[0]["override_reason"]["reason"]["code"] == "not-relevant"


def test_outbox_retry_state(store: Store) -> None:
    store.enqueue_outbox("d1", {"resourceType": "Bundle", "type": "transaction"})
    with pytest.raises(Conflict):
        store.enqueue_outbox("d1", {})
    assert [r["draft_id"] for r in store.due_outbox()] == ["d1"]
    store.outbox_result("d1", ok=False, error="connection refused", retry_in=60)
    assert store.due_outbox() == []  # backed off
    later = datetime.now(UTC) + timedelta(seconds=120)
    assert [r["draft_id"] for r in store.due_outbox(later)] == ["d1"]
    item = store.outbox_item("d1")
    assert item is not None and item["attempts"] == 1 and item["last_error"]
    store.outbox_result("d1", ok=True)
    item = store.outbox_item("d1")
    assert item is not None and item["status"] == "sent" and item["attempts"] == 2
    assert store.due_outbox(later) == []


def test_failure_reason_kept_with_the_draft(store: Store) -> None:
    d = _draft()
    d.status = "failed"
    store.save_draft(d, error="order 'x' is not in this patient's chart")
    meta = store.draft_meta(d.id)
    assert meta["status"] == "failed" and meta["error"].startswith("order 'x'")
    assert store.get_draft(d.id).status == "failed"


def test_sqlite_store_uses_the_shared_pragmas(tmp_path: Path) -> None:
    # One connect hook for both SQLite stores (retrieval.chart_store.sqlite_pragmas): WAL so
    # readers never wait for the writer, NORMAL sync so an audit append is not an fsync.
    store = Store(f"sqlite:///{tmp_path / 'service.db'}")
    try:
        with store.engine.connect() as c:
            got = [c.exec_driver_sql(f"PRAGMA {p}").scalar()
                   for p in ("journal_mode", "busy_timeout", "synchronous")]
        assert got == ["wal", 10000, 1]  # synchronous: 1 is NORMAL
    finally:
        store.close()


def test_draft_ref_names_the_latest_version_without_its_json(store: Store) -> None:
    old, new = _draft(), _draft()
    store.save_draft(old, chart_version="v1")
    store.save_draft(new, chart_version="v2")
    ref = store.latest_draft_ref("p-1", "summary")
    latest = store.latest_draft("p-1", "summary")
    assert ref is not None and latest is not None
    assert (ref.id, ref.status, ref.chart_version) == (latest[0].id, "draft", latest[1])
    assert store.latest_draft_ref("p-1", "summary", statuses=("signed",)) is None
    assert store.latest_draft_ref("p-2", "summary") is None
    new.status = "signed"
    store.save_draft(new)  # every save is a new version: (id, updated_at) changes
    again = store.draft_ref(new.id)
    assert again.status == "signed" and again.updated_at != ref.updated_at
    assert store.get_draft_stamped(new.id)[1] == again.updated_at
    with pytest.raises(NotFound):
        store.draft_ref("nope")
