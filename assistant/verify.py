"""Run the guardrail checks on a draft's statements, and record the draft-level report."""

from __future__ import annotations

from typing import Any

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


# Unreadable resource type -> the sections that would silently miss it, and what to call it.
_UNREADABLE_SECTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "AllergyIntolerance": (("allergies",), "allergy"),
    "MedicationRequest": (("your medicines", "medications"), "medication"),
    "MedicationStatement": (("your medicines", "medications"), "medication"),
}
_FLAGGED_DOC_TYPES = ("discharge-instructions", "summary")


def _ref(issue: dict[str, Any]) -> str:
    return f"{issue.get('resource_type') or 'resource'}/{issue.get('resource_id') or '(no id)'}"


def flag_unreadable(draft: Draft, unreadable: list[dict[str, Any]]) -> None:
    """Say on the draft which chart resources could not be read, and flag the sections they feed.

    Without this an allergy the loader had to skip simply vanishes, and "Allergies" reads as
    complete. Only the loader's own message is repeated: no clinical text of the resource.
    """
    if not unreadable:
        return
    draft.checks["unreadable_resources"] = [
        {"resource_type": i.get("resource_type"), "resource_id": i.get("resource_id"),
         "message": i.get("message", "")} for i in unreadable]
    if draft.doc_type not in _FLAGGED_DOC_TYPES:
        return
    by_section: dict[str, dict[str, list[str]]] = {}  # section -> noun -> refs
    for issue in unreadable:
        target = _UNREADABLE_SECTIONS.get(issue.get("resource_type") or "")
        if target is None:
            continue
        titles, noun = target
        for title in titles:
            by_section.setdefault(title, {}).setdefault(noun, []).append(_ref(issue))
    for sec in draft.sections:
        nouns = by_section.get(sec.title.strip().lower())
        if not nouns:
            continue
        for noun, refs in nouns.items():
            result = CheckResult(
                check="completeness", verdict="unsupported",
                reason=f"{len(refs)} {noun} record(s) in the chart could not be read: "
                       f"{', '.join(refs)}; check the chart before relying on this section")
            for st in sec.statements:
                if result not in st.results:  # verify_draft may run twice on one draft
                    st.results.append(result)


def verify_draft(draft: Draft, gathered: Gathered, shown: list[Evidence]) -> None:
    """Draft-level checks (omissions, sections, readability, injection in evidence), and a
    warning for any part of the patient's chart that could not be read."""
    # Before the report, so its flagged counts include the sections an unreadable resource feeds.
    flag_unreadable(draft, gathered.unreadable)
    if gathered.required:  # kept, so a review's recheck holds the draft to the same facts
        draft.checks["required_ids"] = sorted(gathered.required)
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


# Required resource type -> the sections (any document type) where its fact is stated.
_OMISSION_SECTIONS: dict[str, tuple[str, ...]] = {
    "MedicationRequest": ("your medicines", "medications", "prior treatments"),
    "MedicationStatement": ("your medicines", "medications", "prior treatments"),
    "AllergyIntolerance": ("allergies",),
    "Condition": ("active problems", "diagnoses"),
    "Appointment": ("follow-up appointments and pending results", "open items"),
    "ServiceRequest": ("follow-up appointments and pending results", "open items",
                       "requested service"),
}


def flag_omissions(draft: Draft, before: dict[str, list[CheckResult]]) -> None:
    """Each required fact missing from the draft becomes an open flag on the section it belongs
    to (the first statement of the draft when that section is gone or empty), so signing is
    refused until someone puts it back or acknowledges leaving it out.

    ``before``: each statement's results before this recheck; a flag that is new re-opens a
    statement acknowledged for something else.
    """
    by_id = {e.id: e for e in draft.evidence}
    for miss in draft.checks.get("omissions") or []:
        rid = str(miss.get("evidence_id"))
        e = by_id.get(rid)
        rtype = e.resource_type if e is not None else ""
        titles = _OMISSION_SECTIONS.get(rtype, ())
        sec = next((s for s in draft.sections
                    if s.title.strip().lower() in titles and s.statements), None)
        targets = sec.statements if sec is not None else draft.statements()[:1]
        what = miss.get("title") or rid
        noun = {"MedicationRequest": "medicine", "MedicationStatement": "medicine",
                "AllergyIntolerance": "allergy", "Condition": "diagnosis"}.get(rtype, "fact")
        result = CheckResult(
            check="omission", verdict="unsupported", evidence_ids=[rid],
            reason=f"A required {noun} is no longer in the draft: {what}. Put it back, or "
                   "acknowledge why it is left out.")
        for st in targets:
            if result in st.results:
                continue
            st.results.append(result)
            if result not in before.get(st.id, []):
                st.acknowledged, st.acknowledgement_note = False, None


def recheck(draft: Draft, gathered: Gathered) -> None:
    """After a clinician's edit: every statement checked again, draft-level report redone, and
    a required fact the edit removed flagged."""
    before = {st.id: list(st.results) for st in draft.statements()}
    for st in draft.statements():
        # The optional judge (assistant/judge.py) runs once, in the pipeline: its answer on a
        # sentence nobody edited still stands; an edit makes it the clinician's, and moot.
        judged = [r for r in st.results if r.check == "judge"] if st.origin != "clinician" else []
        st.results = verify_statement(st, gathered, draft.evidence, draft.doc_type) + judged
    verify_draft(draft, gathered, draft.evidence)
    flag_omissions(draft, before)


def recheck_draft(
    store_chart: list[Evidence], draft: Draft, unreadable: list[dict[str, Any]] | None = None
) -> None:
    """Re-check a stored draft (after an edit) against the patient's current chart.

    ``unreadable`` is ``ChartStore.issues_for(patient)``; without it the draft's own record of
    unreadable resources is kept, so an edit never silently clears the warning.
    """
    if unreadable is None:
        unreadable = list(draft.checks.get("unreadable_resources") or [])
    else:
        draft.checks.pop("unreadable_resources", None)
    required = {str(r) for r in draft.checks.get("required_ids") or []}
    recheck(draft, Gathered(draft.patient_id, store_chart, draft.evidence,
                            required=required, unreadable=unreadable))


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
