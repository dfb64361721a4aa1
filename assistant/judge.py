"""The optional judge tier: an entailment judge for what the rule-based checks cannot settle.

VeriFact-style (Chung et al., 2025): a statement, the evidence it cites and the chart resources
those link to (``Evidence.data["links"]``: reasons, basedOn, addresses ...) go to a judge that
answers ``supported | not_supported | not_addressed`` with a reason. Two judges:

- ``llm``: the OpenAI-compatible backend (vLLM in production, llama.cpp's server in tests), asked
  for a JSON-schema-constrained answer ``{"verdict": enum, "reason": string}``;
- ``nli``: a local Hugging Face NLI model folder (offline, CPU): entailment -> supported,
  contradiction -> not_supported, otherwise not_addressed.

The judge can only ADD flags: ``not_supported`` becomes verdict ``unsupported`` and
``not_addressed`` becomes ``not_verified`` (check ``judge``); a statement the rules flagged is not
sent at all, so a deterministic flag is never cleared. It is off by default (``Settings.judge``),
its calls are capped per draft (``judge_max_calls``), and a judge failure (server down, timeout,
an answer that is not the JSON) never fails a draft: ``draft.checks["judge"]`` records that the
judge could not run, and the statements keep the rules' verdicts.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from chartdraft_guardrails.statement import CheckResult, Verdict, worst

from retrieval.errors import BadInput, ChartdraftError, ModelUnavailable
from retrieval.evidence import Evidence

if TYPE_CHECKING:
    from assistant.draft import Draft
    from assistant.llm.base import LLMBackend
    from assistant.runtime import Runtime

JudgeVerdict = Literal["supported", "not_supported", "not_addressed"]
JUDGE_VERDICTS: tuple[JudgeVerdict, ...] = ("supported", "not_supported", "not_addressed")
# What a judge's answer does to a statement: it can only add a flag.
TO_VERDICT: dict[str, Verdict] = {
    "supported": "supported", "not_supported": "unsupported", "not_addressed": "not_verified"}
JUDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": list(JUDGE_VERDICTS)},
        "reason": {"type": "string", "maxLength": 240},
    },
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}
MAX_CONTEXT = 12  # evidence units shown to the judge (cited first, then linked)
MAX_EVIDENCE_CHARS = 600  # per unit: a long note section is cut, the judge sees its start
ANSWER_TOKENS = 160
DEFAULT_THRESHOLD = 0.5
PROMPT_VERSION = "judge-1"
SYSTEM_PROMPT = (
    "You verify one sentence from a clinical document against chart records. Use only the "
    "records. Answer \"supported\" when the records state or directly imply everything the "
    "sentence claims (lay words, brand names and rounding are fine); \"not_supported\" when the "
    "records contradict any part of it or name a different thing, value, date, dose, reason or "
    "status; \"not_addressed\" when the sentence claims something the records do not mention. "
    "Give the reason in one short sentence."
)


class JudgeError(ModelUnavailable):
    """The judge could not give a usable answer (down, timed out, not the verdict JSON)."""

    title = "Judge unavailable"


@dataclass(frozen=True)
class JudgeAnswer:
    verdict: JudgeVerdict
    reason: str


@dataclass(frozen=True)
class ContextItem:
    """One unit the judge reads: cited by the statement, or linked from a cited one."""

    evidence: Evidence
    role: str  # "cited" or e.g. "reason of MedicationRequest/1"


class Judge(Protocol):
    name: str

    def judge(self, statement: str, context: list[ContextItem]) -> JudgeAnswer: ...


# ---------------------------------------------------------------------------------------------
# what the judge reads


def judge_context(citations: Sequence[str], by_id: dict[str, Evidence],
                  chart: Sequence[Evidence]) -> list[ContextItem]:
    """The cited evidence (a whole note resolves to its sections) and what it links to."""
    items: list[ContextItem] = []
    seen: set[str] = set()

    def add(e: Evidence, role: str) -> None:
        if e.id not in seen and len(items) < MAX_CONTEXT:
            seen.add(e.id)
            items.append(ContextItem(e, role))

    def resolve(ref: str) -> list[Evidence]:
        if ref in by_id:
            return [by_id[ref]]
        return [e for e in chart if e.resource_id == ref]  # DocumentReference/x -> its sections

    cited = [e for c in citations for e in resolve(c)]
    for e in cited:
        add(e, "cited")
    for e in cited:
        for key, refs in (e.data.get("links") or {}).items():
            for ref in refs if isinstance(refs, list) else []:
                for target in resolve(str(ref)):
                    add(target, f"{key.replace('_', ' ')} of {e.resource_id}")
    return items


def render_messages(statement: str, context: list[ContextItem]) -> list[dict[str, str]]:
    lines = []
    for item in context:
        text = item.evidence.text
        if len(text) > MAX_EVIDENCE_CHARS:
            text = text[:MAX_EVIDENCE_CHARS] + " …"
        role = "" if item.role == "cited" else f" (linked: {item.role})"
        lines.append(f"[{item.evidence.id}]{role} {item.evidence.title}: {text}")
    user = ("Chart records:\n" + "\n".join(lines) + f"\n\nSentence: {statement}\n\n"
            'Answer as JSON: {"verdict": "supported" | "not_supported" | "not_addressed", '
            '"reason": "..."}')
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


# ---------------------------------------------------------------------------------------------
# the two judges


class LLMJudge:
    """The OpenAI-compatible backend asked for a schema-constrained verdict."""

    name = "llm"

    def __init__(self, backend: LLMBackend, *, max_tokens: int = ANSWER_TOKENS) -> None:
        self.backend = backend
        self.max_tokens = max_tokens

    def judge(self, statement: str, context: list[ContextItem]) -> JudgeAnswer:
        out = self.backend.complete(render_messages(statement, context), schema=JUDGE_SCHEMA,
                                    max_tokens=self.max_tokens, temperature=0.0)
        return parse_answer(out.text)


def parse_answer(text: str) -> JudgeAnswer:
    """The verdict JSON, or JudgeError saying what was wrong with it."""
    try:
        data = json.loads(text)
    except ValueError:
        raise JudgeError(f"the judge's answer is not JSON: {text[:120]!r}",
                         where="judge answer") from None
    verdict = data.get("verdict") if isinstance(data, dict) else None
    if verdict not in JUDGE_VERDICTS:
        raise JudgeError(f"the judge's answer has no valid verdict: {text[:120]!r}",
                         where="judge answer")
    reason = data.get("reason")
    return JudgeAnswer(verdict, reason.strip() if isinstance(reason, str) else "")


class NLIJudge:
    """A local NLI model: entailment -> supported, contradiction -> not_supported, else
    not_addressed. The premise is the context's texts together, the hypothesis the statement."""

    name = "nli"

    def __init__(self, model: EntailmentJudge) -> None:
        self.model = model

    def judge(self, statement: str, context: list[ContextItem]) -> JudgeAnswer:
        premise = " ".join(f"{i.evidence.title}: {i.evidence.text}" for i in context)
        probs = self.model.probabilities_batch([(premise, statement)])[0]
        p_entail = probs[self.model.entail_index]
        shown = ", ".join(f"{label} {p:.2f}" for label, p in zip(self.model.labels, probs,
                                                                  strict=True))
        if p_entail >= self.model.threshold:
            return JudgeAnswer("supported", f"NLI: {shown}")
        contra = self.model.contradiction_index
        if contra is not None and max(range(len(probs)), key=probs.__getitem__) == contra:
            return JudgeAnswer("not_supported", f"NLI: the records contradict it ({shown})")
        return JudgeAnswer("not_addressed", f"NLI: the records do not entail it ({shown})")


