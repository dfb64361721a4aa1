"""Small helpers shared by the ``retrieval.normalize_*`` modules: codes, texts, numbers, dates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from retrieval.evidence import Code, Evidence
from retrieval.fhir_load import LoadedResource

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
CPT = "http://www.ama-assn.org/go/cpt"
CVX = "http://hl7.org/fhir/sid/cvx"
NPI = "http://hl7.org/fhir/sid/us-npi"

Json = dict[str, Any]


@dataclass
class Context:
    """What a normalizer may look up besides its own resource (Medication references)."""

    by_ref: dict[str, LoadedResource] = field(default_factory=dict)

    def resolve(self, ref: str | None, owner: Json) -> Json | None:
        if not ref:
            return None
        if ref.startswith("#"):  # a contained resource
            for c in owner.get("contained") or []:
                if isinstance(c, dict) and c.get("id") == ref[1:]:
                    return c
            return None
        hit = self.by_ref.get(ref)
        return hit.resource if hit else None


Normalizer = Callable[[LoadedResource, Context], list[Evidence]]


def as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def codes_of(*concepts: Any) -> list[Code]:
    out: list[Code] = []
    for cc in concepts:
        for c in as_list(cc):
            if not isinstance(c, dict):
                continue
            for cd in as_list(c.get("coding")):
                if isinstance(cd, dict):
                    out.append(Code(system=cd.get("system"), code=cd.get("code"),
                                    display=cd.get("display")))
    return out


def cc_text(cc: Any) -> str | None:
    """Readable text of a CodeableConcept: its text, else the first coding display or code."""
    if isinstance(cc, list):
        parts = [t for t in (cc_text(c) for c in cc) if t]
        return ", ".join(parts) or None
    if not isinstance(cc, dict):
        return None
    if cc.get("text"):
        return str(cc["text"])
    for cd in as_list(cc.get("coding")):
        if isinstance(cd, dict) and (cd.get("display") or cd.get("code")):
            return str(cd.get("display") or cd.get("code"))
    return None


def code_in(cc: Any, systems: str | tuple[str, ...]) -> str | None:
    """The first code of a CodeableConcept (or list of them) from one of ``systems``."""
    wanted = (systems,) if isinstance(systems, str) else systems
    for c in codes_of(cc):
        if c.system in wanted and c.code:
            return c.code
    return None


def codes_in(cc: Any, systems: str | tuple[str, ...]) -> list[str]:
    wanted = (systems,) if isinstance(systems, str) else systems
    return [c.code for c in codes_of(cc) if c.system in wanted and c.code]


def status_code(cc: Any) -> str | None:
    """``clinicalStatus`` style CodeableConcept -> its code (``active``)."""
    for c in codes_of(cc):
        if c.code:
            return c.code
    return cc_text(cc)


def ref_display(ref: Any) -> str | None:
    if isinstance(ref, dict):
        return ref.get("display") or ref.get("reference")
    return None


def ref_id(ref: Any) -> str | None:
    """A Reference's target as ``ResourceType/id`` (the loader already rewrote ``urn:uuid:``
    and absolute URLs); contained (``#x``) and missing references give None."""
    r = ref.get("reference") if isinstance(ref, dict) else None
    return r if isinstance(r, str) and "/" in r and not r.startswith("#") else None


def linked_name(ref: Any, ctx: Context, owner: Json) -> str | None:
    """What a Reference points at, in words: its display, else the target's code text.

    Synthea and many EHRs send ``reasonReference`` without a display: the linked Condition's
    name is the reason a clinician reads, never the bare id.
    """
    if not isinstance(ref, dict):
        return None
    if ref.get("display"):
        return str(ref["display"])
    target = ctx.resolve(ref.get("reference"), owner)
    if target is None:
        return None
    return cc_text(target.get("code") or target.get("type") or target.get("vaccineCode"))


def links_of(res: Json, **fields: Any) -> dict[str, list[str]]:
    """FHIR links kept as evidence ids: ``{"reason": ["Condition/x"], ...}``.

    ``fields`` maps a links key to the Reference(s) it holds (a Reference, a list of them, or
    dicts holding one under ``condition``/``detail``); empty keys are left out.
    """
    out: dict[str, list[str]] = {}
    for key, value in fields.items():
        ids: list[str] = []
        for x in as_list(value):
            if isinstance(x, dict) and "reference" not in x:
                x = x.get("condition") or x.get("detail") or x.get("individual")
            for y in as_list(x):
                rid = ref_id(y)
                if rid and rid not in ids:
                    ids.append(rid)
        if ids:
            out[key] = ids
    return out


def num(v: Any) -> float | int | None:
    """A FHIR decimal as int when whole, else float (``1.0`` -> ``1``)."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return None
    return int(d) if d == d.to_integral_value() else float(d)


def fmt_num(v: Any) -> str:
    n = num(v)
    if n is None:
        return str(v)
    if isinstance(n, int):
        return str(n)
    return format(Decimal(str(n)).normalize(), "f")


def day(v: Any) -> str | None:
    """The date part of a FHIR date/dateTime/instant string (``2023-04-02T10:00:00Z`` -> date)."""
    return v[:10] if isinstance(v, str) and v else None


def period_start(p: Any) -> str | None:
    return p.get("start") if isinstance(p, dict) else None


def period_end(p: Any) -> str | None:
    return p.get("end") if isinstance(p, dict) else None


def first_of(res: Json, *names: str) -> Any:
    """The first present ``value[x]`` style field (``onsetDateTime``, ``onsetPeriod``...)."""
    for n in names:
        if res.get(n) is not None:
            return res[n]
    return None


def when(res: Json, stem: str) -> str | None:
    """An ISO date/datetime from ``{stem}DateTime | {stem}Period.start | {stem}Instant``."""
    v = first_of(res, f"{stem}DateTime", f"{stem}Instant", f"{stem}Date", stem)
    if isinstance(v, str):
        return v
    p = res.get(f"{stem}Period")
    return period_start(p)


def unit_text(unit: str | None) -> str:
    """UCUM annotations read badly in prose: ``mm[Hg]`` -> ``mmHg``, ``{score}`` -> ``score``."""
    if not unit:
        return ""
    return unit.replace("[", "").replace("]", "").replace("{", "").replace("}", "")


def quantity(q: Any) -> tuple[float | int | None, str | None]:
    if not isinstance(q, dict):
        return None, None
    return num(q.get("value")), q.get("unit") or q.get("code")


def evidence(
    r: LoadedResource,
    *,
    title: str,
    text: str,
    data: Json,
    codes: list[Code] | None = None,
    date: str | None = None,
    suffix: str | None = None,
) -> Evidence:
    data.setdefault("status", r.resource.get("status"))
    return Evidence(
        id=f"{r.resource_type}/{r.id}" + (f"#{suffix}" if suffix else ""),
        patient_id=r.patient_id,
        kind="chart",
        resource_type=r.resource_type,
        date=date,
        title=title[:200],
        text=text,
        codes=codes or [],
        data=data,
    )


def join(*parts: str | None, sep: str = ", ") -> str:
    return sep.join(p for p in parts if p)
