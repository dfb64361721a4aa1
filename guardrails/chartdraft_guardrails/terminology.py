"""Load the terminology data files under ``data/`` once (drugs, classes, concepts, ICD-10-CM).

Every file is a CSV with ``#`` comment lines first (its source, license and how it was made),
then a header row. ``;`` separates several values in one cell. A missing file or column is a
packaging error and says which file and how to fix it.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib.resources import files
from typing import Any

from retrieval.errors import BadInput


def _split(cell: str | None) -> list[str]:
    return [x.strip().lower() for x in (cell or "").split(";") if x.strip()]


def split_ids(cell: str | None) -> list[str]:
    """Concept ids as written ("icd:I10", "vital:bp"): codes keep their case."""
    return [x.strip() for x in (cell or "").split(";") if x.strip()]


@cache
def data_yaml(name: str, what: str) -> dict[str, Any]:
    """One YAML file of data/ as a dict; an unreadable or malformed file is a clear BadInput."""
    import yaml

    try:
        raw = yaml.safe_load(files("chartdraft_guardrails").joinpath("data", name).read_text(
            encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"cannot read the {what} ({exc})",
                       where=f"chartdraft_guardrails/data/{name}",
                       fix="reinstall the package (data/*.yaml is package data) or fix the YAML",
                       ) from exc
    if not isinstance(raw, dict):
        raise BadInput(f"the {what} file is not a mapping",
                       where=f"chartdraft_guardrails/data/{name}",
                       fix="the top level of the YAML must be key: value pairs")
    return raw


def rows(name: str, *columns: str) -> tuple[dict[str, str], ...]:
    """The rows of ``data/<name>`` as dicts; ``columns`` must all be in its header."""
    path = files("chartdraft_guardrails").joinpath("data", name)
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise BadInput(
            f"terminology file {name!r} is missing ({exc})",
            where=f"chartdraft_guardrails/data/{name}",
            fix="reinstall the package: data/*.csv is package data (pyproject.toml)",
        ) from exc
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    reader = csv.DictReader(io.StringIO(body))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        raise BadInput(
            f"terminology file {name!r} lacks column(s) {', '.join(missing)}",
            where=f"chartdraft_guardrails/data/{name}",
            fix=f"its header must name {', '.join(columns)}",
        )
    return tuple(dict(r) for r in reader)


@cache
def brand_to_generic() -> dict[str, str]:
    """Other names (brands, INN synonyms) -> generic, from ``drugs.csv``."""
    out: dict[str, str] = {}
    for r in rows("drugs.csv", "generic", "other_names"):
        for n in _split(r["other_names"]):
            out[n] = r["generic"].strip().lower()
    return out


@cache
def drug_therapeutic_classes() -> dict[str, frozenset[str]]:
    """Generic -> every class it belongs to (therapeutic and allergy classes)."""
    out: dict[str, frozenset[str]] = {}
    for r in rows("drugs.csv", "generic", "classes"):
        out[r["generic"].strip().lower()] = frozenset(_split(r["classes"]))
    # "insulin glargine" is an insulin: a combined name inherits its head drug's classes
    for g in list(out):
        head = g.split()[0]
        if head != g and head in out:
            out[g] = out[g] | out[head]
    return out


@cache
def common_drugs() -> frozenset[str]:
    return frozenset(
        r["generic"].strip().lower()
        for r in rows("drugs.csv", "generic", "common")
        if r["common"].strip() == "1"
    )


@cache
def class_rows() -> tuple[tuple[str, tuple[str, ...], tuple[str, ...], bool], ...]:
    """(class, terms, parent classes, cross-reactive) from ``drug_classes.csv``."""
    return tuple(
        (
            r["class"].strip().lower(),
            tuple(_split(r["terms"])),
            tuple(split_ids(r["parents"])),
            r["cross_reactive"].strip() == "1",
        )
        for r in rows("drug_classes.csv", "class", "terms", "parents", "cross_reactive")
    )


@cache
def allergy_classes() -> dict[str, set[str]]:
    """Generic -> its cross-reactive classes (an allergy to one member flags the others)."""
    cross = {c for c, _, _, x in class_rows() if x}
    out: dict[str, set[str]] = {}
    for g, cls in drug_therapeutic_classes().items():
        keep = set(cls) & cross
        if keep:
            out[g] = keep
    return out


@cache
def allergy_class_words() -> dict[str, str]:
    """Words naming a cross-reactive class ("sulfa" -> "sulfonamides")."""
    return {t: c for c, terms, _, x in class_rows() if x for t in terms}


@cache
def synonyms() -> tuple[tuple[str, str], ...]:
    return tuple(
        (r["pattern"], r["canonical"]) for r in rows("synonyms.csv", "pattern", "canonical")
    )


@cache
def clinical_terms() -> frozenset[str]:
    return frozenset(r["term"].strip().lower() for r in rows("clinical_terms.csv", "term"))


@cache
def generic_words() -> frozenset[str]:
    return frozenset(r["word"].strip().lower() for r in rows("generic_words.csv", "word"))


@cache
def body_sites() -> frozenset[str]:
    return frozenset(r["site"].strip().lower() for r in rows("body_sites.csv", "site"))
