"""De-identify what leaves the trust boundary: a wrapper for an LLM endpoint outside it.

When ``openai_external`` is set, every message to the model is de-identified with Presidio
(consistent salted pseudonyms within one call) and the answer is re-identified on the way back.
Fail closed: if the PHI engine cannot run, ``CheckFailed`` is raised and nothing is sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from chartdraft_guardrails.phi import Deidentifier

from assistant.llm.base import Completion, LLMBackend, Message, PerThreadUsage


class DeidentifyingBackend(PerThreadUsage):
    """Any backend, with messages de-identified before they are sent."""

    def __init__(self, inner: LLMBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.context_tokens = inner.context_tokens

    def _outbound(self, messages: list[Message]) -> tuple[Deidentifier, list[Message]]:
        deid = Deidentifier()
        return deid, [{**m, "content": deid.deidentify(m["content"])} for m in messages]

    def complete(self, messages: list[Message], *, schema: dict[str, Any] | None = None,
                 max_tokens: int = 1024, temperature: float = 0.0) -> Completion:
        deid, safe = self._outbound(messages)
        out = self.inner.complete(safe, schema=schema, max_tokens=max_tokens,
                                  temperature=temperature)
        self.last_usage = self.inner.last_usage
        return dataclasses.replace(out, text=deid.reidentify(out.text))

    def stream(self, messages: list[Message], *, schema: dict[str, Any] | None = None,
               max_tokens: int = 1024, temperature: float = 0.0) -> Iterator[str]:
        deid, safe = self._outbound(messages)
        held = ""
        for piece in self.inner.stream(safe, schema=schema, max_tokens=max_tokens,
                                       temperature=temperature):
            held += piece
            # A pseudonym may be split across chunks: hold back an unclosed "<...".
            cut = held.rfind("<")
            if cut == -1 or ">" in held[cut:]:
                cut = len(held)
            ready, held = held[:cut], held[cut:]
            if ready:
                yield deid.reidentify(ready)
        if held:
            yield deid.reidentify(held)
        self.last_usage = self.inner.last_usage

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def health(self) -> bool:
        return self.inner.health()
