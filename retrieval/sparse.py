"""Sparse (BM25-style) vectors for the keyword half of hybrid search.

A document's vector holds, per term, a saturated term frequency (BM25's ``tf * (k1 + 1) / (tf + k1 *
(1 - b + b * len / avg_len))``); a query's vector holds 1.0 per distinct term. The IDF half of BM25
is applied by Qdrant at query time (the collection's sparse vector uses ``modifier=IDF``; both
qdrant-edge and qdrant-client support it), so it stays right as the index grows without re-encoding.

Terms are lowercased alphanumeric runs, letters and digits split (``500mg`` -> ``500``, ``mg``),
a short stop list removed, and a light, predictable stemmer (plural ``s``/``es``/``ies``) so
"tablets" meets "tablet". Each term is hashed to a stable uint32 index (CRC-32), identical across
processes and Python versions.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

K1 = 1.2
B = 0.75
AVG_LEN = 40.0  # evidence texts are short renderings and note sections, not whole documents

_TOKEN = re.compile(r"[a-z]+|[0-9]+(?:\.[0-9]+)?")
_STOP_WORDS = (
    "a an and are as at be by for from has have in is it of on or that the this to was were with "
    "will not no"
)
_STOP = frozenset(_STOP_WORDS.split())
# "no"/"not" are stop words for ranking only; negation is the checks' business, not retrieval's.


def _stem(term: str) -> str:
    if len(term) <= 3 or term[0].isdigit():
        return term
    if term.endswith("ies") and len(term) > 4:
        return term[:-3] + "y"
    if term.endswith(("sses", "ches", "shes", "xes")):
        return term[:-2]
    if term.endswith("s") and not term.endswith(("ss", "us", "is")):
        return term[:-1]
    return term


def tokenize(text: str) -> list[str]:
    """Lowercased, stop-listed, lightly stemmed terms of ``text``, in order."""
    return [_stem(t) for t in _TOKEN.findall(text.lower()) if t not in _STOP]


def term_index(term: str) -> int:
    """The stable uint32 index of a term."""
    return zlib.crc32(term.encode("utf-8")) & 0xFFFFFFFF


def sparse_vector(text: str) -> tuple[list[int], list[float]]:
    """Document-side vector: BM25-saturated term frequencies, indices sorted ascending."""
    terms = tokenize(text)
    if not terms:
        return [], []
    norm = K1 * (1.0 - B + B * len(terms) / AVG_LEN)
    weights: dict[int, float] = {}
    for term, tf in Counter(terms).items():
        idx = term_index(term)
        # A CRC-32 collision between two terms of one text merges them; rare enough to accept.
        weights[idx] = weights.get(idx, 0.0) + tf * (K1 + 1.0) / (tf + norm)
    indices = sorted(weights)
    return indices, [weights[i] for i in indices]


def sparse_query(text: str) -> tuple[list[int], list[float]]:
    """Query-side vector: 1.0 per distinct term (IDF comes from the index)."""
    indices = sorted({term_index(t) for t in tokenize(text)})
    return indices, [1.0] * len(indices)
