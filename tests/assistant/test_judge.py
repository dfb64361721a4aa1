"""The optional judge tier (assistant/judge.py): plumbing against a REAL llama.cpp server.

No assertion looks at which verdict SmolLM2-135M picks or at its wording: only that the
schema-constrained answer parses into a verdict, that the budget holds, that a statement the rules
flagged is never sent and never cleared, and that a dead or broken server leaves the draft as the
rules made it, with a note that the judge could not run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chartdraft_guardrails.statement import CheckResult, worst

from assistant.draft import Draft, DraftStatement, Section
from assistant.judge import (
    JUDGE_SCHEMA,
    JUDGE_VERDICTS,
    ContextItem,
    JudgeAnswer,
    JudgeError,
    LLMJudge,
    NLIJudge,
    judge_context,
    judge_draft,
    judge_result,
    load_nli_model,
    parse_answer,
    render_messages,
    row_judge,
    run_judge,
)
from assistant.llm.openai_compat import OpenAICompatBackend
from assistant.runtime import Runtime
from assistant.settings import Settings
from retrieval.evidence import Evidence

MODEL_ALIAS = "chartdraft"

ORDER = Evidence(id="MedicationRequest/m1", patient_id="p1", resource_type="MedicationRequest",
                 date="2024-03-01", title="Allopurinol",
                 text="Allopurinol 100 mg oral tablet, 1 tablet daily, active",
                 data={"links": {"reason": ["Condition/gout"]}})
GOUT = Evidence(id="Condition/gout", patient_id="p1", resource_type="Condition",
                date="2020-01-05", title="Gout", text="Gout, active, since 2020-01-05")
NOTE = [Evidence(id=f"DocumentReference/n1#{i}", patient_id="p1",
                 resource_type="DocumentReference", date="2024-02-01", title=f"Note part {i}",
                 text=f"Section {i} text") for i in (1, 2)]
A1C = Evidence(id="Observation/a1c", patient_id="p1", resource_type="Observation",
               date="2024-03-05", title="Hemoglobin A1c",
               text="Hemoglobin A1c: 7.2 %, on 2024-03-05")
CHART = [ORDER, GOUT, A1C, *NOTE]
BY_ID = {e.id: e for e in CHART}
VALID = {"supported", "unsupported", "not_verified"}


def _backend(url: str, **kw: Any) -> OpenAICompatBackend:
    opts: dict[str, Any] = {"model": MODEL_ALIAS, "connect_timeout": 1.0, "read_timeout": 120.0,
                            "retries": 0, "circuit_failures": 2, "context_tokens": 4096}
    opts.update(kw)
    return OpenAICompatBackend([url], **opts)


def _supported(check: str = "support") -> CheckResult:
    return CheckResult(check=check, verdict="supported", reason="ok")


def _draft(n_supported: int = 4, *, flagged: bool = True) -> Draft:
    sts = [DraftStatement(text=f"Keep taking your allopurinol for gout ({i}).",
                          citations=["MedicationRequest/m1"], results=[_supported()],
                          origin="model") for i in range(n_supported)]
    if flagged:
        sts.append(DraftStatement(
            text="Your A1c was 9.9 %.", citations=["Observation/a1c"], origin="model",
            results=[CheckResult(check="support", verdict="unsupported", reason="value 9.9")]))
    sts.append(DraftStatement(text="Please bring this sheet to your next visit.", citations=[],
                              results=[], origin="model"))
    return Draft(patient_id="p1", doc_type="discharge-instructions",
                 sections=[Section(title="Your medicines", statements=sts)])


class Always:
    """A scripted judge for the rules of application (not a stand-in for a server)."""

    name = "always"

    def __init__(self, verdict: str) -> None:
        self.verdict = verdict
        self.seen: list[str] = []

    def judge(self, statement: str, context: list[ContextItem]) -> JudgeAnswer:
        self.seen.append(statement)
        return JudgeAnswer(self.verdict, "scripted")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ no server


def test_context_follows_links_and_whole_notes() -> None:
    ctx = judge_context(["MedicationRequest/m1"], BY_ID, CHART)
    assert [(i.evidence.id, i.role) for i in ctx] == [
        ("MedicationRequest/m1", "cited"), ("Condition/gout", "reason of MedicationRequest/m1")]
    assert [i.evidence.id for i in judge_context(["DocumentReference/n1"], BY_ID, CHART)] == [
        e.id for e in NOTE]
    assert judge_context(["Condition/elsewhere"], BY_ID, CHART) == []
    text = render_messages("Keep taking it for gout.", ctx)[1]["content"]
    assert "[Condition/gout] (linked: reason of MedicationRequest/m1)" in text


@pytest.mark.parametrize("raw", ["not json", '{"verdict": "maybe", "reason": "x"}', "[1]", ""])
def test_unusable_answers_raise(raw: str) -> None:
    with pytest.raises(JudgeError):
        parse_answer(raw)


@pytest.mark.parametrize(("verdict", "expected"), [("supported", "supported"),
                                                   ("not_supported", "unsupported"),
                                                   ("not_addressed", "not_verified")])
def test_judge_only_adds_flags(verdict: str, expected: str) -> None:
    draft = _draft(3)
    before = {st.id: worst(st.results) for st in draft.statements()}
    judge = Always(verdict)
    summary = judge_draft(draft, CHART, [], judge, max_calls=10)
    assert summary["calls"] == 3 and summary["eligible"] == 3 and summary["status"] == "ran"
    assert summary["flags_added"] == (0 if verdict == "supported" else 3)
    for st in draft.statements():
        if before[st.id] != "supported":  # the rules' flag: never sent, never cleared
            assert st.text not in judge.seen and worst(st.results) == before[st.id]
        elif st.citations:
            assert worst(st.results) == expected and st.results[-1].check == "judge"
        else:  # nothing cited: nothing to judge against
            assert st.text not in judge.seen and not st.results
    assert draft.checks["judge"] is summary


def test_settings_default_off_and_misconfigured_nli(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).judge == "off"
    draft = _draft(2)
    rt = Runtime(Settings(data_dir=tmp_path, judge="off"))
    assert run_judge(rt, draft, CHART, []) is None and "judge" not in draft.checks
    rt = Runtime(Settings(data_dir=tmp_path, judge="nli"))  # no model folder set
    summary = run_judge(rt, draft, CHART, [])
    assert summary is not None and summary["status"] == "could not run"
    assert "judge_nli_model" in summary["errors"][0]["error"]
    assert all(r.check != "judge" for st in draft.statements() for r in st.results)


def test_fingerprint_unchanged_while_judge_off(tmp_path: Path) -> None:
    base = Settings(data_dir=tmp_path).fingerprint()
    assert Settings(data_dir=tmp_path, judge_max_calls=3).fingerprint() == base
    assert Settings(data_dir=tmp_path, judge="llm").fingerprint() != base


# ------------------------------------------------------------------------------ NLI model


def _nli_model(folder: Path, bias: list[float]) -> Path:
    """A 1-layer BERT with a zeroed head: every pair gets exactly these logits."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                                 "gout", "allopurinol"]) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    config = BertConfig(vocab_size=7, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=17, id2label=labels,
                        label2id={v: k for k, v in labels.items()})
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(str(folder))
    return folder


