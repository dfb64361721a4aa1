"""Issue 15 item 1: every input gets an answer; one test per bad-input class.

Each builds the bad input beside a good Patient, so it also shows the good resources still load.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

import pytest

from retrieval import fhir_load, ingest
from retrieval.evidence import Evidence
from retrieval.fhir_load import load_bytes, load_path
from retrieval.normalize_notes import split_sections

GOOD = {"resourceType": "Patient", "id": "good-1", "gender": "female"}


def _bundle(*entries: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": GOOD}, *entries]}


def test_deep_nesting_is_an_issue_not_a_recursion_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    body = json.dumps(_bundle()).replace('"gender"', f'"extension": {deep}, "gender"')
    result = load_bytes(body.encode())
    assert result.resources == []
    assert len(result.issues) == 1
    assert "100004 levels deep" in result.issues[0].message
    assert "limit is 64" in result.issues[0].message


def test_deep_line_in_ndjson_spares_the_other_lines() -> None:
    deep = json.dumps({"resourceType": "Observation", "id": "o1"})[:-1] + ', "x": ' + \
        "{\"a\": " * 50_000 + "1" + "}" * 50_000 + "}"
    body = "\n".join([json.dumps(GOOD), deep, json.dumps({**GOOD, "id": "good-2"})])
    result = load_bytes(body.encode())
    assert [r.id for r in result.resources] == ["good-1", "good-2"]
    assert [i.location for i in result.issues] == ["line 2"]
    assert "levels deep" in result.issues[0].message


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    text = json.dumps({"a": "[" * 1000 + '\\"{' * 500})
    assert fhir_load.json_depth(text) == 1


def test_oversized_document_is_refused_with_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir_load, "MAX_JSON_BYTES", 1000)
    body = json.dumps(_bundle({"resource": {**GOOD, "id": "big", "name": [{"text": "x" * 2000}]}}))
    result = load_bytes(body.encode())
    assert result.resources == []
    assert "the limit is" in result.issues[0].message and "NDJSON" in result.issues[0].message


def test_gzip_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fhir_load, "MAX_JSON_BYTES", 10_000)
    bomb = gzip.compress(json.dumps(GOOD).encode() + b" " * 1_000_000)
    assert len(bomb) < 5_000
    result = load_bytes(bomb)
    assert result.resources == []
    assert "inflates past the limit" in result.issues[0].message


def test_gzip_body_still_loads() -> None:
    result = load_bytes(gzip.compress(json.dumps(_bundle()).encode()))
    assert [r.id for r in result.resources] == ["good-1"] and not result.issues


def test_latin1_file_is_reported_when_re_decoded(tmp_path: Any) -> None:
    patient = {**GOOD, "name": [{"family": "Müller"}]}
    f = tmp_path / "chart.json"
    f.write_bytes(json.dumps(_bundle({"resource": {**patient, "id": "p2"}}),
                             ensure_ascii=False).encode("latin-1"))
    result = load_path(f)
    assert {r.id for r in result.resources} == {"good-1", "p2"}
    p2 = next(r for r in result.resources if r.id == "p2")
    assert p2.resource["name"][0]["family"] == "Müller"
    assert any("not UTF-8" in n and "0xfc" in n and "re-export as UTF-8" in n
               for n in result.notices)


def test_utf8_file_has_no_encoding_notice(tmp_path: Any) -> None:
    f = tmp_path / "chart.json"
    f.write_text(json.dumps(_bundle({"resource": {**GOOD, "id": "p3", "name": [
        {"family": "Müller"}]}}), ensure_ascii=False), encoding="utf-8")
    result = load_path(f)
    assert not any("UTF-8" in n for n in result.notices)


def test_entry_without_resource_is_reported_where() -> None:
    body = _bundle({"fullUrl": "urn:uuid:abc"}, {"request": {"method": "DELETE", "url": "X/1"}})
    result = load_bytes(json.dumps(body).encode())
    assert [r.id for r in result.resources] == ["good-1"]
    assert len(result.issues) == 1
    assert result.issues[0].location == "entry 1"
    assert "entry.resource" in result.issues[0].message
    assert any("1 entry without a resource" in n for n in result.notices)  # the DELETE


def test_huge_single_line_note_is_split_in_linear_time() -> None:
    # The hard cut used to re-slice the rest of the line after each cut: ~28 s for 10 MB.
    t0 = time.perf_counter()
    parts = split_sections("x" * 8_000_000)
    elapsed = time.perf_counter() - t0
    assert len(parts) == 8_000_000 // 1200 + 1
    assert sum(len(b) for _, b in parts) == 8_000_000
    assert elapsed < 6, f"{elapsed:.1f}s"


def _note(rid: str, text: str) -> dict[str, Any]:
    return {"resourceType": "DocumentReference", "id": rid, "status": "current",
            "subject": {"reference": "Patient/good-1"},
            "content": [{"attachment": {"contentType": "text/plain",
                                        "data": base64.b64encode(text.encode()).decode()}}]}


class _Index:
    def __init__(self) -> None:
        self.items: list[Evidence] = []

    def upsert(self, items: list[Evidence], vectors: list[list[float]]) -> None:
        assert len(items) == len(vectors)
        self.items.extend(items)

    def delete_ids(self, ids: list[str]) -> None:
        pass


class _Store:
    def __init__(self) -> None:
        self.evidence: list[Evidence] = []

    def evidence_for(self, pid: str) -> list[Evidence]:
        return []

    def upsert(self, resources: Any, evidence: list[Evidence]) -> None:
        self.evidence = evidence

    def record_issues(self, issues: Any) -> None:
        pass


class _Embedder:
    name, dim = "fake", 2

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(texts)
        return [[float(len(t)), 1.0] for t in texts]


def test_ten_megabyte_note_is_capped_with_a_notice() -> None:
    text = "Mild chest pain after exercise, resolved with rest.\n\n" * 200_000  # ~10 MB
    loaded = load_bytes(json.dumps(_bundle({"resource": _note("big-note", text)})).encode())
    store, index, emb = _Store(), _Index(), _Embedder()
    t0 = time.perf_counter()
    report = ingest.ingest_loaded(loaded, store=store, index=index,  # type: ignore[arg-type]
                                  embedder=emb)
    assert time.perf_counter() - t0 < 30
    notes = [e for e in index.items if e.resource_type == "DocumentReference"]
    assert len(notes) == ingest.MAX_UNITS_PER_RESOURCE
    assert any("DocumentReference/big-note" in n and "only the first" in n
               for n in report.notices)
    assert [e.id for e in store.evidence if e.resource_type == "Patient"]


def test_identical_texts_are_embedded_once_longest_first() -> None:
    ev = [Evidence(id=f"Observation/{i}", patient_id="p", resource_type="Observation",
                   title="Heart rate", text=t)
          for i, t in enumerate(["72 /min", "72 /min", "a much longer text here", "72 /min"])]
    emb = _Embedder()
    vecs = ingest._embed_in_batches(ev, emb, 1024, None)  # type: ignore[arg-type]
    assert emb.calls == [["Heart rate. a much longer text here", "Heart rate. 72 /min"]]
    assert vecs[0] == vecs[1] == vecs[3] and vecs[2] != vecs[0]
