"""The one protocol every LLM backend follows, and what a completion returns."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]
# Usage after a call: prompt_tokens, completion_tokens, total_tokens (+ "estimated": 1 when the
# backend had to count them itself because the server did not report usage).
Usage = dict[str, int]


@dataclass(frozen=True)
class Completion:
    text: str
    tokens_in: int
    tokens_out: int
    finish_reason: str | None
    model: str
    backend: str
    seconds: float

    @property
    def truncated(self) -> bool:
        """The model stopped at max_tokens: the JSON is probably cut off (the parser repairs it)."""
        return self.finish_reason == "length"


class PerThreadUsage:
    """``last_usage`` kept per thread: drafts run in job threads that share one backend object,
    so a plain attribute would let one draft record another's token counts."""

    def _usage_slot(self) -> threading.local:
        # dict.setdefault is atomic in CPython: two threads get the same slot object
        slot: threading.local = self.__dict__.setdefault("_usage_tls", threading.local())
        return slot

    @property
    def last_usage(self) -> Usage | None:
        return getattr(self._usage_slot(), "value", None)

    @last_usage.setter
    def last_usage(self, value: Usage | None) -> None:
        self._usage_slot().value = value


@runtime_checkable
class LLMBackend(Protocol):
    name: str
    model: str
    context_tokens: int
    last_usage: Usage | None

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> Completion: ...

    def stream(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        """Text deltas; ``last_usage`` is set once the iterator is exhausted."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def health(self) -> bool: ...


def usage(prompt_tokens: int, completion_tokens: int, *, estimated: bool = False) -> Usage:
    u = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if estimated:
        u["estimated"] = 1
    return u
