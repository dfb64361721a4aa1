"""Public entry points: check one statement, a whole draft, or a draft JSON file's content."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from chartdraft_guardrails.citation import check_citations, is_clinical, note_sections
from chartdraft_guardrails.contradiction import check_contradiction
from chartdraft_guardrails.facts import (
    EvidenceFacts,
    chart_vocab,
    concept_terms,
    evidence_facts,
    statement_facts,
)
from chartdraft_guardrails.injection import InjectionFinding, check_injection, scan_evidence
from chartdraft_guardrails.interpretation import check_interpretation
from chartdraft_guardrails.links import check_links
from chartdraft_guardrails.omission import check_omissions, check_sections
from chartdraft_guardrails.patient_voice import check_sections as check_patient_voice
from chartdraft_guardrails.phi import Allowed, allowed_identifiers, check_phi
from chartdraft_guardrails.policy import load_policy
from chartdraft_guardrails.readability import check_readability, label_words
from chartdraft_guardrails.statement import CheckResult, Statement, Verdict, worst
from chartdraft_guardrails.support import check_support
from retrieval.errors import BadInput
from retrieval.evidence import Evidence

__all__ = [
    "DraftReport",
    "check_draft",
    "check_draft_json",
    "check_statement",
    "is_clinical",
    "scan_evidence",
]


@dataclass
class ChartContext:
    """Everything derived from one chart once: facts per evidence, vocabulary, injections, PHI."""

    chart: list[Evidence]
    by_id: dict[str, Evidence]
    facts: dict[str, EvidenceFacts]
    facts_list: list[EvidenceFacts]
    vocab: frozenset[str]
    injections: list[InjectionFinding]
    allowed: Allowed
    label: frozenset[str] = frozenset()  # medicine / allergy name words (readability)
    concepts: frozenset[str] = frozenset()  # condition / procedure / allergy words (is_clinical)
    size: int = 0
    patient: Evidence | None = None  # age and sex for reference ranges (interpretation)


_contexts: OrderedDict[int, ChartContext] = OrderedDict()


def chart_context(chart: list[Evidence], patient: Evidence | None = None) -> ChartContext:
    """Cached per chart list object (the pipeline checks many statements against one chart)."""
    key = id(chart)
    ctx = _contexts.get(key)
    if ctx is not None and ctx.chart is chart and ctx.size == len(chart):
        return ctx
    pat = patient or next((e for e in chart if e.resource_type == "Patient"), None)
    facts = {e.id: evidence_facts(e) for e in chart}
    ctx = ChartContext(
        chart=chart,
        by_id={e.id: e for e in chart},
        facts=facts,
        facts_list=list(facts.values()),
        vocab=chart_vocab(chart),
        injections=scan_evidence(chart),
        allowed=allowed_identifiers(pat, chart),
        label=label_words(_label_names(chart)),
        concepts=concept_terms(chart),
        size=len(chart),
        patient=pat,
    )
    _contexts[key] = ctx
    while len(_contexts) > 8:
        _contexts.popitem(last=False)
    return ctx


def _facts_for(e: Evidence, ctx: ChartContext) -> EvidenceFacts:
    f = ctx.facts.get(e.id)
    return f if f is not None and f.evidence is e else evidence_facts(e)


def check_statement(
    statement: Statement,
    *,
    cited: list[Evidence],
    chart: list[Evidence],
    shown_ids: set[str],
    patient_id: str,
    doc_type: str,
    phi_ner: bool = False,
) -> list[CheckResult]:
    """Every check on one statement. An empty list means nothing needed checking."""
    ctx = chart_context(chart)
    # A drug, allergy or condition named without a dose or citation is still checked.
    clinical = is_clinical(statement.text, ctx.vocab, ctx.concepts)
    results = check_citations(
        statement,
        chart_by_id=ctx.by_id,
        cited=cited,
        shown_ids=shown_ids,
        patient_id=patient_id,
        clinical=clinical,
    )
    bad = {i for r in results for i in r.evidence_ids}
    by_id = {e.id: e for e in cited}
    for cid in statement.citations:
        if cid not in by_id and cid in ctx.by_id:
            by_id[cid] = ctx.by_id[cid]
    usable = [by_id[c] for c in statement.citations if c in by_id and c not in bad]
    for cid in statement.citations:  # a whole note's citation stands for its shown sections
        if cid not in by_id and cid not in bad:
            usable += note_sections(cid, ctx.by_id, shown_ids)
    facts = statement_facts(statement.text, ctx.vocab)
    if usable:
        cited_facts = [_facts_for(e, ctx) for e in usable]
        birth = ctx.patient.data.get("birth_date") if ctx.patient else None  # for ages
        results += check_support(facts, cited_facts, birth if isinstance(birth, str) else None)
        # purpose and causal claims against the chart's FHIR links (reasonReference...)
        results += check_links(facts, cited_facts, ctx.by_id, lambda e: _facts_for(e, ctx))
        # "elevated", "well controlled", "rising" against the cited Observations' values
        results += check_interpretation(facts, cited_facts, ctx.patient, ctx.by_id.get)
    if statement.citations or clinical:
        results += check_contradiction(
            facts, ctx.facts_list, ctx.vocab, [_facts_for(e, ctx) for e in usable]
        )
    cited_inj = scan_evidence([e for e in usable if e.id not in ctx.by_id])
    results += check_injection(statement.text, ctx.injections + cited_inj)
    results += check_phi(statement.text, ctx.allowed, ner=phi_ner)
    return results


@dataclass
class StatementReport:
    section: int
    index: int
    title: str
    statement: Statement
    results: list[CheckResult]

    @property
    def verdict(self) -> Verdict:
        return worst(self.results)

    def reasons(self) -> list[str]:
        fails = [r.reason for r in self.results if r.verdict != "supported"]
        return fails or [r.reason for r in self.results if r.reason][:1]


@dataclass
class DraftReport:
    statements: list[StatementReport] = field(default_factory=list)
    omissions: list[dict[str, str]] = field(default_factory=list)
    missing_sections: list[str] = field(default_factory=list)
    readability: list[dict[str, Any]] = field(default_factory=list)
    injection: list[InjectionFinding] = field(default_factory=list)
    # Patient text only: ISMP abbreviations, ISO dates, tall-man names... (patient_voice.py).
    patient_voice: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        by: dict[str, int] = {}
        for s in self.statements:
            by[s.verdict] = by.get(s.verdict, 0) + 1
        return {
            "statements": len(self.statements),
            "supported": by.get("supported", 0),
            "flagged": len(self.statements) - by.get("supported", 0),
            "by_verdict": by,
            "omissions": self.omissions,
            "missing_sections": self.missing_sections,
            "readability": self.readability,
            "patient_voice": self.patient_voice,
            "injection": [
                {"evidence_id": f.evidence_id, "kind": f.kind, "reason": f.reason()}
                for f in self.injection
            ],
        }


def check_draft(
    sections: list[tuple[str, list[Statement]]],
    *,
    chart: list[Evidence],
    shown_ids: set[str],
    patient_id: str,
    doc_type: str,
    required_ids: set[str] | frozenset[str] = frozenset(),
    patient: Evidence | None = None,
    shown: list[Evidence] | None = None,
    required_sections: list[str] | None = None,
    phi_ner: bool = False,
    results: list[list[CheckResult]] | None = None,
) -> DraftReport:
    """Per-statement results plus the draft-level findings.

    ``shown`` (the evidence in the prompt) lets knowledge passages be checked; chart evidence is
    looked up in ``chart``. ``results``: the :func:`check_statement` results the caller already
    has, one list per statement in draft order (sections flattened); they are reused instead of
    checking every statement again.
    """
    ctx = chart_context(chart, patient)
    extra = {e.id: e for e in (shown or []) if e.id not in ctx.by_id}
    pol = load_policy()
    report = DraftReport()
    n = sum(len(sts) for _, sts in sections)
    if results is not None and len(results) != n:
        raise BadInput(
            f"results has {len(results)} entries for {n} statements",
            where="check_draft(results=...)",
            fix="pass one list of CheckResult per statement, in draft order, or None",
        )
    k = 0
    for i, (title, statements) in enumerate(sections):
        for j, st in enumerate(statements):
            k += 1
            if results is not None:
                report.statements.append(StatementReport(i, j, title, st, list(results[k - 1])))
                continue
            cited = [
                ctx.by_id.get(c) or extra[c] for c in st.citations if c in ctx.by_id or c in extra
            ]
            res = check_statement(
                st,
                cited=cited,
                chart=chart,
                shown_ids=shown_ids,
                patient_id=patient_id,
                doc_type=doc_type,
                phi_ner=phi_ner,
            )
            report.statements.append(StatementReport(i, j, title, st, res))
    report.omissions = check_omissions(sections, required_ids=required_ids, chart_by_id=ctx.by_id)
    wanted = required_sections
    if wanted is None:
        wanted = list((pol.get("required_sections") or {}).get(doc_type, []))
    report.missing_sections = check_sections([t for t, _ in sections], wanted)
    rd = pol.get("readability") or {}
    if doc_type in rd.get("doc_types", []):
        report.readability = [
            check_readability(
                t,
                [s.text for s in sts],
                target=float(rd.get("target", 6)),
                limit=float(rd.get("limit", 8)),
                label=ctx.label,
            )
            for t, sts in sections
            if sts
        ]
        # The same documents are the patient's to read: hold them to the patient-voice rules.
        report.patient_voice = check_patient_voice([(t, [s.text for s in sts])
                                                    for t, sts in sections])
    report.injection = [f for f in ctx.injections if f.evidence_id in shown_ids]
    report.injection += scan_evidence(list(extra.values()))
    return report


def _label_names(chart: list[Evidence]) -> list[str]:
    """Medicine and allergy names as printed on labels and bands (not graded for readability)."""
    out: list[str] = []
    for e in chart:
        if e.resource_type.startswith("Medication") or e.resource_type in (
            "AllergyIntolerance",
            "Immunization",
        ):
            out.append(e.title)
            out += [str(e.data[k]) for k in ("drug", "substance", "vaccine") if e.data.get(k)]
    return out


def _need(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise BadInput(
            f"missing field {key!r}",
            where=where,
            fix='a draft is {"patient_id", "doc_type", "sections": [{"title", '
            '"statements": [{"text", "citations"}]}]}',
        )
    value = obj[key]
    if not isinstance(value, kind):
        raise BadInput(
            f"field {key!r} must be {kind.__name__}, got {type(value).__name__}",
            where=f"{where}.{key}",
        )
    return value


def check_draft_json(draft: dict[str, Any], chart: list[Evidence]) -> dict[str, Any]:
    """The ``chartdraft check --json`` report for a Draft-shaped dict against loaded evidence."""
    if not isinstance(draft, dict):
        raise BadInput("the draft must be a JSON object", where="draft")
    patient_id = _need(draft, "patient_id", str, "draft")
    doc_type = _need(draft, "doc_type", str, "draft")
    known = list((load_policy().get("required_sections") or {}).keys())
    if doc_type not in known:
        raise BadInput(
            f"unknown doc_type {doc_type!r}",
            where="draft.doc_type",
            fix=f"use one of {', '.join(known)}",
        )
    sections: list[tuple[str, list[Statement]]] = []
    for i, sec in enumerate(_need(draft, "sections", list, "draft")):
        where = f"draft.sections[{i}]"
        title = _need(sec, "title", str, where)
        sts = []
        for j, st in enumerate(_need(sec, "statements", list, where)):
            w = f"{where}.statements[{j}]"
            text = _need(st, "text", str, w)
            cits = st.get("citations", []) if isinstance(st, dict) else []
            if not isinstance(cits, list) or not all(isinstance(c, str) for c in cits):
                raise BadInput(
                    "citations must be a list of evidence ids",
                    where=f"{w}.citations",
                    fix='e.g. ["Condition/123"]',
                )
            sts.append(Statement(text=text, citations=cits))
        sections.append((title, sts))
    mine = [e for e in chart if e.patient_id == patient_id or e.kind == "knowledge"]
    if not any(e.patient_id == patient_id for e in mine):
        present = sorted({e.patient_id for e in chart if e.patient_id})[:5]
        raise BadInput(
            f"patient {patient_id!r} is not in the chart",
            where="draft.patient_id",
            fix=f"patients in the chart: {', '.join(present) or 'none'}",
        )
    others = {e.id: e for e in chart if e.patient_id not in (None, patient_id)}
    report = DraftReport()
    ctx = chart_context(mine)
    shown = {e.id for e in mine}
    for i, (title, sts) in enumerate(sections):
        for j, st in enumerate(sts):
            cited = [
                ctx.by_id.get(c) or others[c] for c in st.citations if c in ctx.by_id or c in others
            ]
            res = check_statement(
                st,
                cited=cited,
                chart=mine,
                shown_ids=shown,
                patient_id=patient_id,
                doc_type=doc_type,
            )
            report.statements.append(StatementReport(i, j, title, st, res))
    full = check_draft(
        sections,
        chart=mine,
        shown_ids=shown,
        patient_id=patient_id,
        doc_type=doc_type,
        results=[s.results for s in report.statements],
    )
    report.missing_sections, report.readability = full.missing_sections, full.readability
    report.patient_voice = full.patient_voice
    report.injection = full.injection
    return {
        "statements": [
            {
                "section": s.section,
                "index": s.index,
                "text": s.statement.text,
                "verdict": s.verdict,
                "reasons": s.reasons(),
            }
            for s in report.statements
        ],
        "summary": report.summary(),
    }