# ---------------------------------------------------------------------------------------------
# applying a judge: to a statement, to a draft


def judge_result(judge: Judge, statement: str, citations: Sequence[str],
                 by_id: dict[str, Evidence], chart: Sequence[Evidence]) -> CheckResult:
    """One call; raises JudgeError (or the backend's ChartdraftError) when it cannot run."""
    context = judge_context(citations, by_id, chart)
    answer = judge.judge(statement, context)
    verdict = TO_VERDICT[answer.verdict]
    reason = f"{judge.name} judge: {answer.verdict}" + (f": {answer.reason}" if answer.reason
                                                        else "")
    return CheckResult(check="judge", verdict=verdict, reason=reason,
                       evidence_ids=[i.evidence.id for i in context])


_ORIGIN_ORDER = {"model": 0, "clinician": 1}  # the model's own words first, then edits


def judge_draft(draft: Draft, chart: Sequence[Evidence], shown: Sequence[Evidence], judge: Judge,
                max_calls: int) -> dict[str, Any]:
    """Ask the judge about the draft's cited statements the rules found supported, within the
    budget; add its flags to them. Never raises for the judge's sake; returns the summary that is
    also stored in ``draft.checks["judge"]``."""
    by_id = {e.id: e for e in chart}
    by_id.update({e.id: e for e in shown})
    todo = [st for st in draft.statements() if st.citations and worst(st.results) == "supported"]
    todo.sort(key=lambda st: _ORIGIN_ORDER.get(st.origin, 2))  # stable: draft order within
    summary: dict[str, Any] = {"judge": judge.name, "eligible": len(todo), "calls": 0,
                               "flags_added": 0, "errors": [], "status": "ran"}
    for st in todo:
        if summary["calls"] >= max_calls:
            break
        summary["calls"] += 1
        try:
            result = judge_result(judge, st.text, st.citations, by_id, chart)
        except JudgeError as exc:  # one bad answer: note it, go on with the next statement
            summary["errors"].append({"statement_id": st.id, "error": exc.detail})
            continue
        except ChartdraftError as exc:  # the server is down: stop, don't burn more timeouts
            summary["errors"].append({"statement_id": st.id, "error": exc.detail})
            break
        # A judge must never fail a draft: an unforeseen failure is recorded like a dead server.
        except Exception as exc:  # noqa: BLE001
            summary["errors"].append({"statement_id": st.id,
                                      "error": f"{type(exc).__name__}: {exc}"})
            break
        st.results.append(result)
        summary["flags_added"] += result.verdict != "supported"
    answered = summary["calls"] - len(summary["errors"])
    summary["answered"] = answered
    summary["not_judged"] = len(todo) - answered  # over budget, or after the judge failed
    if summary["errors"]:
        summary["status"] = "could not run" if answered == 0 else "partly ran"
    draft.checks["judge"] = summary
    return summary


