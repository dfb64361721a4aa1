"""Interpretation claims ("elevated", "within normal limits", "well controlled", "strongly
positive", "rising") checked against the Observations a statement cites.

Each claim is judged, in order, by the Observation's own ``interpretation`` (the lab's H/L/N/POS
call), its ``referenceRange``, and last by data/reference_ranges.yaml (reference intervals and
treatment targets by age and sex, every row with its published source). Trends need two cited
values of the same test and must go the stated way. A claim no source can judge is
``not_verified``; a claim against the value is ``unsupported``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from chartdraft_guardrails.facts import EvidenceFacts, StatementFacts, as_number
from chartdraft_guardrails.statement import CheckResult, Verdict
from chartdraft_guardrails.units import same_quantity, unit_key
from retrieval.evidence import Evidence

_DATA = Path(__file__).with_name("data")
_LEVEL = ("high", "low", "normal", "abnormal")
_TREND = ("rising", "falling", "improving", "worsening", "stable")
_FLIP = {
    "high": "not_high",
    "low": "not_low",
    "normal": "abnormal",
    "abnormal": "normal",
    "controlled": "uncontrolled",
    "uncontrolled": "controlled",
    "positive": "negative",
    "negative": "positive",
}
# HL7 v3 ObservationInterpretation codes and their usual displays -> direction
_CODE_DIRECTION = {
    "h": "high", "hh": "high", "hu": "high", ">": "high", "high": "high", "critical high": "high",
    "above high normal": "high", "significantly high": "high", "critically high": "high",
    "l": "low", "ll": "low", "lu": "low", "<": "low", "low": "low", "critical low": "low",
    "below low normal": "low", "significantly low": "low", "critically low": "low",
    "n": "normal", "normal": "normal", "a": "abnormal", "aa": "abnormal", "abnormal": "abnormal",
    "critical abnormal": "abnormal",
    "pos": "positive", "positive": "positive", "det": "positive", "detected": "positive",
    "reactive": "positive", "neg": "negative", "negative": "negative", "nd": "negative",
    "not detected": "negative", "non-reactive": "negative", "nonreactive": "negative",
}  # fmt: skip
_SEVERE_CODES = {"hh", "ll", "hu", "lu", "aa", "critical high", "critical low", "critically high"}
_STEADY = re.compile(r"\b(?:steadily|consistently|continuously|every year|each year|each time)\b")
_STABLE_CHANGE = 0.05  # "stable": the later value within 5 % of the earlier one


# ---------------------------------------------------------------- the data files


@dataclass(frozen=True)
class Row:
    lo: float | None
    lo_incl: bool
    hi: float | None
    hi_incl: bool
    sex: str | None
    age: tuple[float, float]
    source: str
    text: str

    def contains(self, v: float) -> bool:
        if self.lo is not None and (v < self.lo or (v == self.lo and not self.lo_incl)):
            return False
        return not (self.hi is not None and (v > self.hi or (v == self.hi and not self.hi_incl)))

    def applies(self, sex: str | None, age: float | None) -> bool:
        if self.sex and sex and self.sex != sex:
            return False
        if self.sex and not sex:
            return False
        if age is None:
            return self.age == (0.0, 200.0)
        return self.age[0] <= age <= self.age[1]

    def short_source(self) -> str:
        return self.source.split(":", 1)[0].strip()


@dataclass
class TestRanges:
    name: str
    loinc: frozenset[str]
    aliases: tuple[str, ...]
    unit: str | None
    better: str | None
    rows: dict[str, list[Row]] = field(default_factory=dict)  # normal/high/low/target
    grades: dict[tuple[str, str], list[Row]] = field(default_factory=dict)  # (dir, grade)
    categories: dict[str, list[Row]] = field(default_factory=dict)  # obese: [>=30]
    mentions: tuple[str, ...] = ()  # words that speak of the test without naming it ("weight")


_RANGE_PART = re.compile(r"^(<=|>=|<|>)?\s*(-?\d+(?:\.\d+)?)(?:\s*-\s*(\d+(?:\.\d+)?))?$")


def _row(raw: dict[str, Any], where: str) -> Row:
    text = str(raw.get("range", "")).strip()
    lo: float | None = None
    hi: float | None = None
    lo_incl = hi_incl = True
    for part in text.split():
        m = _RANGE_PART.match(part)
        if not m or not raw.get("source"):
            raise ValueError(
                f"{where}: bad row {raw!r}; expected range like '<7.0', '>=90 <120' or "
                f"'70-99' and a source"
            )
        op, a, b = m.group(1), float(m.group(2)), m.group(3)
        if b is not None:
            lo, hi = a, float(b)
        elif op in ("<", "<="):
            hi, hi_incl = a, op == "<="
        elif op in (">", ">="):
            lo, lo_incl = a, op == ">="
        else:
            lo = hi = a
    age = (0.0, 200.0)
    if raw.get("age"):
        a0, _, a1 = str(raw["age"]).partition("-")
        age = (float(a0 or 0), float(a1) if a1 else 200.0)
    sex = str(raw["sex"]).lower() if raw.get("sex") else None
    return Row(lo, lo_incl, hi, hi_incl, sex, age, str(raw["source"]), text)


@lru_cache(maxsize=1)
def reference_table() -> tuple[list[TestRanges], dict[str, TestRanges]]:
    """The tests of data/reference_ranges.yaml and an index by LOINC code."""
    path = _DATA / "reference_ranges.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    tests: list[TestRanges] = []
    by_loinc: dict[str, TestRanges] = {}
    for i, t in enumerate(raw.get("tests") or []):
        where = f"{path.name}: tests[{i}] ({t.get('name')})"
        tr = TestRanges(
            name=str(t["name"]),
            loinc=frozenset(str(c) for c in t.get("loinc") or []),
            aliases=tuple(sorted({str(a).lower() for a in t.get("aliases") or []}, key=len)),
            unit=t.get("unit"),
            better=t.get("better"),
            mentions=tuple(str(m).lower() for m in t.get("mentions") or []),
        )
        for kind in ("normal", "high", "low", "target"):
            tr.rows[kind] = [_row(r, f"{where}.{kind}") for r in t.get(kind) or []]
        for cat, rows in (t.get("categories") or {}).items():
            tr.categories[str(cat)] = [_row(r, f"{where}.categories") for r in rows]
        for direction, grades in (t.get("grades") or {}).items():
            for gname, r in grades.items():
                key = (str(direction), str(gname).split("_")[0])
                tr.grades.setdefault(key, []).append(_row(r, f"{where}.grades"))
        tests.append(tr)
        for c in tr.loinc:
            by_loinc[c] = tr
    return tests, by_loinc


@dataclass
class _Words:
    claims: re.Pattern[str]
    kinds: dict[str, str]
    severity: dict[str, str]
    severity_rx: re.Pattern[str]
    negation: re.Pattern[str]
    not_claims: re.Pattern[str]


def _alts(words: list[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


@lru_cache(maxsize=1)
def _words() -> _Words:
    path = _DATA / "interpretation_words.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    kinds = {str(w).lower(): k for k, ws in (raw.get("claims") or {}).items() for w in ws}
    for cat, ws in (raw.get("categories") or {}).items():
        kinds.update({str(w).lower(): f"cat:{cat}" for w in ws})
    sev = {str(w).lower(): k for k, ws in (raw.get("severity") or {}).items() for w in ws}
    if not kinds:
        raise ValueError(f"{path}: no claims (expected claims: {{kind: [word, ...]}})")
    return _Words(
        claims=re.compile(r"(?<![\w-])(" + _alts(list(kinds)) + r")(?![\w-])"),
        kinds=kinds,
        severity=sev,
        severity_rx=re.compile(r"(?<![\w-])(" + _alts(list(sev)) + r")[\s-]+$"),
        negation=re.compile(
            r"(?<![\w-])(?:" + _alts([str(w) for w in raw.get("negation") or []]) + r")"
            r"(?:\s+\w+)?\s+$"
        ),
        not_claims=re.compile(
            r"(?<![\w-])(?:" + _alts([str(w) for w in raw.get("not_claims") or []]) + r")(?![\w-])"
        ),
    )


# ---------------------------------------------------------------- claims in a statement


@dataclass
class Claim:
    kind: str  # high, not_high, normal, controlled, rising ...
    text: str
    pos: int
    severity: str | None = None


def find_claims(canon: str) -> list[Claim]:
    w = _words()
    plain = w.not_claims.sub(lambda m: " " * len(m.group(0)), canon)
    out: list[Claim] = []
    for m in w.claims.finditer(plain):
        phrase = m.group(1)
        kind = w.kinds[phrase]
        before = plain[: m.start()]
        after = plain[m.end() : m.end() + 30]
        # "increased from 7.2 to 8.4" is a trend; "increased" alone a level
        if (
            kind in ("high", "low")
            and phrase in ("increased", "decreased", "reduced")
            and (re.match(r"^\s+(?:from|since|compared)\b", after))
        ):
            kind = "rising" if kind == "high" else "falling"
        neg = w.negation.search(before[-30:])
        if neg and kind in _FLIP:
            kind = _FLIP[kind]
        elif neg:
            continue
        sev = w.severity_rx.search(before[-25:])
        out.append(Claim(kind, m.group(0), m.start(), w.severity[sev.group(1)] if sev else None))
    return out


# ---------------------------------------------------------------- values of the cited evidence


@dataclass
class Value:
    obs: Evidence
    name: str
    loinc: str | None
    value: float | None
    text: str | None  # a coded or string result ("Positive")
    unit: str | None
    when: str | None
    interpretation: str | None
    ref_low: float | None
    ref_high: float | None
    test: TestRanges | None

    @property
    def key(self) -> str:
        return self.test.name if self.test else (self.loinc or self.name.lower())

    def shown(self) -> str:
        if self.value is None:
            return str(self.text)
        return f"{self.value:g}" + (f" {self.unit}" if self.unit else "")


@lru_cache(maxsize=4096)
def _find_test(loinc: str | None, name: str) -> TestRanges | None:
    tests, by_loinc = reference_table()
    if loinc and loinc in by_loinc:
        return by_loinc[loinc]
    low = name.lower()
    best: tuple[int, TestRanges] | None = None
    for t in tests:
        for a in (t.name.lower(), *t.aliases):
            if (
                len(a) >= 3
                and (best is None or len(a) > best[0])
                and re.search(r"(?<![\w-])" + re.escape(a) + r"(?![\w-])", low)
            ):
                best = (len(a), t)
    return best[1] if best else None


def observation_values(e: Evidence) -> list[Value]:
    """The results of one Observation: its value, or one per component (a BP panel)."""
    if e.resource_type != "Observation":
        return []
    d = e.data
    when = d.get("effective") or e.date
    interp = d.get("interpretation")
    interp = str(interp) if interp else None
    out: list[Value] = []
    comps = [c for c in d.get("components") or [] if isinstance(c, dict)]
    for c in comps:
        name = str(c.get("name") or "")
        loinc = c.get("loinc")
        v = as_number(c.get("value"))
        out.append(
            Value(e, name, loinc, v, None if v is not None else _str(c.get("value")), c.get("unit"),
                  when, None, None, None, _find_test(loinc, name))
        )  # fmt: skip
    name = str(d.get("name") or e.title)
    v = as_number(d.get("value"))
    text = None if v is not None else _str(d.get("value"))
    if v is not None or text or not comps:
        loinc = d.get("loinc") or next((c.code for c in e.codes if c.code), None)
        out.append(
            Value(e, name, loinc, v, text, d.get("unit"), when, interp,
                  as_number(d.get("reference_low")), as_number(d.get("reference_high")),
                  _find_test(loinc, name))
        )  # fmt: skip
    return out


def _str(v: Any) -> str | None:
    return str(v) if isinstance(v, str) and v.strip() else None


# ---------------------------------------------------------------- judging one claim


@dataclass
class Patient:
    sex: str | None
    birth: date | None

    def age_at(self, when: str | None) -> float | None:
        if self.birth is None:
            return None
        try:
            at = date.fromisoformat(str(when)[:10]) if when else date.today()
        except ValueError:
            at = date.today()
        return (at - self.birth).days / 365.25


def patient_of(e: Evidence | None) -> Patient:
    if e is None:
        return Patient(None, None)
    sex = str(e.data.get("gender") or "").lower() or None
    sex = sex if sex in ("male", "female") else None
    birth = None
    try:
        if e.data.get("birth_date"):
            birth = date.fromisoformat(str(e.data["birth_date"])[:10])
    except ValueError:
        birth = None
    return Patient(sex, birth)


def _in_table_unit(v: Value) -> float | None:
    """The value in the table's unit, or None when the units cannot be compared."""
    if v.value is None or v.test is None:
        return None
    if not v.unit or not v.test.unit:
        return v.value
    a, b = unit_key(v.unit), unit_key(v.test.unit)
    if a is not None and b is not None and {a[0], b[0]} == {"temp_c", "temp_f"}:
        return (v.value - 32) * 5 / 9 if a[0] == "temp_f" else v.value * 9 / 5 + 32
    if a is None or b is None or a[0] != b[0]:
        return None
    return v.value * a[1] / b[1]


