"""Clinical notes (DocumentReference, DiagnosticReport.presentedForm) -> one Evidence per section.

Text comes from base64 ``attachment.data`` (plain text; HTML has its tags stripped). It is split at
headings (``# Heading``, ``HISTORY:``), else at blank-line paragraphs; a unit longer than
``MAX_CHARS`` is cut at paragraph, then line, boundaries. Units are numbered 1.. in note order.
"""

from __future__ import annotations

import base64
import binascii
import html
import re

from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadedResource
from retrieval.normalize_common import (
    LOINC,
    Context,
    Json,
    as_list,
    cc_text,
    code_in,
    codes_of,
    day,
    evidence,
    ref_display,
)

MAX_CHARS = 1200
_MD_HEADING = re.compile(r"^\s*#{1,6}\s+(\S.*?)\s*#*\s*$")
_CAPS_HEADING = re.compile(r"^\s*([A-Z][A-Z0-9 /&(),'-]{2,60}):\s*(.*)$")
_TAGS = re.compile(r"<[^>]+>")


def attachment_text(att: Json) -> str | None:
    """Decoded text of an attachment, or None when it holds no inline text."""
    data = att.get("data")
    if not isinstance(data, str):
        return None
    try:
        raw = base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None
    ctype = (att.get("contentType") or "text/plain").lower()
    if not ctype.startswith("text/"):
        return None
    text = raw.decode("utf-8", errors="replace")
    if "html" in ctype:
        text = html.unescape(_TAGS.sub("\n", text))
    return text


def split_sections(text: str) -> list[tuple[str, str]]:
    """``[(heading, body_with_heading)]``; heading ``""`` for a leading or paragraph unit."""
    lines = text.replace("\r\n", "\n").split("\n")
    blocks: list[tuple[str, list[str]]] = []
    found_heading = False
    for line in lines:
        m = _MD_HEADING.match(line)
        c = None if m else _CAPS_HEADING.match(line)
        if m is not None or c is not None:
            found_heading = True
            title = m.group(1).strip() if m is not None else c.group(1).strip().title()  # type: ignore[union-attr]
            blocks.append((title, [line.strip()]))
        else:
            if not blocks:
                blocks.append(("", []))
            blocks[-1][1].append(line)
    if not found_heading:
        paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
        return _pack([("", p) for p in paras])
    merged: list[tuple[str, str]] = []
    carry = ""
    for title, body_lines in blocks:
        body = "\n".join(body_lines).strip()
        heading_only = len(body_lines) <= 1 or not "\n".join(body_lines[1:]).strip()
        if not body:
            continue
        # A heading with nothing under it (``# Assessment and Plan`` before ``## Plan``) or a tiny
        # preamble (a date line) joins the next unit instead of standing alone.
        if (title and heading_only and len(body) < 80) or (not title and len(body) < 80):
            carry = f"{carry}\n{body}".strip()
            continue
        if carry:
            body = f"{carry}\n{body}"
            carry = ""
        merged.append((title, body))
    if carry:
        if merged:
            t, b = merged[-1]
            merged[-1] = (t, f"{b}\n{carry}")
        else:
            merged.append(("", carry))
    return _pack(merged)


def _pack(units: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Cut units longer than MAX_CHARS at paragraph, then line, boundaries."""
    out: list[tuple[str, str]] = []
    for title, body in units:
        if len(body) <= MAX_CHARS:
            out.append((title, body))
            continue
        pieces = re.split(r"(\n\s*\n)", body)
        parts: list[str] = []
        for p in pieces:
            if len(p) > MAX_CHARS:
                parts.extend(line + "\n" for line in p.split("\n"))
            else:
                parts.append(p)
        chunk = ""
        for p in parts:
            if len(p) > MAX_CHARS:  # one enormous line: hard cut, by index (re-slicing the rest
                if chunk.strip():   # after each cut was quadratic: 28 s for a 10 MB line)
                    out.append((title, chunk.strip()))
                    chunk = ""
                cut = (len(p) - 1) // MAX_CHARS * MAX_CHARS
                out.extend((title, p[i:i + MAX_CHARS].strip()) for i in range(0, cut, MAX_CHARS))
                p = p[cut:]
            if len(chunk) + len(p) > MAX_CHARS and chunk.strip():
                out.append((title, chunk.strip()))
                chunk = ""
            chunk += p
        if chunk.strip():
            out.append((title, chunk.strip()))
    return out


def document_reference(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    note_type = cc_text(res.get("type")) or "Clinical note"
    when_ = res.get("date") or ((res.get("context") or {}).get("period") or {}).get("start")
    texts = [t for t in (attachment_text((c or {}).get("attachment") or {})
                         for c in as_list(res.get("content"))) if t]
    full = "\n\n".join(texts)
    return note_units(r, note_type=note_type, date=when_, full=full,
                      codes=codes_of(res.get("type")),
                      extra={"loinc": code_in(res.get("type"), LOINC),
                             "doc_status": res.get("docStatus"),
                             "author": ref_display(next(iter(as_list(res.get("author"))), None)),
                             "encounter": next((x.get("reference") for x in as_list(
                                 (res.get("context") or {}).get("encounter"))
                                 if isinstance(x, dict)), None),
                             "description": res.get("description")})


def note_units(
    r: LoadedResource, *, note_type: str, date: str | None, full: str, codes: list, extra: Json
) -> list[Evidence]:
    label = f"{note_type} {day(date)}" if date else note_type
    if not full.strip():
        desc = extra.get("description") or "no inline text"
        data = {"note_type": note_type, "section": None, "section_index": None,
                "full_text_chars": 0, **extra}
        return [evidence(r, title=label, text=f"{label}: {desc}", data=data, codes=codes,
                         date=date)]
    out = []
    for n, (section, body) in enumerate(split_sections(full), start=1):
        data = {"note_type": note_type, "section": section or None, "section_index": n,
                "full_text_chars": len(full), **extra}
        title = f"{label}: {section}" if section else f"{label} (part {n})"
        out.append(evidence(r, title=title, text=body, data=data, codes=codes, date=date,
                            suffix=str(n)))
    return out