def judge_from_settings(rt: Runtime) -> Judge:
    """The judge the settings name (``judge`` = llm | nli); BadInput/ModelUnavailable if it cannot
    be built."""
    s = rt.settings
    if s.judge == "llm":
        backend = rt.backend("openai")
        if backend is None:  # pragma: no cover - "openai" is never the extractive backend
            raise BadInput("no OpenAI-compatible backend", where="judge")
        return LLMJudge(backend)
    if s.judge == "nli":
        if s.judge_nli_model is None:
            raise BadInput("judge is 'nli' but no judge_nli_model is set",
                           where="CHARTDRAFT_JUDGE_NLI_MODEL",
                           fix="set it to a local NLI model folder, or CHARTDRAFT_JUDGE=off")
        return NLIJudge(_cached_nli(str(s.judge_nli_model), s.judge_nli_threshold))
    raise BadInput(f"unknown judge {s.judge!r}", where="CHARTDRAFT_JUDGE", fix="off, llm or nli")


@lru_cache(maxsize=2)
def _cached_nli(path: str, threshold: float) -> EntailmentJudge:
    return load_nli_model(path, threshold=threshold, setting="CHARTDRAFT_JUDGE_NLI_MODEL")


def run_judge(rt: Runtime, draft: Draft, chart: Sequence[Evidence],
              shown: Sequence[Evidence]) -> dict[str, Any] | None:
    """The pipeline's hook: nothing when the judge is off; never raises."""
    s = rt.settings
    if s.judge == "off":
        return None
    try:
        judge = judge_from_settings(rt)
    # Building the judge can fail in many ways (no model folder, no server): never fail a draft.
    except Exception as exc:  # noqa: BLE001
        detail = exc.detail if isinstance(exc, ChartdraftError) else f"{type(exc).__name__}: {exc}"
        summary: dict[str, Any] = {"judge": s.judge, "status": "could not run", "calls": 0,
                                   "flags_added": 0, "errors": [{"error": detail}]}
        draft.checks["judge"] = summary
        return summary
    return judge_draft(draft, chart, shown, judge, s.judge_max_calls)