@dataclass
class Judgement:
    verdict: str  # supported | unsupported | not_verified
    why: str


def _rows(v: Value, kind: str, pat: Patient) -> list[Row]:
    if v.test is None:
        return []
    age = pat.age_at(v.when)
    return [r for r in v.test.rows.get(kind, []) if r.applies(pat.sex, age)]


def _direction(v: Value, pat: Patient) -> tuple[set[str], str] | None:
    """Which of high / low / normal the value is, and on what authority."""
    if v.interpretation:
        d = _CODE_DIRECTION.get(v.interpretation.strip().lower())
        if d in ("high", "low", "normal"):
            return {d}, f"{v.obs.id} is flagged {v.interpretation!r}"
    if v.value is not None and (v.ref_low is not None or v.ref_high is not None):
        lo, hi = v.ref_low, v.ref_high
        rng = f"{'' if lo is None else f'{lo:g}'}-{'' if hi is None else f'{hi:g}'}"
        if hi is not None and v.value > hi:
            return {"high"}, f"{v.shown()} is above the reference range {rng}"
        if lo is not None and v.value < lo:
            return {"low"}, f"{v.shown()} is below the reference range {rng}"
        if lo is not None and hi is not None:
            return {"normal"}, f"{v.shown()} is within the reference range {rng}"
    x = _in_table_unit(v)
    normal = _rows(v, "normal", pat)
    if x is None or not normal:
        return None
    out: set[str] = set()
    if any(r.contains(x) for r in normal):
        out.add("normal")
    high, low = _rows(v, "high", pat), _rows(v, "low", pat)
    # Where sources disagree (MedlinePlus 13.8 vs WHO 13.0 g/dL for men), the value between them
    # is both normal by one and low by the other: neither claim is flagged there.
    if any(r.contains(x) for r in high) or (
        not high and any(r.hi is not None and not r.contains(x) and x > r.hi for r in normal)
    ):
        out.add("high")
    if any(r.contains(x) for r in low) or (
        not low and any(r.lo is not None and not r.contains(x) and x < r.lo for r in normal)
    ):
        out.add("low")
    src = normal[0]
    return out, (
        f"{v.shown()} against the {v.test.name if v.test else ''} reference {src.text} "
        f"({src.short_source()})"
    )


