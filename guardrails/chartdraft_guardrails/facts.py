"""Clinical facts in a statement and in evidence, normalized so they can be compared.

A statement gives: dates, quantities (number + optional unit), drugs (generic names), clinical
terms (condition / procedure / test words), frequencies, routes, an as-needed flag, status claims
and negated concepts. Evidence gives the same from its ``text``, ``title``, ``codes`` and ``data``.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from chartdraft_guardrails import lexicon, terminology
from chartdraft_guardrails.dates import MONTHS, DateFact, find_dates, parse_iso
from chartdraft_guardrails.numbers import (
    Quantity,
    bare_years,
    concentrations_in,
    quantities,
    value_of,
)
from chartdraft_guardrails.time_words import blank_anchors
from chartdraft_guardrails.units import concentration, dose_amounts, is_count, millilitres
from retrieval.evidence import Evidence

_WORD = re.compile(r"[a-z][a-z0-9\-']*[a-z0-9]|[a-z]")
_CLINICAL_SUFFIX = re.compile(
    r"(ectomy|otomy|ostomy|plasty|scopy|itis|osis|emia|algia|pathy|oma|graphy|gram|plegia|"
    r"trophy|cillin|mycin|statin|pril|sartan|olol|azole|prazole|dipine|tidine|oxacin|cycline|"
    # USAN drug stems: an unknown drug name is still recognised as a drug-like term
    r"terol|lukast|parin|xaban|gliptin|gliflozin|glutide|semide|thiazide|profen|oxetine|pram|"
    r"zepam|zolam|triptan|afil|vir|mab|nib|dronate|olone|sone|setron|phylline|floxacin|"
    r"barbital|caine|codone|morphone)$|^(?:cef|ceph)[a-z]{3,}"
)
_DATA_TEXT_KEYS = (
    "drug",
    "substance",
    "name",
    "reason",
    "vaccine",
    "type",
    "code",
    "note_type",
    "section",
    "conclusion",
    "as_needed_for",
    "dosage_text",
    "manifestation",
    "payer",
    "plan",
    "category",
    "addresses",  # CarePlan: the conditions it addresses (names of its links)
)
_DATE_KEYS = (
    "onset",
    "abatement",
    "effective",
    "performed",
    "performed_end",
    "authored_on",
    "occurrence",
    "start",
    "end",
    "recorded_date",
    "birth_date",
)

STATUS_ACTIVE = {"active", "on-hold", "recurrence", "relapse", "draft", "in-progress"}
STATUS_INACTIVE = {
    "resolved",
    "inactive",
    "remission",
    "stopped",
    "cancelled",
    "completed",
    "entered-in-error",
    "revoked",
    "not-taken",
}

_NEG = re.compile(r"\b(?:no|not|denies|denied|never|without|negative for|free of)\b")
_NKA = re.compile(
    r"\b(?:no known (?:drug |medication )?allerg(?:y|ies)|nkda|nka|no (?:drug |medication )?"
    r"allerg(?:y|ies)|denies (?:any )?allerg(?:y|ies)|not allergic to any|has no allerg(?:y|ies)|"
    r"(?:do|does|did)(?:n't| not) have any (?:known )?(?:drug |medication )?allerg(?:y|ies))\b"
)
_ACTIVE_CLAIM = re.compile(
    r"\b(?:(?:is|are|remains?|still|listed as|marked)\s+(?:still\s+)?active|active (?:problem|"
    r"condition|diagnosis|medication|order|prescription|allergy)|currently (?:takes|taking|on|has|"
    r"uses|using|prescribed)|continues? (?:to take|taking|on)|still (?:takes|taking|on|has)|"
    r"still (?:healing|recovering|being treated)|(?:remains?|stays?) on|"
    # "an active wheat allergy", "her active knee problem"
    r"(?:an|her|his|their|your|the) active (?:[a-z\-]+ ){0,3}(?:problem|condition|diagnosis|"
    r"allergy|infection|disease|disorder|injury|order|prescription|medication)|"
    r"ongoing)\b"
)
_INACTIVE_CLAIM = re.compile(
    r"\b(?:resolved|no longer (?:has|takes|taking|on|uses|using)|recovered from|healed|"
    r"in remission|"
    r"stopped|discontinued|was taken off|completed (?:the |a |her |his )?course)\b"
)


@dataclass
class StatementFacts:
    text: str
    canon: str
    dates: list[DateFact] = field(default_factory=list)
    quantities: list[Quantity] = field(default_factory=list)
    drugs: dict[str, list[int]] = field(default_factory=dict)  # generic -> positions in canon
    terms: set[str] = field(default_factory=set)
    frequencies: set[float] = field(default_factory=set)
    routes: set[str] = field(default_factory=set)
    as_needed: bool = False
    codes: list[CodeMention] = field(default_factory=list)
    status_claim: str | None = None  # "active" | "inactive"
    # "Continue warfarin.": an instruction that implies the drug is current (contradiction only:
    # a note's plan that says so records no status to support it with)
    continued: set[str] = field(default_factory=set)
    negated: bool = False
    no_known_allergies: bool = False


@dataclass
class EvidenceFacts:
    evidence: Evidence
    canon: str
    tokens: set[str]
    quantities: list[tuple[float, str | None]]
    ref_quantities: list[tuple[float, str | None]]
    dates: list[DateFact]
    drugs: set[str]
    frequencies: set[float]
    routes: set[str]
    as_needed: bool | None
    status: str | None
    codes: set[tuple[str | None, str]] = field(default_factory=set)


def words(canon: str) -> list[str]:
    return _WORD.findall(canon)


def stem_match(token: str, pool: AbstractSet[str]) -> bool:
    """Exact token, or a shared prefix long enough to be the same word (diabetes ~ diabetic)."""
    if token in pool:
        return True
    for h in pool:
        n = 0
        for a, b in zip(token, h, strict=False):
            if a != b:
                break
            n += 1
        if n >= 5 and n >= min(len(token), len(h)) - 3:
            return True
    return False


_FORM_WORDS = {
    "actuat",
    "ml",
    "mg",
    "mcg",
    "hr",
    "day",
    "pack",
    "dry",
    "powder",
    "inhaler",
    "metered",
    "dose",
    "auto-injector",
    "oral",
    "tablet",
    "chewable",
    "extended",
    "release",
    "injectable",
    "solution",
    "suspension",
    "capsule",
    "topical",
    "cream",
    "ointment",
    "nasal",
    "spray",
    "prefilled",
    "syringe",
    "injection",
    "delayed",
    "disintegrating",
    "film",
    "coated",
    "patch",
}


def drug_names(drug: str) -> set[str]:
    """Generic names in a drug title ("Acetaminophen 325 MG / Oxycodone ..." -> both).

    Leading package quantities ("24 HR", "120 ACTUAT", "NDA020800 0.3 ML") are skipped.
    """
    t = re.sub(r"\bnda\d+\b", " ", drug.lower())
    t = re.sub(r"^(?:\s*[\d.]+\s*(?:hr|ml|actuat|day)\b)+\s*", "", t)
    t = lexicon.canonical(t)
    out: set[str] = set()
    for part in re.split(r"/|\band\b|,", t):
        head = re.split(r"\d", part.split("[")[0], maxsplit=1)[0]
        ws = words(head)
        if not ws or ws[0] in _FORM_WORDS:
            continue
        if (
            ws[0] in {"insulin", "vitamin", "potassium", "sodium", "ferrous", "folic", "ethinyl"}
            and len(ws) > 1
        ):
            out.add(" ".join(ws[:2]))
        out.add(ws[0])
    return {n for n in out if n not in lexicon.GENERIC_WORDS and len(n) > 2}


_EVERY = re.compile(r"\b(?:every|q)\s*\d+(?:\s*-\s*\d+)?\s*(?:h\b|hours?|hrs?)", re.I)
_TYPE_WORDS = {
    "Immunization": "vaccine vaccination vaccinated immunization immunized shot",
    "Procedure": "procedure underwent surgery performed",
    "AllergyIntolerance": "allergy allergic allergies reaction",
    "MedicationRequest": "medication prescribed prescription order",
    "Encounter": "visit encounter admitted admission seen",
    "Condition": "diagnosed diagnosis condition problem history",
}
_REF_CUE = re.compile(r"\b(?:range|normal|reference|limit|upper|lower)\b")

# Code mentions ("ICD-10 I10", "CPT 72148", "RxNorm 1991302", "code 12345") are identifiers, not
# numeric values: they are checked against the evidence's codes, never as quantities.
_CODE_FIRST = r"[a-z]{0,2}\d[a-z0-9.\-]*"
_CODE_MORE = r"(?:[a-z]\d[a-z0-9.\-]*|\d{3,}[a-z0-9.\-]*)"
_CODE_MENTION = re.compile(
    r"\b(icd-?10(?:-cm)?|icd-?9(?:-cm)?|cpt(?:-4)?|hcpcs|rxnorm|rx ?cui|snomed(?:[ -]ct)?|loinc|"
    r"cvx|ndc|code)\b(?:\s*(?:code|#|:))*\s*"
    r"(" + _CODE_FIRST + r"(?:\s*(?:,|/|\bor\b|\band\b)\s*" + _CODE_MORE + r")*)?"
)
_CODE_SPLIT = re.compile(r"\s*(?:,|/|\bor\b|\band\b)\s*")
# "Criterion 2 (...)" / "item 3" number a list; the number is a label, not a clinical value.
_LABEL_NUMBER = re.compile(r"\b(?:criterion|criteria|item)\s+#?(\d+)\b")


def code_system(name: str | None) -> str | None:
    """One label per code system, from a URL or the way a sentence names it (None: any system)."""
    n = (name or "").lower().replace(" ", "")
    for key, label in (
        ("icd-10", "icd-10"),
        ("icd10", "icd-10"),
        ("icd-9", "icd-9"),
        ("icd9", "icd-9"),
        ("snomed", "snomed"),
        ("rxnorm", "rxnorm"),
        ("rxcui", "rxnorm"),
        ("loinc", "loinc"),
        ("cpt", "cpt"),
        ("hcpcs", "hcpcs"),
        ("cvx", "cvx"),
        ("ndc", "ndc"),
    ):
        if key in n:
            return label
    return None


@dataclass(frozen=True)
class CodeMention:
    system: str | None  # None: "code 12345" names no system
    code: str
    span: tuple[int, int]

    def shown(self) -> str:
        return f"{self.system.upper() if self.system else 'code'} {self.code}"


def code_mentions(canon: str) -> tuple[list[CodeMention], list[tuple[int, int]]]:
    """Codes named in (lower-cased) text, and the spans to keep out of quantity extraction."""
    found: list[CodeMention] = []
    spans: list[tuple[int, int]] = []
    for m in _CODE_MENTION.finditer(canon):
        system = code_system(m.group(1))
        if m.group(1) == "code" and not m.group(2):
            continue
        spans.append(m.span())
        if m.group(2):
            for c in _CODE_SPLIT.split(m.group(2)):
                c = c.rstrip(".-")
                if c:
                    found.append(CodeMention(system, c, m.span()))
    spans += [m.span(1) for m in _LABEL_NUMBER.finditer(canon)]
    return found, spans


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    out = list(text)
    for a, b in spans:
        for i in range(a, b):
            out[i] = " "
    return "".join(out)


def evidence_codes(e: Evidence) -> set[tuple[str | None, str]]:
    """(system label, code) for every code of ``e``: ``codes``, code-valued data keys, text."""
    out: set[tuple[str | None, str]] = {
        (code_system(c.system), c.code.lower()) for c in e.codes if c.code
    }
    for key in ("icd10", "snomed", "cpt", "rxnorm", "loinc", "cvx", "hcpcs", "ndc"):
        out |= {(code_system(key), v.lower()) for v in strings(e.data.get(key))}
    found, _ = code_mentions(lexicon.canonical(f"{e.title} . {e.text}"))
    out |= {(c.system, c.code) for c in found}
    return out


# "Do not soak in a bath until it is fully healed": a condition to wait for, not a status claim.
_CONDITIONAL = re.compile(r"\b(?:until|unless|if|in case|whether|as soon as)\b[^.;,:]*$")


def _claims(rx: re.Pattern[str], canon: str) -> bool:
    return any(not _CONDITIONAL.search(canon[: m.start()]) for m in rx.finditer(canon))


def status_claim_of(canon: str) -> str | None:
    """"inactive", "active" or None: the status a (clause of a) statement claims."""
    return _status_claim(canon)


def _status_claim(canon: str) -> str | None:
    if _claims(_INACTIVE_CLAIM, canon):
        return "inactive"
    if _claims(_ACTIVE_CLAIM, canon):
        return "active"
    return None


# "Continue warfarin." / "Keep taking your lisinopril." says the drug is current. Only before a
# drug name: "Continue to rest" claims no status.
_CONTINUE_BEFORE = re.compile(
    r"\b(?:continues?|keep (?:taking|using|on)|resumes?|restart)\s+"
    r"(?:(?:to take|taking|using|with|on|your|her|his|the|their)\s+)*$"
)


def _continued_drugs(canon: str, drugs: dict[str, list[int]]) -> set[str]:
    return {
        name
        for name, ps in drugs.items()
        for p in ps
        if _CONTINUE_BEFORE.search(canon[:p]) and not _CONDITIONAL.search(canon[:p])
    }


# SNOMED CT findings that record the absence of allergies: No known allergy, No known drug
# allergy, No known environmental allergy, No known food allergy, No known latex allergy.
NO_ALLERGY_CODES = frozenset({"716186003", "409137002", "428607008", "429625007", "1003774007"})


def is_no_allergy_record(e: Evidence) -> bool:
    """An AllergyIntolerance that records *no known allergy* (it supports "no known allergies")."""
    if e.resource_type != "AllergyIntolerance":
        return False
    sub = str(e.data.get("substance") or e.title).lower()
    sub = re.sub(r"^allergy:\s*", "", sub)
    return any(c.code in NO_ALLERGY_CODES for c in e.codes) or sub.startswith(
        ("no known", "nkda", "nka")
    )


def mask_identifiers(text: str) -> str:
    """Blank out phone numbers, MRNs, addresses...: they are PHI, not clinical values."""
    from chartdraft_guardrails.phi import find_identifiers

    out = list(text)
    for ident in find_identifiers(text):
        if ident.kind == "PERSON":
            continue
        for i in range(ident.start, ident.end):
            out[i] = " "
    return "".join(out)


def statement_facts(text: str, vocab: frozenset[str]) -> StatementFacts:
    # "on admission", "at discharge" place a value in time; they are not clinical terms
    canon = blank_anchors(lexicon.canonical(mask_identifiers(text)))
    codes, code_spans = code_mentions(canon)
    plain = _blank(canon, code_spans)
    dates = find_dates(plain)
    # "diagnosed 2019": a year alone is a date to check, not a quantity
    dates = sorted(dates + bare_years(plain, [d.span for d in dates]), key=lambda d: d.span)
    qty = quantities(plain, [d.span for d in dates])
    f = StatementFacts(text=text, canon=canon, dates=dates, quantities=qty, codes=codes)
    for m in _drug_regex(vocab).finditer(canon):
        f.drugs.setdefault(m.group(1), []).append(m.start())
    f.terms = {w for w in words(canon) if is_term(w, vocab)}
    f.frequencies = lexicon.frequencies(canon)
    f.routes = lexicon.routes(canon)
    f.as_needed = lexicon.as_needed(canon)
    f.status_claim = _status_claim(canon)
    f.continued = _continued_drugs(canon, f.drugs)
    f.no_known_allergies = bool(_NKA.search(canon))
    f.negated = bool(_NEG.search(canon))
    return f


def names_drug(text: str, vocab: frozenset[str] = frozenset()) -> bool:
    """Does ``text`` name a drug or allergy substance (chart vocabulary or the drug lexicon)?"""
    return bool(_drug_regex(vocab).search(lexicon.canonical(text)))


def names_clinical_concept(
    text: str, vocab: frozenset[str] = frozenset(), concepts: AbstractSet[str] = frozenset()
) -> bool:
    """A drug, an allergy substance or condition / procedure word of the chart, a status claim
    ("stopped", "continue warfarin") or a denial of allergies: a clinical fact even with no number.
    """
    canon = lexicon.canonical(text)
    if _drug_regex(vocab).search(canon) or _NKA.search(canon) or _status_claim(canon):
        return True
    return bool(concepts) and any(stem_match(w, concepts) for w in words(canon) if len(w) >= 4)


def is_term(word: str, vocab: frozenset[str]) -> bool:
    if len(word) < 3 or word in lexicon.GENERIC_WORDS or word[0].isdigit() or word in MONTHS:
        return False
    return word in vocab or bool(_CLINICAL_SUFFIX.search(word))


@lru_cache(maxsize=64)
def _drug_regex(vocab: frozenset[str]) -> re.Pattern[str]:
    """One alternation of every known drug name, longest first (one scan per statement)."""
    names = {v[len("drug:") :] for v in vocab if v.startswith("drug:")} | lexicon.COMMON_DRUGS
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(r"\b(" + alts + r")\b")


def strings(value: Any) -> list[str]:
    """Every string inside a data value (nested lists and dicts)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    return []


