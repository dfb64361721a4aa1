"""The knowledge base: Markdown documents -> citable passages, and payer policies with criteria.

A document is Markdown with YAML front matter::

    ---
    id: heart-failure                 # stable; passages are cited as kb:<id>#<section-slug>
    title: Going home with heart failure
    kind: education | policy
    applies_to: [{system, code, display}]   # codes the document is about (optional for education)
    keywords: [..]                           # words that tie an education doc to a chart (optional)
    payer: ...                               # policies only
    duration: ...                            # policies only: what the payer approves
    criteria:                                # policies only, in the order of "## Criteria"
      - id: hba1c
        text: An HbA1c of 7.0% or higher was measured within the last 180 days.
        needs: {resource_types: [Observation], codes: ["4548-4"], keywords: [..],
                min_value: 7.0, max_value: .., value_text: negative, within_days: 180}
    ---
    # Title
    ## Section        -> one passage per "## " heading

Codes in ``needs.codes`` match a chart code exactly or as a prefix on a dot boundary (``E11``
matches ``E11.9``), so one criterion covers a family of ICD-10 codes.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from retrieval.dates import day_of
from retrieval.errors import BadInput
from retrieval.evidence import Code, Evidence

KB_DIR = Path(__file__).parent / "kb"
_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.DOTALL)
_SECTION = re.compile(r"^##\s+(.+?)\s*$", re.MULTILINE)


class Needs(BaseModel):
    """What chart evidence satisfies a criterion."""

    resource_types: list[str] = Field(default_factory=list)
    codes: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    min_value: float | None = None
    max_value: float | None = None
    value_text: str | None = None
    within_days: int | None = None


class Criterion(BaseModel):
    id: str
    text: str
    needs: Needs = Field(default_factory=Needs)


class Policy(BaseModel):
    """A payer's prior-authorization policy: what it covers and its numbered criteria."""

    id: str
    title: str
    payer: str
    applies_to: list[Code]
    duration: str
    criteria: list[Criterion]
    source: str = ""

    def applies_to_code(self, system: str | None, code: str | None) -> bool:
        return any(c.code == code and (system is None or c.system == system)
                   for c in self.applies_to)

    def passage_id(self, section: str = "criteria") -> str:
        return f"kb:{self.id}#{slug(section)}"


class KbDoc(BaseModel):
    id: str
    title: str
    kind: Literal["education", "policy"]
    applies_to: list[Code] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    payer: str | None = None
    duration: str | None = None
    criteria: list[Criterion] = Field(default_factory=list)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _parse(path: Path) -> tuple[KbDoc, list[tuple[str, str]]]:
    raw = path.read_text(encoding="utf-8")
    m = _FRONT.match(raw)
    # Plain Markdown or text without front matter is an education document named by its file.
    heading = re.search(r"^#\s+(.+?)\s*$", raw, re.MULTILINE)
    try:
        meta: Any = yaml.safe_load(m.group(1)) or {} if m else {
            "id": slug(path.stem), "title": heading.group(1) if heading else path.stem,
            "kind": "education"}
        doc = KbDoc.model_validate(meta)
    except (yaml.YAMLError, ValidationError) as exc:
        raise BadInput(f"knowledge document front matter is invalid: {exc}", where=str(path),
                       fix="see retrieval/knowledge.py for the fields") from exc
    if doc.kind == "policy" and (not doc.criteria or not doc.payer or not doc.applies_to):
        raise BadInput("a policy needs payer, applies_to and criteria in its front matter",
                       where=str(path), fix="add them (see retrieval/kb/policy-*.md)")
    body = raw[m.end():] if m else raw
    heads = list(_SECTION.finditer(body))
    sections: list[tuple[str, str]] = []
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(body)
        text = " ".join(body[h.end():end].split())
        if text:
            sections.append((h.group(1), text))
    if not heads:  # one passage for an unsectioned document
        text = " ".join(re.sub(r"^#\s+.*$", "", body, flags=re.MULTILINE).split())
        sections = [("Text", text)] if text else []
    if not sections:
        raise BadInput("knowledge document has no text", where=str(path),
                       fix="write the document's text, ideally split into '## ' sections")
    return doc, sections


def _files(folder: Path | None) -> list[Path]:
    folder = folder or KB_DIR
    if not folder.is_dir():
        raise BadInput(f"knowledge folder {folder} does not exist", where="folder",
                       fix="pass a folder of Markdown (.md) or text (.txt) documents")
    return sorted(p for p in folder.iterdir() if p.suffix in (".md", ".markdown", ".txt"))


def load_kb(folder: Path | None = None) -> list[Evidence]:
    """Every section of every document as a knowledge Evidence (``kb:<doc-id>#<section-slug>``)."""
    return list(_load_kb_cached(str(folder) if folder else None))