def _judge_level(c: Claim, v: Value, pat: Patient) -> Judgement | None:
    if v.value is None and _CODE_DIRECTION.get((v.interpretation or "").strip().lower()) in (
        "positive",
        "negative",
    ):
        return None  # "rapid strep test, negative": a result, not a level
    d = _direction(v, pat)
    if d is None:
        return Judgement("not_verified", f"{c.text!r} cannot be checked: {v.obs.id} ({v.name}) "
                         "has no interpretation, reference range or known range")  # fmt: skip
    dirs, why = d
    ok = {
        "high": "high" in dirs,
        "low": "low" in dirs,
        "normal": "normal" in dirs,
        "abnormal": bool(dirs & {"high", "low", "abnormal"}) or dirs == set(),
        "not_high": "high" not in dirs or "normal" in dirs,
        "not_low": "low" not in dirs or "normal" in dirs,
    }[c.kind]
    if not ok:
        is_ = ", ".join(sorted(dirs)) or "outside every range"
        return Judgement("unsupported", f"{c.text!r} but {why} ({is_})")
    if c.severity and c.kind in ("high", "low"):
        return _judge_severity(c, v, pat)
    return Judgement("supported", f"{c.text!r}: {why}")


def _judge_severity(c: Claim, v: Value, pat: Patient) -> Judgement:
    code = (v.interpretation or "").strip().lower()
    if code in _SEVERE_CODES and c.severity == "severe":
        return Judgement("supported", f"{v.obs.id} is flagged {v.interpretation!r}")
    x = _in_table_unit(v)
    if v.test is None or x is None:
        return Judgement("supported", f"{c.text!r}: {v.shown()} is {c.kind}")
    age = pat.age_at(v.when)
    rows = [r for r in v.test.grades.get((c.kind, c.severity or ""), []) if r.applies(pat.sex, age)]
    if not rows:
        return Judgement("supported", f"{c.text!r}: {v.shown()} is {c.kind}")
    if any(r.contains(x) for r in rows):
        return Judgement("supported", f"{c.text!r}: {v.shown()} is in {rows[0].text}")
    graded = [
        f"{g} {r.text}"
        for (d, g), rs in v.test.grades.items()
        if d == c.kind
        for r in rs
        if r.applies(pat.sex, age) and r.contains(x)
    ]
    return Judgement(
        "unsupported",
        f"{c.text!r} but {v.shown()} is not {c.severity} for {v.test.name} "
        f"({c.severity} is {rows[0].text}, {rows[0].short_source()}"
        + (f"; the value is {graded[0]}" if graded else "")
        + ")",
    )


