"""OpenAICompatBackend against a REAL llama.cpp server and a scripted misbehaving server."""

from __future__ import annotations

import json
import time

import jsonschema
import pytest

from assistant.llm.base import LLMBackend
from assistant.llm.citations import draft_schema, iter_statements, parse_draft
from assistant.llm.openai_compat import OpenAICompatBackend
from prompts.registry import render, section_titles
from retrieval.errors import ModelUnavailable
from retrieval.evidence import Evidence

MODEL_ALIAS = "chartdraft"  # the llama_server fixture serves the GGUF under this name

EVIDENCE = [
    Evidence(
        id="MedicationRequest/m1",
        patient_id="p1",
        resource_type="MedicationRequest",
        date="2024-03-01",
        title="Metformin",
        text="Metformin 500 mg oral tablet, 1 tablet twice daily by mouth, active",
    ),
    Evidence(
        id="AllergyIntolerance/a1",
        patient_id="p1",
        resource_type="AllergyIntolerance",
        date="2019-05-10",
        title="Penicillin allergy",
        text="Allergy to penicillin V, reaction hives, high criticality, active",
    ),
    Evidence(
        id="Condition/c1",
        patient_id="p1",
        resource_type="Condition",
        date="2018-02-11",
        title="Type 2 diabetes",
        text="Diabetes mellitus type 2, active since 2018-02-11",
    ),
]
SHOWN = {e.id for e in EVIDENCE}


def _backend(urls: list[str], **kw) -> OpenAICompatBackend:
    opts = {
        "model": MODEL_ALIAS,
        "connect_timeout": 1.0,
        "read_timeout": 120.0,
        "retries": 1,
        "circuit_failures": 2,
        "circuit_reset_s": 30.0,
        "context_tokens": 4096,
    }
    opts.update(kw)
    return OpenAICompatBackend(urls, **opts)


def _prompt():
    return render("discharge-instructions", evidence=EVIDENCE, patient={"name": "Test Patient"})


# ------------------------------------------------------------------ real llama.cpp server


@pytest.mark.llm
def test_real_server_complete_returns_json_under_the_schema(llama_server):
    b = _backend([llama_server])
    assert isinstance(b, LLMBackend)
    assert b.health()
    schema = draft_schema(sorted(SHOWN), section_titles("discharge-instructions"))
    out = b.complete(_prompt().messages, schema=schema, max_tokens=400, temperature=0.0)
    assert out.backend == "openai" and out.tokens_in > 0 and out.tokens_out > 0
    res = parse_draft(out.text, shown_ids=SHOWN)
    if out.finish_reason == "stop":
        jsonschema.validate(json.loads(out.text), schema)  # grammar-constrained: always valid
        assert not res.repaired
    for st in res.statements():
        assert set(st.citations) <= SHOWN


@pytest.mark.llm
def test_real_server_stream_equals_final_parse(llama_server):
    b = _backend([llama_server])
    schema = draft_schema(sorted(SHOWN), section_titles("discharge-instructions"))
    pieces: list[str] = []

    def chunks():
        for p in b.stream(_prompt().messages, schema=schema, max_tokens=300):
            pieces.append(p)
            yield p

    streamed = list(iter_statements(chunks(), shown_ids=SHOWN))
    assert len(pieces) > 1  # really streamed, not one blob
    final = parse_draft("".join(pieces), shown_ids=SHOWN)
    assert streamed == [(t, s) for t, ss in final.sections for s in ss]
    assert b.last_usage and b.last_usage["completion_tokens"] > 0
    assert b.last_usage["prompt_tokens"] > 0


@pytest.mark.llm
def test_real_server_style_detection_and_json_schema_fallback(llama_server):
    b = _backend([llama_server])
    assert b.detected_style() == "json_object"  # llama-cpp-python says owned_by "me"
    # A replica believed to speak json_schema is corrected on the first rejection, then remembered
    b.replicas[0].style = "json_schema"
    out = b.complete(
        [{"role": "user", "content": 'Reply with JSON {"text": "ok"}'}],
        schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        max_tokens=30,
    )
    assert "text" in json.loads(out.text)
    assert b.replicas[0].style == "json_object"


@pytest.mark.llm
def test_real_server_counts_with_the_models_tokenizer(llama_server, gguf_path):
    from llama_cpp import Llama

    b = _backend([llama_server])
    text = "Metformin 500 mg oral tablet, twice daily; HbA1c 7.1 %"
    n = b.count_tokens(text)
    assert b.replicas[0].tokenizer == "llamacpp"
    vocab = Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    assert n == len(vocab.tokenize(text.encode(), add_bos=False, special=False))


