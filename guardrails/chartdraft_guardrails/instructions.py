"""Instruction check: timing, food and duration words attached to a medication are in its order.

"Take lisinopril at bedtime with food for 10 days" citing an order that says "1 tablet once
daily" embellishes it three times. Each instruction kind the statement names (data/
instruction_words.yaml) must be in the order's dosage instruction: its dosage text, timing,
additional and patient instructions or as-needed reason. Frequency, route and as-needed are the
support check's; this module adds what a sig says besides them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from chartdraft_guardrails import lexicon
from chartdraft_guardrails.facts import strings
from chartdraft_guardrails.terminology import data_yaml
from retrieval.errors import BadInput
from retrieval.evidence import Evidence

_WHERE = "chartdraft_guardrails/data/instruction_words.yaml"
# Evidence fields that carry the instruction (besides the order's one-line text).
_FIELDS = (
    "dosage_text",
    "frequency",
    "as_needed_for",
    "additional_instructions",
    "additional_instruction",
    "patient_instructions",
    "patient_instruction",
    "instructions",
    "duration",
)
_NUM_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14,
    "twenty": 20, "thirty": 30,
}  # fmt: skip
_DAYS = {"day": 1, "week": 7, "month": 30}
_PLAN_TYPES = ("CarePlan", "ServiceRequest")
# "for 10 days", "for the next two weeks", "x 7 days", "a 10-day course"
_DURATION = re.compile(
    r"\b(?:for (?:the next |another |a total of )?|x\s*)(?P<n>\d+|"
    + "|".join(_NUM_WORDS)
    + r")[\s-]+(?P<u>day|week|month)s?\b|\b(?P<n2>\d+|"
    + "|".join(_NUM_WORDS)
    + r")-(?P<u2>day|week|month) (?:course|supply|treatment)\b"
)


@dataclass(frozen=True)
class _Kinds:
    pattern: re.Pattern[str]
    by_group: dict[str, str]  # regex group name -> kind
    labels: dict[str, str]
    compatible: dict[str, frozenset[str]]


@lru_cache(maxsize=1)
def _kinds() -> _Kinds:
    raw = data_yaml("instruction_words.yaml", "instruction words")
    kinds = raw.get("kinds") or {}
    if not isinstance(kinds, dict) or not kinds:
        raise BadInput(
            "no instruction kinds", where=_WHERE, fix="kinds: {name: {label, phrases: [...]}}"
        )
    alts: list[str] = []
    by_group: dict[str, str] = {}
    labels: dict[str, str] = {}
    for i, (kind, spec) in enumerate(kinds.items()):
        phrases = (spec or {}).get("phrases") if isinstance(spec, dict) else None
        if not phrases:
            raise BadInput(f"kind {kind!r} has no phrases", where=f"{_WHERE}: kinds.{kind}")
        labels[str(kind)] = str(spec.get("label") or kind)
        by_group[f"k{i}"] = str(kind)
        alts.append(f"(?P<k{i}>" + "|".join(f"(?:{p})" for p in phrases) + ")")
    compatible = {
        str(k): frozenset(str(x) for x in v or [])
        for k, v in (raw.get("compatible") or {}).items()
    }
    return _Kinds(
        re.compile(r"\b(?:" + "|".join(alts) + r")\b"), by_group, labels, compatible
    )


def _num(text: str) -> int:
    return int(text) if text.isdigit() else _NUM_WORDS[text]


def instruction_kinds(text: str) -> dict[str, str]:
    """Instruction kinds named in ``text`` -> the words that named them (first mention).

    Durations are kinds too: ``duration:10`` (days) for "for 10 days" / "for ten days".
    """
    canon = lexicon.canonical(text)
    k = _kinds()
    out: dict[str, str] = {}
    for m in k.pattern.finditer(canon):
        for group, kind in k.by_group.items():
            if m.group(group):
                out.setdefault(kind, m.group(0))
                break
    for m in _DURATION.finditer(canon):
        n, u = (m.group("n"), m.group("u")) if m.group("n") else (m.group("n2"), m.group("u2"))
        out.setdefault(f"duration:{_num(n) * _DAYS[u]}", m.group(0))
    return out


def order_instructions(e: Evidence) -> str:
    """The instruction an order carries, as text (its fields, else its one-line rendering)."""
    parts = [s for f in _FIELDS for s in strings(e.data.get(f))]
    return " . ".join(p for p in parts if p)


def check_instructions(
    statement_text: str, has_drug: bool, cited: list[Evidence]
) -> list[str]:
    """Problems: each instruction kind the statement adds to a cited medication order (or, with
    no order cited, to a cited care plan or service request)."""
    orders = [e for e in cited if e.resource_type.startswith("Medication")]
    if not has_drug or not orders:
        # a care plan's instruction ("rest for two weeks") is held to the plan the same way
        orders = [e for e in cited if e.resource_type in _PLAN_TYPES]
        if not orders:
            return []
    stated = instruction_kinds(statement_text)
    if not stated:
        return []
    known: set[str] = set()
    for e in orders:
        known |= set(instruction_kinds(order_instructions(e) + " . " + e.text))
    k = _kinds()
    problems: list[str] = []
    for kind, words in stated.items():
        if kind in known or k.compatible.get(kind, frozenset()) & known:
            continue
        says = "; ".join(dict.fromkeys(_sig(e) for e in orders))
        what = "the order's instructions"
        if orders[0].resource_type in _PLAN_TYPES:
            what = "the care plan" if orders[0].resource_type == "CarePlan" else "the request"
        problems.append(f"{words!r} is not in {what} (it says: {says})")
    return problems


def _sig(e: Evidence) -> str:
    """The order's instruction as a clinician reads it ("1 tablet once daily")."""
    if e.resource_type in _PLAN_TYPES:
        return e.text
    d = e.data
    dose = d.get("dose_value")
    parts: list[str] = []
    if isinstance(dose, int | float) and not isinstance(dose, bool):
        parts.append(f"{dose:g} {d.get('dose_unit') or d.get('dose_form') or 'dose'}".strip())
    for f in ("frequency", "dosage_text"):
        parts += strings(d.get(f))
    if d.get("as_needed") is True:
        parts.append("as needed" + (f" for {d['as_needed_for']}" if d.get("as_needed_for") else ""))
    for f in _FIELDS[3:]:
        parts += strings(d.get(f))
    return " ".join(dict.fromkeys(p for p in parts if p)) or "no dosage instructions"
