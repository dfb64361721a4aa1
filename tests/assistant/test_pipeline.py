"""The drafting pipeline end to end, on real components: the chart store, the embedded Qdrant
index, MiniLM embeddings, the checks, and real models (llama.cpp in process and llama.cpp's
OpenAI-compatible server). No assertion looks at a model's wording: only shapes, citations,
isolation, streaming and the fallback behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chartdraft_guardrails.api import is_clinical

from assistant.draft import Draft
from assistant.pipeline import DraftRequest, run_draft
from assistant.runtime import Runtime
from assistant.settings import Settings
from retrieval.ingest import ingest_paths
from retrieval.synth import write

ROOT = Path(__file__).resolve().parents[2]
SYNTHEA = ROOT.parent / "shared" / "data" / "synthea-r4-bundles"
DOC_TYPES = ["summary", "discharge-instructions", "prior-auth"]


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write(3, 4242, tmp_path_factory.mktemp("charts"))


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, charts: list[Path]) -> Iterator[Runtime]:
    rt = Runtime(Settings(data_dir=tmp_path_factory.mktemp("data"), backend="extractive"))
    paths: list[Path] = list(charts)
    if SYNTHEA.is_dir():
        paths.append(sorted(SYNTHEA.glob("*.json"))[0])
    report = ingest_paths(paths, store=rt.store, index=rt.index, embedder=rt.embedder)
    assert not report.issues, report.issues
    yield rt
    rt.close()


def _patients(rt: Runtime) -> list[str]:
    return [p.id for p in rt.store.patients()]


def _synthetic(rt: Runtime, charts: list[Path]) -> list[str]:
    import json

    ids = []
    for c in charts:
        bundle = json.loads(c.read_text())
        ids += [e["resource"]["id"] for e in bundle["entry"]
                if e["resource"]["resourceType"] == "Patient"]
    return ids


def _assert_well_formed(draft: Draft, rt: Runtime) -> None:
    shown = {e.id: e for e in draft.evidence}
    assert draft.sections, "a draft always has its sections"
    for e in draft.evidence:  # nothing of another patient was ever shown
        assert e.kind == "knowledge" or e.patient_id == draft.patient_id
    for st in draft.statements():
        for c in st.citations:
            assert c in shown, f"{c} cited but not shown"
        # Every clinical sentence was checked; "Not documented in the chart." claims nothing.
        assert st.results or not is_clinical(st.text), st.text
    assert draft.status == "draft"
    assert draft.timings["total"] > 0


def _collect(events: list[dict[str, Any]]) -> list[tuple[str, str, tuple[str, ...]]]:
    """Replay the event stream: statements, then the policy's revisions and drops."""
    order: list[str] = []
    seen: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for ev in events:
        st = ev.get("statement")
        if ev["type"] in ("statement", "revised") and st is not None:
            if st.id not in seen:
                order.append(st.id)
            seen[st.id] = (ev["section"], st.text, tuple(st.citations))
        elif ev["type"] == "dropped":
            seen.pop(ev["statement_id"], None)
    return [seen[i] for i in order if i in seen]


def _final(draft: Draft) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(s.title, st.text, tuple(st.citations)) for s in draft.sections for st in s.statements]


@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_extractive_drafts_every_doc_type(runtime: Runtime, charts: list[Path],
                                          doc_type: str) -> None:
    for pid in _synthetic(runtime, charts):
        events: list[dict[str, Any]] = []
        draft = run_draft(runtime, DraftRequest(pid, doc_type, backend="extractive"),
                          on_event=events.append)
        _assert_well_formed(draft, runtime)
        assert draft.backend == "extractive" and draft.fallback_reason is None
        assert _collect(events) == _final(draft)
        assert events[-1]["type"] == "done"


def test_discharge_states_every_active_medication_and_allergy(runtime: Runtime,
                                                               charts: list[Path]) -> None:
    for pid in _synthetic(runtime, charts):
        draft = run_draft(runtime, DraftRequest(pid, "discharge-instructions",
                                                backend="extractive"))
        cited = {c for st in draft.statements() for c in st.citations}
        chart = runtime.store.evidence_for(pid)
        active_meds = {e.id for e in chart if e.resource_type == "MedicationRequest"
                       and e.data.get("status") == "active"}
        allergies = {e.id for e in chart if e.resource_type == "AllergyIntolerance"}
        assert active_meds <= cited, active_meds - cited
        assert allergies <= cited, allergies - cited
        assert not draft.checks.get("omissions")


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason="../shared/data is not present")
def test_discharge_for_a_shared_synthea_patient(runtime: Runtime, charts: list[Path]) -> None:
    synthetic = set(_synthetic(runtime, charts))
    pid = next(p for p in _patients(runtime) if p not in synthetic)
    draft = run_draft(runtime, DraftRequest(pid, "discharge-instructions", backend="extractive"))
    _assert_well_formed(draft, runtime)


