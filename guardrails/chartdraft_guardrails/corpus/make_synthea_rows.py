"""Write synthea.yaml: labelled statements over the shared Synthea bundles.

Run from the repo root: ``.venv/bin/python -m chartdraft_guardrails.corpus.make_synthea_rows``
(optionally followed by the bundle folder; default ``../shared/data/synthea-r4-bundles``).
Statements are built from the charts' own data (correct paraphrases) and from deliberate edits of
it (a defect per row). Labels come from how the statement was built, never from the checks.
"""

from __future__ import annotations

import random
import re
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from retrieval.evidence import Evidence
from retrieval.fhir_load import load_path
from retrieval.normalize import normalize_all

DEFAULT_SYNTHEA = Path("..") / "shared" / "data" / "synthea-r4-bundles"
OUT = Path(__file__).with_name("synthea.yaml")
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
# Procedures that share no word with common Synthea procedures (wrong-procedure edits).
OTHER_PROCEDURES = [
    "Appendectomy",
    "Tonsillectomy",
    "Total knee arthroplasty",
    "Coronary artery bypass graft",
    "Cataract extraction",
    "Hysterectomy",
]
OTHER_DRUGS = [
    "warfarin",
    "levothyroxine",
    "gabapentin",
    "sertraline",
    "omeprazole",
    "amlodipine",
    "prednisone",
]


def clean(title: str) -> str:
    return re.sub(r"\s*\((?:disorder|finding|procedure|situation|substance)\)\s*$", "", title)


def day(iso: str) -> date:
    return date.fromisoformat(iso[:10])


def fmt(d: date, style: int) -> str:
    return [
        d.isoformat(),
        f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
        f"{d.month:02d}/{d.day:02d}/{d.year}",
        f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    ][style % 4]


def num(v: float) -> str:
    """The value as a clinician would write it (one decimal, or none above 100)."""
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}"


def row(
    chart: str, text: str, cite: list[str], type_: str, label: str, why: str, **extra: Any
) -> dict[str, Any]:
    return {
        "chart": f"synthea:{chart}",
        "text": text,
        "cite": cite,
        "type": type_,
        "label": label,
        "why": why,
        **extra,
    }


