"""The citation contract: the JSON a model must return, and the parser that holds it to that.

The model answers
``{"sections": [{"title": ..., "statements": [{"text": ..., "citations": [...]}]}]}``
where ``citations`` is constrained by the schema to an ``enum`` of the evidence ids that were in the
prompt, so a schema-guided backend cannot invent a citation. Every backend's output still goes
through ``parse_draft`` / ``iter_statements``, which accept only that shape and handle the rest:

- text around the JSON (a code fence, "Here is the draft:") is ignored and reported;
- output cut off mid-way (max_tokens) keeps every statement whose object closed; the partial one is
  reported with its text;
- invalid JSON between complete statements (a missing comma) keeps the complete statement objects;
- a citation id that was not shown is removed and reported, and the statement goes on to the checks
  with what is left (uncited if nothing is) — it is never silently dropped;
- a wrong shape (a bare string statement, a missing title, unknown keys) is reported.

One incremental parser does the work for both functions, so the statements streamed to the UI are,
by construction, the statements of the final parse of the same text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from chartdraft_guardrails.statement import Statement

TOP_LEVEL = -1  # section index used for statements given at the top level (wrong shape, kept)


# --------------------------------------------------------------------------- schemas
def draft_schema(evidence_ids: list[str], section_titles: list[str]) -> dict[str, Any]:
    """JSON schema for a free-mode draft; citations are an enum of ``evidence_ids``."""
    ids = list(dict.fromkeys(evidence_ids))
    citation_array: dict[str, Any] = {"type": "array"}
    if ids:
        citation_array["items"] = {"type": "string", "enum": ids}
    else:  # an empty enum is invalid JSON schema: nothing to cite means no citations at all
        citation_array["maxItems"] = 0
    title: dict[str, Any] = {"type": "string"}
    titles = list(dict.fromkeys(section_titles))
    if titles:
        title["enum"] = titles
    statement = {
        "type": "object",
        "properties": {"text": {"type": "string"}, "citations": citation_array},
        "required": ["text", "citations"],
        "additionalProperties": False,
    }
    section = {
        "type": "object",
        "properties": {"title": title, "statements": {"type": "array", "items": statement}},
        "required": ["title", "statements"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"sections": {"type": "array", "items": section}},
        "required": ["sections"],
        "additionalProperties": False,
    }


def rephrase_schema(max_length: int | None = None) -> dict[str, Any]:
    """Constrained mode: the model returns one rephrased statement, ``{"text": ...}``."""
    text: dict[str, Any] = {"type": "string"}
    if max_length:
        text["maxLength"] = max_length
    return {
        "type": "object",
        "properties": {"text": text},
        "required": ["text"],
        "additionalProperties": False,
    }


def parse_rephrase(text: str) -> tuple[str | None, list[str]]:
    """The rephrased sentence from a constrained-mode answer, or None with the reason."""
    start = text.find("{")
    if start < 0:
        return None, ["no JSON object in the rephrasing"]
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as exc:
        return None, [f"rephrasing is not valid JSON ({exc.msg})"]
    value = obj.get("text") if isinstance(obj, dict) else None
    if not isinstance(value, str) or not value.strip():
        return None, ['rephrasing has no non-empty "text"']
    return value.strip(), []


# --------------------------------------------------------------------------- results
@dataclass
class ParseResult:
    sections: list[tuple[str, list[Statement]]]
    problems: list[str] = field(default_factory=list)
    repaired: bool = False  # the JSON itself had to be repaired (junk around it, cut off, invalid)

    def statements(self) -> list[Statement]:
        return [s for _, stmts in self.sections for s in stmts]


@dataclass
class _Frame:
    kind: str  # "obj" | "arr"
    path: tuple[Any, ...]
    start: int
    expect_key: bool = True  # obj only: next string is a key
    key: str | None = None
    index: int = 0  # arr only: index of the current element


@dataclass
class _Section:
    title: str | None = None
    statements: list[Statement] = field(default_factory=list)
    emitted: int = 0  # how many of ``statements`` have been yielded
    closed: bool = False


def _snippet(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


_PARTIAL_TEXT = re.compile(r'"text"\s*:\s*"((?:[^"\\]|\\.)*)')


class DraftStreamParser:
    """Feed text as it arrives; get ``(section title, Statement)`` as each statement object closes.

    A statement is held back only while its section's title is still unknown (a model may write
    ``title`` after ``statements``), and released when the title arrives or the section closes.
    """

    def __init__(self, shown_ids: set[str] | None = None) -> None:
        self.shown_ids = shown_ids  # None: keep citations as given (no contract check)
        self.buf = ""
        self.pos = 0
        self.stack: list[_Frame] = []
        self.problems: list[str] = []
        self.root_span: tuple[int, int] | None = None  # start, end (exclusive) once root closes
        self.root_start: int | None = None
        self.in_string = False
        self.escape = False
        self.string_start = 0
        self.in_primitive = False
        self.sections: dict[int, _Section] = {}
        self.order: list[int] = []
        self.finished = False

    # -- public ---------------------------------------------------------------------------
    def feed(self, chunk: str) -> Iterator[tuple[str, Statement]]:
        self.buf += chunk
        out: list[tuple[str, Statement]] = []
        while self.pos < len(self.buf) and self.root_span is None:
            self._step(self.buf[self.pos], out)
            self.pos += 1
        yield from out

    def finish(self) -> Iterator[tuple[str, Statement]]:
        """End of output: report what was cut off or left over; release held statements."""
        if self.finished:
            return
        self.finished = True
        out: list[tuple[str, Statement]] = []
        if self.root_start is None:
            self.problems.append(
                f"no JSON object in the model output ({len(self.buf)} characters): "
                "no statements could be read"
            )
            return
        lead = self.buf[: self.root_start].strip().strip("`").removeprefix("json").strip()
        if lead:
            self.problems.append(
                f"ignored {len(lead)} characters of text before the JSON: {_snippet(lead)!r}"
            )
        if self.root_span is not None:
            trail = self.buf[self.root_span[1]:].strip().strip("`").strip()
            if trail:
                self.problems.append(
                    f"ignored {len(trail)} characters of text after the JSON: {_snippet(trail)!r}"
                )
        else:
            kept = sum(len(s.statements) for s in self.sections.values())
            self.problems.append(
                f"output was cut off before the JSON closed (after {len(self.buf)} characters); "
                f"kept the {kept} complete statement(s)"
            )
            for fr in self.stack:
                if fr.kind == "obj" and self._is_statement_path(fr.path):
                    m = _PARTIAL_TEXT.search(self.buf, fr.start)
                    partial = m.group(1) if m else self.buf[fr.start:]
                    self.problems.append(
                        f"dropped the incomplete statement {self._where(fr.path)} that was cut "
                        f"off: {_snippet(partial)!r}"
                    )
        for idx in self.order:
            sec = self.sections[idx]
            if sec.title is None:
                if idx != TOP_LEVEL and sec.statements:
                    self.problems.append(f"section {idx + 1} has no title: kept under ''")
                sec.title = ""
            out.extend(self._release(idx))
        yield from out

    def result(self) -> list[tuple[str, list[Statement]]]:
        return [(self.sections[i].title or "", list(self.sections[i].statements))
                for i in self.order]

    # -- scanner ----------------------------------------------------------------------------
    def _step(self, ch: str, out: list[tuple[str, Statement]]) -> None:
        if self.in_string:
            if self.escape:
                self.escape = False
            elif ch == "\\":
                self.escape = True
            elif ch == '"':
                self.in_string = False
                self._string_done(self.buf[self.string_start: self.pos + 1], out)
            return
        if self.root_start is None:
            if ch == "{":
                self.root_start = self.pos
                self.stack.append(_Frame("obj", (), self.pos))
            return
        if self.in_primitive:
            if ch not in ",}] \t\r\n":
                return
            self.in_primitive = False
        top = self.stack[-1]
        if ch in " \t\r\n:":
            return
        if ch == ",":
            if top.kind == "obj":
                top.expect_key, top.key = True, None
            else:
                top.index += 1
            return
        if ch in "}]":
            self.stack.pop()
            self._closed(top, out)
            return
        if top.kind == "obj" and top.expect_key:
            if ch == '"':
                self.in_string, self.string_start = True, self.pos
            return  # anything else where a key belongs is invalid JSON: skip it
        path = self._value_path(top)
        if ch == "{":
            self.stack.append(_Frame("obj", path, self.pos))
        elif ch == "[":
            self.stack.append(_Frame("arr", path, self.pos))
        elif ch == '"':
            self.in_string, self.string_start = True, self.pos
        else:
            self.in_primitive = True
            if self._is_statement_path(path):
                self.problems.append(
                    f"statement {self._where(path)} is not an object: dropped (starts {ch!r})"
                )

    def _value_path(self, top: _Frame) -> tuple[Any, ...]:
        return top.path + ((top.key,) if top.kind == "obj" else (top.index,))

    def _string_done(self, raw: str, out: list[tuple[str, Statement]]) -> None:
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw[1:-1]
        top = self.stack[-1]
        if top.kind == "obj" and top.expect_key:
            top.key, top.expect_key = value, False
            self._check_key(top.path, value)
            return
        path = self._value_path(top)
        if len(path) == 3 and path[0] == "sections" and path[2] == "title":
            sec = self._section(path[1])
            sec.title = value.strip()
            out.extend(self._release(path[1]))
        elif self._is_statement_path(path):
            self.problems.append(
                f"statement {self._where(path)} is a bare string, not an object: kept without "
                f"citations: {_snippet(value)!r}"
            )
            if value.strip():
                self._add(path, Statement(text=value.strip(), citations=[]), out)

    def _closed(self, fr: _Frame, out: list[tuple[str, Statement]]) -> None:
        if fr.kind == "obj" and self._is_statement_path(fr.path):
            raw = self.buf[fr.start: self.pos + 1]
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                self.problems.append(
                    f"statement {self._where(fr.path)} is not valid JSON ({exc.msg}): dropped: "
                    f"{_snippet(raw)!r}"
                )
                return
            st = self._to_statement(obj, fr.path)
            if st is not None:
                self._add(fr.path, st, out)
        elif fr.kind == "obj" and len(fr.path) == 2 and fr.path[0] == "sections":
            sec = self._section(fr.path[1])
            sec.closed = True
            if sec.title is None:
                self.problems.append(f"section {fr.path[1] + 1} has no title: kept under ''")
                sec.title = ""
                out.extend(self._release(fr.path[1]))
        elif fr.path == ():
            self.root_span = (fr.start, self.pos + 1)
            if not self.order:
                self.problems.append('the JSON has no "sections" with statements')

    # -- contract ----------------------------------------------------------------------------
    @staticmethod
    def _is_statement_path(path: tuple[Any, ...]) -> bool:
        return (len(path) == 4 and path[0] == "sections" and path[2] == "statements"
                and isinstance(path[1], int) and isinstance(path[3], int)) or (
            len(path) == 2 and path[0] == "statements" and isinstance(path[1], int))

    @staticmethod
    def _where(path: tuple[Any, ...]) -> str:
        if len(path) == 4:
            return f"{path[3] + 1} of section {path[1] + 1}"
        if len(path) == 2:
            return f"{path[1] + 1} (top level)"
        return "/".join(str(p) for p in path)

    def _check_key(self, path: tuple[Any, ...], key: str) -> None:
        if path == () and key not in ("sections",):
            if key == "statements":
                self.problems.append('statements given at the top level, not inside "sections": '
                                     "kept under ''")
            else:
                self.problems.append(f"ignored unexpected top-level key {key!r}")
        elif len(path) == 2 and path[0] == "sections" and key not in ("title", "statements"):
            self.problems.append(f"ignored unexpected key {key!r} in section {path[1] + 1}")

    def _to_statement(self, obj: Any, path: tuple[Any, ...]) -> Statement | None:
        where = self._where(path)
        if not isinstance(obj, dict):
            self.problems.append(f"statement {where} is not an object: dropped")
            return None
        text = obj.get("text")
        if not isinstance(text, str) or not text.strip():
            self.problems.append(
                f"statement {where} has no text: dropped (citations {obj.get('citations')!r})"
            )
            return None
        text = text.strip()
        extra = sorted(k for k in obj if k not in ("text", "citations"))
        if extra:
            self.problems.append(f"statement {where} has unexpected keys {extra}: ignored")
        raw = obj.get("citations", [])
        if "citations" not in obj:
            self.problems.append(f"statement {where} has no citations field: kept as uncited")
        if isinstance(raw, str):
            raw = [raw]  # a lone id instead of a list: unambiguous, so accept it and say so
            self.problems.append(f"statement {where} gave citations as a string, not a list")
        if not isinstance(raw, list):
            self.problems.append(f"statement {where} has citations that are not a list: removed")
            raw = []
        cites: list[str] = []
        for c in raw:
            if not isinstance(c, str):
                self.problems.append(f"statement {where} cited a non-string {c!r}: removed")
            elif self.shown_ids is not None and c not in self.shown_ids:
                self.problems.append(
                    f"statement {where} cited {c!r}, which was not among the evidence shown: "
                    f"citation removed, statement kept for the checks: {_snippet(text)!r}"
                )
            elif c not in cites:
                cites.append(c)
        return Statement(text=text, citations=cites)

    # -- sections ----------------------------------------------------------------------------
    def _section(self, idx: int) -> _Section:
        if idx not in self.sections:
            self.sections[idx] = _Section()
            self.order.append(idx)
        return self.sections[idx]

    def _add(self, path: tuple[Any, ...], st: Statement,
             out: list[tuple[str, Statement]]) -> None:
        idx = path[1] if len(path) == 4 else TOP_LEVEL
        sec = self._section(idx)
        if idx == TOP_LEVEL:
            sec.title = ""
        sec.statements.append(st)
        out.extend(self._release(idx))

    def _release(self, idx: int) -> list[tuple[str, Statement]]:
        sec = self.sections[idx]
        if sec.title is None:
            return []
        ready = [(sec.title, s) for s in sec.statements[sec.emitted:]]
        sec.emitted = len(sec.statements)
        return ready


# --------------------------------------------------------------------------- entry points
def iter_statements(
    chunks: Iterable[str], *, shown_ids: set[str] | None = None
) -> Iterator[tuple[str, Statement]]:
    """Yield ``(section title, Statement)`` as soon as each statement's JSON object closes.

    Pass the same ``shown_ids`` as to ``parse_draft`` and the streamed statements equal the final
    parse's statements, in order (both run this parser). Without ``shown_ids`` citations are passed
    through unchecked (the checks then flag unknown ids).
    """
    parser = DraftStreamParser(shown_ids)
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.finish()


def parse_draft(
    text: str, *, shown_ids: set[str], section_titles: list[str] | None = None
) -> ParseResult:
    """Parse a model's whole answer under the citation contract (see the module docstring)."""
    parser = DraftStreamParser(shown_ids)
    for _ in parser.feed(text):
        pass
    for _ in parser.finish():
        pass
    problems = parser.problems
    repaired = False
    if parser.root_start is not None:
        if parser.root_span is None:
            repaired = True  # cut off: we closed it by keeping the complete statements
        else:
            start, end = parser.root_span
            try:
                json.loads(text[start:end])
            except json.JSONDecodeError as exc:
                repaired = True
                problems.append(
                    f"output is not valid JSON ({exc.msg} at character {exc.pos}): kept the "
                    "statements whose objects were complete"
                )
            if text[:start].strip() or text[end:].strip():
                repaired = True
    sections = parser.result()
    if section_titles:
        allowed = set(section_titles)
        for title, _ in sections:
            if title and title not in allowed:
                problems.append(f"section {title!r} is not one of this document's sections")
    return ParseResult(sections=sections, problems=problems, repaired=repaired)
