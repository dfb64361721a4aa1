"""The drafting pipeline: plan, gather, budget, prompt, generate, parse, verify -> Draft.

One function, ``run_draft``, drives every backend and both drafting modes:

- **extractive**: the composer states the plan's evidence as cited sentences; no model at all.
- **constrained**: the composer's sentences, each rephrased by the model; a rephrasing is kept only
  where the checks find it supported by the same citations, so facts cannot change.
- **free**: the model writes the whole document as cited JSON under a schema whose citation field
  is an enum of the evidence ids it was shown.

Whatever the path, every statement goes through the same checks and policy before anyone reads it.
If the model is down or times out, the extractive draft is returned, labelled with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chartdraft_guardrails.statement import Statement

from assistant.budget import fit_to_budget, rough_token_count
from assistant.compose import compose
from assistant.draft import Draft, DraftStatement, Section
from assistant.orders import policy_for_order
from assistant.runtime import Runtime
from assistant.verify import apply_guardrail_policy, verify_draft, verify_statement
from retrieval.errors import BadInput, ModelUnavailable
from retrieval.evidence import Evidence
from retrieval.gather import Gathered, gather
from retrieval.plans import DOC_TYPES, plan_for

Event = dict[str, Any]
OnEvent = Callable[[Event], None]


@dataclass
class DraftRequest:
    patient_id: str
    doc_type: str
    encounter_id: str | None = None
    order_id: str | None = None
    backend: str | None = None  # override settings: embedded | openai | extractive


class _Timer:
    def __init__(self, draft: Draft) -> None:
        self.draft = draft

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.draft.timings[name] = self.draft.timings.get(name, 0.0) + (
                time.perf_counter() - t0
            )


def _emit(on_event: OnEvent | None, event: Event) -> None:
    if on_event is not None:
        on_event(event)


def run_draft(rt: Runtime, req: DraftRequest, *, on_event: OnEvent | None = None,
              draft: Draft | None = None) -> Draft:
    if req.doc_type not in DOC_TYPES:
        raise BadInput(
            f"unknown document type {req.doc_type!r}",
            where="doc_type",
            fix=f"use one of: {', '.join(DOC_TYPES)}",
        )
    settings = rt.settings
    backend_name = req.backend or settings.backend
    draft = draft or Draft(patient_id=req.patient_id, doc_type=req.doc_type)  # type: ignore[arg-type]
    draft.encounter_id, draft.order_id = req.encounter_id, req.order_id
    draft.status = "generating"
    timer = _Timer(draft)
    t_start = time.perf_counter()

    with timer.stage("plan"):
        policy = None
        if req.doc_type == "prior-auth":
            order, policy = policy_for_order(rt.store, req.patient_id, req.order_id)
            draft.order_id = req.order_id = order.id
        plan = plan_for(req.doc_type, encounter_id=req.encounter_id, order_id=req.order_id,
                        policy=policy)
    with timer.stage("gather"):
        rt.ensure_knowledge_indexed()
        gathered = gather(plan, req.patient_id, store=rt.store, index=rt.index,
                          embedder=rt.embedder, encounter_id=req.encounter_id)

    backend = None
    if backend_name != "extractive":
        try:
            backend = rt.backend(backend_name)
        except ModelUnavailable as exc:
            draft.fallback_reason = f"model unavailable: {exc.detail}"
    mode = "extractive" if backend is None else settings.mode
    draft.backend, draft.mode = (backend.name if backend else "extractive"), mode
    draft.model = backend.model if backend else "none (extractive)"

    with timer.stage("budget"):
        count = backend.count_tokens if backend else rough_token_count
        budget = settings.context_tokens - settings.max_output_tokens - 1200  # prompt + rules
        shown, dropped = fit_to_budget(gathered.evidence, budget_tokens=max(budget, 512),
                                       count_tokens=count, required=gathered.required)
    draft.evidence = shown
    if dropped:
        draft.checks["evidence_dropped_for_budget"] = dropped

    sections: list[Section] | None = None
    if backend is not None:
        try:
            if mode == "free":
                sections = _free(rt, draft, backend, gathered, shown, policy, timer, on_event)
            else:
                sections = _constrained(rt, draft, backend, gathered, shown, policy, timer,
                                        on_event)
        except ModelUnavailable as exc:
            draft.fallback_reason = f"model unavailable: {exc.detail}"
            _emit(on_event, {"type": "fallback", "reason": draft.fallback_reason})
            sections = None
    if sections is None:
        draft.evidence = shown  # the extractive draft states the whole plan, untrimmed
        if backend is not None or draft.fallback_reason:
            draft.backend, draft.mode, draft.model = "extractive", "extractive", "none (extractive)"
        with timer.stage("compose"):
            sections = compose(req.doc_type, shown, required=gathered.required,
                               patient_id=req.patient_id, order_id=req.order_id, policy=policy,
                               encounter_id=req.encounter_id)
        with timer.stage("verify"):
            for sec in sections:
                for st in sec.statements:
                    st.results = verify_statement(st, gathered, shown, req.doc_type)
                    _emit(on_event, {"type": "statement", "section": sec.title, "statement": st})

    draft.sections = sections
    shown = draft.evidence  # free mode may have trimmed it to fit the rendered prompt
    with timer.stage("policy"):
        # Only free-mode text is the model's own; composed sentences are already the evidence.
        reask = _reasker(rt, draft, backend, shown) if backend and mode == "free" else None
        for change in apply_guardrail_policy(draft, gathered, shown, reask,
                                             settings.reask_attempts):
            # The stream already carried the first version: tell listeners what changed.
            _emit(on_event, {**change, "statement": _find_statement(draft, change)})
    if settings.judge != "off":  # after the checks and policy: it can only add flags
        from assistant.judge import run_judge

        with timer.stage("judge"):
            run_judge(rt, draft, gathered.chart, shown)
    with timer.stage("verify"):
        verify_draft(draft, gathered, shown)
    draft.timings["total"] = time.perf_counter() - t_start
    draft.status = "draft"
    _emit(on_event, {"type": "done", "draft_id": draft.id})
    return draft


def _patient_header(gathered: Gathered) -> dict[str, Any]:
    for e in gathered.chart:
        if e.resource_type == "Patient":
            return {k: e.data.get(k) for k in ("name", "birth_date", "gender")}
    return {}


def _free(rt: Runtime, draft: Draft, backend: Any, gathered: Gathered, shown: list[Evidence],
          policy: Any, timer: _Timer, on_event: OnEvent | None) -> list[Section]:
    from assistant.llm.citations import draft_schema, iter_statements, parse_draft
    from prompts.registry import render, section_titles

    with timer.stage("prompt"):
        extras = {"policy": policy.model_dump() if policy else None}
        rendered = render(draft.doc_type, evidence=shown, patient=_patient_header(gathered),
                          extras=extras)
        # The budget stage estimated per source; the rendered prompt (tags, rules, quoting) is
        # what must fit. Drop optional sources from the end until it does.
        room = backend.context_tokens - rt.settings.max_output_tokens - 64
        while _prompt_tokens(backend, rendered.messages) > room:
            optional = [i for i, e in enumerate(shown) if e.id not in gathered.required]
            if not optional:
                raise ModelUnavailable(
                    "the required evidence alone does not fit the model's context window",
                    where="prompt", fix="raise CHARTDRAFT_CONTEXT_TOKENS or use a larger model")
            cut = set(optional[-max(1, len(optional) // 5):])
            draft.checks.setdefault("evidence_dropped_for_budget", []).extend(
                shown[i].id for i in sorted(cut))
            shown = [e for i, e in enumerate(shown) if i not in cut]
            rendered = render(draft.doc_type, evidence=shown,
                              patient=_patient_header(gathered), extras=extras)
        draft.evidence = shown
        titles = section_titles(draft.doc_type)
        schema = draft_schema([e.id for e in shown], titles)
    draft.prompt_id, draft.prompt_version, draft.prompt_hash = (
        rendered.prompt_id, rendered.version, rendered.sha256)
    shown_ids = {e.id for e in shown}
    pieces: list[str] = []

    def chunks() -> Iterator[str]:
        for piece in backend.stream(rendered.messages, schema=schema,
                                    max_tokens=rt.settings.max_output_tokens,
                                    temperature=rt.settings.temperature):
            pieces.append(piece)
            yield piece

    streamed: list[tuple[str, DraftStatement]] = []
    with timer.stage("generate"):
        for title, stmt in iter_statements(chunks(), shown_ids=shown_ids):
            st = DraftStatement(text=stmt.text, citations=stmt.citations, origin="model")
            st.results = verify_statement(st, gathered, shown, draft.doc_type)
            streamed.append((title, st))
            _emit(on_event, {"type": "statement", "section": title, "statement": st})
    usage = getattr(backend, "last_usage", None) or {}
    draft.tokens_in += int(usage.get("prompt_tokens", 0))
    draft.tokens_out += int(usage.get("completion_tokens", 0))
    with timer.stage("parse"):
        parsed = parse_draft("".join(pieces), shown_ids=shown_ids, section_titles=titles)
    if parsed.problems:
        draft.checks["parse_problems"] = parsed.problems
    if not any(stmts for _, stmts in parsed.sections):
        # Nothing usable came back (a small model looping, a cut-off answer): the clinician gets
        # the extractive draft, labelled with why, rather than an empty one.
        raise ModelUnavailable(
            "the model's answer held no usable statement ("
            + ("; ".join(parsed.problems[:2]) or "empty answer") + ")",
            where="free-mode generation",
        )
    # The draft is made of the very statements that streamed (same ids, so later revisions and
    # drops can be matched by listeners); the whole-text parse is the cross-check.
    flat = [(t, x.text, x.citations) for t, stmts in parsed.sections for x in stmts]
    if flat != [(t, x.text, x.citations) for t, x in streamed]:
        draft.checks.setdefault("parse_problems", []).append(
            "the streamed statements differ from the final parse; the final parse was kept")
        streamed = [(t, DraftStatement(text=x.text, citations=x.citations, origin="model"))
                    for t, stmts in parsed.sections for x in stmts]
        for _, st in streamed:
            st.results = verify_statement(st, gathered, shown, draft.doc_type)
    sections: list[Section] = []
    for title, st in streamed:
        if not sections or sections[-1].title != title:
            sections.append(Section(title=title))
        sections[-1].statements.append(st)
    return sections


# Constrained mode rewrites only what a patient reads; clinician-facing documents keep the composed
# sentences, which are already precise and which a small model can only make worse.
REPHRASED_DOC_TYPES = frozenset({"discharge-instructions"})


def _prompt_tokens(backend: Any, messages: list[dict[str, str]]) -> int:
    return int(backend.count_tokens("\n".join(m["content"] for m in messages))) + 8 * len(messages)


def _constrained(rt: Runtime, draft: Draft, backend: Any, gathered: Gathered,
                 shown: list[Evidence], policy: Any, timer: _Timer,
                 on_event: OnEvent | None) -> list[Section]:
    from chartdraft_guardrails.facts import chart_vocab
    from chartdraft_guardrails.patient_voice import rewrite as patient_wording
    from chartdraft_guardrails.rephrase import lost_facts

    from assistant.llm.citations import parse_rephrase, rephrase_schema
    from prompts.registry import render_rephrase, render_rephrase_small

    with timer.stage("compose"):
        sections = compose(draft.doc_type, shown, required=gathered.required,
                           patient_id=draft.patient_id, order_id=draft.order_id, policy=policy,
                           encounter_id=draft.encounter_id)
    by_id = {e.id: e for e in shown}
    vocab = chart_vocab(gathered.chart)
    small = backend.name == "embedded"  # a 135M model needs the short few-shot prompt
    rejected: list[dict[str, Any]] = []
    for sec in sections:
        for st in sec.statements:
            st.origin = "composed"
            # Knowledge passages are already plain language; only chart sentences are rewritten.
            if draft.doc_type in REPHRASED_DOC_TYPES and any(
                not c.startswith("kb:") for c in st.citations
            ):
                with timer.stage("prompt"):
                    rendered = (render_rephrase_small(st.text) if small else render_rephrase(
                        st.text, evidence=[by_id[c] for c in st.citations if c in by_id],
                        audience="patient"))
                draft.prompt_id, draft.prompt_version, draft.prompt_hash = (
                    rendered.prompt_id, rendered.version, rendered.sha256)
                with timer.stage("generate"):
                    # A rewrite longer than twice the original is not plain language.
                    limit = min(160, 2 * backend.count_tokens(st.text) + 16)
                    out = backend.complete(rendered.messages, schema=rephrase_schema(),
                                           max_tokens=limit, temperature=rt.settings.temperature)
                draft.tokens_in += out.tokens_in
                draft.tokens_out += out.tokens_out
                with timer.stage("verify"):
                    text, problems = parse_rephrase(out.text)
                    if text:  # the model is held to the composer's patient-voice rules
                        text = patient_wording(text)
                        problems = lost_facts(st.text, text, vocab)
                    if text and not problems:
                        candidate = DraftStatement(text=text, citations=st.citations)
                        results = verify_statement(candidate, gathered, shown, draft.doc_type)
                        problems = [r.reason for r in results if r.verdict != "supported"]
                    if text and not problems:
                        st.text, st.origin = text, "model"
                    else:
                        rejected.append({"statement_id": st.id, "reasons": problems})
            with timer.stage("verify"):
                st.results = verify_statement(st, gathered, shown, draft.doc_type)
            _emit(on_event, {"type": "statement", "section": sec.title, "statement": st})
    if rejected:
        draft.checks["rephrasings_rejected"] = rejected
    return sections


def _find_statement(draft: Draft, change: dict[str, Any]) -> DraftStatement | None:
    return next((s for s in draft.statements() if s.id == change.get("statement_id")), None)


def _reasker(rt: Runtime, draft: Draft, backend: Any,
             shown: list[Evidence]) -> Callable[[list[Any]], list[Statement | None]]:
    """Send failing statements back to the model, one at a time, with the reasons."""
    from assistant.llm.citations import parse_rephrase, rephrase_schema
    from prompts.registry import render_rephrase

    by_id = {e.id: e for e in shown}
    audience = "patient" if draft.doc_type == "discharge-instructions" else "clinician"

    def reask(requests: list[Any]) -> list[Statement | None]:
        answers: list[Statement | None] = []
        for req in requests:
            cited = [by_id[c] for c in req.statement.citations if c in by_id]
            if not cited:  # nothing to ground a rewrite on: leave it flagged
                answers.append(None)
                continue
            rendered = render_rephrase(req.statement.text, evidence=cited, audience=audience,
                                       extras={"reasons": req.reasons})
            try:
                out = backend.complete(rendered.messages, schema=rephrase_schema(),
                                       max_tokens=160, temperature=rt.settings.temperature)
            except ModelUnavailable:
                answers.append(None)
                continue
            draft.tokens_in += out.tokens_in
            draft.tokens_out += out.tokens_out
            text, _ = parse_rephrase(out.text)
            answers.append(Statement(text=text, citations=req.statement.citations)
                           if text else None)
        return answers

    return reask