def judge_from_spec(spec: str, *, settings: Any = None) -> Judge:
    """``llm`` or ``nli:PATH`` (the eval CLI's ``--judge``)."""
    if spec == "llm":
        from assistant.runtime import Runtime
        from assistant.settings import get_settings

        backend = Runtime(settings or get_settings()).backend("openai")
        assert backend is not None  # "openai" is never the extractive backend
        return LLMJudge(backend)
    if spec.startswith("nli:") and len(spec) > 4:
        return NLIJudge(load_nli_model(spec[4:], setting="--judge nli:PATH"))
    raise BadInput(f"unknown judge {spec!r}", where="--judge",
                   fix="use `llm` (the OpenAI-compatible backend in the settings) or `nli:PATH` "
                       "(a local NLI model folder)")


def row_judge(judge: Judge, *, max_calls: int | None = None
              ) -> Callable[[dict[str, Any], list[CheckResult]], CheckResult | None]:
    """A judge for ``evals.checker`` rows (``meta_eval`` row dicts). Unlike in a draft, every
    row is asked, flagged or not, so the judge's own agreement with the labels can be measured.
    Returns the judge's result; ``judge_error`` / ``judge_skipped`` results when it did not
    answer; None beyond ``max_calls``."""
    calls = 0

    def ask(row: dict[str, Any], _results: list[CheckResult]) -> CheckResult | None:
        nonlocal calls
        chart = row["chart"]
        by_id = {e.id: e for e in chart}
        by_id.update({e.id: e for e in row.get("cited", [])})
        citations = list(row.get("citations", []))
        if not judge_context(citations, by_id, chart):
            return CheckResult(check="judge_skipped", verdict="supported",
                               reason="nothing cited that the chart holds")
        if max_calls is not None and calls >= max_calls:
            return None
        calls += 1
        try:
            return judge_result(judge, row["text"], citations, by_id, chart)
        except ChartdraftError as exc:
            return CheckResult(check="judge_error", verdict="supported", reason=exc.detail)

    return ask


# ---------------------------------------------------------------------------------------------
# a local NLI model (also the eval harness's citation judge, ``evals.entailment``)

# "not_entailment" (RTE-style two-class models) names the other class, not entailment.
_NEGATED = re.compile(r"^(not|non)[\s_-]*")


def entailment_index(id2label: dict[int, str]) -> int | None:
    """The class whose label names entailment (case-insensitive), or None when there is not
    exactly one."""
    hits = [int(i) for i, label in id2label.items()
            if "entail" in str(label).lower() and not _NEGATED.match(str(label).lower())]
    return hits[0] if len(hits) == 1 else None


def _contradiction_index(id2label: dict[int, str]) -> int | None:
    hits = [int(i) for i, label in id2label.items() if "contradict" in str(label).lower()]
    return hits[0] if len(hits) == 1 else None