def _judge_target(c: Claim, vs: list[Value], pat: Patient) -> Judgement:
    met, missed, why = [], [], []
    for v in vs:
        x, rows = _in_table_unit(v), _rows(v, "target", pat)
        if x is None or not rows:
            continue
        if any(r.contains(x) for r in rows):
            met.append(v)
        if not rows[0].contains(x):
            missed.append(v)
            why.append(
                f"{v.shown()} is outside the target {rows[0].text} ({rows[0].short_source()})"
            )
        else:
            why.append(f"{v.shown()} meets the target {rows[0].text} ({rows[0].short_source()})")
    judged = [v for v in vs if _in_table_unit(v) is not None and _rows(v, "target", pat)]
    if not judged:
        names = ", ".join(sorted({v.name for v in vs}))
        return Judgement("not_verified", f"{c.text!r} cannot be checked: no treatment target is "
                         f"known for {names}")  # fmt: skip
    if c.kind == "controlled":
        bad = [v for v in judged if v not in met]
        if bad:
            v = bad[0]
            rows = _rows(v, "target", pat)
            targets = " or ".join(f"{r.text} ({r.short_source()})" for r in rows)
            return Judgement("unsupported", f"{c.text!r} but {v.shown()} misses the "
                             f"{v.test.name if v.test else ''} target {targets}")  # fmt: skip
        return Judgement("supported", "; ".join(why))
    if missed:
        return Judgement("supported", "; ".join(why))
    return Judgement("unsupported", f"{c.text!r} but " + "; ".join(why))


