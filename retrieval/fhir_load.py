"""Load FHIR R4 JSON: Bundles (any type), single resources, NDJSON files and bulk-export folders.

Every resource is validated with ``fhir.resources.R4B`` (R4B models read R4 data). A malformed or
unknown resource becomes a :class:`LoadIssue` (source, line or entry, type, id, what is wrong)
and is skipped; it never aborts the rest. Bundle ``urn:uuid:`` fullUrls (and absolute URLs) are
rewritten to ``ResourceType/id`` so every reference in ``LoadedResource.resource`` is relative.
The last copy of a resource seen wins, so loading the same chart twice yields the same result.

No input can crash or stall the loader: JSON nesting deeper than ``MAX_DEPTH`` is refused before
``json.loads`` (which recurses) sees it, by one linear scan of the brackets outside strings; a JSON
document or NDJSON line over ``MAX_JSON_BYTES`` and a gzip that inflates past it are refused; bytes
that are not UTF-8 are decoded as Windows-1252 with a notice naming the first bad byte; a Bundle
entry without a resource is an issue (a DELETE or a response entry a notice). Each such problem
is reported with where and how to fix, and the good resources beside it still load.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

# Where a resource points at its patient, in the order we trust them.
_PATIENT_FIELDS = ("subject", "patient", "beneficiary", "for", "context", "individual")
# Types that are not chart content, only wrappers or server chatter.
_SKIP_TYPES = {"OperationOutcome", "Parameters", "CapabilityStatement"}
_FHIR_SUFFIXES = (".json", ".ndjson", ".jsonl", ".ndjson.gz", ".json.gz", ".jsonl.gz")
# ``http://host/fhir/Patient/123`` or ``.../Patient/123/_history/2`` -> ``Patient/123``.
_ABSOLUTE_REF = re.compile(r"^https?://.+?/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")

# FHIR R4 JSON is at most ~15 levels deep (Bundle > entry > resource > contained > extension...);
# 64 leaves room for deep extensions and stays far below Python's recursion limit.
MAX_DEPTH = 64
# One JSON document (a Bundle file or body) or one NDJSON line; bigger exports come as NDJSON.
MAX_JSON_BYTES = 512 * 1024 * 1024
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class TooLarge(ValueError):
    """Raised while inflating a gzip that grows past ``MAX_JSON_BYTES``."""


def json_depth(text: str) -> int:
    """Deepest bracket nesting outside JSON strings, in linear time and without recursion."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())


def _too_deep(text: str, source: str, where: str) -> LoadIssue | None:
    depth = json_depth(text)
    if depth <= MAX_DEPTH:
        return None
    return LoadIssue(source, where, None, None,
                     f"JSON nested {depth} levels deep (the limit is {MAX_DEPTH}); not FHIR data "
                     "as an EHR exports it: re-export it, or check what produced it")


def _too_big(size: int, source: str, where: str, what: str) -> LoadIssue:
    return LoadIssue(source, where, None, None,
                     f"{what} is {size / 2**20:.0f} MB (the limit is {MAX_JSON_BYTES // 2**20} MB "
                     "per JSON document or NDJSON line); export as NDJSON, one resource a line")


@dataclass
class LoadIssue:
    """One resource (or line, or file) that could not be used, and why."""

    source: str
    location: str
    resource_type: str | None
    resource_id: str | None
    message: str
    # Not part of equality: an issue is the same problem whoever it turns out to belong to.
    patient_id: str | None = field(default=None, compare=False)
    """Whose chart the skipped resource belonged to, when its raw JSON says (drafts warn on it)."""

    def __str__(self) -> str:
        what = self.resource_type or "resource"
        if self.resource_id:
            what += f"/{self.resource_id}"
        where = f"{self.source} {self.location}".strip()
        return f"{where}: {what}: {self.message}"


@dataclass
class LoadedResource:
    resource_type: str
    id: str
    patient_id: str | None
    resource: dict[str, Any]
    """Raw FHIR JSON, references rewritten to ``ResourceType/id``."""
    source: str

    @property
    def ref(self) -> str:
        return f"{self.resource_type}/{self.id}"


@dataclass
class LoadResult:
    resources: list[LoadedResource] = field(default_factory=list)
    issues: list[LoadIssue] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def extend(self, other: LoadResult) -> LoadResult:
        self.resources.extend(other.resources)
        self.issues.extend(other.issues)
        self.notices.extend(other.notices)
        return self

    def patient_ids(self) -> set[str]:
        return {r.patient_id for r in self.resources if r.patient_id}


# ---------------------------------------------------------------------------------------------
# public entry points


