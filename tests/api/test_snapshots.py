"""Draft snapshots (the cached JSON behind the summary and CDS patient-view calls): the same view
as the draft endpoint, rebuilt whenever the draft is saved again."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from chartdraft_guardrails.statement import CheckResult

sys.path.insert(0, str(Path(__file__).parents[1] / "assistant"))

from service_store_fixtures import BACKENDS, open_store  # noqa: E402

from assistant.api.snapshots import DraftSnapshot, SnapshotCache  # noqa: E402
from assistant.draft import Draft, DraftStatement, Section  # noqa: E402
from assistant.store import Store  # noqa: E402


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from open_store(request.param, tmp_path)


def _draft() -> Draft:
    ok = DraftStatement(text="Synthetic statement one.", citations=["Condition/c1"],
                        results=[CheckResult(check="support", verdict="supported", reason="")])
    bad = DraftStatement(text="Synthetic statement two.", citations=["Condition/c2"],
                         results=[CheckResult(check="support", verdict="unsupported", reason="x")])
    return Draft(patient_id="p-1", doc_type="summary", status="draft",
                 sections=[Section(title="Problems", statements=[ok, bad])])


def test_snapshot_is_the_draft_view(store: Store) -> None:
    d = _draft()
    snap = DraftSnapshot.of(d)
    view = json.loads(snap.body({"links": {"self": "x"}, "error": None}))
    assert view == json.loads(d.model_dump_json()) | {
        "open_flags": [d.sections[0].statements[1].id], "links": {"self": "x"}, "error": None}
    assert snap.highlights == ("Synthetic statement one.",)  # flagged statements never shown
    assert json.loads(snap.body({})) == json.loads(snap.view)


def test_cache_serves_one_version_until_the_draft_is_saved_again(store: Store) -> None:
    d = _draft()
    store.save_draft(d, chart_version="v1")
    cache = SnapshotCache(size=2)
    ref = store.draft_ref(d.id)
    first = cache.get(store, ref)
    assert cache.get(store, ref) is first  # same version: not parsed again
    d.sections[0].statements[0].text = "Synthetic statement, edited."
    store.save_draft(d)
    second = cache.get(store, store.draft_ref(d.id))
    assert second is not first and second.highlights == ("Synthetic statement, edited.",)
    others = [_draft() for _ in range(2)]
    for o in others:
        store.save_draft(o, chart_version="v1")
        cache.get(store, store.draft_ref(o.id))
    assert d.id not in cache._items and len(cache._items) == 2  # bounded, oldest dropped