def _judge_outcome(c: Claim, v: Value) -> Judgement | None:
    said = None
    if v.interpretation:
        said = _CODE_DIRECTION.get(v.interpretation.strip().lower())
    if said not in ("positive", "negative") and v.text:
        t = v.text.lower()
        if re.search(r"\b(?:negative|not detected|non-?reactive|undetectable)\b", t):
            said = "negative"
        elif re.search(r"\b(?:positive|detected|reactive)\b", t):
            said = "positive"
    if said not in ("positive", "negative") and v.value is not None and v.ref_high is not None:
        said = "positive" if v.value > v.ref_high else "negative"
    if said not in ("positive", "negative"):
        return None
    shown = v.interpretation or v.text or v.shown()
    if said != c.kind:
        return Judgement("unsupported", f"{c.text!r} but {v.obs.id} is {shown}")
    if c.severity == "severe" and re.search(r"\b(?:weak|low|equivocal|borderline)", shown.lower()):
        return Judgement("unsupported", f"{c.text!r} but {v.obs.id} is {shown}")
    return Judgement("supported", f"{c.text!r}: {v.obs.id} is {shown}")


def _distance(v: Value, pat: Patient) -> float | None:
    """How far outside its normal (or target) range a value is; 0 inside."""
    x = _in_table_unit(v)
    if x is None:
        return None
    rows = _rows(v, "target", pat) or _rows(v, "normal", pat)
    if not rows:
        return None
    best = None
    for r in rows:
        d = 0.0
        if r.lo is not None and x < r.lo:
            d = r.lo - x
        elif r.hi is not None and x > r.hi:
            d = x - r.hi
        best = d if best is None else min(best, d)
    return best