def load_path(path: Path | str) -> LoadResult:
    """Load a file (Bundle, resource, NDJSON) or a folder (recursive; non-FHIR files skipped)."""
    p = Path(path)
    result = LoadResult()
    if p.is_dir():
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            if f.name.startswith("."):
                continue  # editor and OS droppings, not worth a notice
            if not f.name.lower().endswith(_FHIR_SUFFIXES):
                result.notices.append(f"{f}: not a FHIR JSON or NDJSON file; skipped")
                continue
            result.extend(_load_file(f, strict=False))
    elif p.is_file():
        result.extend(_load_file(p, strict=True))
    else:
        result.issues.append(
            LoadIssue(str(p), "", None, None,
                      "no such file or folder; give a Bundle file, an NDJSON file or a folder")
        )
    return dedupe(result)


def load_bytes(data: bytes, *, source: str = "<body>") -> LoadResult:
    """Load a request body: a JSON Bundle or resource, or NDJSON (one resource a line)."""
    decoded = _decode(data, source)
    if isinstance(decoded, LoadResult):
        return decoded
    text, notices = decoded
    result = _load_text(text, source, strict=True, ndjson=None)
    result.notices[:0] = notices
    return dedupe(result)


def load_json(obj: Any, *, source: str = "<json>") -> LoadResult:
    """Load an already-parsed JSON value (a Bundle or a single resource)."""
    return dedupe(_load_object(obj, source, "", strict=True))


def dedupe(result: LoadResult) -> LoadResult:
    """Keep the last copy of each ``ResourceType/id`` (reloads and overlapping sources)."""
    seen: dict[str, LoadedResource] = {}
    counts: dict[str, int] = {}
    for r in result.resources:
        seen.pop(r.ref, None)  # re-insert so order follows the last copy
        seen[r.ref] = r
        counts[r.ref] = counts.get(r.ref, 0) + 1
    dupes = [ref for ref, n in counts.items() if n > 1]
    if dupes:
        result.notices.append(
            f"{len(dupes)} resource(s) appeared more than once (e.g. {dupes[0]}); "
            "the last copy is kept"
        )
    result.resources = list(seen.values())
    return result


def patient_of(resource: dict[str, Any]) -> str | None:
    """The Patient id a resource belongs to (Patient -> its own id), or None."""
    if resource.get("resourceType") == "Patient":
        return resource.get("id")
    for name in _PATIENT_FIELDS:
        value = resource.get(name)
        refs = value if isinstance(value, list) else [value]
        for v in refs:
            if isinstance(v, dict):
                ref = v.get("reference")
                if isinstance(ref, str) and ref.startswith("Patient/"):
                    return ref.split("/", 1)[1] or None
    # Appointment (and AppointmentResponse-like resources): the patient is a participant
    for part in resource.get("participant") or []:
        ref = ((part or {}).get("actor") or {}).get("reference") if isinstance(part, dict) else None
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref.split("/", 1)[1] or None
    return None


# ---------------------------------------------------------------------------------------------
# files and text


def _gunzip(data: bytes, limit: int) -> bytes:
    """Inflate a gzip (several members allowed) but never past ``limit`` bytes (gzip bombs)."""
    out: list[bytes] = []
    size = 0
    while data:
        d = zlib.decompressobj(wbits=31)
        while True:
            chunk = d.decompress(data, max(1, limit + 1 - size))
            size += len(chunk)
            out.append(chunk)
            if size > limit:
                raise TooLarge(size)
            data = d.unconsumed_tail
            if d.eof or not data:
                break
        data = d.unused_data
        if not d.eof:
            break
    return b"".join(out)


