"""Baselines run beside our pipeline on the same cases in the same run.

- ``extractive``: our own pipeline with no model (a cited fact sheet); run by the runner as a
  normal backend.
- ``cqe-<backend>``: a plain retrieval-augmented baseline, LlamaIndex's ``CitationQueryEngine``
  over the same patient's chart evidence (plus the knowledge base), embedded with the same MiniLM
  model, answering with the same LLM (our ``LLMBackend`` wrapped as a LlamaIndex ``CustomLLM``).
  It is asked once per document, as a plain RAG pipeline would be ("write the discharge
  instructions, with these sections"); sentences go under the section heading the model wrote
  before them (the first section when it wrote none). Its ``[n]`` citations are mapped back to
  evidence ids and every sentence goes through our checks, so its numbers are comparable.

One query per document, not one per section: per section cost ~20 s a case on these 2 cores
(hours for ``core``) and a plain pipeline is not section-aware anyway.
"""

from __future__ import annotations

import re
import time
from typing import Any

from assistant.draft import Draft, DraftStatement, Section
from evals.suite import Case
from retrieval.evidence import Evidence
from retrieval.gather import Gathered

TOP_K = 6
_CITE = re.compile(r"\[(\d+)\]")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")
QUESTIONS = {
    "summary": "Write a clinician's chart summary of this patient with these sections: "
               "{sections}. Put each section title on its own line, then short factual sentences, "
               "each ending with its source number.",
    "discharge-instructions": "Write the patient's discharge instructions with these sections: "
                              "{sections}. Put each section title on its own line, then sentences "
                              "in plain language a 12-year-old can read, each ending with its "
                              "source number.",
    "prior-auth": "Write a prior-authorization letter to the health plan for this patient with "
                  "these sections: {sections}. Put each section title on its own line, then the "
                  "facts from the chart, each sentence ending with its source number.",
}
ANSWER_TOKENS = 400


def _llm(backend: Any, usage: dict[str, int]) -> Any:
    """Our LLMBackend as a LlamaIndex CustomLLM (completion only, as CitationQueryEngine needs)."""
    from llama_index.core.llms import (
        CompletionResponse,
        CompletionResponseGen,
        CustomLLM,
        LLMMetadata,
    )
    from llama_index.core.llms.callbacks import llm_completion_callback

    class ChartdraftLLM(CustomLLM):
        max_tokens: int = ANSWER_TOKENS

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=backend.context_tokens, num_output=self.max_tokens,
                               model_name=backend.model)

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False,
                     **kwargs: Any) -> CompletionResponse:
            out = backend.complete([{"role": "user", "content": prompt}],
                                   max_tokens=self.max_tokens, temperature=0.0)
            usage["in"] += out.tokens_in
            usage["out"] += out.tokens_out
            return CompletionResponse(text=out.text)

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False,
                            **kwargs: Any) -> CompletionResponseGen:
            text = self.complete(prompt).text

            def gen() -> CompletionResponseGen:
                yield CompletionResponse(text=text, delta=text)

            return gen()

    return ChartdraftLLM()