def _pair(series: list[Value], facts: StatementFacts) -> tuple[Value, Value]:
    """The two values a trend compares: those the statement names ("9.3, down from 13.8"),
    else the first and last cited."""
    named = [
        v
        for v in series
        if v.value is not None
        and any(same_quantity(q.text, q.unit, v.value, v.unit) for q in facts.quantities)
    ]
    if facts.dates and len(named) > 2:
        dated = [v for v in named if any(str(v.when or "")[:10] == d.iso() for d in facts.dates)]
        named = dated if len(dated) >= 2 else named
    if len(named) >= 2:
        return named[0], named[-1]
    if len(named) == 1:
        i = series.index(named[0])
        return (series[i - 1], series[i]) if i > 0 else (series[0], series[1])
    return series[0], series[-1]


def _judge_trend(c: Claim, vs: list[Value], pat: Patient, facts: StatementFacts) -> Judgement:
    series = sorted((v for v in vs if v.value is not None), key=lambda v: str(v.when or ""))
    if len(series) < 2:
        name = vs[0].name if vs else "the test"
        return Judgement(
            "not_verified", f"{c.text!r} needs two cited values of {name}; {len(series)} is cited"
        )
    a, b = _pair(series, facts)
    assert a.value is not None and b.value is not None
    went = (
        f"{a.name} went from {a.shown()} ({str(a.when)[:10]}) to {b.shown()} ({str(b.when)[:10]})"
    )
    change = b.value - a.value
    stable = abs(change) <= _STABLE_CHANGE * max(abs(a.value), 1e-9)
    steady = bool(_STEADY.search(facts.canon)) and len(series) > 2
    steps = [
        y.value - x.value
        for x, y in zip(series, series[1:], strict=False)
        if x.value is not None and y.value is not None
    ]
    if c.kind == "stable":
        ok = stable
    elif c.kind in ("rising", "falling"):
        sign = 1 if c.kind == "rising" else -1
        ok = change * sign > 0 and (not steady or all(d * sign > 0 for d in steps))
        if steady and not ok:  # "rose steadily": every step, not only first to last
            went = f"{a.name} went " + ", ".join(
                f"{v.shown()} ({str(v.when)[:10]})" for v in series
            )
    else:
        da, db = _distance(a, pat), _distance(b, pat)
        better = a.test.better if a.test else None
        if da is not None and db is not None and (da > 0 or db > 0) and da != db:
            improved = db < da
        elif better in ("lower", "higher") and not stable:
            improved = (change < 0) == (better == "lower")
        else:
            return Judgement(
                "not_verified",
                f"{c.text!r} cannot be checked: {went}, and no range or better direction is known",
            )
        ok = improved == (c.kind == "improving")
    if ok:
        return Judgement("supported", went)
    return Judgement("unsupported", f"{c.text!r} but {went}")


# ---------------------------------------------------------------- which values a claim is about


def _mentions(canon: str, v: Value) -> list[int]:
    names = {v.name.lower(), str(v.obs.data.get("name") or v.obs.title).lower()}
    if v.test:
        names |= {v.test.name.lower(), *v.test.aliases, *v.test.mentions}
    out: list[int] = []
    for n in names:
        if len(n) < 2:
            continue
        out += [m.start() for m in re.finditer(r"(?<![\w-])" + re.escape(n) + r"(?![\w-])", canon)]
    return out