class EntailmentJudge:
    """P(entailment) of (premise, hypothesis) pairs from a sequence-classification NLI model."""

    def __init__(self, model: Any, tokenizer: Any, entail_index: int, *, path: Path,
                 config_sha256: str, threshold: float = DEFAULT_THRESHOLD,
                 batch_size: int = 16, max_length: int = 512) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.entail_index = entail_index
        self.path = path
        self.config_sha256 = config_sha256
        self.threshold = threshold
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()  # eval workers and job threads share one model
        id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        self.labels = [id2label[i] for i in sorted(id2label)]
        self.contradiction_index = _contradiction_index(id2label)

    @property
    def label(self) -> str:
        return str(self.model.config.id2label[self.entail_index])

    def entails(self, premise: str, hypothesis: str) -> float:
        return self.entails_batch([(premise, hypothesis)])[0]

    def entails_batch(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [p[self.entail_index] for p in self.probabilities_batch(pairs)]

    def probabilities_batch(self, pairs: Sequence[tuple[str, str]]) -> list[list[float]]:
        """Every class's probability per pair, in label index order."""
        import torch

        out: list[list[float]] = []
        with self._lock, torch.no_grad():
            for i in range(0, len(pairs), self.batch_size):
                chunk = pairs[i:i + self.batch_size]
                enc = self.tokenizer([p for p, _ in chunk], [h for _, h in chunk], padding=True,
                                     truncation=True, max_length=self.max_length,
                                     return_tensors="pt")
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1)
                out += [[float(x) for x in row] for row in probs]
        return out

    def supported(self, premise: str, hypothesis: str) -> bool:
        return self.entails(premise, hypothesis) >= self.threshold

    def info(self) -> dict[str, Any]:
        """What the results manifest records about the judge."""
        return {"model": str(self.path), "config_sha256": self.config_sha256,
                "label": self.label, "threshold": self.threshold}


def load_nli_model(path: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
                   batch_size: int = 16, setting: str = "--nli-model") -> EntailmentJudge:
    """Load a local NLI model folder (config.json, tokenizer, weights) on CPU, offline.

    ``setting`` names where the path came from, for the error messages."""
    folder = Path(path).expanduser()
    where = f"{setting} {folder}"
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise BadInput(f"no model config.json in {folder}", where=where,
                       fix=f"point {setting} at a local Hugging Face NLI model folder "
                           "(config.json, tokenizer files and weights)")
    if not 0.0 <= threshold <= 1.0:
        raise BadInput(f"entailment threshold {threshold} is not a probability", where=where,
                       fix="use a threshold between 0 and 1 (default 0.5)")
    # Set before transformers reads them, and forced: a site's env must not enable downloads.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as exc:
        raise BadInput(f"transformers is not installed, so no NLI model can be loaded ({exc})",
                       where=where, fix="pip install transformers torch (CPU wheels are "
                                        f"enough), or leave out {setting}") from exc
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{config_file} is not a usable model config ({exc})", where=where,
                       fix=f"point {setting} at a Hugging Face model folder") from exc
    id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
    index = entailment_index(id2label)
    if index is None:
        raise BadInput(
            f"the model in {folder} has no single entailment label (labels: {id2label})",
            where=where,
            fix="use an NLI model whose config.json id2label names one class 'entailment' "
                "(e.g. {0: contradiction, 1: entailment, 2: neutral})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BadInput(f"could not load the NLI model in {folder} ({exc})", where=where,
                       fix="the folder needs the tokenizer files and the weights "
                           "(model.safetensors or pytorch_model.bin) next to config.json") from exc
    model.to("cpu").eval()
    # Tokenizers without a limit report a huge model_max_length: cap at the position table.
    limit = min(int(getattr(tokenizer, "model_max_length", 512) or 512),
                int(getattr(config, "max_position_embeddings", 512) or 512), 512)
    return EntailmentJudge(model, tokenizer, index, path=folder,
                           config_sha256=hashlib.sha256(config_file.read_bytes()).hexdigest(),
                           threshold=threshold, batch_size=batch_size, max_length=limit)
