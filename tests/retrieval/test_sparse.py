"""Sparse vectors: stable hashing, BM25 saturation, and light, predictable tokenization."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retrieval.sparse import sparse_query, sparse_vector, term_index, tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Metformin 500mg tablets", ["metformin", "500", "mg", "tablet"]),  # digits split, plural
        ("The patient has allergies", ["patient", "allergy"]),  # stop words, -ies -> -y
        ("Glucose 5.4 mmol/L", ["glucose", "5.4", "mmol", "l"]),  # decimals stay whole
        ("diagnosis", ["diagnosis"]),  # -is is not a plural
        ("", []),
    ],
)
def test_tokenize(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_term_index_is_stable_across_processes() -> None:
    # Python's hash() is salted per process; the index must not be.
    code = "from retrieval.sparse import term_index; print(term_index('metformin'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == term_index("metformin")


def test_repeated_terms_saturate() -> None:
    one_idx, one = sparse_vector("insulin " + "word " * 10)
    many_idx, many = sparse_vector("insulin " * 5 + "word " * 6)
    w1 = one[one_idx.index(term_index("insulin"))]
    w5 = many[many_idx.index(term_index("insulin"))]
    assert w1 < w5 < 5 * w1  # more occurrences weigh more, but far less than linearly


def test_longer_documents_weigh_each_term_less() -> None:
    short_idx, short = sparse_vector("asthma inhaler")
    long_idx, long = sparse_vector("asthma " + " ".join(f"filler{i}" for i in range(60)))
    i = term_index("asthma")
    assert long[long_idx.index(i)] < short[short_idx.index(i)]


def test_query_vector_weighs_each_distinct_term_once() -> None:
    idx, vals = sparse_query("pain pain chest")
    assert sorted(idx) == sorted({term_index("pain"), term_index("chest")})
    assert vals == [1.0, 1.0]


@given(st.text(max_size=300))
def test_vectors_are_well_formed(text: str) -> None:
    for idx, vals in (sparse_vector(text), sparse_query(text)):
        assert len(idx) == len(vals)
        assert idx == sorted(set(idx))  # sorted, unique
        assert all(0 <= i < 2**32 for i in idx)
        assert all(v > 0 for v in vals)
