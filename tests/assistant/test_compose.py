"""The extractive composer on real synthetic charts: cited, complete, facts copied exactly."""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Any

import pytest
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from assistant.compose import (
    DTR_ORIGIN,
    NOT_DOCUMENTED,
    SECTIONS,
    classify_meds,
    compose,
    prior_auth_questionnaire_response,
)
from assistant.draft import DraftStatement, Section
from prompts.registry import section_titles
from retrieval.errors import BadInput
from retrieval.evidence import Evidence
from retrieval.fhir_load import load_json
from retrieval.knowledge import Policy, load_kb, policies
from retrieval.normalize import normalize_all
from retrieval.plans import apply_pick, find_encounter, plan_for, required_ids
from retrieval.synth import generate, planted_attacks

ANCHOR = date(2025, 6, 1)


class Case:
    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.chart, issues = normalize_all(load_json(bundle).resources)
        assert issues == []
        self.patient_id = next(e.patient_id for e in self.chart if e.resource_type == "Patient")
        order = next(e for e in self.chart if e.data.get("status") == "draft")
        self.order = order
        self.policy: Policy = next(p for p in policies() if any(
            p.applies_to_code(c.system, c.code) for c in order.codes))

    def evidence(self, doc_type: str) -> tuple[list[Evidence], set[str]]:
        """What gather would show: the plan's picks plus the whole knowledge base."""
        plan = plan_for(doc_type, policy=self.policy if doc_type == "prior-auth" else None,
                        order_id=self.order.id if doc_type == "prior-auth" else None)
        shown: dict[str, Evidence] = {}
        for p in plan.picks:
            for e in apply_pick(p, self.chart, today=ANCHOR):
                shown.setdefault(e.id, e)
        return list(shown.values()) + load_kb(), required_ids(plan, self.chart)

    def compose(self, doc_type: str) -> tuple[list[Section], list[Evidence], set[str]]:
        ev, req = self.evidence(doc_type)
        secs = compose(doc_type, ev, required=req, patient_id=self.patient_id,
                       order_id=self.order.id if doc_type == "prior-auth" else None,
                       policy=self.policy if doc_type == "prior-auth" else None, today=ANCHOR)
        return secs, ev, req


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return [Case(b) for b in generate(12, 21, attacks=True, anchor=ANCHOR)]


def _all(secs: list[Section]) -> list[DraftStatement]:
    return [s for sec in secs for s in sec.statements]


@pytest.mark.parametrize("doc_type", list(SECTIONS))
def test_sections_citations_and_required_evidence(cases: list[Case], doc_type: str) -> None:
    assert SECTIONS[doc_type] == section_titles(doc_type)  # same order the prompts ask for
    for case in cases:
        secs, ev, req = case.compose(doc_type)
        assert [s.title for s in secs] == SECTIONS[doc_type]
        ids = {e.id for e in ev}
        for st in _all(secs):
            assert st.origin == "extractive"
            assert set(st.citations) <= ids, st.text
            if st.citations:
                assert NOT_DOCUMENTED not in st.text
            else:
                assert st.text.endswith(NOT_DOCUMENTED), st.text  # only gaps go uncited
            assert all(sec.statements for sec in secs)
        cited = {c for st in _all(secs) for c in st.citations}
        assert req & ids <= cited, "every required item that was shown is stated"


_MONTHS = list(calendar.month_name)[1:]


def _numbers(text: str) -> set[str]:
    """The numbers in ``text``; a date in words ("June 2, 2025", patient wording) counts as the
    chart's 2025-06-02, and "02" is the number 2."""
    text = re.sub(r"\b(" + "|".join(_MONTHS) + r") (\d{1,2}), (\d{4})",
                  lambda m: f"{m.group(3)}-{_MONTHS.index(m.group(1)) + 1}-{m.group(2)}", text)
    text = re.sub(r"\b(" + "|".join(_MONTHS) + r") (\d{4})",
                  lambda m: f"{m.group(2)}-{_MONTHS.index(m.group(1)) + 1}", text)
    return {n.lstrip("0") or "0" if "." not in n else n
            for n in re.findall(r"\d+(?:\.\d+)?", text)}