def rows_for(
    name: str, ev: list[Evidence], other: tuple[str, list[Evidence]], rng: random.Random
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    obs = [
        e
        for e in ev
        if e.resource_type == "Observation"
        and isinstance(e.data.get("value"), int | float)
        and e.data.get("unit")
        and e.date
        and not e.data.get("components")
    ]
    rng.shuffle(obs)
    seen: set[str] = set()
    for i, o in enumerate(obs):
        if o.title in seen or len(seen) >= 3:
            continue
        seen.add(o.title)
        v, u, d = float(o.data["value"]), o.data["unit"], day(o.date or "")
        if u.startswith("{") or abs(v) < 1:
            continue
        label = o.title.split("[")[0].strip()
        out.append(
            row(
                name,
                f"{label} was {num(v)} {u} on {fmt(d, i)}.",
                [o.id],
                "wrong_value",
                "pass",
                f"chart value {v} rounded as written; date format {i % 4}",
            )
        )
        wrong = v * 1.5 + 1
        out.append(
            row(
                name,
                f"{label} was {num(wrong)} {u} on {fmt(d, i + 1)}.",
                [o.id],
                "wrong_value",
                "flag",
                f"chart value is {v}, statement says {num(wrong)}",
            )
        )
        shifted = d + timedelta(days=rng.choice([-40, -9, 3, 11, 35]))
        out.append(
            row(
                name,
                f"{label} was {num(v)} {u} on {fmt(shifted, i + 2)}.",
                [o.id],
                "wrong_date",
                "flag",
                f"measured {d}, statement says {shifted}",
            )
        )
        if len(seen) == 1:
            out.append(
                row(
                    name,
                    f"{label} was {num(v)} {u}.",
                    [],
                    "uncited",
                    "flag",
                    "a lab value with no citation",
                )
            )
            out.append(
                row(
                    name,
                    f"{label} was {num(v)} {u}.",
                    [o.id],
                    "invalid_citation",
                    "pass",
                    "own evidence, correct value",
                )
            )

    procs = [e for e in ev if e.resource_type == "Procedure" and e.date]
    rng.shuffle(procs)
    pseen: set[str] = set()
    for i, p in enumerate(procs):
        if p.title in pseen or len(pseen) >= 3:
            continue
        pseen.add(p.title)
        d = day(p.date or "")
        title = clean(p.title)
        out.append(
            row(
                name,
                f"{title} on {fmt(d, i + 1)}.",
                [p.id],
                "wrong_procedure",
                "pass",
                "procedure and date as recorded",
            )
        )
        other_proc = next(
            x for x in OTHER_PROCEDURES if not set(x.lower().split()) & set(title.lower().split())
        )
        out.append(
            row(
                name,
                f"{other_proc} on {fmt(d, i)}.",
                [p.id],
                "wrong_procedure",
                "flag",
                f"the cited procedure is {title}",
            )
        )
        out.append(
            row(
                name,
                f"{title} in {d.year - 2}.",
                [p.id],
                "wrong_date",
                "flag",
                f"performed in {d.year}",
            )
        )
        out.append(
            row(
                name,
                f"{title} in {MONTHS[d.month - 1]} {d.year}.",
                [p.id],
                "wrong_date",
                "pass",
                "month precision",
            )
        )

    imms = [e for e in ev if e.resource_type == "Immunization" and e.date]
    for i, m in enumerate(imms[:2]):
        d = day(m.date or "")
        vac = m.data.get("vaccine") or m.title
        out.append(
            row(
                name,
                f"Received the {vac} vaccine on {fmt(d, i)}.",
                [m.id],
                "wrong_date",
                "pass",
                "vaccine and date as recorded",
            )
        )
        out.append(
            row(
                name,
                f"Received the {vac} vaccine on {fmt(d + timedelta(days=400), i)}.",
                [m.id],
                "wrong_date",
                "flag",
                f"given {d}",
            )
        )

    conds = [e for e in ev if e.resource_type == "Condition"]
    by_title: dict[str, set[str]] = {}
    for c in conds:
        by_title.setdefault(c.title, set()).add(str(c.data.get("clinical_status")))
    cseen: set[str] = set()
    for c in conds:
        st = c.data.get("clinical_status")
        if c.title in cseen or len(by_title[c.title]) > 1 or st not in ("active", "resolved"):
            continue
        # Ambiguous ground truth: "Sinusitis" resolved while "Chronic sinusitis" is active.
        words_c = set(clean(c.title).lower().split())
        if any(
            o.title != c.title
            and words_c < set(clean(o.title).lower().split())
            and str(o.data.get("clinical_status")) != st
            for o in conds
        ):
            continue
        cseen.add(c.title)
        title = clean(c.title)
        if st == "resolved":
            out.append(
                row(
                    name,
                    f"{title} has resolved.",
                    [c.id],
                    "unbacked_status",
                    "pass",
                    "recorded as resolved",
                )
            )
            out.append(
                row(
                    name,
                    f"{title} remains active.",
                    [c.id],
                    "unbacked_status",
                    "flag",
                    "recorded as resolved",
                )
            )
        else:
            out.append(
                row(
                    name,
                    f"{title} is an active problem.",
                    [c.id],
                    "unbacked_status",
                    "pass",
                    "recorded as active",
                )
            )
            out.append(
                row(
                    name,
                    f"{title} has resolved.",
                    [c.id],
                    "unbacked_status",
                    "flag",
                    "recorded as active",
                )
            )
            enc = next((e for e in ev if e.resource_type == "Encounter"), None)
            if enc is not None:
                out.append(
                    row(
                        name,
                        f"{title} resolved.",
                        [enc.id],
                        "contradiction_status",
                        "flag",
                        f"{c.id} is active",
                    )
                )
        if c.date:
            d = day(c.date)
            out.append(
                row(
                    name,
                    f"{title}, first noted in {MONTHS[d.month - 1]} {d.year}.",
                    [c.id],
                    "wrong_date",
                    "pass",
                    "onset month",
                )
            )

    meds = [
        e
        for e in ev
        if e.resource_type == "MedicationRequest"
        and e.data.get("strength_value")
        and e.data.get("strength_unit") == "mg"
    ]
    for i, m in enumerate(meds[:3]):
        from chartdraft_guardrails.facts import drug_names

        names = sorted(drug_names(m.title))
        if not names:
            continue
        drug, sv = names[0], float(m.data["strength_value"])
        strength = f"{sv:g} mg" if i % 2 == 0 else f"{sv:g}mg"
        freq = m.data.get("frequency")
        tail = f" {freq}" if freq else ""
        if m.data.get("status") != "active" and m.date:
            tail += f", prescribed in {day(m.date).year}"  # an old order, stated as such
        out.append(
            row(
                name,
                f"{drug.capitalize()} {strength}{tail}.",
                [m.id],
                "wrong_dose",
                "pass",
                "drug, strength and frequency as ordered",
            )
        )
        if sv >= 100:
            out.append(
                row(
                    name,
                    f"{drug.capitalize()} {sv / 1000:g} g{tail}.",
                    [m.id],
                    "wrong_dose",
                    "pass",
                    f"{sv:g} mg written in grams",
                )
            )
        out.append(
            row(
                name,
                f"{drug.capitalize()} {sv * 2:g} mg{tail}.",
                [m.id],
                "wrong_dose",
                "flag",
                f"strength is {sv:g} mg",
            )
        )
        other_drug = next(x for x in OTHER_DRUGS if x not in m.title.lower())
        out.append(
            row(
                name,
                f"{other_drug.capitalize()} {strength}{tail}.",
                [m.id],
                "wrong_drug",
                "flag",
                f"the cited order is {drug}",
            )
        )
        out.append(
            row(
                name,
                f"Takes {drug} {strength}.",
                [],
                "uncited",
                "flag",
                "a medication with no citation",
            )
        )
        if m.data.get("status") == "active" and not [
            x for x in meds if x is not m and drug in x.title.lower()
        ]:
            cond = next((e for e in ev if e.resource_type == "Condition"), None)
            if cond is not None:
                out.append(
                    row(
                        name,
                        f"{drug.capitalize()} {sv * 4:g} mg daily.",
                        [cond.id],
                        "contradiction_dose",
                        "flag",
                        f"active order is {sv:g} mg",
                    )
                )
                out.append(
                    row(
                        name,
                        f"{drug.capitalize()} {sv:g} mg.",
                        [m.id],
                        "contradiction_dose",
                        "pass",
                        "matches the active order",
                    )
                )

    allergies = [e for e in ev if e.resource_type == "AllergyIntolerance"]
    anchor = next(e for e in ev if e.resource_type == "Encounter")
    if allergies:
        out.append(
            row(
                name,
                "No known allergies.",
                [anchor.id],
                "contradiction_allergy",
                "flag",
                f"{len(allergies)} allergy records",
            )
        )
    else:
        out.append(
            row(
                name,
                "No known allergies.",
                [anchor.id],
                "contradiction_allergy",
                "pass",
                "no allergy records in this chart",
            )
        )

    oname, oev = other
    ocond = next((e for e in oev if e.resource_type == "Condition"), None)
    if ocond is not None:
        out.append(
            row(
                name,
                f"{clean(ocond.title)}.",
                [ocond.id],
                "invalid_citation",
                "flag",
                "cites another patient's condition",
                other=[f"synthea:{oname}"],
            )
        )
    oobs = next((e for e in oev if e.resource_type == "Observation"), None)
    if oobs is not None:
        out.append(
            row(
                name,
                f"{oobs.title.split('[')[0].strip()} was measured.",
                [oobs.id],
                "invalid_citation",
                "flag",
                "cites another patient's observation",
                other=[f"synthea:{oname}"],
            )
        )
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    synthea = Path(args[0]) if args else DEFAULT_SYNTHEA
    files = sorted(p.name for p in synthea.glob("*.json"))
    if not files:
        raise SystemExit(f"no Synthea bundles (*.json) in {synthea}: pass their folder")
    charts = {f: normalize_all(load_path(synthea / f).resources)[0] for f in files}
    rng = random.Random(7)
    rows: list[dict[str, Any]] = []
    for i, f in enumerate(files):
        other = files[(i + 1) % len(files)]
        rows += rows_for(f, charts[f], (other, charts[other]), rng)
    header = (
        "# Generated by make_synthea_rows.py from ../shared/data/synthea-r4-bundles.\n"
        "# Labels come from how each statement was built (see `why`), not from the checks.\n"
    )
    OUT.write_text(header + yaml.safe_dump({"rows": rows}, sort_keys=False, width=120))
    print(f"{len(rows)} rows -> {OUT}")


if __name__ == "__main__":
    main()