@pytest.mark.llm
def test_failover_from_a_dead_replica_to_a_live_one(llama_server, dead_url):
    b = _backend([dead_url, llama_server], circuit_failures=1, retries=0)
    msgs = [{"role": "user", "content": "Say ok."}]
    for _ in range(3):
        out = b.complete(msgs, max_tokens=5)
        assert out.tokens_out > 0
    dead, live = b.replicas
    assert dead.breaker.state == "open"  # skipped from now on, until its reset time
    assert live.breaker.state == "closed"


@pytest.mark.llm
def test_round_robin_spreads_calls_over_replicas(llama_server, fake_server):
    fake_server.on(
        "/v1/chat/completions",
        fake_server.Reply(200, fake_server.completion_body('{"text": "fake"}')),
    )
    b = _backend([llama_server, fake_server.base_url], schema_style="json_object")
    msgs = [{"role": "user", "content": "Say ok."}]
    texts = [b.complete(msgs, max_tokens=5).text for _ in range(4)]
    assert texts.count('{"text": "fake"}') == 2  # every other call went to the second replica


# ------------------------------------------------------------------ misbehaving servers
def test_read_timeout_raises_model_unavailable_quickly(fake_server):
    fake_server.on(
        "/v1/chat/completions", fake_server.Reply(200, fake_server.completion_body("{}"), delay=3.0)
    )
    b = _backend([fake_server.base_url], read_timeout=0.4, schema_style="json_object")
    t0 = time.monotonic()
    with pytest.raises(ModelUnavailable, match="read timeout"):
        b.complete([{"role": "user", "content": "x"}], max_tokens=5)
    assert time.monotonic() - t0 < 2.0


def test_stream_that_stalls_raises_model_unavailable(fake_server):
    fake_server.on(
        "/v1/chat/completions",
        fake_server.Reply(200, fake_server.sse_events(["{", '"a"', ":1}"]), sse_delay=2.0),
    )
    b = _backend([fake_server.base_url], read_timeout=0.4, schema_style="json_object")
    got: list[str] = []
    with pytest.raises(ModelUnavailable, match="stalled"):
        for piece in b.stream([{"role": "user", "content": "x"}], max_tokens=5):
            got.append(piece)
    assert got == ["{"]  # what arrived before the stall was delivered


def test_server_down_fails_fast_once_the_circuit_opens(dead_url):
    b = _backend([dead_url], circuit_failures=2, retries=1, circuit_reset_s=60)
    msgs = [{"role": "user", "content": "x"}]
    with pytest.raises(ModelUnavailable, match="cannot connect"):
        b.complete(msgs, max_tokens=5)
    assert b.replicas[0].breaker.state == "open"
    t0 = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="circuit open"):
        b.complete(msgs, max_tokens=5)
    with pytest.raises(ModelUnavailable, match="circuit open"):
        list(b.stream(msgs, max_tokens=5))
    assert time.perf_counter() - t0 < 0.05
    assert b.count_tokens("abcdefgh") == 2  # budgeting falls back to a rough count, never fails
    assert not b.health()


def test_5xx_and_429_are_retried_then_succeed(fake_server):
    fake_server.on(
        "/v1/chat/completions",
        fake_server.Reply(503, {"error": {"message": "loading"}}),
        fake_server.Reply(429, {"error": {"message": "slow down"}}),
        fake_server.Reply(200, fake_server.completion_body('{"text": "ok"}')),
    )
    b = _backend([fake_server.base_url], retries=2, circuit_failures=5, schema_style="json_object")
    out = b.complete([{"role": "user", "content": "x"}], max_tokens=5)
    assert out.text == '{"text": "ok"}'
    assert len(fake_server.requests) == 3
    assert b.replicas[0].breaker.state == "closed"


def test_4xx_is_not_retried_and_does_not_open_the_circuit(fake_server):
    fake_server.on(
        "/v1/chat/completions",
        fake_server.Reply(404, {"error": {"message": "model 'nope' does not exist"}}),
    )
    b = _backend([fake_server.base_url], circuit_failures=1, schema_style="json_object")
    with pytest.raises(ModelUnavailable, match="HTTP 404.*does not exist") as exc:
        b.complete([{"role": "user", "content": "x"}], max_tokens=5)
    assert exc.value.fix and "CHARTDRAFT_OPENAI_MODEL" in exc.value.fix
    assert len(fake_server.requests) == 1
    assert b.replicas[0].breaker.state == "closed"