@pytest.mark.parametrize(("bias", "verdict"), [([0.0, 5.0, 0.0], "supported"),
                                               ([5.0, 0.0, 0.0], "unsupported"),
                                               ([0.0, 0.0, 5.0], "not_verified")])
def test_nli_judge_maps_classes(tmp_path: Path, bias: list[float], verdict: str) -> None:
    judge = NLIJudge(load_nli_model(_nli_model(tmp_path / "nli", bias)))
    result = judge_result(judge, "Keep taking allopurinol for gout.", ["MedicationRequest/m1"],
                          BY_ID, CHART)
    assert result.check == "judge" and result.verdict == verdict
    assert result.reason.startswith("nli judge:") and "entailment" in result.reason


# ------------------------------------------------------------------------------ real server


@pytest.fixture(scope="module")
def llm_judge(llama_server: str) -> Iterator[LLMJudge]:
    backend = _backend(llama_server)
    yield LLMJudge(backend)
    backend.close()


def test_schema_constrained_answer_parses(llm_judge: LLMJudge) -> None:
    ctx = judge_context(["MedicationRequest/m1"], BY_ID, CHART)
    out = llm_judge.backend.complete(render_messages("Keep taking allopurinol for gout.", ctx),
                                     schema=JUDGE_SCHEMA, max_tokens=160, temperature=0.0)
    answer = parse_answer(out.text)  # raises unless it is the verdict JSON
    assert answer.verdict in JUDGE_VERDICTS
    assert set(json.loads(out.text)) == {"verdict", "reason"}
    result = judge_result(llm_judge, "Keep taking allopurinol for gout.",
                          ["MedicationRequest/m1"], BY_ID, CHART)
    assert result.check == "judge" and result.verdict in VALID
    assert result.evidence_ids == ["MedicationRequest/m1", "Condition/gout"]


def test_budget_and_flags_with_the_real_server(llm_judge: LLMJudge) -> None:
    draft = _draft(4)
    flagged = next(st for st in draft.statements() if worst(st.results) != "supported")
    summary = judge_draft(draft, CHART, [], llm_judge, max_calls=2)
    assert summary["calls"] == 2 and summary["eligible"] == 4
    assert summary["answered"] + len(summary["errors"]) == 2
    assert summary["not_judged"] == 4 - summary["answered"]
    judged = [st for st in draft.statements() if any(r.check == "judge" for r in st.results)]
    assert len(judged) == summary["answered"]
    assert all(r.verdict in VALID for st in judged for r in st.results if r.check == "judge")
    assert flagged not in judged and worst(flagged.results) == "unsupported"


