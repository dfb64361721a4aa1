"""Prompt templates and their versions.

Each template is a Markdown file in this folder with YAML front matter (``id``, ``version``, and for
document types the ``sections`` they ask for) and a Jinja2 body. ``render`` builds the chat
messages for one draft and returns the prompt id, a version string that covers the document template
and the shared system prompt, and the SHA-256 of the rendered messages — all recorded on the Draft.

Chart text is quoted as data: every source sits in its own ``<source id="...">`` tag with ``<`` and
``>`` escaped, so text inside a note cannot close the tag and pose as an instruction, and the
system prompt says instructions inside sources are never followed.
"""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

if TYPE_CHECKING:  # typing only: prompts is data and imports nothing at run time
    from retrieval.evidence import Evidence

FOLDER = Path(__file__).parent
DOC_TYPES = ("summary", "discharge-instructions", "prior-auth")
SYSTEM_ID = "system"
REPHRASE_ID = "rephrase"
REPHRASE_SMALL_ID = "rephrase-small"

OUTPUT_FORMAT = """\
Answer with one JSON object and nothing else, in this shape:
{"sections": [{"title": "<one of the section titles above>", "statements": [{"text": "<one \
sentence>", "citations": ["<id of a source that supports it>"]}]}]}
Each statement is one sentence. "citations" lists ids from <sources> only; use [] only for \
"Not documented in the chart."."""

_AUDIENCE = {
    "patient": "a patient to read at home, in plain language a 6th grader can read",
    "clinician": "a clinician, briefly and precisely",
    "payer": "a health plan reviewer, formally and precisely",
}


@dataclass(frozen=True)
class Prompt:
    id: str
    version: str
    text: str  # the template body (after the front matter)
    meta: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RenderedPrompt:
    messages: list[dict[str, str]]
    prompt_id: str
    version: str
    sha256: str


def _split_front_matter(raw: str, path: Path) -> tuple[dict[str, Any], str]:
    if not raw.startswith("---\n"):
        raise ValueError(f"{path}: a prompt template must start with '---' YAML front matter")
    head, sep, body = raw[4:].partition("\n---\n")
    if not sep:
        raise ValueError(f"{path}: front matter is not closed with a '---' line")
    meta = yaml.safe_load(head) or {}
    for key in ("id", "version"):
        if key not in meta:
            raise ValueError(f"{path}: front matter needs {key!r}")
    return meta, body.strip() + "\n"


@cache
def _load_all() -> dict[str, Prompt]:
    prompts: dict[str, Prompt] = {}
    for path in sorted(FOLDER.glob("*.md")):
        meta, body = _split_front_matter(path.read_text(encoding="utf-8"), path)
        prompts[str(meta["id"])] = Prompt(str(meta["id"]), str(meta["version"]), body, meta)
    return prompts


def prompt_ids() -> list[str]:
    return sorted(_load_all())


def get(prompt_id: str) -> Prompt:
    try:
        return _load_all()[prompt_id]
    except KeyError:
        raise KeyError(
            f"unknown prompt {prompt_id!r}; known prompts: {', '.join(prompt_ids())}"
        ) from None


def section_titles(doc_type: str) -> list[str]:
    """The sections a document type asks for, in order (from its template's front matter)."""
    return list(_doc_prompt(doc_type).meta.get("sections", []))


def _doc_prompt(doc_type: str) -> Prompt:
    if doc_type not in DOC_TYPES:
        raise ValueError(f"unknown document type {doc_type!r}; use one of: {', '.join(DOC_TYPES)}")
    return get(doc_type)


_env = jinja2.Environment(
    autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
    trim_blocks=False,
)


def _attr(value: object) -> str:
    return html.escape(str(value), quote=True)


def quote_data(text: str) -> str:
    """Escape the characters that could open or close a tag; keep ``&`` readable for the model."""
    return text.replace("<", "&lt;").replace(">", "&gt;")


def evidence_block(evidence: Sequence[Evidence]) -> str:
    """Number each source and quote its text as escaped data inside its own tag."""
    if not evidence:
        return '<sources>\n(no sources: write "Not documented in the chart.")\n</sources>'
    lines = ["<sources>"]
    for n, e in enumerate(evidence, 1):
        attrs = f'n="{n}" id="{_attr(e.id)}" type="{_attr(e.resource_type)}"'
        if e.date:
            attrs += f' date="{_attr(e.date)}"'
        if e.kind == "knowledge":
            attrs += ' kind="knowledge"'
        title = quote_data(e.title)
        body = quote_data(e.text)
        lines.append(f"<source {attrs}>\n{title}: {body}\n</source>")
    lines.append("</sources>")
    return "\n".join(lines)