def evidence_text(e: Evidence) -> str:
    parts = [e.title, e.text] + [c.display or "" for c in e.codes]
    for k in _DATA_TEXT_KEYS:
        parts.extend(strings(e.data.get(k)))
    parts.extend(strings(e.data.get("reactions")))
    for comp in e.data.get("components") or []:
        if isinstance(comp, dict):
            parts.extend(strings(comp.get("name")))
    return " . ".join(p for p in parts if p)


def as_number(v: Any) -> float | None:
    """A data value as a float, or None (booleans and non-numbers)."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v))
    except ValueError:
        return None


def evidence_facts(e: Evidence) -> EvidenceFacts:
    raw = evidence_text(e) + " . " + _TYPE_WORDS.get(e.resource_type, "")
    canon = lexicon.canonical(raw)
    d = e.data
    qs: list[tuple[float, str | None]] = []

    def add(v: Any, u: Any) -> None:
        n = as_number(v)
        if n is not None:
            qs.append((n, u if isinstance(u, str) else None))

    add(d.get("strength_value"), d.get("strength_unit"))
    # insulin and heparin orders give the dose in units with no unit written: 10 of a
    # 100 units/mL pen is 10 units, never 10 mL
    su0 = d.get("strength_unit")
    conc = concentration(su0 if isinstance(su0, str) else None)
    unitless_units = not d.get("dose_unit") and conc is not None and conc[0] in ("units", "unt")
    add(d.get("dose_value"), "units" if unitless_units else d.get("dose_unit"))
    sv, dv = as_number(d.get("strength_value")), as_number(d.get("dose_value"))
    su, du = d.get("strength_unit"), d.get("dose_unit")
    # 2 tablets of 500 mg = 1000 mg; 2 puffs of 90 mcg/actuat = 180 mcg (a dose given in mg or
    # mL is not a count: 0.5 mL of 2 mg/mL is worked out by dose_amounts below)
    if sv is not None and dv is not None and (not isinstance(du, str) or is_count(du)):
        if isinstance(su, str) and su.lower().endswith("/actuat"):
            su = su[: -len("/actuat")]
        if concentration(su) is None:
            add(sv * dv, su)
    add(d.get("value"), d.get("unit"))
    refs: list[tuple[float, str | None]] = []
    for k in ("reference_low", "reference_high"):
        n = as_number(d.get(k))
        if n is not None:
            refs.append((n, d.get("unit") if isinstance(d.get("unit"), str) else None))
    for comp in d.get("components") or []:
        if isinstance(comp, dict):
            add(comp.get("value"), comp.get("unit"))
    _, code_spans = code_mentions(canon)
    plain = _blank(canon, code_spans)
    tspan = find_dates(plain)
    for q in quantities(plain, [x.span for x in tspan]):
        add(value_of(q.text), q.unit)
    for cv, cu in concentrations_in(plain):  # "250 mg/5 mL" is 50 mg/mL
        add(cv, cu)
    # 0.5 mL of 2 mg/mL is a 1 mg dose; with no dose recorded, "1 ML ... 5 MG/ML" holds 5 mg
    dose_ml = millilitres(dv, du if isinstance(du, str) else None) if dv is not None else None
    pairs = qs
    if dose_ml is not None and sv is not None and dv is not None:
        pairs = [(sv, su if isinstance(su, str) else None), (dv, du)]
    for v, u in dose_amounts(pairs):
        add(v, u)
    dates = list(tspan) + bare_years(plain, [x.span for x in tspan])
    for k in (*_DATE_KEYS,):
        p = parse_iso(d.get(k))
        if p:
            dates.append(p)
    p = parse_iso(e.date)
    if p:
        dates.append(p)
    drugs: set[str] = set()
    if e.resource_type in (
        "MedicationRequest",
        "Medication",
        "MedicationStatement",
        "MedicationAdministration",
        "AllergyIntolerance",
        "Immunization",
    ):
        for key in ("drug", "substance", "vaccine"):
            if isinstance(d.get(key), str):
                drugs |= drug_names(d[key])
        drugs |= drug_names(e.title)
    freq = lexicon.frequencies(lexicon.canonical(" ".join(strings(d.get("frequency"))) or ""))
    timing = d.get("timing") if isinstance(d.get("timing"), dict) else None
    if timing and as_number(timing.get("frequency")) and as_number(timing.get("period")):
        per = {"h": 24.0, "d": 1.0, "wk": 1 / 7, "min": 1440.0}.get(str(timing.get("periodUnit")))
        if per:
            freq.add(round(float(timing["frequency"]) * per / float(timing["period"]), 4))
    if not freq:
        freq = lexicon.frequencies(canon)
    rts = lexicon.routes(lexicon.canonical(str(d.get("route") or ""))) or lexicon.routes(canon)
    prn = d.get("as_needed") if isinstance(d.get("as_needed"), bool) else None
    status = d.get("clinical_status") or d.get("status")
    return EvidenceFacts(
        evidence=e,
        canon=canon,
        tokens=set(words(canon)),
        quantities=qs,
        ref_quantities=refs,
        dates=dates,
        drugs=drugs,
        frequencies=freq,
        routes=rts,
        as_needed=prn,
        status=str(status).lower() if status else None,
        codes=evidence_codes(e),
    )


def chart_vocab(chart: list[Evidence]) -> frozenset[str]:
    """Clinical words of this chart (titles, code displays, drug and substance names).

    Drug names are also stored as ``drug:<name>`` so statements can be scanned for them.
    """
    out: set[str] = set()
    for e in chart:
        if e.resource_type in ("Patient", "Practitioner", "Organization", "Coverage"):
            continue
        if is_no_allergy_record(e):  # "No known allergy" names no substance or clinical term
            continue
        parts = [e.title] + [c.display or "" for c in e.codes]
        if e.resource_type != "DocumentReference":
            for k in ("drug", "substance", "name", "vaccine"):
                parts.extend(strings(e.data.get(k)))
        for w in words(lexicon.canonical(" ".join(parts))):
            if len(w) >= 4 and w not in lexicon.GENERIC_WORDS and not w[0].isdigit():
                out.add(w)
        for k in ("drug", "substance"):
            if isinstance(e.data.get(k), str):
                out |= {f"drug:{n}" for n in drug_names(e.data[k])}
        if e.resource_type in ("MedicationRequest", "Medication"):
            out |= {f"drug:{n}" for n in drug_names(e.title)}
    out |= {w for d in lexicon.COMMON_DRUGS for w in d.split()}
    out |= BUILTIN_TERMS
    return frozenset(out)


# SNOMED semantic tags and words of social-history "conditions" that name no clinical concept.
_NOT_CONCEPT = frozenset(
    {
        *("finding", "disorder", "situation", "procedure", "regime", "therapy", "observable"),
        *("entity", "event", "morphologic", "abnormality", "body", "structure", "qualifier"),
        *("value", "person", "product", "substance", "medication", "review", "time", "full"),
        *("part", "employment", "education", "labor", "force", "received", "higher", "limited"),
        *("social", "contact", "history", "left", "right", "acute", "chronic"),
    }
)
_CONCEPT_TYPES = ("Condition", "Procedure", "AllergyIntolerance", "Immunization")


def concept_terms(chart: list[Evidence]) -> frozenset[str]:
    """Words naming this chart's conditions, procedures, allergy substances and vaccines.

    An uncited sentence that uses one ("Avoid peanuts", "Your asthma...") states a clinical fact.
    """
    out: set[str] = set()
    for e in chart:
        if e.resource_type not in _CONCEPT_TYPES or is_no_allergy_record(e):
            continue
        parts = [e.title] + [c.display or "" for c in e.codes]
        parts += strings(e.data.get("substance")) + strings(e.data.get("vaccine"))
        out |= {
            w
            for w in words(lexicon.canonical(" ".join(parts)))
            if len(w) >= 4
            and not w[0].isdigit()
            and w not in _NOT_CONCEPT
            and w not in lexicon.GENERIC_WORDS
        }
    return frozenset(out)


# Clinical words recognised even when the chart lacks them (data/clinical_terms.csv).
BUILTIN_TERMS: frozenset[str] = terminology.clinical_terms()