def test_row_judge_for_the_checker(llm_judge: LLMJudge) -> None:
    from evals.checker import evaluate

    rows = [{"id": f"r{i}", "text": t, "citations": c, "chart": CHART, "patient_id": "p1",
             "type": "unit", "label": label, "why": ""}
            for i, (t, c, label) in enumerate([
                ("Hemoglobin A1c: 7.2 %, on 2024-03-05.", ["Observation/a1c"], "pass"),
                ("Hemoglobin A1c was 9.9 % on 2024-03-05.", ["Observation/a1c"], "flag"),
                ("Keep taking allopurinol for gout.", ["MedicationRequest/m1"], "pass"),
                ("Please bring this sheet to your next visit.", [], "pass"),
            ])]
    report = evaluate(rows, judge=row_judge(llm_judge, max_calls=1))
    j = report["judge"]
    assert j["ran"] + j["could_not_run"] == 4
    assert j["not_run"].get("skipped") == 1  # the uncited sentence: nothing to judge against
    assert j["not_run"].get("over budget") == 2  # three cited rows, one call
    rules, combined = report["rules"]["overall"], report["combined"]["overall"]
    # Rules OR judge: the combined result never flags less than the rules alone.
    assert combined["tp"] + combined["fp"] >= rules["tp"] + rules["fp"]


def test_dead_server_leaves_the_draft_as_the_rules_made_it(dead_url: str) -> None:
    draft = _draft(3)
    before = [(st.id, list(st.results)) for st in draft.statements()]
    summary = judge_draft(draft, CHART, [], LLMJudge(_backend(dead_url)), max_calls=10)
    assert summary["status"] == "could not run" and summary["calls"] == 1  # stopped at once
    assert summary["errors"] and summary["answered"] == 0 and summary["not_judged"] == 3
    assert [(st.id, st.results) for st in draft.statements()] == before


def test_broken_answers_are_recorded_not_raised(fake_server: Any) -> None:
    Reply = fake_server.Reply
    fake_server.on("/v1/models", Reply(200, {"data": [{"id": MODEL_ALIAS, "owned_by": "me"}]}))
    fake_server.on("/v1/chat/completions",
                   Reply(200, fake_server.completion_body('{"verdict": "perhaps"')))
    draft = _draft(3)
    summary = judge_draft(draft, CHART, [], LLMJudge(_backend(fake_server.base_url)),
                          max_calls=2)
    assert summary["status"] == "could not run" and summary["calls"] == 2
    assert len(summary["errors"]) == 2 and "not JSON" in summary["errors"][0]["error"]
    assert all(r.check != "judge" for st in draft.statements() for r in st.results)


def test_pipeline_runs_the_judge_and_survives_a_dead_one(
        llama_server: str, dead_url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    from assistant.pipeline import DraftRequest, run_draft
    from retrieval.ingest import ingest_paths
    from retrieval.synth import write

    charts = write(1, 777, tmp_path_factory.mktemp("judge-charts"))
    rt = Runtime(Settings(data_dir=tmp_path_factory.mktemp("judge-data"), backend="extractive",
                          judge="llm", judge_max_calls=1, openai_base_urls=[llama_server],
                          openai_model=MODEL_ALIAS, retries=0))
    try:
        ingest_paths(charts, store=rt.store, index=rt.index, embedder=rt.embedder)
        pid = rt.store.patients()[0].id
        draft = run_draft(rt, DraftRequest(patient_id=pid, doc_type="summary"))
        summary = draft.checks["judge"]
        assert draft.status == "draft" and summary["judge"] == "llm"
        assert summary["calls"] == 1 and "judge" in draft.timings
        judged = [r for st in draft.statements() for r in st.results if r.check == "judge"]
        assert len(judged) == summary["answered"] <= 1
        assert draft.checks["flagged"] >= summary["flags_added"]

        rt.settings = rt.settings.model_copy(update={"openai_base_urls": [dead_url]})
        rt._backends.clear()  # rebuild the client for the new URL
        draft = run_draft(rt, DraftRequest(patient_id=pid, doc_type="summary"))
        assert draft.status == "draft" and draft.statements()
        assert draft.checks["judge"]["status"] == "could not run"
        assert all(r.check != "judge" for st in draft.statements() for r in st.results)
    finally:
        rt.close()


def test_an_edit_drops_only_the_edited_statements_judge_result() -> None:
    from assistant.verify import recheck_draft

    draft = _draft(2, flagged=False)
    draft.evidence = list(CHART)
    judge_draft(draft, CHART, [], Always("not_addressed"), max_calls=10)
    kept, edited = [st for st in draft.statements() if st.citations]
    edited.text, edited.origin = "Keep taking your allopurinol.", "clinician"  # as PATCH does
    recheck_draft(CHART, draft, [])
    assert [r.verdict for r in kept.results if r.check == "judge"] == ["not_verified"]
    assert worst(kept.results) != "supported"  # the judge's flag survives an unrelated edit
    assert not [r for r in edited.results if r.check == "judge"]
