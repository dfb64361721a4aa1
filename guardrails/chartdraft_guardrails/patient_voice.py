"""Patient voice: safe, plain wording in text a patient reads (discharge instructions).

Two uses of one rule set (``data/patient_voice.yaml``, with its sources):

- :func:`rewrite` turns composed text into the patient's wording: no ISMP error-prone
  abbreviation ("10 U" -> "10 units", "QD" -> "every day"), no trailing zero ("5.0 mg" -> "5 mg")
  or naked decimal (".5 mg" -> "0.5 mg"), dates in words ("2026-11-23" -> "November 23, 2026"),
  no tall-man lettering ("predniSONE" -> "prednisone"), RxNorm units in plain words
  ("0.09 MG/ACTUAT Metered Dose Inhaler" -> "metered dose inhaler (0.09 mg in each puff)"), and a
  lay word before a clinical term ("hives (urticaria)"). Facts are kept: numbers, units and dates
  mean the same after a rewrite.
- :func:`check` reports what is still there in any text (model-written too), so a draft's report
  can show it; a rule with no safe rewrite (e.g. "D/C": discharge or discontinue?) is reported only.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from retrieval.errors import BadInput

_DATA = "patient_voice.yaml"


@dataclass(frozen=True)
class Finding:
    rule: str  # ismp-abbreviation | trailing-zero | naked-decimal | iso-date | tall-man | ...
    found: str
    fix: str | None  # the plain wording; None when there is no safe rewrite
    why: str

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "found": self.found, "fix": self.fix, "why": self.why}


@dataclass(frozen=True)
class _Rule:
    rule: str
    pattern: re.Pattern[str]
    fix: Callable[[re.Match[str]], str] | None
    why: str


def _need(data: dict[str, Any], key: str, kind: type) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise BadInput(f"{_DATA}: {key!r} must be a {kind.__name__}",
                       where=f"chartdraft_guardrails/data/{_DATA}",
                       fix=f"restore the {key!r} entry (see the file's header)")
    return value


def _plural(n: str, word: str) -> str:
    return word[:-1] if word.endswith("s") and n in ("1", "1.0") else word


@lru_cache(maxsize=1)
def rules() -> tuple[_Rule, ...]:
    """The rules in the order a rewrite applies them."""
    data = yaml.safe_load(resources.files("chartdraft_guardrails.data").joinpath(_DATA)
                          .read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise BadInput(f"{_DATA} is not a mapping", where=f"chartdraft_guardrails/data/{_DATA}")
    out: list[_Rule] = []
    units = "|".join(re.escape(u) for u in _need(data, "dose_units", list))
    unit_after = rf"(?=\s?(?:{units})(?![A-Za-z]))"
    # RxNorm units first: "0.09 MG/ACTUAT" must not be read as a number before a unit.
    for entry in _need(data, "rxnorm_units", list):
        out.append(_rxnorm_rule(entry))
    out.append(_Rule("rxnorm-unit", re.compile(r"\b(\d+)\s+actuat(?:ion)?s?\b", re.I),
                     lambda m: f"{m.group(1)} {_plural(m.group(1), 'puffs')}",
                     "'actuation' is pharmacy wording; a patient counts puffs"))
    for a in _need(data, "abbreviations", list):
        pat = a["match"]
        if a.get("after_number"):
            rx = re.compile(rf"(\d+(?:\.\d+)?)\s?(?:{pat})(?![A-Za-z0-9])")
            repl = a.get("replace")
            fix = (None if repl is None else
                   (lambda m, r=repl: f"{m.group(1)} {_plural(m.group(1), r)}"))
        else:
            rx = re.compile(rf"(?<![A-Za-z0-9])(?:{pat})(?![A-Za-z0-9])")
            fix = None if a.get("replace") is None else (lambda m, r=a["replace"]: r)
        out.append(_Rule("ismp-abbreviation", rx, fix, f"{a['abbr']}: {a['why']}"))
    out.append(_Rule("trailing-zero", re.compile(rf"(?<![\d.])(\d+)\.0+{unit_after}"),
                     lambda m: m.group(1),
                     "ISMP: '5.0 mg' is misread as 50 mg; write '5 mg'"))
    out.append(_Rule("naked-decimal", re.compile(rf"(?<![\w.])\.(\d+){unit_after}"),
                     lambda m: f"0.{m.group(1)}",
                     "ISMP: '.5 mg' is misread as 5 mg; write '0.5 mg'"))
    out.append(_Rule("iso-date", re.compile(
        r"\b(\d{4})-(\d{2})-(\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?\b"),
        _date_words, "plain language: a date in words ('November 23, 2026')"))
    out.append(_Rule("iso-date", re.compile(r"\b(\d{4})-(0[1-9]|1[0-2])\b(?!-\d)"),
                     lambda m: f"{calendar.month_name[int(m.group(2))]} {m.group(1)}",
                     "plain language: a month in words ('March 2021')"))
    generic = [str(n) for n in _need(data, "tall_man", list)]
    brands = [str(n) for n in _need(data, "tall_man_brands", list)]
    out.append(_Rule("tall-man", re.compile(r"\b(?:" + "|".join(map(re.escape, generic))
                                            + r")\b"),
                     lambda m: m.group(0).lower(),
                     "tall-man lettering is for pharmacy shelves; patients read lower case"))
    out.append(_Rule("tall-man", re.compile(r"\b(?:" + "|".join(map(re.escape, brands))
                                            + r")\b"),
                     lambda m: m.group(0).capitalize(),
                     "tall-man lettering is for pharmacy shelves; patients read the brand name"))
    for clinical, lay in _need(data, "lay_terms", dict).items():
        out.append(_lay_rule(str(clinical), str(lay)))
    for short, plain in _need(data, "shorthand", dict).items():
        out.append(_Rule("shorthand", re.compile(rf"(?<![\w/]){re.escape(short)}(?![\w/])"),
                         _constant(str(plain)), f"clinical shorthand: write '{plain}'"))
    return tuple(out)


def _constant(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _m: text


def _date_words(m: re.Match[str]) -> str:
    y, mo, d = (int(g) for g in m.groups())
    try:
        when = date(y, mo, d)
    except ValueError:  # not a date (a code or a range that looks like one): leave it
        return m.group(0)
    return f"{calendar.month_name[when.month]} {when.day}, {when.year}"


def _rxnorm_rule(entry: dict[str, Any]) -> _Rule:
    unit = entry["match"]
    if "per_form" in entry:
        forms: dict[str, str] = dict(entry["per_form"])
        shown = entry["unit"]
        # The dose form moves in front: "nasal spray (0.05 mg in each spray)".
        rx = re.compile(rf"(\d+(?:\.\d+)?)\s*{re.escape(unit)}\b"
                        r"((?:\s+(?!and\b|for\b|by\b|as\b|Take\b|take\b)[A-Za-z]+){0,4}?"
                        r"\s+(?:Inhaler|Spray|Powder|Aerosol|Inhalant|Solution|Suspension)\b)?",
                        re.I)

        def fix(m: re.Match[str]) -> str:
            form = (m.group(2) or "").strip()
            low = (form or m.string[m.end():m.end() + 40]).lower()
            per = next((v for k, v in forms.items() if k != "default" and k in low),
                       forms.get("default", "puff"))
            amount = f"{m.group(1)} {shown} in each {per}"
            return f"{form.lower()} ({amount})" if form else amount

        return _Rule("rxnorm-unit", rx, fix, f"{unit} is pharmacy shorthand; say what one "
                                             "puff or spray holds")
    plain = str(entry["plain"])
    return _Rule("rxnorm-unit", re.compile(rf"(\d+(?:\.\d+)?)\s*{re.escape(unit)}\b", re.I),
                 lambda m: f"{m.group(1)} {plain}", f"{unit} is pharmacy shorthand")


def _lay_rule(clinical: str, lay: str) -> _Rule:
    rx = re.compile(rf"(?<![\w(]){re.escape(clinical)}(?![\w)])", re.I)

    def fix(m: re.Match[str]) -> str:
        sentence = _sentence_around(m)
        if lay.lower() in sentence.lower():  # the patient already has the lay word
            return m.group(0)
        return f"{lay} ({m.group(0)})"

    return _Rule("lay-term", rx, fix, f"say '{lay}' first, with '{clinical}' in brackets")


def _sentence_around(m: re.Match[str]) -> str:
    s = m.string
    start = max(s.rfind(". ", 0, m.start()) + 1, 0)
    end = s.find(". ", m.end())
    return s[start:end if end >= 0 else len(s)]


def _sentence_end(m: re.Match[str], replacement: str) -> str:
    """'Take it q.d.' -> 'Take it every day.': a dot the abbreviation used also ended the
    sentence."""
    if m.group(0).endswith(".") and not replacement.endswith("."):
        rest = m.string[m.end():]
        if not rest or re.match(r"\s+[A-Z]", rest):
            return replacement + "."
    return replacement


def rewrite(text: str) -> str:
    """``text`` in the patient's wording (see the module doc); facts are kept as they were."""
    for r in rules():
        if r.fix is None:
            continue
        fix = r.fix
        text = r.pattern.sub(lambda m, f=fix: _sentence_end(m, f(m)), text)  # type: ignore[misc]
    return text