def _about(c: Claim, values: list[Value], canon: str) -> list[Value]:
    """The cited values the claim speaks of: the test named nearest before it (or after it, in
    "elevated LDL"), else every cited value."""
    spots: list[tuple[int, str]] = []
    for v in values:
        spots += [(p, v.key) for p in _mentions(canon, v)]
    if not spots:
        return values
    before = [s for s in spots if s[0] <= c.pos]
    # "BP and LDL are at goal": every test named in the clause before the claim
    clause_start = max(canon.rfind(x, 0, c.pos) for x in (".", ";", " but ", " while ")) + 1
    keys: set[str]
    in_clause = {k for p, k in before if p >= clause_start}
    if in_clause and re.search(r"\b(?:and|both|all)\b", canon[clause_start : c.pos]):
        keys = in_clause
    elif before:
        near = max(p for p, _ in before)
        keys = {k for p, k in before if p == near}
    else:
        # "elevated LDL": the test named right after the claim; a test named later in the
        # sentence ("was reduced because potassium was high") is not what it speaks of
        first = min(p for p, _ in spots)
        if not re.fullmatch(r"[\s\w-]{0,25}", canon[c.pos + len(c.text) : first]):
            return []
        keys = {k for p, k in spots if p == first}
    return [v for v in values if v.key in keys]


def _distance_to(c: Claim, span: tuple[int, int], canon: str) -> int:
    """How far a number is from a claim: "normal at 13.9" binds the number right after the
    claim; one before it binds unless "and" or a comma separates them."""
    end = c.pos + len(c.text)
    if span[0] >= end:
        gap = canon[end : span[0]]
        near = re.fullmatch(r"\s*(?:at|of|was|is|=|:|\(|,)?\s*(?:about|around|~)?\s*", gap)
        return 0 if near else span[0] - end
    gap = canon[span[1] : c.pos]
    return c.pos - span[1] + (1000 if re.search(r"\band\b|;", gap) else 0)


def _stated(c: Claim, vs: list[Value], facts: StatementFacts) -> list[Value]:
    """Of several cited values of one test, the one whose number the statement writes nearest
    the claim ("low at 11.2 on admission and normal at 13.9": 'low' is about 11.2)."""
    out: list[Value] = []
    keys = {v.key for v in vs}
    for k in keys:
        group = [v for v in vs if v.key == k]
        hits = [
            (_distance_to(c, q.span, facts.canon), v)
            for v in group
            if v.value is not None
            for q in facts.quantities
            if same_quantity(q.text, q.unit, v.value, v.unit)
        ]
        out += [min(hits, key=lambda h: h[0])[1]] if len(group) > 1 and hits else group
    return out


def _latest(vs: list[Value]) -> list[Value]:
    by: dict[str, Value] = {}
    for v in vs:
        if v.key not in by or str(v.when or "") >= str(by[v.key].when or ""):
            by[v.key] = v
    return list(by.values())


def _first(js: list[Judgement], *order: str) -> Judgement:
    for verdict in order:
        for x in js:
            if x.verdict == verdict:
                return x
    return js[0]


def _judge_category(c: Claim, vs: list[Value], pat: Patient) -> Judgement | None:
    name = c.kind[len("cat:") :]
    for v in vs:
        if v.test is None or name not in v.test.categories:
            continue
        rows = [r for r in v.test.categories[name] if r.applies(pat.sex, pat.age_at(v.when))]
        x = _in_table_unit(v)
        if not rows or x is None:
            return Judgement(
                "not_verified",
                f"{c.text!r} cannot be checked: no {v.test.name} category applies to "
                f"{v.obs.id} (the table's categories are for adults, by age and sex)",
            )
        if any(r.contains(x) for r in rows):
            return Judgement("supported", f"{c.text!r}: {v.shown()} is in {rows[0].text}")
        return Judgement(
            "unsupported",
            f"{c.text!r} but {v.shown()} is not {name.replace('_', ' ')} "
            f"({rows[0].text}, {rows[0].short_source()})",
        )
    return None