def test_facts_are_copied_from_what_is_cited(cases: list[Case]) -> None:
    by_id = {e.id: e for e in load_kb()}
    for case in cases:
        by_id.update({e.id: e for e in case.chart})
        for doc_type in SECTIONS:
            secs, _, _ = case.compose(doc_type)
            for st in _all(secs):
                if not st.citations:
                    continue
                source = " ".join(f"{by_id[c].title} {by_id[c].text} {by_id[c].data}"
                                  for c in st.citations)
                body = re.sub(r"^Criterion \d+ \([^)]*\): ", "", st.text)
                missing = _numbers(body) - _numbers(source)
                assert not missing, (st.text, missing)


def test_discharge_medicines_in_plain_language(cases: list[Case]) -> None:
    for case in cases:
        secs, ev, _ = case.compose("discharge-instructions")
        meds = next(s for s in secs if s.title == "Your medicines").statements
        texts = [m.text for m in meds]
        groups = classify_meds([e for e in ev if e.resource_type == "MedicationRequest"],
                               find_encounter(ev))
        assert groups["new"] and groups["changed"] and groups["stopped"] and groups["continued"]
        assert sum(t.startswith("New medicine: ") for t in texts) == len(groups["new"])
        assert sum(t.startswith("Changed dose") for t in texts) == len(groups["changed"])
        assert sum(t.startswith("Stop taking ") for t in texts) == len(groups["stopped"])
        assert sum(t.startswith("Keep taking ") for t in texts) == len(groups["continued"])
        for new, old in groups["changed"]:
            st = next(m for m in meds if new.id in m.citations)
            assert old.id in st.citations
        for m in meds:
            if not m.text.startswith("Stop"):
                assert re.search(r"by mouth|under the skin|inhaler", m.text), m.text
                assert re.search(r"daily|weekly|every \d+ (hours|weeks)", m.text), m.text


def test_a_changed_dose_reads_as_old_to_new() -> None:
    case = next(c for c in (Case(b) for b in generate(8, 2, anchor=ANCHOR))
                if any("metoprolol" in (e.data.get("drug") or "") for e in c.chart))
    secs, _, _ = case.compose("discharge-instructions")
    meds = next(s for s in secs if s.title == "Your medicines").statements
    assert any(m.text == "Changed dose from 25 mg to 50 mg: metoprolol succinate 50 mg extended "
                         "release. Take 1 tablet by mouth once daily."
               for m in meds), [m.text for m in meds]


def test_discharge_allergies_knowledge_and_follow_up(cases: list[Case]) -> None:
    for case in cases:
        secs, ev, _ = case.compose("discharge-instructions")
        by = {s.title: s.statements for s in secs}
        allergies = [e for e in ev if e.resource_type == "AllergyIntolerance"]
        if not allergies:
            assert [s.text for s in by["Allergies"]] == [NOT_DOCUMENTED]
        elif any(e.data["substance"] == "No known allergy" for e in allergies):
            assert by["Allergies"][0].text == "You have no known allergies."
        else:
            assert len(by["Allergies"]) == len(allergies)
            assert all(s.text.startswith("You are allergic to ") for s in by["Allergies"])
        for title in ("Warning signs and when to get help", "Diet and activity"):
            assert by[title] and all(c.startswith("kb:") for s in by[title] for c in s.citations)
        follow = by["Follow-up appointments and pending results"]
        # The booked visit speaks for the order it was booked for: one statement, both cited.
        appt = next(e for e in ev if e.resource_type == "Appointment")
        [visit] = [s for s in follow if appt.id in s.citations]
        assert visit.text.startswith("You have an appointment on ")
        assert set(visit.citations) == {appt.id, *appt.data["based_on"]}
        assert not any(s.text.startswith("Your next visit is on ") for s in follow)
        assert any("blood test" in s.text for s in follow)