def check(text: str) -> list[Finding]:
    """Everything in ``text`` a patient should not be given, with the fix where it is certain."""
    out: list[Finding] = []
    seen: set[tuple[str, int]] = set()
    for r in rules():
        for m in r.pattern.finditer(text):
            fix = r.fix(m) if r.fix is not None else None
            if fix == m.group(0) or (r.rule, m.start()) in seen:
                continue  # a rewrite that changes nothing is no finding (lay word given)
            seen.add((r.rule, m.start()))
            out.append(Finding(r.rule, m.group(0), fix, r.why))
    # Tall-man lettering of a name not on the lists is still pharmacy lettering.
    for m in re.finditer(r"\b[a-z]{2,}[A-Z]{3,}[a-z]*\b|\b[A-Z]{3,}[a-z]{3,}\b", text):
        if ("tall-man", m.start()) not in seen and not any(
                f.rule == "tall-man" and f.found == m.group(0) for f in out):
            out.append(Finding("tall-man", m.group(0), m.group(0).lower(),
                               "mixed capitals inside a drug name read as pharmacy lettering"))
    return out


def check_sections(sections: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    """Findings for a draft, each with its section and statement index (a draft-level report)."""
    out = []
    for title, texts in sections:
        for i, t in enumerate(texts):
            out += [{"section": title, "index": i, **f.as_dict()} for f in check(t)]
    return out
