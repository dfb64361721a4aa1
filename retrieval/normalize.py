"""Normalize loaded FHIR resources into Evidence: one or more citable units per resource.

``Evidence.id`` is ``ResourceType/id``; clinical notes give one unit per section,
``DocumentReference/id#N`` (N = 1..). ``text`` is a short readable sentence, ``codes`` every coding
(system, code, display), ``date`` the resource's main ISO date, and ``data`` the parsed fields the
checks need. ``data`` keys by resource type (values ``None`` when the chart does not say):

all types         status (Condition/AllergyIntolerance: the clinical status code)
MedicationRequest drug, rxnorm, strength_value, strength_unit (from the drug name, else the
                  Medication ingredient), dose_value, dose_unit (Dosage.doseQuantity), dose_form
                  ("tablet", from the drug name), route (Dosage.route, else implied by the dose
                  form), frequency ("twice daily", "every 6 hours"), timing {frequency, period,
                  periodUnit}, as_needed, as_needed_for, dosage_text, authored_on, intent, reason,
                  requester, encounter, change (None: one order alone cannot tell new/changed/
                  stopped)
Medication        drug, rxnorm, strength_value, strength_unit, form
AllergyIntolerance substance, type, category [..], criticality, clinical_status,
                  verification_status, reactions [{manifestation, severity, substance}], onset,
                  recorded_date
Condition         name, clinical_status, verification_status, onset, abatement, recorded_date,
                  category, icd10 [codes], snomed [codes]
Observation       name, loinc, value (number, text or bool), unit, components [{name, loinc, value,
                  unit}], reference_low, reference_high, reference_text, interpretation,
                  effective, category
DiagnosticReport  name, loinc, result_ids ["Observation/.."], conclusion, effective, category
Procedure         name, performed, performed_end, snomed, cpt, reason
Immunization      vaccine, cvx, occurrence
Encounter         class, type, start, end, reason, discharge_disposition, service_provider,
                  location
CarePlan          name, intent, start, end, activities [{activity, status}], addresses
ServiceRequest    code, cpt, snomed, intent, priority, reason, authored_on, occurrence, requester
DocumentReference note_type, section (heading or None), section_index (N), full_text_chars, loinc,
                  doc_status, author, encounter, description
Coverage          payer, plan, member_id, relationship, start, end, type
Appointment       name, status, appointment_type, start, end, with [..], location, reason,
                  cancelation_reason (the patient is found among the participants)
Patient           name, names, birth_date, gender, race, ethnicity (US Core extensions), deceased,
                  marital_status, language, mrn [values], identifiers [{system, type, type_text,
                  value}], phone [..], address [..]
Practitioner      name, npi, qualification
Organization      name, npi, type, phone, address
other patient     name, effective (a generic unit for Goal, Device, ImagingStudy...)
  resources

``links`` (MedicationRequest, Procedure, Encounter, CarePlan, ServiceRequest, Appointment,
Condition): the chart's own FHIR links, kept as evidence ids ``ResourceType/id`` (``urn:uuid:``
and absolute references were rewritten by the loader; contained ``#x`` ones are dropped), keys
only when present:
  reason      reasonReference (MedicationRequest, Procedure, Encounter, ServiceRequest,
              Appointment); its words are in ``reason`` too (the display, else the target's name)
  based_on    basedOn (MedicationRequest, Procedure, ServiceRequest, CarePlan, Appointment)
  part_of     Procedure.partOf
  diagnosis   Encounter.diagnosis.condition
  addresses   CarePlan.addresses (its names are in ``addresses``)
  evidence    Condition.evidence.detail (what the diagnosis rests on)
The guardrails check purpose and causal claims ("for your gout", "due to") against them.

Billing resources (Claim, ExplanationOfBenefit) and directory entries (Location, PractitionerRole)
give no evidence. A resource that parsed but cannot be normalized is reported as a LoadIssue and
skipped; normalization never stops for it.
"""

from __future__ import annotations

from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadedResource, LoadIssue
from retrieval.normalize_admin import appointment, coverage, organization, patient, practitioner
from retrieval.normalize_clinical import (
    allergy,
    care_plan,
    condition,
    diagnostic_report,
    encounter,
    immunization,
    observation,
    procedure,
    service_request,
)
from retrieval.normalize_common import (
    Context,
    Normalizer,
    cc_text,
    codes_of,
    day,
    evidence,
    join,
    when,
)
from retrieval.normalize_meds import medication, medication_request
from retrieval.normalize_notes import document_reference

NORMALIZERS: dict[str, Normalizer] = {
    "Patient": patient,
    "Encounter": encounter,
    "Condition": condition,
    "MedicationRequest": medication_request,
    "Medication": medication,
    "AllergyIntolerance": allergy,
    "Observation": observation,
    "DiagnosticReport": diagnostic_report,
    "Procedure": procedure,
    "Immunization": immunization,
    "DocumentReference": document_reference,
    "CarePlan": care_plan,
    "Coverage": coverage,
    "ServiceRequest": service_request,
    "Practitioner": practitioner,
    "Organization": organization,
    "Appointment": appointment,
}
# Not citable clinical facts: billing and directory entries.
SKIPPED_TYPES = {"Claim", "ExplanationOfBenefit", "Location", "PractitionerRole", "Provenance",
                 "AuditEvent", "Bundle"}


def generic(r: LoadedResource, ctx: Context) -> list[Evidence]:
    """A plain unit for patient resources we have no dedicated reader for (Goal, Device...)."""
    res = r.resource
    concept = res.get("code") or res.get("type") or res.get("description")
    name = (cc_text(concept) or (res.get("description") if isinstance(res.get("description"), str)
                                 else None) or r.resource_type)
    if isinstance(name, dict):  # Goal.description is a CodeableConcept
        name = cc_text(name) or r.resource_type
    effective = (when(res, "effective") or when(res, "occurrence") or when(res, "performed")
                 or res.get("started") or res.get("startDate") or res.get("date"))
    text = join(f"{r.resource_type}: {name}", res.get("status") or res.get("lifecycleStatus"),
                f"on {day(effective)}" if isinstance(effective, str) else None)
    return [evidence(r, title=str(name), text=text,
                     data={"name": name, "effective": effective,
                           "status": res.get("status") or res.get("lifecycleStatus")},
                     codes=codes_of(concept if isinstance(concept, dict) else None),
                     date=effective if isinstance(effective, str) else None)]


def normalize_one(r: LoadedResource, ctx: Context) -> list[Evidence]:
    fn = NORMALIZERS.get(r.resource_type)
    if fn is None:
        if r.resource_type in SKIPPED_TYPES or not r.patient_id:
            return []
        fn = generic
    return fn(r, ctx)


def normalize_all(resources: list[LoadedResource]) -> tuple[list[Evidence], list[LoadIssue]]:
    """Every resource -> its Evidence units; problems become LoadIssues, never exceptions."""
    ctx = Context(by_ref={r.ref: r for r in resources})
    out: list[Evidence] = []
    issues: list[LoadIssue] = []
    for r in resources:
        try:
            out.extend(normalize_one(r, ctx))
        # A resource can be valid FHIR yet shaped in a way a reader did not foresee; one such
        # resource must not stop the chart from loading, so any failure is reported and skipped.
        except Exception as exc:  # noqa: BLE001
            issues.append(LoadIssue(r.source, "normalize", r.resource_type, r.id,
                                    f"could not be normalized ({type(exc).__name__}: {exc}); "
                                    "skipped"))
    return out, issues