def test_clinician_summary_says_routes_the_clinical_way(cases: list[Case]) -> None:
    patient_voice = re.compile(r"\byour\b|with your inhaler|as a shot", re.I)
    for case in cases:
        secs, _, _ = case.compose("summary")
        meds = next(s.statements for s in secs if s.title == "Medications")
        assert meds and not any(patient_voice.search(s.text) for s in meds)


def test_prior_auth_one_statement_per_criterion(cases: list[Case]) -> None:
    states = []
    for case in cases:
        secs, _, _ = case.compose("prior-auth")
        by = {s.title: s.statements for s in secs}
        crit = by["Policy criteria"]
        assert len(crit) == len(case.policy.criteria)
        for n, (st, c) in enumerate(zip(crit, case.policy.criteria, strict=True), 1):
            assert st.text.startswith(f"Criterion {n} ({c.id}): ")
            states.append(bool(st.citations))
        requested = by["Requested service"][0]
        assert requested.citations == [case.order.id]
        assert any(code.code and code.code in requested.text for code in case.order.codes)
        assert all("ICD-10" in s.text for s in by["Diagnoses"])
        assert by["Duration requested"][0].text == \
            f"Requested duration: {case.policy.duration}."
        duration_id = f"kb:{case.policy.id}#duration-of-approval"
        assert by["Duration requested"][0].citations == [duration_id]
    assert any(states) and not all(states)  # some criteria documented, some not


def test_injected_text_is_never_copied_into_a_statement(cases: list[Case]) -> None:
    planted = [c for c in cases if any(a["kind"] == "injection" for a in
                                       planted_attacks(c.bundle))]
    assert planted
    for case in planted:
        for doc_type in SECTIONS:
            secs, _, _ = case.compose(doc_type)
            assert not any("ignore previous" in s.text.lower() for s in _all(secs))


def test_empty_chart_gives_explicit_gaps_not_a_crash() -> None:
    pt = Evidence(id="Patient/x", patient_id="x", resource_type="Patient", title="P", text="P")
    for doc_type in SECTIONS:
        secs = compose(doc_type, [pt], required=set(), patient_id="x", policy=policies()[0])
        texts = {s.text for s in _all(secs) if not s.text.startswith("Criterion")}
        assert texts == {NOT_DOCUMENTED}
        assert all(not s.citations for s in _all(secs))


def test_other_patients_evidence_is_never_cited(cases: list[Case]) -> None:
    a, b = cases[0], cases[1]
    ev, req = a.evidence("summary")
    foreign, _ = b.evidence("summary")
    secs = compose("summary", ev + foreign, required=req, patient_id=a.patient_id)
    b_ids = {e.id for e in b.chart}
    assert not any(c in b_ids for s in _all(secs) for c in s.citations)


def test_unknown_doc_type() -> None:
    with pytest.raises(BadInput, match="use one of"):
        compose("memo", [], required=set(), patient_id="x")


def test_questionnaire_response_is_valid_fhir_with_dtr_origin(cases: list[Case]) -> None:
    case = cases[0]
    secs, _, _ = case.compose("prior-auth")
    # A clinician edit of one answer is recorded as an override of the automatic answer.
    crit = next(s for s in secs if s.title == "Policy criteria").statements
    crit[0].origin = "clinician"
    qr = prior_auth_questionnaire_response(secs, case.policy, case.patient_id)
    QuestionnaireResponse.model_validate(qr)
    assert qr["subject"]["reference"] == f"Patient/{case.patient_id}"
    links = [i["linkId"] for i in qr["item"]]
    for c in case.policy.criteria:
        assert c.id in links and f"{c.id}-evidence" in links
    sources = []
    for item in qr["item"]:
        for ans in item["answer"]:
            (ext,) = ans["extension"]
            assert ext["url"] == DTR_ORIGIN
            sources.append(ext["extension"][0]["valueCode"])
    assert set(sources) <= {"auto", "override", "manual"}
    assert sources[0] in ("override", "manual") and "auto" in sources
    met = {i["linkId"]: i["answer"][0]["valueBoolean"] for i in qr["item"]
           if "valueBoolean" in i["answer"][0]}
    for n, c in enumerate(case.policy.criteria):
        assert met[c.id] == bool(crit[n].citations)


