"""The ONNX Runtime engine: same vectors as PyTorch (cosine > 0.99 per text), exported once, and
a fallback to PyTorch when it cannot run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retrieval import embeddings_onnx
from retrieval.embeddings import MiniLMEmbedder

TEXTS = [
    "Creatinine [Mass/volume] in Serum or Plasma. 1.4 mg/dL (high)",
    "Warfarin sodium 5 MG Oral Tablet, take one tablet daily",
    "Echocardiography report: ejection fraction 35%, mild mitral regurgitation",
    "eGFR",
    "Müller, née Łukasiewicz: café-au-lait spots; 37.5 °C",
    "History of present illness. " + "The patient reports chest pain on exertion. " * 120,
    "",
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def test_onnx_vectors_match_torch_per_text(cache: Path) -> None:
    torch_e = MiniLMEmbedder(cache_size=0)
    onnx_e = MiniLMEmbedder(cache_size=0, engine="onnx", cache_dir=cache)
    a = np.array(torch_e.embed(TEXTS))
    b = np.array(onnx_e.embed(TEXTS))
    assert onnx_e.engine == "onnx", "fell back to torch"
    assert a.shape == b.shape == (len(TEXTS), 384)
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.99, dict(zip(TEXTS, cos.round(4), strict=True))
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)


def test_batching_by_length_does_not_change_vectors(cache: Path) -> None:
    onnx_e = MiniLMEmbedder(cache_size=0, engine="onnx", cache_dir=cache)
    together = np.array(onnx_e.embed(TEXTS))
    alone = np.array([onnx_e.embed([t, t + " "])[0] for t in TEXTS])
    assert (together * alone).sum(axis=1).min() > 0.9999


def test_export_is_done_once_per_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    MiniLMEmbedder(engine="onnx", cache_dir=cache).load()  # exported (or reused) here

    def refuse(*_: object) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(embeddings_onnx, "_export", refuse)
    again = MiniLMEmbedder(engine="onnx", cache_dir=cache)
    again.load()
    assert again.engine == "onnx"
    assert list((cache / "onnx").glob("*.part")) == []


def test_failed_export_falls_back_to_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("exporter broke")

    monkeypatch.setattr(embeddings_onnx, "_export", broken)
    monkeypatch.setattr(embeddings_onnx, "_EXPORTED", {})
    e = MiniLMEmbedder(engine="onnx", cache_dir=tmp_path)
    vec = e.embed(["kidney function"])
    assert e.engine == "torch" and len(vec[0]) == 384