def _embed_model(embedder: Any) -> Any:
    """Our MiniLM embedder as a LlamaIndex embedding model (same vectors as our index)."""
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class ChartdraftEmbedding(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return list(embedder.embed([query])[0])

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return list(embedder.embed([text])[0])

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return [list(v) for v in embedder.embed(texts)]

    return ChartdraftEmbedding(model_name="chartdraft-minilm", embed_batch_size=64)


def split_cited(text: str, sources: list[str | None]) -> list[DraftStatement]:
    """Sentences of a CitationQueryEngine answer with their ``[n]`` mapped to evidence ids.

    A number with no source behind it is kept as an invalid citation id (``[7]``), so the
    citation check counts it, as it would an invented id.
    """
    out = []
    for sent in _SENT.split(text.strip()):
        cites: list[str] = []
        for n in _CITE.findall(sent):
            i = int(n) - 1
            ev = sources[i] if 0 <= i < len(sources) else None
            cites.append(ev if ev else f"[{n}]")
        clean = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", _CITE.sub("", sent))).strip()
        if clean and re.search(r"[A-Za-z]", clean):
            out.append(DraftStatement(text=clean, citations=list(dict.fromkeys(cites)),
                                      origin="model"))
    return out


def _heading(line: str, titles: list[str]) -> str | None:
    """The section title a line announces ("## Your medicines", "**Allergies:**"), if any."""
    bare = re.sub(r"[#*_:\s]+", " ", line).strip().lower()
    for t in titles:
        if bare == t.lower() or (bare.startswith(t.lower()) and len(bare) <= len(t) + 3):
            return t
    return None


def split_sections(text: str, sources: list[str | None], titles: list[str]) -> list[Section]:
    """The answer as sections: each line that names a section title starts that section."""
    body: dict[str, list[str]] = {t: [] for t in titles}
    current = titles[0]
    for line in text.splitlines():
        title = _heading(line, titles)
        if title is not None:
            current = title
        else:
            body[current].append(line)
    return [Section(title=t, statements=split_cited(" ".join(body[t]), sources)) for t in titles]


def _nodes(evidence: list[Evidence]) -> list[Any]:
    from llama_index.core.schema import TextNode

    return [TextNode(text=f"{e.title}. {e.text}", id_=e.id,
                     metadata={"evidence_id": e.id, "resource_type": e.resource_type},
                     excluded_embed_metadata_keys=["evidence_id", "resource_type"],
                     excluded_llm_metadata_keys=["evidence_id", "resource_type"])
            for e in evidence]


def cqe_draft(rt: Any, case: Case, llm_name: str) -> Draft:
    """Draft one case with the CitationQueryEngine baseline and run our checks on it."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.query_engine import CitationQueryEngine

    from assistant.verify import verify_draft, verify_statement
    from prompts.registry import section_titles

    assert case.patient_id is not None
    draft = Draft(patient_id=case.patient_id, doc_type=case.doc_type,
                  encounter_id=case.encounter_id, order_id=case.order_id)
    backend = rt.backend(llm_name)
    usage = {"in": 0, "out": 0}
    t0 = time.perf_counter()
    chart = rt.store.evidence_for(case.patient_id)
    rt.ensure_knowledge_indexed()
    corpus = [e for e in chart if e.resource_type not in ("Practitioner", "Organization")]
    corpus += list(rt.knowledge)
    index = VectorStoreIndex(_nodes(corpus), embed_model=_embed_model(rt.embedder))
    engine = CitationQueryEngine.from_args(index, llm=_llm(backend, usage),
                                           similarity_top_k=TOP_K, citation_chunk_size=512)
    draft.timings["index"] = time.perf_counter() - t0
    by_id = {e.id: e for e in corpus}
    titles = section_titles(case.doc_type)
    t1 = time.perf_counter()
    resp = engine.query(QUESTIONS[case.doc_type].format(sections="; ".join(titles)))
    sources = [n.node.metadata.get("evidence_id") for n in resp.source_nodes]
    sections = split_sections(str(resp), sources, titles)
    draft.timings["generate"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    draft.evidence = [by_id[s] for s in dict.fromkeys(sources) if s and s in by_id]
    gathered = Gathered(case.patient_id, chart, draft.evidence)
    for sec in sections:
        for st in sec.statements:
            st.results = verify_statement(st, gathered, draft.evidence, case.doc_type)
    draft.sections = sections
    verify_draft(draft, gathered, draft.evidence)
    draft.timings["verify"] = time.perf_counter() - t2
    draft.timings["total"] = time.perf_counter() - t0
    draft.backend, draft.mode, draft.model = f"cqe-{llm_name}", "citation-query-engine", \
        backend.model
    draft.tokens_in, draft.tokens_out = usage["in"], usage["out"]
    draft.prompt_id, draft.prompt_version = "llama-index-citation-qa", "llama-index-core"
    draft.status = "draft"
    return draft
