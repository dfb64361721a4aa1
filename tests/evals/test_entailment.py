"""The optional NLI judge: a tiny BERT built here stands in for a real NLI model (none can be
installed), with its classifier head set by hand so the expected metrics can be computed."""

from __future__ import annotations

import ipaddress
import json
import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chartdraft_guardrails.statement import CheckResult
from evals_helpers import record, results
from typer.testing import CliRunner

from assistant.draft import Draft, DraftStatement, Section
from evals.cli import app
from evals.compare import compare, gate_failures
from evals.entailment import entailment_index, load_judge
from evals.report import render
from evals.runner import RunConfig, run
from evals.schema import problems
from evals.scoring import score
from evals.suite import Case
from retrieval.errors import BadInput
from retrieval.evidence import Evidence

NLI_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}
WORDS = ["the", "patient", "has", "takes", "hypertension", "metformin", "asthma", "lives",
         "alone", "stage", "daily", "mg"]


def make_model(folder: Path, bias: list[float] | None = None,
               id2label: dict[int, str] | None = None) -> Path:
    """Save a 1-layer BERT classifier; with ``bias`` the head's weights are zero, so every pair
    gets exactly these logits."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    labels = id2label or NLI_LABELS
    folder.mkdir(parents=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    BertTokenizer(str(vocab)).save_pretrained(str(folder))
    config = BertConfig(vocab_size=5 + len(WORDS), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=37,
                        id2label=labels, label2id={v: k for k, v in labels.items()})
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    if bias is not None:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(str(folder))
    return folder


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """tests/test_no_network.py's guard: every non-loopback connect or lookup is refused and
    recorded. Also restores the offline variables load_judge sets."""
    attempts: list[str] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def loopback(host: Any) -> bool:
        if host in ("localhost", "", None):
            return True
        try:
            return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
        except ValueError:
            return False

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not loopback(host):
            attempts.append(f"connect {address}")
            raise OSError("network disabled in this test")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not loopback(host):
            attempts.append(f"resolve {host}")
            raise socket.gaierror("network disabled in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    yield attempts


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nli")
    return {"random": make_model(root / "random"),
            "entail": make_model(root / "entail", bias=[0.0, 10.0, 0.0]),
            "contradict": make_model(root / "contradict", bias=[10.0, 0.0, 0.0]),
            "graded": make_model(root / "graded", bias=[1.0, 2.0, 3.0])}


def test_loads_offline_and_returns_probabilities(models: dict[str, Path],
                                                 no_network: list[str]) -> None:
    import os

    import torch

    judge = load_judge(models["random"])
    pairs = [("the patient has hypertension", "the patient has hypertension"),
             ("takes metformin 500 mg daily", "lives alone"), ("", "asthma")]
    probs = judge.entails_batch(pairs)
    assert len(probs) == 3 and all(0.0 <= p <= 1.0 for p in probs)
    assert judge.entails(*pairs[1]) == pytest.approx(probs[1], abs=1e-6)
    # the entailment column of a softmax whose rows sum to 1
    enc = judge.tokenizer([p for p, _ in pairs], [h for _, h in pairs], padding=True,
                          return_tensors="pt")
    with torch.no_grad():
        full = torch.softmax(judge.model(**enc).logits, dim=-1)
    assert full.sum(dim=-1).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)
    assert full[:, 1].tolist() == pytest.approx(probs, abs=1e-6)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert no_network == [], no_network


def test_picks_the_entailment_class(models: dict[str, Path], no_network: list[str]) -> None:
    judge = load_judge(models["graded"], threshold=0.3)
    # logits [1, 2, 3] for every pair: P(entailment) = e^2 / (e^1 + e^2 + e^3)
    expected = math.exp(2) / (math.exp(1) + math.exp(2) + math.exp(3))
    assert judge.entails("the patient", "has asthma") == pytest.approx(expected, abs=1e-5)
    assert judge.label == "entailment" and not judge.supported("the patient", "has asthma")
    info = judge.info()
    assert info["threshold"] == 0.3 and len(info["config_sha256"]) == 64
    assert entailment_index({0: "ENTAILMENT", 1: "not_entailment"}) == 0
    assert entailment_index({0: "LABEL_0", 1: "LABEL_1"}) is None
    assert no_network == [], no_network


def test_refuses_a_model_without_an_entailment_label(tmp_path: Path,
                                                     no_network: list[str]) -> None:
    folder = make_model(tmp_path / "sentiment", id2label={0: "negative", 1: "positive"})
    with pytest.raises(BadInput) as err:
        load_judge(folder)
    assert str(folder) in str(err.value) and err.value.where and err.value.fix
    assert "entailment" in (err.value.fix or "")
    with pytest.raises(BadInput) as err:
        load_judge(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)


def _ev(id_: str, text: str, patient: str = "p1") -> Evidence:
    return Evidence(id=id_, patient_id=patient, resource_type=id_.split("/")[0], title=text,
                    text=text)


def hand_draft() -> tuple[Draft, list[Evidence]]:
    """Six clinical statements (and a placeholder); three cite at least one valid evidence id."""
    htn = _ev("Condition/c1", "Essential hypertension, active")
    met = _ev("MedicationRequest/m1", "Metformin 500 mg tablet, twice daily, active")
    foreign = _ev("Condition/x9", "Asthma, active", patient="p2")  # shown, not this chart
    chart = [htn, met]
    uncited = CheckResult(check="citation", verdict="uncited", reason="no citation")
    statements = [
        DraftStatement(text="Has hypertension.", citations=[htn.id]),
        DraftStatement(text="Takes metformin for hypertension.", citations=[met.id, htn.id]),
        DraftStatement(text="Has hypertension, stage 2.", citations=[htn.id, "Condition/ghost"]),
        DraftStatement(text="Has asthma.", citations=["Condition/ghost"]),
        DraftStatement(text="Has asthma daily.", citations=[foreign.id]),
        DraftStatement(text="Lives alone.", citations=[], results=[uncited]),
        DraftStatement(text="Not documented: advance directive.", citations=[]),
    ]
    draft = Draft(patient_id="p1", doc_type="summary", evidence=[htn, met, foreign],
                  sections=[Section(title="Summary", statements=statements)])
    return draft, chart


def test_nli_recall_and_precision_follow_the_judge(models: dict[str, Path]) -> None:
    draft, chart = hand_draft()
    case = Case(id="hand", chart="hand", patient_id="p1", doc_type="summary")
    plain = score(draft, case, chart)["metrics"]
    assert "citation_recall_nli" not in plain and "citation_precision_nli" not in plain

    m = score(draft, case, chart, judge=load_judge(models["entail"]))["metrics"]
    # Everything is entailed, so a statement is supported when its valid citations give a
    # premise at all: statements 1-3 of 6 clinical ones.
    assert m["citation_recall_nli"] == [3, 6]
    # Citations: 1 + 2 + 2 + 1 + 1 = 7. Relevant: s1's one, s2's two (each alone entails),
    # s3's valid one (the ghost alone gives no premise and the rest still entails).
    assert m["citation_precision_nli"] == [4, 7]
    assert m["citation_recall"] == plain["citation_recall"]  # our checks' numbers unchanged

    m = score(draft, case, chart, judge=load_judge(models["contradict"]))["metrics"]
    assert m["citation_recall_nli"] == [0, 6] and m["citation_precision_nli"] == [0, 7]


def test_nli_metrics_are_reported_not_gated() -> None:
    def rec(i: int, k: int) -> dict[str, Any]:
        r = record(f"c{i}")
        r["metrics"]["citation_recall_nli"] = [k, 10]
        return r

    base = results([rec(i, 10) for i in range(5)])
    cand = results([rec(i, 0) for i in range(5)])
    rows, _ = compare(base, cand)
    (row,) = [r for r in rows if r.metric == "citation_recall_nli"]
    assert row.regressed and not row.safety and gate_failures(rows) == []
    assert "(NLI)" in render(cand)
    without = results([record("c0")])  # no judge: no NLI rows, manifest says null
    assert without["manifest"]["entailment"] is None and problems(without) == []
    assert "(NLI)" not in render(without)


def test_cli_refuses_a_missing_model_folder(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["run", "smoke", "--backend", "extractive", "--out",
                                 str(tmp_path / "out"), "--nli-model", str(tmp_path / "none")])
    assert r.exit_code == 2 and "--nli-model" in r.output
    assert not (tmp_path / "out").exists()  # refused before anything ran


@pytest.mark.slow
def test_smoke_run_with_a_judge(models: dict[str, Path], tmp_path: Path,
                                no_network: list[str]) -> None:
    out = tmp_path / "run"
    res = run(RunConfig(suite="smoke", out=out, backends=["extractive"], checker=False,
                        nli_model=models["entail"]))
    on_disk = json.loads((out / "results.json").read_text())
    assert problems(on_disk) == []
    nli = on_disk["manifest"]["entailment"]
    assert nli["model"] == str(models["entail"]) and len(nli["config_sha256"]) == 64
    for c in res["cases"]:
        m = c["metrics"]
        # extractive drafts cite only valid evidence, and every pair is entailed here
        assert m["citation_recall_nli"] == m["citation_coverage"], c["case_id"]
        assert m["citation_precision_nli"][1] > 0
    agg = res["runs"]["extractive"]["aggregate"]
    assert agg["citation_recall_nli"]["n"] > 0 and agg["citation_precision_nli"]["cases"] == 3
    assert "ALCE citation recall (NLI)" in (out / "report.html").read_text()
    assert no_network == [], no_network