def test_vllm_is_detected_and_gets_json_schema(fake_server):
    fake_server.on(
        "/v1/models",
        fake_server.Reply(
            200,
            {
                "object": "list",
                "data": [{"id": "chartdraft", "object": "model", "owned_by": "vllm"}],
            },
        ),
    )
    fake_server.on(
        "/v1/chat/completions",
        fake_server.Reply(200, fake_server.completion_body('{"sections": []}')),
    )
    fake_server.on(
        "/tokenize", fake_server.Reply(200, {"count": 7, "tokens": [1] * 7, "max_model_len": 8192})
    )
    b = _backend([fake_server.base_url])
    schema = draft_schema(["Condition/c1"], ["Diagnoses"])
    b.complete([{"role": "user", "content": "x"}], schema=schema, max_tokens=5)
    body = [r for p, r in fake_server.requests if p == "/v1/chat/completions"][0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert body["response_format"]["json_schema"]["strict"] is True
    assert b.count_tokens("anything") == 7
    assert b.replicas[0].tokenizer == "vllm"


def test_api_key_is_sent_as_bearer(fake_server):
    seen: list[dict] = []

    def reply(body: dict):
        seen.append(body)
        return fake_server.Reply(200, fake_server.completion_body("{}"))

    fake_server.routes["/v1/chat/completions"] = reply
    b = _backend([fake_server.base_url], api_key="sk-test", schema_style="json_object")
    b.complete([{"role": "user", "content": "x"}], max_tokens=5)
    assert b._client.headers["Authorization"] == "Bearer sk-test"
    assert seen and seen[0]["model"] == MODEL_ALIAS


def test_malformed_json_from_a_server_is_repaired_and_reported(fake_server):
    good = {
        "sections": [
            {
                "title": "Allergies",
                "statements": [
                    {
                        "text": "You are allergic to penicillin.",
                        "citations": ["AllergyIntolerance/a1"],
                    },
                    {
                        "text": "You take metformin 500 mg twice a day.",
                        "citations": ["MedicationRequest/m1", "Condition/invented"],
                    },
                ],
            }
        ]
    }
    body = "Sure! ```json\n" + json.dumps(good) + "\n``` Let me know."
    fake_server.on(
        "/v1/chat/completions", fake_server.Reply(200, fake_server.completion_body(body))
    )
    b = _backend([fake_server.base_url], schema_style="json_object")
    out = b.complete([{"role": "user", "content": "x"}], max_tokens=50)
    res = parse_draft(out.text, shown_ids=SHOWN)
    assert res.repaired
    assert [len(s) for _, s in res.sections] == [2]
    assert res.statements()[1].citations == ["MedicationRequest/m1"]
    assert any("Condition/invented" in p for p in res.problems)


def test_truncated_stream_keeps_complete_statements(fake_server):
    text = json.dumps(
        {
            "sections": [
                {
                    "title": "Allergies",
                    "statements": [
                        {
                            "text": "You are allergic to penicillin.",
                            "citations": ["AllergyIntolerance/a1"],
                        },
                        {
                            "text": "You take metformin 500 mg twice a day.",
                            "citations": ["MedicationRequest/m1"],
                        },
                    ],
                }
            ]
        }
    )
    cut = text[: text.index("metformin") + 5]
    pieces = [cut[i : i + 7] for i in range(0, len(cut), 7)]
    fake_server.on(
        "/v1/chat/completions", fake_server.Reply(200, fake_server.sse_events(pieces, "length"))
    )
    b = _backend([fake_server.base_url], schema_style="json_object")
    got: list[str] = []

    def chunks():
        for p in b.stream([{"role": "user", "content": "x"}], max_tokens=50):
            got.append(p)
            yield p

    streamed = list(iter_statements(chunks(), shown_ids=SHOWN))
    assert "".join(got) == cut
    final = parse_draft("".join(got), shown_ids=SHOWN)
    assert [s.text for _, s in streamed] == ["You are allergic to penicillin."]
    assert streamed == [(t, s) for t, ss in final.sections for s in ss]
    assert final.repaired and any("cut off" in p for p in final.problems)
    assert b.last_usage and b.last_usage.get("estimated") == 1  # no usage chunk was sent


def test_garbage_stream_event_raises_model_unavailable(fake_server):
    fake_server.on("/v1/chat/completions", fake_server.Reply(200, ["not json at all"]))
    b = _backend([fake_server.base_url], schema_style="json_object")
    with pytest.raises(ModelUnavailable, match="not JSON"):
        list(b.stream([{"role": "user", "content": "x"}], max_tokens=5))


def test_no_base_url_is_a_clear_error():
    with pytest.raises(ModelUnavailable, match="no OpenAI-compatible base URL"):
        OpenAICompatBackend([], model="x")
