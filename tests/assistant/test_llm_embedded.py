"""EmbeddedBackend: the packaged SmolLM2 GGUF run in process by llama-cpp-python."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import jsonschema
import pytest

from assistant.llm.base import LLMBackend
from assistant.llm.citations import (
    draft_schema,
    iter_statements,
    parse_draft,
    parse_rephrase,
    rephrase_schema,
)
from assistant.llm.embedded import EmbeddedBackend, default_gguf_path
from prompts.registry import render, render_rephrase, section_titles
from retrieval.errors import ModelUnavailable
from retrieval.evidence import Evidence

pytestmark = pytest.mark.llm

EVIDENCE = [
    Evidence(id="MedicationRequest/m1", patient_id="p1", resource_type="MedicationRequest",
             date="2024-03-01", title="Lisinopril",
             text="Lisinopril 10 mg oral tablet, 1 tablet once daily by mouth, active"),
    Evidence(id="Observation/o1", patient_id="p1", resource_type="Observation",
             date="2024-02-20", title="Blood pressure", text="Blood pressure 150/95 mmHg"),
]
SHOWN = {e.id for e in EVIDENCE}


@pytest.fixture(scope="module")
def backend(gguf_path: Path) -> EmbeddedBackend:
    return EmbeddedBackend(gguf_path, context_tokens=4096, threads=2)


def test_default_gguf_is_found_in_the_installed_package():
    path = default_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000


def test_missing_model_file_is_a_clear_model_unavailable(tmp_path):
    with pytest.raises(ModelUnavailable, match="not found") as exc:
        EmbeddedBackend(tmp_path / "nope.gguf")
    assert exc.value.fix and "CHARTDRAFT_EMBEDDED_MODEL_PATH" in exc.value.fix


def test_a_file_that_is_not_gguf_is_a_clear_model_unavailable(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelUnavailable, match="could not load"):
        EmbeddedBackend(bad)


def test_complete_returns_json_under_the_draft_schema(backend: EmbeddedBackend):
    assert isinstance(backend, LLMBackend) and backend.health()
    schema = draft_schema(sorted(SHOWN), section_titles("summary"))
    r = render("summary", evidence=EVIDENCE, patient={"name": "Test Patient"})
    out = backend.complete(r.messages, schema=schema, max_tokens=300)
    assert out.backend == "embedded" and out.tokens_in > 0 and out.tokens_out > 0
    assert backend.last_usage == {"prompt_tokens": out.tokens_in,
                                  "completion_tokens": out.tokens_out,
                                  "total_tokens": out.tokens_in + out.tokens_out}
    res = parse_draft(out.text, shown_ids=SHOWN)
    if out.finish_reason == "stop":
        jsonschema.validate(json.loads(out.text), schema)
    for st in res.statements():
        assert set(st.citations) <= SHOWN


def test_stream_equals_final_parse_and_reports_usage(backend: EmbeddedBackend):
    schema = draft_schema(sorted(SHOWN), section_titles("summary"))
    r = render("summary", evidence=EVIDENCE, patient={})
    pieces: list[str] = []

    def chunks():
        for p in backend.stream(r.messages, schema=schema, max_tokens=200):
            pieces.append(p)
            yield p

    streamed = list(iter_statements(chunks(), shown_ids=SHOWN))
    final = parse_draft("".join(pieces), shown_ids=SHOWN)
    assert streamed == [(t, s) for t, ss in final.sections for s in ss]
    u = backend.last_usage
    assert u and u["completion_tokens"] == len(pieces) and u["prompt_tokens"] > 0
    # the streamed prompt count agrees with the non-streamed one for the same messages
    out = backend.complete(r.messages, schema=schema, max_tokens=1)
    assert out.tokens_in == u["prompt_tokens"]


def test_rephrase_returns_one_text_field(backend: EmbeddedBackend):
    r = render_rephrase("Take lisinopril 10 mg by mouth once a day.", evidence=EVIDENCE[:1])
    out = backend.complete(r.messages, schema=rephrase_schema(), max_tokens=80)
    text, problems = parse_rephrase(out.text)
    if out.finish_reason == "stop":
        assert text and not problems
        jsonschema.validate(json.loads(out.text), rephrase_schema())


def test_count_tokens_uses_the_models_tokenizer(backend: EmbeddedBackend):
    assert backend.count_tokens("") == 0
    short, long = backend.count_tokens("metformin"), backend.count_tokens("metformin " * 50)
    assert 0 < short < long


def test_concurrent_calls_are_serialized_not_corrupted(backend: EmbeddedBackend):
    msgs = [{"role": "user", "content": "Say ok."}]
    solo = backend.complete(msgs, max_tokens=8).text
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(backend.complete(msgs, max_tokens=8).text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == [solo] * 3  # temperature 0: same answer when calls don't interleave