def test_unknown_patient_and_doc_type_are_clear_errors(runtime: Runtime) -> None:
    from retrieval.errors import BadInput, NotFound

    with pytest.raises(NotFound, match="no chart"):
        run_draft(runtime, DraftRequest("nobody", "summary", backend="extractive"))
    with pytest.raises(BadInput, match="summary, discharge-instructions, prior-auth"):
        run_draft(runtime, DraftRequest(_patients(runtime)[0], "poem", backend="extractive"))


def test_model_down_falls_back_to_a_labelled_extractive_draft(
    runtime: Runtime, charts: list[Path], dead_url: str
) -> None:
    rt = Runtime(runtime.settings.model_copy(update={
        "backend": "openai", "openai_base_urls": [dead_url], "retries": 0,
        "connect_timeout_s": 0.5}))
    rt.__dict__.update(store=runtime.store, index=runtime.index, embedder=runtime.embedder)
    pid = _synthetic(runtime, charts)[0]
    events: list[dict[str, Any]] = []
    draft = run_draft(rt, DraftRequest(pid, "summary"), on_event=events.append)
    assert draft.fallback_reason and "unavailable" in draft.fallback_reason
    assert draft.backend == "extractive"
    assert any(e["type"] == "fallback" for e in events)
    _assert_well_formed(draft, runtime)


@pytest.mark.llm
def test_embedded_model_constrained_discharge(runtime: Runtime, charts: list[Path]) -> None:
    rt = Runtime(runtime.settings.model_copy(update={"backend": "embedded",
                                                      "context_tokens": 4096}))
    rt.__dict__.update(store=runtime.store, index=runtime.index, embedder=runtime.embedder)
    pid = _synthetic(runtime, charts)[0]
    events: list[dict[str, Any]] = []
    draft = run_draft(rt, DraftRequest(pid, "discharge-instructions"), on_event=events.append)
    _assert_well_formed(draft, runtime)
    assert draft.backend == "embedded" and draft.mode == "constrained"
    assert draft.tokens_out > 0 and draft.prompt_version
    # Facts cannot change in constrained mode: every statement the model wrote is supported.
    for st in draft.statements():
        if st.origin == "model":
            assert st.verdict == "supported"
    assert _collect(events) == _final(draft)


@pytest.mark.llm
@pytest.mark.parametrize("doc_type", DOC_TYPES)
def test_free_mode_against_a_real_llama_cpp_server(
    runtime: Runtime, charts: list[Path], llama_server: str, doc_type: str
) -> None:
    rt = Runtime(runtime.settings.model_copy(update={
        "backend": "openai", "drafting_mode": "free", "openai_base_urls": [llama_server],
        "openai_model": "chartdraft", "context_tokens": 4096, "max_output_tokens": 256,
        "reask_attempts": 1, "read_timeout_s": 600.0}))
    rt.__dict__.update(store=runtime.store, index=runtime.index, embedder=runtime.embedder)
    pid = _synthetic(runtime, charts)[1]
    events: list[dict[str, Any]] = []
    draft = run_draft(rt, DraftRequest(pid, doc_type), on_event=events.append)
    _assert_well_formed(draft, runtime)
    assert draft.prompt_hash
    if draft.fallback_reason:
        # A 135M model may loop without closing one statement: then the draft is the labelled
        # extractive one, and the parser's report of what was wrong is kept on the draft.
        assert draft.backend == "extractive"
        assert "no usable statement" in draft.fallback_reason, draft.fallback_reason
        # ... with the parser's report of what was wrong, or the note that nothing came back.
        assert draft.checks.get("parse_problems") or "empty answer" in draft.fallback_reason
    else:
        assert draft.mode == "free" and draft.backend == "openai"
        # What streamed is what was kept (after the policy's revisions and drops).
        assert _collect(events) == _final(draft)