def _judge(
    c: Claim, about: list[Value], ids: list[str], pat: Patient, facts: StatementFacts
) -> Judgement | None:
    if c.kind in _TREND:
        # "vitals were stable": each test with two cited values is a trend of its own
        groups = [[v for v in about if v.key == k] for k in dict.fromkeys(v.key for v in about)]
        many = [g for g in groups if sum(v.value is not None for v in g) >= 2]
        if not many:
            return _judge_trend(c, about, pat, facts)
        return _first([_judge_trend(c, g, pat, facts) for g in many], "unsupported", "not_verified")
    if c.kind.startswith("cat:"):
        return _judge_category(c, _latest(about), pat)
    if c.kind in ("controlled", "uncontrolled"):
        return _judge_target(c, _latest(about), pat)
    if c.kind in ("positive", "negative"):
        found = [x for x in (_judge_outcome(c, v) for v in _latest(about)) if x is not None]
        if not found:
            return Judgement(
                "not_verified",
                f"{c.text!r} cannot be checked: {', '.join(ids)} records no positive or "
                "negative result",
            )
        return _first(found, "unsupported", "supported")
    js = [
        x
        for v in _latest(about)
        if v.value is not None or v.interpretation
        if (x := _judge_level(c, v, pat)) is not None
    ]
    if not js:
        return None
    # "elevated" holds when one of the values is ("BP 150/78 is elevated"); "normal" needs every
    # value it speaks of to be normal
    if c.kind in ("high", "low", "abnormal"):
        return _first(js, "supported", "unsupported")
    return _first(js, "unsupported", "supported")


_COPULA = re.compile(
    r"\b(?:is|was|are|were|been|remains?|remained|stays?|stayed|looks?|looked|came back|"
    r"is now|was now|has been|have been)\b"
)


@lru_cache(maxsize=1)
def _test_names() -> re.Pattern[str]:
    tests, _ = reference_table()
    names = {a for t in tests for a in (t.name.lower(), *t.aliases, *t.mentions) if len(a) >= 3}
    return re.compile(r"(?<![\w-])(" + _alts(sorted(names)) + r")(?![\w-])")


def _uncited_results(canon: str, claims: list[Claim], ids: list[str]) -> list[CheckResult]:
    """ "Your blood pressure is now well controlled" citing only the order: the claim is about
    a result the statement does not cite, so nothing backs it."""
    out: list[CheckResult] = []
    for c in claims:
        if c.kind in ("positive", "negative"):
            continue
        start = max(canon.rfind(x, 0, c.pos) for x in (".", ";", ",", " but ")) + 1
        named = [m for m in _test_names().finditer(canon, start, c.pos)]
        if not named or not _COPULA.search(canon, named[-1].end(), c.pos):
            continue
        test = named[-1].group(1)
        out.append(
            CheckResult(
                check="interpretation",
                verdict="not_verified",
                reason=f"{c.text!r}: the statement cites no {test} result to check it against "
                f"(it cites {', '.join(ids) or 'nothing'})",
                evidence_ids=ids,
            )
        )
    return out


def _cited_results(
    cited: list[EvidenceFacts], resolve: Callable[[str], Evidence | None] | None
) -> list[Evidence]:
    """The cited Observations, and the results of a cited DiagnosticReport ("the lipid panel")."""
    out: list[Evidence] = []
    for c in cited:
        e = c.evidence
        if e.resource_type == "DiagnosticReport" and resolve is not None:
            for rid in e.data.get("result_ids") or []:
                r = resolve(str(rid))
                if r is not None and r.resource_type == "Observation" and r not in out:
                    out.append(r)
        elif e not in out:
            out.append(e)
    return out


def check_interpretation(
    facts: StatementFacts,
    cited: list[EvidenceFacts],
    patient: Evidence | None = None,
    resolve: Callable[[str], Evidence | None] | None = None,
) -> list[CheckResult]:
    """Every interpretation claim of the statement against the Observations it cites (or the
    results of a DiagnosticReport it cites; ``resolve`` finds them by id in the chart)."""
    claims = find_claims(facts.canon)
    if not claims:
        return []
    values = [v for e in _cited_results(cited, resolve) for v in observation_values(e)]
    if not values:
        return _uncited_results(facts.canon, claims, [c.evidence.id for c in cited])
    pat = patient_of(patient)
    out: list[CheckResult] = []
    for c in claims:
        about = _about(c, values, facts.canon)
        if c.kind not in _TREND:
            about = _stated(c, about, facts)
        ids = sorted({v.obs.id for v in about})
        j = _judge(c, about, ids, pat, facts)
        if j is None:
            continue
        verdict: Verdict = "supported"
        if j.verdict in ("unsupported", "not_verified"):
            verdict = "unsupported" if j.verdict == "unsupported" else "not_verified"
        out.append(
            CheckResult(check="interpretation", verdict=verdict, reason=j.why, evidence_ids=ids)
        )
    return out
