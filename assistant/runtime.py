"""The engine's long-lived parts, built once from Settings and shared by the CLI and the service.

Everything heavy (the embedding model, the LLM) is loaded lazily on first use, so `chartdraft
patients` answers at once and the service starts quickly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from assistant.settings import Settings
from retrieval.chart_store import ChartStore
from retrieval.errors import BadInput
from retrieval.evidence import Evidence

if TYPE_CHECKING:
    from assistant.llm.base import LLMBackend
    from retrieval.embeddings import Embedder
    from retrieval.vector_index import EvidenceIndex


T = TypeVar("T")


class built_once(Generic[T]):  # noqa: N801 - used like functools.cached_property
    """A lazily built part, built once per Runtime under the Runtime's lock.

    ``functools.cached_property`` stopped locking in Python 3.12: two job threads starting
    together could each open the index, and qdrant-edge refuses a second handle on one folder.
    """

    def __init__(self, build: Callable[[Any], T]) -> None:
        self.build = build
        self.name = build.__name__
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: type) -> built_once[T]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> T: ...
    def __get__(self, obj: object | None, owner: type) -> T | built_once[T]:
        if obj is None:
            return self
        cache = obj.__dict__
        if self.name not in cache:
            with obj._build_lock:  # type: ignore[attr-defined]
                if self.name not in cache:  # another thread may have built it meanwhile
                    cache[self.name] = self.build(obj)
        value: T = cache[self.name]
        return value


@dataclass
class Runtime:
    settings: Settings
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # re-entrant: building the index builds the embedder first
    _build_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _kb_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _backends: dict[str, LLMBackend] = field(default_factory=dict, repr=False)

    @built_once
    def store(self) -> ChartStore:
        self.settings.ensure_dirs()
        return ChartStore(self.settings.chart_db_url)

    @built_once
    def embedder(self) -> Embedder:
        from retrieval.embeddings import MiniLMEmbedder

        model_dir = None
        if self.settings.embedding_model:
            from pathlib import Path

            model_dir = Path(self.settings.embedding_model)
        return MiniLMEmbedder(model_dir=model_dir, engine=self.settings.embedding_engine,
                              cache_dir=self.settings.cache_dir)

    @built_once
    def index(self) -> EvidenceIndex:
        from retrieval.vector_index import open_index

        self.settings.ensure_dirs()
        return open_index(
            url=self.settings.qdrant_url,
            path=self.settings.qdrant_path,
            dim=self.embedder.dim,
            api_key=(
                self.settings.qdrant_api_key.get_secret_value()
                if self.settings.qdrant_api_key
                else None
            ),
        )

    @built_once
    def knowledge(self) -> list[Evidence]:
        from retrieval.knowledge import load_kb

        return load_kb()

    def ensure_knowledge_indexed(self) -> int:
        """Index the starter knowledge base once per data dir (cheap when already there)."""
        from retrieval.ingest import ingest_knowledge

        with self._kb_lock:  # two first drafts at once must not both ingest it
            if self.index.count(kind="knowledge") >= len(self.knowledge):
                return 0
            return ingest_knowledge(self.knowledge, index=self.index, embedder=self.embedder)

    def backend(self, name: str | None = None) -> LLMBackend | None:
        """The configured LLM backend (None for extractive), built once per name."""
        name = name or self.settings.backend
        if name == "extractive":
            return None
        with self._lock:
            if name not in self._backends:
                self._backends[name] = _build_backend(self.settings, name)
            return self._backends[name]

    def close(self) -> None:
        if "index" in self.__dict__:
            self.index.close()


def _build_backend(s: Settings, name: str) -> LLMBackend:
    if name == "embedded":
        from assistant.llm.embedded import EmbeddedBackend

        return EmbeddedBackend(
            model_path=s.embedded_model_path, context_tokens=min(s.context_tokens, 8192)
        )
    if name == "openai":
        from assistant.llm.openai_compat import OpenAICompatBackend

        backend = OpenAICompatBackend(
            base_urls=s.openai_base_urls,
            model=s.openai_model,
            api_key=s.openai_api_key.get_secret_value() if s.openai_api_key else None,
            schema_style=s.openai_schema_style,
            connect_timeout=s.connect_timeout_s,
            read_timeout=s.read_timeout_s,
            retries=s.retries,
            circuit_failures=s.circuit_failures,
            circuit_reset_s=s.circuit_reset_s,
            context_tokens=s.context_tokens,
        )
        if s.openai_external:
            # The endpoint is outside the trust boundary: no identifier leaves in the clear.
            from assistant.llm.deid import DeidentifyingBackend

            return DeidentifyingBackend(backend)
        return backend
    raise BadInput(
        f"unknown backend {name!r}",
        fix="use one of: embedded, openai, extractive (CHARTDRAFT_BACKEND or --backend)",
    )
