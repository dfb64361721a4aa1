"""An endpoint outside the trust boundary never sees identifiers; answers come back re-identified.

The peer is the recording loopback server from conftest: what we test is what leaves this process.
"""

from __future__ import annotations

import re
from pathlib import Path

from assistant.llm.deid import DeidentifyingBackend
from assistant.runtime import Runtime
from assistant.settings import Settings

NOTE = ("Patient Jane Synthetic, MRN 7781234, phone (555) 201-3344, e-mail jane@example.org, "
        "takes metformin 500 mg twice daily.")
IDENTIFIERS = ["7781234", "201-3344", "jane@example.org", "Jane Synthetic"]


def _runtime(tmp_path: Path, base_url: str, external: bool) -> Runtime:
    return Runtime(Settings(data_dir=tmp_path, backend="openai", openai_base_urls=[base_url],
                            openai_schema_style="json_object", openai_external=external,
                            retries=0))


def _echo_first_pseudonym(fake_server):  # type: ignore[no-untyped-def]
    def reply(body):  # type: ignore[no-untyped-def]
        sent = " ".join(m["content"] for m in body["messages"])
        tokens = re.findall(r"<[A-Z_]+_[0-9a-f]{6}>", sent)
        return fake_server.Reply(200, fake_server.completion_body(
            '{"text": "Reminder for ' + (tokens[0] if tokens else "nobody") + '"}'))
    return reply


def test_external_endpoint_gets_pseudonyms_and_answers_are_reidentified(tmp_path, fake_server):
    fake_server.routes["/v1/chat/completions"] = _echo_first_pseudonym(fake_server)
    backend = _runtime(tmp_path, fake_server.base_url, external=True).backend()
    assert isinstance(backend, DeidentifyingBackend)
    out = backend.complete([{"role": "user", "content": NOTE}], max_tokens=20)
    sent = " ".join(m["content"] for _, body in fake_server.requests if "messages" in body
                    for m in body["messages"])
    for ident in IDENTIFIERS:
        assert ident not in sent, f"{ident!r} left the trust boundary"
    assert "metformin 500 mg" in sent  # clinical content still reaches the model
    assert "<" not in out.text and any(i in out.text for i in IDENTIFIERS)


def test_internal_endpoint_is_not_wrapped(tmp_path, fake_server):
    backend = _runtime(tmp_path, fake_server.base_url, external=False).backend()
    assert not isinstance(backend, DeidentifyingBackend)


def test_streamed_pseudonyms_split_across_chunks_are_reidentified(tmp_path, fake_server):
    def reply(body):  # type: ignore[no-untyped-def]
        sent = " ".join(m["content"] for m in body["messages"])
        token = re.findall(r"<[A-Z_]+_[0-9a-f]{6}>", sent)[0]
        pieces = ['{"text": "for ', token[:5], token[5:], '"}']
        return fake_server.Reply(200, fake_server.sse_events(pieces))
    fake_server.routes["/v1/chat/completions"] = reply
    backend = _runtime(tmp_path, fake_server.base_url, external=True).backend()
    assert backend is not None
    text = "".join(backend.stream([{"role": "user", "content": NOTE}], max_tokens=20))
    assert "<" not in text and any(i in text for i in IDENTIFIERS)
