"""The packaged MiniLM run with ONNX Runtime: same weights, same vectors, less overhead on CPU.

The sentence-transformers folder is exported once with ``torch.onnx.export`` into a cache folder
(the data dir's ``cache/``), named by a hash of the weights so a changed model is re-exported. The
tokenizer is the model's own ``tokenizer.json``; pooling (mean over real tokens) and L2
normalization are done here exactly as the folder's ``1_Pooling`` and ``2_Normalize`` say.
Texts are embedded longest-first in batches of similar length, so padding is small.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrieval.errors import ModelUnavailable

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# One export per model per process, even across data dirs (tests build many runtimes).
_EXPORTED: dict[str, Path] = {}
_EXPORT_LOCK = threading.Lock()


def model_key(model_dir: Path) -> str:
    """Names the export by the weights' name, size and mtime (hashing 90 MB each start is slow)."""
    parts = []
    for name in ("model.safetensors", "pytorch_model.bin", "config.json", "tokenizer.json"):
        f = model_dir / name
        if f.is_file():
            st = f.stat()
            parts.append(f"{name}:{st.st_size}:{int(st.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def export_onnx(model_dir: Path, cache_dir: Path) -> Path:
    """The model's ONNX file in ``cache_dir``, exported from PyTorch on first use."""
    key = model_key(model_dir)
    target = cache_dir / "onnx" / f"{model_dir.name}-{key}.onnx"
    with _EXPORT_LOCK:
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        done = _EXPORTED.get(key)
        if done is not None and done.is_file():
            shutil.copyfile(done, target)
            return target
        _export(model_dir, target)
        _EXPORTED[key] = target
        return target


def _export(model_dir: Path, target: Path) -> None:
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class _Hidden(torch.nn.Module):  # keyword call: transformers 5 reorders forward()'s arguments
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    sample = torch.ones((2, 8), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    # Written beside the target and renamed: a crash mid-export leaves no half file to load.
    fd, tmp = tempfile.mkstemp(suffix=".onnx.part", dir=target.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter on shapes the dynamic axes cover
            torch.onnx.export(_Hidden(model), (sample, sample, torch.zeros_like(sample)), tmp,
                              input_names=list(_INPUTS), output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=17, dynamo=False)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class OnnxMiniLMEmbedder:
    """A sentence-transformers folder (mean pooling, normalized) run with ONNX Runtime on CPU."""

    dim = 384
    engine = "onnx"

    def __init__(self, model_dir: Path, cache_dir: Path, *, name: str | None = None,
                 batch_size: int = 32, threads: int | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.cache_dir = Path(cache_dir)
        self.name = name or self.model_dir.name
        self.batch_size = batch_size
        self.threads = threads
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()
        self.max_tokens = 256

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise ModelUnavailable("onnxruntime is not installed",
                                       fix="pip install onnxruntime, or set "
                                       "CHARTDRAFT_EMBEDDING_ENGINE=torch") from exc
            cfg = self.model_dir / "sentence_bert_config.json"
            if cfg.is_file():
                self.max_tokens = int(json.loads(cfg.read_text()).get("max_seq_length") or 256)
            pooling = self.model_dir / "1_Pooling" / "config.json"
            if pooling.is_file():
                pc = json.loads(pooling.read_text())
                if not pc.get("pooling_mode_mean_tokens", True):
                    raise ModelUnavailable(f"{self.model_dir}: only mean pooling is exported",
                                           fix="set CHARTDRAFT_EMBEDDING_ENGINE=torch")
                self.dim = int(pc.get("word_embedding_dimension") or self.dim)
            tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            tok.enable_truncation(self.max_tokens)
            tok.enable_padding(pad_id=tok.token_to_id("[PAD]") or 0, pad_token="[PAD]")
            path = export_onnx(self.model_dir, self.cache_dir)
            opts = onnxruntime.SessionOptions()
            if self.threads:
                opts.intra_op_num_threads = self.threads
            self._session = onnxruntime.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            self._tokenizer = tok

    def _run(self, texts: list[str]) -> np.ndarray:
        assert self._session is not None and self._tokenizer is not None
        encs = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        types = np.array([e.type_ids for e in encs], dtype=np.int64)
        (hidden,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": types})
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)

    def encode(self, texts: list[str]) -> list[list[float]]:
        """Vectors in input order; batches are formed longest-first so padding stays small."""
        self.load()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            for i, row in zip(idx, self._run([texts[i] for i in idx]), strict=True):
                out[i] = row.tolist()
        return out
