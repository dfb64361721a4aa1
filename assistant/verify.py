"""Run the guardrail checks on a draft's statements, and record the draft-level report."""

from __future__ import annotations

from chartdraft_guardrails.api import check_draft, check_statement
from chartdraft_guardrails.policy import ReaskFn, apply_policy
from chartdraft_guardrails.statement import CheckResult, Statement

from assistant.draft import Draft, DraftStatement
from retrieval.evidence import Evidence
from retrieval.gather import Gathered


def verify_statement(
    st: DraftStatement, gathered: Gathered, shown: list[Evidence], doc_type: str
) -> list[CheckResult]:
    by_id = {e.id: e for e in shown}
    cited = [by_id[c] for c in st.citations if c in by_id]
    return check_statement(
        Statement(text=st.text, citations=st.citations),
        cited=cited,
        chart=gathered.chart,
        shown_ids=set(by_id),
        patient_id=gathered.patient_id,
        doc_type=doc_type,
    )


def verify_draft(draft: Draft, gathered: Gathered, shown: list[Evidence]) -> None:
    """Draft-level checks (omissions, sections, readability, injection in evidence)."""
    report = check_draft(
        [(s.title, [Statement(text=x.text, citations=x.citations) for x in s.statements])
         for s in draft.sections],
        chart=gathered.chart,
        shown_ids={e.id for e in shown},
        patient_id=gathered.patient_id,
        doc_type=draft.doc_type,
        required_ids=gathered.required,
        patient=next((e for e in gathered.chart if e.resource_type == "Patient"), None),
        shown=shown,
        # Statements were checked as they were produced: reuse those results, don't redo them.
        results=[x.results for s in draft.sections for x in s.statements],
    )
    draft.checks.update(report.summary())


def recheck(draft: Draft, gathered: Gathered) -> None:
    """After a clinician's edit: every statement checked again, draft-level report redone."""
    for st in draft.statements():
        st.results = verify_statement(st, gathered, draft.evidence, draft.doc_type)
    verify_draft(draft, gathered, draft.evidence)


def recheck_draft(store_chart: list[Evidence], draft: Draft) -> None:
    """Re-check a stored draft (after an edit) against the patient's current chart."""
    recheck(draft, Gathered(draft.patient_id, store_chart, draft.evidence))


def apply_guardrail_policy(
    draft: Draft,
    gathered: Gathered,
    shown: list[Evidence],
    reask: ReaskFn | None,
    max_attempts: int,
) -> list[dict[str, object]]:
    """Repair, re-ask, drop or flag failing statements as policy.yaml says; return the changes.

    Dropped statements are recorded on the draft (never silent); flagged ones stay visible.
    """

    def recheck_one(s: Statement) -> list[CheckResult]:
        return verify_statement(DraftStatement(text=s.text, citations=s.citations), gathered,
                                shown, draft.doc_type)

    changes: list[dict[str, object]] = []
    for sec in draft.sections:
        items = [(Statement(text=x.text, citations=x.citations), x.results) for x in sec.statements]
        outcomes = apply_policy(items, doc_type=draft.doc_type, recheck=recheck_one,
                                reask=reask, max_attempts=max_attempts)
        kept: list[DraftStatement] = []
        for st, out in zip(sec.statements, outcomes, strict=True):
            if out.statement is None:
                changes.append({"type": "dropped", "statement_id": st.id, "section": sec.title,
                                "text": st.text, "reasons": out.history})
                continue
            if out.action in ("repaired", "reasked") or out.statement.text != st.text:
                st.text, st.citations = out.statement.text, list(out.statement.citations)
                st.results = out.results
                changes.append({"type": "revised", "statement_id": st.id, "section": sec.title,
                                "action": out.action, "history": out.history})
            kept.append(st)
        sec.statements = kept
    if changes:
        draft.checks["policy"] = changes
    return changes