def _ev(rid: str, rtype: str, when: str | None = None, **data: object) -> Evidence:
    return Evidence(id=rid, patient_id="p1", resource_type=rtype, title=rid, text=rid, date=when,
                    data=dict(data))


def test_new_medicines_are_those_ordered_on_a_day_of_the_stay() -> None:
    """Days, not text: a datetime counts by its written day; a month alone is not in the stay."""
    stay = _ev("Encounter/s", "Encounter", "2025-05-10T22:00:00Z", status="finished",
               start="2025-05-10T22:00:00Z", end="2025-05-12T09:00:00Z")
    meds = [_ev(f"MedicationRequest/{k}", "MedicationRequest", status="active", drug=f"{k} 5 MG",
                authored_on=when) for k, when in [
        ("first", "2025-05-10"), ("zoned", "2025-05-11T23:30:00-05:00"),
        ("lastday", "2025-05-12T23:00:00Z"), ("after", "2025-05-13"), ("month", "2025-05"),
        ("junk", "during the stay")]]
    groups = classify_meds(meds, stay)
    assert {m.id.split("/")[1] for m in groups["new"]} == {"first", "zoned", "lastday"}
    assert {m.id.split("/")[1] for m in groups["continued"]} == {"after", "month", "junk"}


def test_dates_are_copied_at_their_precision_and_junk_is_left_out() -> None:
    chart = [
        _ev("Patient/p1", "Patient"),
        _ev("Condition/c", "Condition", "2019", status="active", name="Asthma", onset="2019"),
        _ev("MedicationRequest/m", "MedicationRequest", status="active", drug="albuterol",
            authored_on="not recorded"),
        _ev("Observation/o", "Observation", None, status="final", value=7.1, unit="%"),
        _ev("ServiceRequest/r", "ServiceRequest", "2025-05-03T10:00:00+02:00", status="active",
            code="Chest X-ray", authored_on="2025-05-03T10:00:00+02:00"),
    ]
    secs = compose("summary", chart, required=set(), patient_id="p1")
    texts = [s.text for s in _all(secs)]
    assert any("since 2019" in t for t in texts), texts
    assert any("(active, ordered 2025-05-03)" in t for t in texts), texts
    assert not any(x in t for t in texts for x in ("None", "not recorded", "T10:00")), texts


def test_an_order_without_a_status_is_never_picked_for_a_letter(cases: list[Case]) -> None:
    """Missing status is invalid FHIR; a prior-auth letter asks only for a draft/active/on-hold
    order, so neither the composer nor the pipeline's order finder picks one unasked."""
    from assistant.compose import find_order as compose_find_order
    from assistant.orders import find_order

    case = cases[0]
    chart = [e for e in case.chart if e.id != case.order.id]
    assert find_order([*chart, case.order], None) == case.order
    for status in (None, "completed", "revoked", "entered-in-error"):
        data = {k: v for k, v in case.order.data.items() if k != "status"}
        if status is not None:
            data["status"] = status
        order = case.order.model_copy(update={"data": data})
        assert find_order([*chart, order], None) is None, status
        assert compose_find_order([*chart, order], None, case.policy) is None, status
    for status in ("draft", "active", "on-hold"):
        order = case.order.model_copy(update={"data": {**case.order.data, "status": status}})
        assert find_order([*chart, order], None) == order
        assert compose_find_order([*chart, order], None, case.policy) == order
