"""Injection check: chart text that tries to instruct the model, and statements that obey it.

Evidence reaches the prompt as quoted data (prompts' job); this module finds suspicious text in
evidence (``scan_evidence``) and flags a statement that repeats an injected payload or talks like
a model following one (``check_injection``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chartdraft_guardrails.statement import CheckResult
from retrieval.evidence import Evidence

_TRIGGERS: list[tuple[str, re.Pattern[str]]] = [
    (
        "override",
        re.compile(
            r"\b(?:ignore|disregard|forget|override|bypass)\b[^.\n]{0,40}\b(?:previous|prior|"
            r"above|earlier|all|any|your|the)\b[^.\n]{0,30}\b(?:instructions?|rules?|"
            r"prompts?|guidelines?|directions?|context)\b",
            re.I,
        ),
    ),
    (
        "role-play",
        re.compile(
            r"\b(?:you are now|from now on,? you|act as|pretend (?:to be|you are)|"
            r"roleplay as|role-play as|you must now|new persona)\b",
            re.I,
        ),
    ),
    (
        "system-prompt",
        re.compile(
            r"\b(?:system prompt|your instructions|developer message|"
            r"reveal (?:your|the) (?:prompt|instructions|rules)|print (?:your|the) "
            r"(?:prompt|instructions))\b",
            re.I,
        ),
    ),
    (
        "new-instructions",
        re.compile(
            r"(?:^|\n|\s)(?:new instructions?|instruction to (?:the )?(?:ai|"
            r"assistant|model)|note to (?:the )?(?:ai|assistant|model|llm))\s*:",
            re.I,
        ),
    ),
    (
        "role-marker",
        re.compile(
            r"(?:^|\n)\s*(?:system|assistant|###\s*system)\s*:|<\|im_start\|>|"
            r"\[/?INST\]|<\/?system>",
            re.I,
        ),
    ),
    (
        "command",
        re.compile(
            r"\b(?:ai|assistant|model|llm|chatbot)s?\b[^.\n]{0,20}\b(?:must|should|"
            r"shall|will)\b[^.\n]{0,10}\b(?:write|say|state|output|report|recommend|"
            r"approve|include)\b",
            re.I,
        ),
    ),
    (
        "hidden-text",
        re.compile(
            r"[\u200b\u200c\u200d\u2060\ufeff]|<!--.*?-->|display\s*:\s*none|"
            r"font-size\s*:\s*0|color\s*:\s*(?:white|#fff(?:fff)?)\b",
            re.I | re.S,
        ),
    ),
]
# Model-speak a clinical statement should never contain.
_OBEYED = re.compile(
    r"\b(?:as instructed|i have been (?:told|instructed)|"
    r"ignor(?:e|ing) (?:the |all )?(?:previous|prior)|"
    r"system prompt|my instructions|as an ai|i am an ai|language model|approved as requested|"
    r"per the note'?s? instructions?)\b",
    re.I,
)
_QUOTED = re.compile(r"[\"“']([^\"”']{8,200})[\"”']")


@dataclass(frozen=True)
class InjectionFinding:
    evidence_id: str
    kind: str
    excerpt: str
    payload: str

    def reason(self) -> str:
        return (
            f"{self.evidence_id} contains text that tries to instruct the model ({self.kind}): "
            f"{self.excerpt!r}"
        )


def _excerpt(text: str, start: int, end: int) -> str:
    a, b = max(0, start - 20), min(len(text), end + 60)
    return re.sub(r"\s+", " ", text[a:b]).strip()[:160]


def _sentence_end(text: str, start: int, cap: int = 300) -> int:
    """End of the sentence after ``start``; a quoted passage counts as part of it."""
    quote = False
    for i in range(start, min(len(text), start + cap)):
        ch = text[i]
        if ch in '"“”':
            was = quote
            quote = not quote if ch == '"' else ch == "“"
            if was and not quote and i > 0 and text[i - 1] in ".!?":
                return i + 1  # a quoted sentence closes the instruction
        elif not quote and (
            ch == "\n" or (ch in ".!?" and (i + 1 == len(text) or text[i + 1].isspace()))
        ):
            # "...", then a sentence after the closing quote is the model's, not the payload's
            return i + 1
    return min(len(text), start + cap)


def scan_text(evidence_id: str, text: str) -> list[InjectionFinding]:
    out: list[InjectionFinding] = []
    for kind, pat in _TRIGGERS:
        m = pat.search(text)
        if m:
            payload = text[m.start() : _sentence_end(text, m.end())]
            out.append(
                InjectionFinding(evidence_id, kind, _excerpt(text, m.start(), m.end()), payload)
            )
    return out


def scan_evidence(evidence: list[Evidence]) -> list[InjectionFinding]:
    """Every evidence unit whose text or title tries to instruct the model."""
    out: list[InjectionFinding] = []
    for e in evidence:
        out.extend(scan_text(e.id, f"{e.title}\n{e.text}"))
    return out


def _ngrams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = re.findall(r"[a-z0-9]+", text.lower())
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def check_injection(text: str, findings: list[InjectionFinding]) -> list[CheckResult]:
    """Flag a statement that obeys an injected instruction (or sounds like a model obeying one)."""
    m = _OBEYED.search(text)
    if m:
        return [
            CheckResult(
                check="injection",
                verdict="unsupported",
                reason=f"reads like a model following instructions ({m.group(0)!r})",
            )
        ]
    grams = _ngrams(text)
    low = text.lower()
    for f in findings:
        quoted = [q.lower() for q in _QUOTED.findall(f.payload)]
        if any(q.strip(" .") in low for q in quoted) or grams & _ngrams(f.payload):
            return [
                CheckResult(
                    check="injection",
                    verdict="unsupported",
                    reason=f"repeats an instruction injected in {f.evidence_id}: {f.excerpt!r}",
                    evidence_ids=[f.evidence_id],
                )
            ]
    return []
