"""Concepts, not words: the clinical mentions of a statement tied to what its evidence carries.

A mention ("water pill", "hep B vaccine", "cholesterol panel", "eczema", "LAD") maps to concepts
through the terminology data files (drugs and their classes, labs, vaccines, lay and ICD-10-CM
condition names, procedures, vessels); the cited evidence maps to concepts through its codes,
drug names and display text, plus every parent of those (furosemide is a diuretic, a "water
pill"; LDL is part of a cholesterol panel). A mention is supported when the evidence carries
one of its concepts (or, failing that, when every word of it is in the evidence text).

Verdicts: a known concept the evidence does not carry is ``unsupported`` ("'eczema' is not what
Condition/x records (Psoriasis)"); a word that looks clinical but that neither the evidence nor
any table explains is ``not_verified``. Unknown clinical terms never pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from chartdraft_guardrails import lexicon, terminology
from chartdraft_guardrails.facts import (
    _CLINICAL_SUFFIX,
    BUILTIN_TERMS,
    EvidenceFacts,
    StatementFacts,
    stem_match,
)

# words, and bare numbers: "type 1 diabetes" is not "type 2 diabetes"
_TOKEN = re.compile(r"[a-z][a-z0-9\-']*[a-z0-9]|[a-z]|\d+")
# Symptoms and conditions named as what to watch for are advice, not claims about the chart.
_CONDITIONAL = re.compile(
    r"\b(?:if|unless|in case|watch for|look out for|signs? of|symptoms? (?:of|like|such as)|"
    r"such as|call (?:your|the|911)|seek|until|avoid|risk of|lower (?:your|the) risk|"
    r"to (?:prevent|lower|reduce|help|protect|avoid|keep)|prevents?|protects?)\b[^.;:]*$"
)
# "tested for strep", "screening for cancer": what a test looks for, not a diagnosis.
TESTED_FOR = re.compile(
    r"\b(?:test(?:s|ed|ing)?|screen(?:s|ed|ing)?|check(?:s|ed|ing)?|look(?:s|ed|ing)?|"
    r"evaluat(?:e|ed|ion|ing)|culture[sd]?|swab(?:bed)?|assess(?:ed|ment)?)\s+(?:him |her |you |"
    r"them )?for\s+$"
)
# "for your gout", "due to", "caused by": checked against the chart's links (links.py).
PURPOSE_CUE = re.compile(
    r"\b(?:for (?:your|her|his|their|the|a|an|treatment of|management of)?|to (?:treat|"
    r"prevent|control|manage|help with|lower|reduce)|treats?|treated for|started for|"
    r"prescribed for|given for|ordered for|because of|due to|caused by|secondary to|"
    r"as a result of|from (?:your|her|his|their))\b"
)
# "after her stroke", "since your surgery": a time anchor naming another chart event, not a
# claim about what is cited
_ANCHOR = re.compile(
    r"\b(?:after|following|since|before|prior to|during|at the time of)\s+"
    r"(?:(?:the|a|an|her|his|your|their|this|that|last|recent|recently)\s+)*(?:[a-z\-]+\s+)?$"
)
_SIDES = ("left", "right")
# surgical approaches: "open appendectomy" citing a laparoscopic one
_MINIMAL = {"laparoscopic", "arthroscopic", "robotic", "endoscopic", "percutaneous"}
_APPROACHES = {"open": frozenset(_MINIMAL)} | {a: frozenset({"open"}) for a in _MINIMAL}
# "as needed for pain": the symptom an as-needed order is used for, when the order names none
_PRN_FOR = re.compile(r"\b(?:as needed|if needed|when needed|prn)\s+(?:for|to)\b[^.;:]*")
# "mid-april", "late-2019": approximate time words (the date check reads them), not terms
_TIME_WORD = re.compile(
    r"^(?:early|mid|late)-(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|\d{4})"
)


@dataclass(frozen=True)
class Mention:
    term: str
    start: int
    end: int
    concepts: frozenset[str]


@dataclass
class ConceptTable:
    terms: dict[str, frozenset[str]]
    parents: dict[str, frozenset[str]]
    names: dict[str, str]
    codes: dict[tuple[str, str], frozenset[str]]
    max_words: int
    firsts: frozenset[str] = frozenset()  # first words of every term (a quick skip)


def _key(term: str) -> str:
    return " ".join(_TOKEN.findall(lexicon.canonical(term)))


@cache
def table() -> ConceptTable:
    """Every concept term of the data files, keyed by its canonical words (built once)."""
    terms: dict[str, set[str]] = {}
    parents: dict[str, set[str]] = {}
    names: dict[str, str] = {}
    codes: dict[tuple[str, str], set[str]] = {}

    curated: dict[str, set[str]] = {}

    def add(cid: str, words: Iterable[str], ups: Iterable[str] = (), hand: bool = True) -> None:
        for w in words:
            k = _key(w)
            if k and k not in lexicon.GENERIC_WORDS:
                terms.setdefault(k, set()).add(cid)
                names.setdefault(cid, w)
                if hand:
                    curated.setdefault(k, set()).add(cid)
        parents.setdefault(cid, set()).update(ups)

    classes = terminology.drug_therapeutic_classes()
    for generic, member_of in classes.items():
        add(f"drug:{generic}", [generic], (f"class:{c}" for c in member_of))
    for brand, generic in terminology.brand_to_generic().items():
        add(f"drug:{generic}", [brand])
    for cname, words, ups, _ in terminology.class_rows():
        # "icd:I10" / "vital:bp": what the class treats; a bare name is a parent class
        add(f"class:{cname}", [cname, *words], (p if ":" in p else f"class:{p}" for p in ups))
    for r in terminology.rows("concepts.csv", "concept", "terms", "parents", "codes"):
        cid = r["concept"].strip()
        add(cid, terminology._split(r["terms"]), terminology.split_ids(r["parents"]))
        for c in terminology._split(r["codes"]):
            system, _, code = c.partition(":")
            codes.setdefault((system, code), set()).add(cid)
    for r in terminology.rows("icd10cm_terms.csv", "code", "term"):
        add(f"icd:{r['code'].strip().upper()}", [r["term"]], hand=False)
    # A term the curated table gives a specific concept means that one ("streptococcal
    # pharyngitis" is J02.0, not any J02): drop its ancestors. ICD-10-CM's own "NOS" defaults
    # ("diabetes" under E11) never narrow a general curated concept.
    def ancestors(c: str) -> set[str]:
        seen: set[str] = set()
        todo = list(parents.get(c, ()))
        while todo:
            x = todo.pop()
            if x not in seen:
                seen.add(x)
                todo.extend(parents.get(x, ()))
        return seen

    for k, cs in terms.items():
        if len(cs) > 1 and curated.get(k):
            up = set().union(*(ancestors(c) for c in curated[k]))
            terms[k] = (cs - up) or cs
    return ConceptTable(
        terms={k: frozenset(v) for k, v in terms.items()},
        parents={k: frozenset(v) for k, v in parents.items()},
        names=names,
        codes={k: frozenset(v) for k, v in codes.items()},
        max_words=max(len(k.split()) for k in terms),
        firsts=frozenset(k.split()[0] for k in terms)
        | frozenset(k.split()[0] + "s" for k in terms if " " not in k),
    )


@cache
def condition_words() -> frozenset[str]:
    """Words of condition names (ICD-10-CM and curated): "bleeding", "menstrual", "rectal"."""
    t = table()
    out = {
        w
        for k, cs in t.terms.items()
        if any(c.startswith("icd:") for c in cs)
        for w in k.split()
        if len(w) >= 4 and not w.isdigit()
    }
    return frozenset(out - lexicon.GENERIC_WORDS)


def clinical_words(text: str) -> list[str]:
    """The words of ``text`` that name something clinical (condition words, clinical terms,
    body sites, drug-like or disease-like suffixes)."""
    words = condition_words()
    sites = terminology.body_sites()
    return [
        w
        for w in _TOKEN.findall(text)
        if w not in lexicon.GENERIC_WORDS
        and (w in words or w in BUILTIN_TERMS or w in sites or _CLINICAL_SUFFIX.search(w))
    ]


def _lookup(t: ConceptTable, key: str) -> frozenset[str] | None:
    hit = t.terms.get(key)
    if hit is None and key.endswith("s") and len(key) > 4:
        hit = t.terms.get(key[:-1])
    return hit


def mentions(canon: str) -> list[Mention]:
    """Concept mentions in canonical text, longest first, left to right, not overlapping."""
    t = table()
    toks = [(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(canon)]
    out: list[Mention] = []
    i = 0
    while i < len(toks):
        if toks[i][0] not in t.firsts:
            i += 1
            continue
        for n in range(min(t.max_words, len(toks) - i), 0, -1):
            key = " ".join(w for w, _, _ in toks[i : i + n])
            hit = _lookup(t, key)
            if hit:
                out.append(Mention(key, toks[i][1], toks[i + n - 1][2], hit))
                i += n
                break
        else:
            i += 1
    return out


def closure(concepts: Iterable[str]) -> frozenset[str]:
    """The concepts and every ancestor (drug -> its classes -> their parents)."""
    parents = table().parents
    seen: set[str] = set()
    todo = list(concepts)
    while todo:
        c = todo.pop()
        if c not in seen:
            seen.add(c)
            todo.extend(parents.get(c, ()))
    return frozenset(seen)


@lru_cache(maxsize=8192)
def _evidence_concepts(
    canon: str, codes: frozenset[tuple[str | None, str]], drugs: frozenset[str]
) -> frozenset[str]:
    t = table()
    found: set[str] = {c for m in mentions(canon) for c in m.concepts}
    for system, code in codes:
        found |= t.codes.get((system or "", code), frozenset())
    found |= {f"drug:{d}" for d in drugs}
    return closure(found)


def evidence_concepts(ef: EvidenceFacts) -> frozenset[str]:
    """Concepts the evidence carries (codes, drug names, display text), with their parents."""
    return _evidence_concepts(ef.canon, frozenset(ef.codes), frozenset(ef.drugs))


def covers(words: list[str], tokens: set[str]) -> bool:
    """Every content word of a term is in the evidence words (a stem, or the end of a longer
    word: "arthritis" in "osteoarthritis"). Single letters count ("hepatitis a" is not "b")."""
    content = [w for w in words if (w not in lexicon.GENERIC_WORDS or len(w) == 1)]
    content = [w for w in content if not w.isdigit()]
    return bool(content) and all(
        stem_match(w, tokens)
        or (
            len(w) >= 5
            and any(t.endswith(w) and not t.startswith(_NOT_A_KIND) for t in tokens)
        )
        for w in content
    )


# "prediabetes" is no diabetes, "nonallergic" no allergy: prefixes that change the concept
_NOT_A_KIND = ("pre", "non", "anti", "pseudo", "para", "post")


def name(concept: str) -> str:
    return table().names.get(concept, concept.split(":", 1)[-1])


def in_clause(canon: str, start: int, rx: re.Pattern[str]) -> bool:
    """Is ``start`` inside a clause that ``rx`` opens (same sentence part, before it)?"""
    return bool(rx.search(canon[:start]))


def purpose_clause(canon: str, start: int) -> bool:
    """Is the mention at ``start`` the object of a purpose or causal cue (links.py checks it)?"""
    head = canon[:start]
    cut = max(head.rfind(p) for p in (".", ";", ":", ",", " and ", " but "))
    # endpos past the cue: "for " right before the mention still ends on a word boundary
    return PURPOSE_CUE.search(canon, max(cut, 0), start + 1) is not None


_EV_NEG = re.compile(
    r"\b(?:no|without|not|negative for|denies|free of)\s+((?:[a-z][\w\-']*\s*){1,4})"
)


@lru_cache(maxsize=8192)
def _only_negated(canon: str) -> frozenset[str]:
    """Words a record uses only after a negation ("concussion with no loss of consciousness")."""
    neg: set[str] = set()
    for m in _EV_NEG.finditer(canon):
        neg.update(_TOKEN.findall(m.group(1)))
    if not neg:
        return frozenset()
    plain = _EV_NEG.sub(" ", canon)
    left = neg - set(_TOKEN.findall(plain)) - lexicon.GENERIC_WORDS
    return frozenset(w for w in left if not w.isdigit())


@cache
def _side_rx() -> re.Pattern[str]:
    words = sorted(
        terminology.body_sites() | {"side", "sided", "lower", "upper", "eye", "ear", "lobe"},
        key=len,
        reverse=True,
    )
    return re.compile(
        r"\b(left|right)(?:-sided)?\s+(?:[a-z\-]+\s+){0,2}?(?:" + "|".join(words) + r")s?\b"
    )


def _stated_sides(canon: str) -> set[str]:
    """Sides said of a body part ("left knee", "right lower lobe"); "she left" is no side."""
    return {m.group(1) for m in _side_rx().finditer(canon)}


def _where_names(cited: list[EvidenceFacts]) -> str:
    titles = []
    for c in cited:
        title = c.evidence.title.removeprefix("Allergy: ")
        if title and title not in titles:
            titles.append(title)
    return "; ".join(titles[:2]) + ("; ..." if len(titles) > 2 else "")


def check_terms(
    facts: StatementFacts, cited: list[EvidenceFacts], where: str, negated: set[str]
) -> list[tuple[str, str]]:
    """(verdict, reason) for every clinical mention the cited evidence does not explain."""
    tokens: set[str] = set().union(*(c.tokens for c in cited))
    carried: frozenset[str] = frozenset().union(*(evidence_concepts(c) for c in cited))
    canon = facts.canon
    out: list[tuple[str, str]] = []
    covered: set[str] = set()
    drug_words = {w for n in facts.drugs for w in n.split()}
    shown = _where_names(cited)
    # a statement giving a measured value with a condition word interprets that value
    measured = bool(facts.quantities) and all(
        c.evidence.resource_type == "Observation" for c in cited
    )
    code_spans = [c.span for c in facts.codes]
    # an as-needed order with no recorded indication leaves the symptom to the instruction
    prn_open = any(
        c.as_needed and not c.evidence.data.get("as_needed_for") for c in cited
    )
    prn_spans = [m.span() for m in _PRN_FOR.finditer(canon)] if prn_open else []
    code_spans += prn_spans
    for m in mentions(canon):
        if any(a <= m.start < b for a, b in code_spans):
            continue  # "SNOMED CT 38341003" names a code system, not a CT scan
        words = m.term.split()
        covered.update(words)
        if (
            set(words) & negated
            or all(w in drug_words for w in words)  # the drug check has it
            or (facts.no_known_allergies and m.term.startswith("allerg"))
            or in_clause(canon, m.start, _CONDITIONAL)
            or _ANCHOR.search(canon[: m.start])
            or purpose_clause(canon, m.start)
        ):
            continue
        if m.concepts & carried:
            continue
        if measured and all(c.startswith("icd:") for c in m.concepts):
            continue  # "a fever of 38.1", "BMI 29, overweight": the interpretation check's
        # "type 1 diabetes" is not "type 2": a number in the term must be in the record's text
        if any(w.isdigit() for w in words):
            if any(m.term in c.canon for c in cited):
                continue
        elif covers(words, tokens):
            continue
        out.append(
            (
                "unsupported",
                f"'{m.term}' is not what {where} records" + (f" ({shown})" if shown else ""),
            )
        )
    stated_sides = _stated_sides(canon)
    for side in _SIDES:
        other = _SIDES[1 - _SIDES.index(side)]
        said = side in stated_sides and side not in negated
        if said and other in tokens and side not in tokens:
            out.append(("unsupported", f"side '{side}' differs from {where} ({other})"))
    for approach, others in _APPROACHES.items():
        if re.search(rf"\b{approach}\s+(?:[a-z\-]+\s+)?[a-z]*(?:ectomy|otomy|ostomy|plasty|"
                     r"repair|surgery|reduction|procedure)\b", canon) and approach not in tokens:
            said_other = sorted(others & tokens)
            if said_other:
                out.append(("unsupported", f"'{approach}' differs from {where} "
                                           f"({', '.join(said_other)})"))
    # what the record rules out, stated as present: "with a brief loss of consciousness"
    ruled_out = frozenset().union(*(_only_negated(c.canon) for c in cited))
    for w in sorted((set(_TOKEN.findall(canon)) & ruled_out) - negated):
        out.append(("unsupported", f"'{w}' is what {where} rules out" + (
            f" ({shown})" if shown else "")))
    sites = terminology.body_sites()
    named_sites = sites & tokens
    prn_words = {w for a, b in prn_spans for w in _TOKEN.findall(canon[a:b])}
    for term in sorted(facts.terms - drug_words - covered - prn_words):
        if term in negated or (facts.no_known_allergies and term.startswith("allerg")):
            continue
        if stem_match(term, tokens) or _TIME_WORD.match(term):
            continue
        if term in sites:
            # a site is checked where the record names another one; else it is context
            if named_sites:
                out.append(
                    (
                        "unsupported",
                        f"site '{term}' differs from {where} ({', '.join(sorted(named_sites))})",
                    )
                )
            continue
        if _CLINICAL_SUFFIX.search(term) and term not in BUILTIN_TERMS:
            out.append(("not_verified", f"'{term}' could not be tied to {where}"))
        else:
            out.append(("unsupported", f"{term!r} is not mentioned in {where}"))
    return out
