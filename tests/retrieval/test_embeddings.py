"""The packaged MiniLM embedder: offline, normalized, semantically sensible, cached for queries."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from retrieval.embeddings import Embedder, MiniLMEmbedder, default_model_dir
from retrieval.errors import BadInput


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_model_ships_in_the_package() -> None:
    d = default_model_dir()
    assert (d / "config.json").is_file()
    assert (d / "model.safetensors").is_file()


def test_embeds_offline_to_unit_vectors(embedder: MiniLMEmbedder, monkeypatch) -> None:
    # Any attempt to reach the Hub would fail loudly with these set.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    vecs = embedder.embed(["metformin 500 mg twice daily", "shortness of breath"])
    assert isinstance(embedder, Embedder)
    assert len(vecs) == 2
    assert all(len(v) == embedder.dim == 384 for v in vecs)
    assert all(math.isclose(math.sqrt(sum(x * x for x in v)), 1.0, rel_tol=1e-4) for v in vecs)


def test_related_texts_are_closer(embedder: MiniLMEmbedder) -> None:
    q, near, far = embedder.embed(
        [
            "heart failure diet",
            "low sodium diet for congestive heart failure",
            "ankle fracture cast",
        ]
    )
    assert _cos(q, near) > _cos(q, far)


def test_query_cache_returns_the_same_vectors(embedder: MiniLMEmbedder) -> None:
    first = embedder.embed(["asthma inhaler technique"])
    again = embedder.embed(["asthma inhaler technique", "asthma inhaler technique"])
    assert again[0] == first[0] == again[1]
    batch = embedder.embed([f"text {i}" for i in range(20)])  # large batches bypass the cache
    assert len(batch) == 20
    assert embedder.embed([]) == []


def test_bad_model_folder_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as err:
        MiniLMEmbedder(model_dir=tmp_path).embed(["x"])
    assert str(tmp_path) in str(err.value)
    assert err.value.fix