def _decode(data: bytes, source: str) -> tuple[str, list[str]] | LoadResult:
    """Text and notices, or a LoadResult carrying the issue when the bytes cannot be used."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = _gunzip(data, MAX_JSON_BYTES)
        except TooLarge:
            return LoadResult(issues=[_too_big(MAX_JSON_BYTES + 1, source, "",
                                               "the gzip inflates past the limit; it")])
        except (zlib.error, EOFError) as exc:
            return LoadResult(issues=[LoadIssue(source, "", None, None,
                                                f"broken gzip ({exc}); re-download the file")])
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        # FHIR JSON is UTF-8; Latin-1/Windows-1252 exports are the usual culprit. Decode as that
        # (never fails) and say so, since accents in names and notes may now be wrong.
        line = data.count(b"\n", 0, exc.start) + 1
        return data.decode("cp1252", errors="replace"), [
            f"{source}: not UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}, line "
            f"{line}); read as Windows-1252, so accented text may be wrong: re-export as UTF-8"]


def _load_file(f: Path, *, strict: bool) -> LoadResult:
    try:
        size = f.stat().st_size
        if size > MAX_JSON_BYTES and not f.name.lower().endswith((".ndjson", ".jsonl")):
            return LoadResult(issues=[_too_big(size, str(f), "", "the file")])
        raw = f.read_bytes()
    except OSError as exc:
        return LoadResult(issues=[LoadIssue(str(f), "", None, None, f"cannot read file: {exc}")])
    name = f.name.lower().removesuffix(".gz")
    ndjson = name.endswith((".ndjson", ".jsonl"))
    decoded = _decode(raw, str(f))
    if isinstance(decoded, LoadResult):
        return decoded
    text, notices = decoded
    result = _load_text(text, str(f), strict=strict, ndjson=ndjson)
    result.notices[:0] = notices
    return result


def _load_text(text: str, source: str, *, strict: bool, ndjson: bool | None) -> LoadResult:
    if not text.strip():
        msg = "empty; expected FHIR JSON"
        if strict:
            return LoadResult(issues=[LoadIssue(source, "", None, None, msg)])
        return LoadResult(notices=[f"{source}: {msg}; skipped"])
    if ndjson is None:
        # A body is NDJSON when its first line is a complete JSON object and more lines follow.
        lines = [ln for ln in text.splitlines() if ln.strip()]
        ndjson = len(lines) > 1 and _is_json_object(lines[0])
    if ndjson:
        return _load_ndjson(text, source, strict=strict)
    if len(text) > MAX_JSON_BYTES:
        return LoadResult(issues=[_too_big(len(text), source, "", "the JSON document")])
    deep = _too_deep(text, source, "")
    if deep is not None:
        return LoadResult(issues=[deep])
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return LoadResult(issues=[LoadIssue(
            source, f"line {exc.lineno} column {exc.colno}", None, None,
            f"not valid JSON ({exc.msg}); fix the file or re-export it")])
    return _load_object(obj, source, "", strict=strict)


def _is_json_object(line: str) -> bool:
    if len(line) > MAX_JSON_BYTES or json_depth(line) > MAX_DEPTH:
        return False
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def _load_ndjson(text: str, source: str, *, strict: bool) -> LoadResult:
    result = LoadResult()
    bad_json: list[LoadIssue] = []
    fhir_lines = 0
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"line {n}"
        if len(line) > MAX_JSON_BYTES:
            bad_json.append(_too_big(len(line), source, where, "the line"))
            continue
        deep = _too_deep(line, source, where)
        if deep is not None:
            bad_json.append(deep)
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            bad_json.append(LoadIssue(source, where, None, None,
                                      f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if isinstance(obj, dict) and "resourceType" in obj:
            fhir_lines += 1
            result.extend(_load_object(obj, source, where, strict=True))
        else:
            bad_json.append(LoadIssue(source, where, None, None,
                                      "not a FHIR resource (no resourceType)"))
    if fhir_lines == 0 and not strict and not any("not valid JSON" in i.message for i in bad_json):
        # e.g. a bulk-export log.ndjson: JSON lines, but none of them FHIR.
        result.notices.append(f"{source}: NDJSON without FHIR resources (an export log?); skipped")
        return result
    result.issues.extend(bad_json)
    return result


# ---------------------------------------------------------------------------------------------
# objects, bundles, resources


def _load_object(obj: Any, source: str, where: str, *, strict: bool) -> LoadResult:
    if not isinstance(obj, dict) or "resourceType" not in obj:
        msg = "not a FHIR resource or Bundle (no resourceType)"
        if strict:
            return LoadResult(issues=[LoadIssue(source, where, None, None, msg)])
        return LoadResult(notices=[f"{source}: {msg}; skipped"])
    if obj.get("resourceType") == "Bundle":
        return _load_bundle(obj, source, where)
    return _load_resource(obj, source, where, refmap={})


def _load_bundle(bundle: dict[str, Any], source: str, where: str) -> LoadResult:
    result = LoadResult()
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        result.issues.append(LoadIssue(source, where, "Bundle", bundle.get("id"),
                                       "Bundle.entry is not a list"))
        return result
    # First pass: map every fullUrl to ResourceType/id so references can be rewritten.
    refmap: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        res, full = entry.get("resource"), entry.get("fullUrl")
        if isinstance(res, dict) and isinstance(full, str) and res.get("resourceType"):
            rid = res.get("id") or _id_from_fullurl(full)
            if rid:
                refmap[full] = f"{res['resourceType']}/{rid}"
    prefix = f"{where} " if where else ""
    nothing = 0
    for i, entry in enumerate(entries):
        loc = f"{prefix}entry {i}"
        if not isinstance(entry, dict):
            result.issues.append(LoadIssue(source, loc, None, None, "entry is not a JSON object"))
            continue
        res = entry.get("resource")
        if res is None:
            method = (entry.get("request") or {}).get("method") if isinstance(
                entry.get("request"), dict) else None
            if method == "DELETE" or "response" in entry:
                nothing += 1  # a transaction DELETE or a response entry: nothing to load
            else:
                result.issues.append(LoadIssue(
                    source, loc, None, None,
                    "entry has no resource, so nothing could be loaded from it; put the resource "
                    "in entry.resource (or drop the entry)"))
            continue
        if not isinstance(res, dict) or "resourceType" not in res:
            result.issues.append(LoadIssue(source, loc, None, None,
                                           "entry.resource has no resourceType"))
            continue
        if res["resourceType"] == "Bundle":
            result.extend(_load_bundle(res, source, loc))
            continue
        if not res.get("id") and isinstance(entry.get("fullUrl"), str):
            rid = _id_from_fullurl(entry["fullUrl"])
            if rid:
                res = {**res, "id": rid}
        result.extend(_load_resource(res, source, loc, refmap=refmap))
    if nothing:
        at = f"{source} {where}".strip()
        result.notices.append(f"{at}: {nothing} entr{'y' if nothing == 1 else 'ies'} without a "
                              "resource (DELETE requests or responses); nothing to load")
    return result


def _id_from_fullurl(full: str) -> str | None:
    if full.startswith("urn:uuid:"):
        return full.removeprefix("urn:uuid:")
    m = _ABSOLUTE_REF.match(full)
    return m.group(2) if m else None


def _load_resource(
    res: dict[str, Any], source: str, where: str, *, refmap: dict[str, str]
) -> LoadResult:
    rtype = res.get("resourceType")
    rid = res.get("id")
    # Resolved from the raw JSON even when validation fails, so the patient's drafts can say that
    # part of their chart could not be read.
    rewritten = _rewrite_refs(res, refmap)
    pid = _s(patient_of(rewritten))
    if not isinstance(rtype, str) or not rtype:
        return LoadResult(issues=[LoadIssue(source, where, None, _s(rid),
                                            "resourceType is missing or not a string", pid)])
    if rtype in _SKIP_TYPES:
        at = f"{source} {where}".strip()
        return LoadResult(notices=[f"{at}: {rtype} is not chart content; skipped"])
    if not isinstance(rid, str) or not rid:
        return LoadResult(issues=[LoadIssue(
            source, where, rtype, None,
            "resource has no id; give it an id (or a urn:uuid fullUrl in a Bundle)", pid)])
    try:
        model = get_fhir_model_class(rtype)
    except (ValueError, KeyError):
        return LoadResult(issues=[LoadIssue(
            source, where, rtype, rid, f"unknown resourceType {rtype!r} (not a FHIR R4 resource)",
            pid)])
    try:
        model.model_validate(rewritten)
    except ValidationError as exc:
        return LoadResult(issues=[LoadIssue(source, where, rtype, rid, _first_error(exc), pid)])
    except (ValueError, TypeError) as exc:  # fhir.resources raises these for some shapes
        return LoadResult(issues=[LoadIssue(source, where, rtype, rid, f"invalid: {exc}", pid)])
    loaded = LoadedResource(rtype, rid, pid, rewritten, source)
    return LoadResult(resources=[loaded])


def _s(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid resource"
    e = errors[0]
    path = ".".join(str(p) for p in e.get("loc", ()))
    value = repr(e.get("input"))
    if len(value) > 60:
        value = value[:57] + "..."
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"invalid field {path or '(root)'}: {e.get('msg')} (got {value}){more}"


def _rewrite_refs(value: Any, refmap: dict[str, str]) -> Any:
    """Copy ``value`` with every ``reference`` made relative (``ResourceType/id``)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                out[k] = _relative(v, refmap)
            else:
                out[k] = _rewrite_refs(v, refmap)
        return out
    if isinstance(value, list):
        return [_rewrite_refs(v, refmap) for v in value]
    return value


def _relative(ref: str, refmap: dict[str, str]) -> str:
    if ref in refmap:
        return refmap[ref]
    m = _ABSOLUTE_REF.match(ref)
    if m:
        return f"{m.group(1)}/{m.group(2)}"
    return ref  # already relative, a #contained ref, or a conditional ``Type?identifier=`` ref


def iter_refs(value: Any) -> Iterator[str]:
    """Every ``reference`` string inside a resource (for resolving Medication and the like)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "reference" and isinstance(v, str):
                yield v
            else:
                yield from iter_refs(v)
    elif isinstance(value, list):
        for v in value:
            yield from iter_refs(v)