@lru_cache(maxsize=8)
def _load_kb_cached(folder: str | None) -> tuple[Evidence, ...]:
    out: list[Evidence] = []
    seen: dict[str, Path] = {}
    for path in _files(Path(folder) if folder else None):
        doc, sections = _parse(path)
        if doc.id in seen:
            raise BadInput(f"knowledge document id {doc.id!r} is used twice",
                           where=f"{seen[doc.id]} and {path}", fix="give each document its own id")
        seen[doc.id] = path
        for title, text in sections:
            data: dict[str, Any] = {"doc": doc.id, "doc_title": doc.title, "section": title,
                                    "kind": doc.kind, "keywords": doc.keywords,
                                    "applies_to": [c.model_dump() for c in doc.applies_to]}
            if doc.kind == "policy":
                data["payer"] = doc.payer
                data["duration"] = doc.duration
                if slug(title) == "criteria":
                    data["criteria"] = [c.model_dump() for c in doc.criteria]
            out.append(Evidence(id=f"kb:{doc.id}#{slug(title)}", kind="knowledge",
                                resource_type="Knowledge", title=f"{doc.title}: {title}",
                                text=text, codes=list(doc.applies_to), data=data))
    return tuple(out)


def policies(folder: Path | None = None) -> list[Policy]:
    return list(_policies_cached(str(folder) if folder else None))


@lru_cache(maxsize=8)
def _policies_cached(folder: str | None) -> tuple[Policy, ...]:
    out = []
    for path in _files(Path(folder) if folder else None):
        doc, _ = _parse(path)
        if doc.kind == "policy":
            out.append(Policy(id=doc.id, title=doc.title, payer=doc.payer or "",
                              applies_to=doc.applies_to, duration=doc.duration or "",
                              criteria=doc.criteria, source=path.name))
    return tuple(out)


def policy_for_code(system: str | None, code: str | None,
                    folder: Path | None = None) -> Policy | None:
    """The policy that covers a service or drug code, or None."""
    return next((p for p in policies(folder) if p.applies_to_code(system, code)), None)


def _code_matches(wanted: str, have: str) -> bool:
    return have == wanted or have.startswith(wanted + ".") or (
        # ICD-10 families without a dot in the wanted code: E11 matches E11.9 and E119.
        len(wanted) == 3 and wanted[0].isalpha() and have.startswith(wanted))


def _value_ok(needs: Needs, e: Evidence) -> bool:
    if needs.min_value is None and needs.max_value is None and needs.value_text is None:
        return True
    value = e.data.get("value")
    if needs.value_text is not None:
        return isinstance(value, str) and needs.value_text.lower() in value.lower()
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    if needs.min_value is not None and value < needs.min_value:
        return False
    return not (needs.max_value is not None and value > needs.max_value)


def _recent(needs: Needs, e: Evidence, today: date) -> bool:
    if needs.within_days is None:
        return True
    when = day_of(e.date)
    if when is None:  # undated or only a year/month: recency cannot be shown
        return False
    return today - timedelta(days=needs.within_days) <= when <= today


def evidence_for_criterion(criterion: Criterion, evidence: list[Evidence], *,
                           today: date | None = None) -> list[Evidence]:
    """The chart evidence that documents a criterion (by code, keyword, value and recency)."""
    today = today or date.today()
    needs = criterion.needs
    hits = []
    for e in evidence:
        if e.kind != "chart" or (needs.resource_types
                                 and e.resource_type not in needs.resource_types):
            continue
        if e.data.get("status") == "entered-in-error":
            continue
        coded = any(_code_matches(w, c.code or "") for w in needs.codes for c in e.codes)
        blob = f"{e.title} {e.text}".lower()
        worded = any(k.lower() in blob for k in needs.keywords)
        if (coded or worded) and _value_ok(needs, e) and _recent(needs, e, today):
            hits.append(e)
    return hits


def relevant_docs(knowledge: list[Evidence], chart: list[Evidence]) -> list[str]:
    """Ids of education documents about this chart's problems or medicines, best match first.

    Gather can use it to add the passages a discharge draft needs (warning signs, diet,
    activity) for this patient, where a generic semantic query would not find them.
    """
    codes = {c.code for e in chart if e.resource_type in ("Condition", "MedicationRequest")
             and e.data.get("status") not in ("resolved", "inactive", "entered-in-error")
             for c in e.codes if c.code}
    words = " ".join(e.title.lower() for e in chart
                     if e.resource_type in ("Condition", "MedicationRequest", "Encounter"))
    hits: dict[str, int] = {}
    for k in knowledge:
        doc = str(k.data.get("doc"))
        if k.data.get("kind") != "education" or doc in hits:
            continue
        score = sum(2 for a in k.data.get("applies_to") or []
                    if any(c == a.get("code") or c.startswith(f"{a.get('code')}.") or
                           (len(a.get("code") or "") == 3 and c.startswith(a["code"]))
                           for c in codes))
        score += sum(1 for w in k.data.get("keywords") or [] if w.lower() in words)
        if score:
            hits[doc] = score
    return sorted(hits, key=lambda d: -hits[d])


def relevant_knowledge(chart: list[Evidence], knowledge: list[Evidence] | None = None, *,
                       sections: tuple[str, ...] = ("warning-signs", "diet", "activity"),
                       ) -> list[Evidence]:
    """The passages (by section slug) of the education documents relevant to this chart."""
    kb = load_kb() if knowledge is None else knowledge
    docs = relevant_docs(kb, chart)
    return [e for d in docs for e in kb
            if e.data.get("doc") == d and e.id.split("#", 1)[-1] in sections]