def _patient_line(patient: dict[str, Any]) -> str:
    parts = [str(patient[k]) for k in ("name",) if patient.get(k)]
    if patient.get("birth_date"):
        parts.append(f"born {patient['birth_date']}")
    if patient.get("gender"):
        parts.append(str(patient["gender"]))
    return quote_data(", ".join(parts)) or "(not documented)"


def _criteria(policy: Any) -> tuple[str, list[dict[str, str]]]:
    if not policy:
        return "", []
    if not isinstance(policy, dict):
        policy = getattr(policy, "model_dump", lambda: {})()
    items = []
    for i, c in enumerate(policy.get("criteria") or [], 1):
        if isinstance(c, dict):
            items.append({"id": str(c.get("id", i)), "text": str(c.get("text", ""))})
        else:
            items.append({"id": str(i), "text": str(c)})
    title = str(policy.get("title") or policy.get("id") or "payer policy")
    return quote_data(title), [
        {"id": quote_data(c["id"]), "text": quote_data(c["text"])} for c in items
    ]


def _finish(prompt_id: str, version: str, messages: list[dict[str, str]]) -> RenderedPrompt:
    digest = hashlib.sha256(
        json.dumps(messages, sort_keys=True, ensure_ascii=False).encode("utf-8")
    ).hexdigest()
    return RenderedPrompt(messages=messages, prompt_id=prompt_id, version=version, sha256=digest)


def render(
    doc_type: str,
    *,
    evidence: Sequence[Evidence],
    patient: dict[str, Any],
    extras: dict[str, Any] | None = None,
) -> RenderedPrompt:
    """Messages for a free-mode draft of ``doc_type`` over ``evidence``.

    ``extras`` may hold ``encounter_id``, ``order_id``, ``policy`` (dict with ``title`` and
    ``criteria`` [{id, text}]) and ``sections`` (override the template's section list).
    """
    extras = extras or {}
    doc = _doc_prompt(doc_type)
    system = get(SYSTEM_ID)
    sections = list(extras.get("sections") or doc.meta.get("sections", []))
    policy_title, criteria = _criteria(extras.get("policy"))
    user = _env.from_string(doc.text).render(
        patient_line=_patient_line(patient),
        sections=[quote_data(s) for s in sections],
        encounter_id=_attr(extras["encounter_id"]) if extras.get("encounter_id") else None,
        order_id=_attr(extras["order_id"]) if extras.get("order_id") else None,
        criteria=criteria,
        policy_title=policy_title,
        sources=evidence_block(evidence),
        output_format=OUTPUT_FORMAT,
    )
    messages = [
        {"role": "system", "content": system.text.strip()},
        {"role": "user", "content": user.strip()},
    ]
    return _finish(doc.id, f"{doc.version}+system.{system.version}", messages)


def render_rephrase(
    text: str,
    *,
    evidence: Sequence[Evidence],
    audience: str = "patient",
    extras: dict[str, Any] | None = None,
) -> RenderedPrompt:
    """Constrained mode: messages asking the model to rewrite ONE composed statement."""
    tpl = get(REPHRASE_ID)
    system = get(SYSTEM_ID)
    user = _env.from_string(tpl.text).render(
        audience_phrase=_AUDIENCE.get(audience, _AUDIENCE["clinician"]),
        sources=evidence_block(evidence),
        statement=quote_data(text),
    )
    messages = [
        {"role": "system", "content": system.text.strip()},
        {"role": "user", "content": user.strip()},
    ]
    return _finish(tpl.id, f"{tpl.version}+system.{system.version}", messages)


def render_rephrase_small(text: str) -> RenderedPrompt:
    """Constrained mode for tiny models: its own short system prompt and worked examples."""
    tpl = get(REPHRASE_SMALL_ID)
    messages = [{"role": "system", "content": str(tpl.meta.get("system", "")).strip()}]
    for ex in tpl.meta.get("examples") or []:
        messages.append({"role": "user", "content": str(ex["in"])})
        messages.append({"role": "assistant", "content": json.dumps({"text": str(ex["out"])})})
    messages.append({"role": "user",
                     "content": _env.from_string(tpl.text).render(statement=text).strip()})
    return _finish(tpl.id, tpl.version, messages)
