"""Optional entailment judge for the eval harness: a local NLI model scores citation support.

ALCE (Gao et al., 2023) judges whether cited passages support a statement with an NLI model. No
such model ships with chartdraft and none can be downloaded here, so the judge loads a local
Hugging Face sequence-classification folder the safety team provides (e.g. a cross-encoder NLI
model) and never touches the network: offline mode is forced and files are read locally only.

The model code lives in ``assistant.judge`` (the product's optional judge tier uses it too, and
the product may not import evals); this module keeps the harness's names.

    judge = load_judge(Path("models/nli"))
    judge.entails("Metformin 500 mg tablet, twice daily", "Takes metformin.")  # P(entailment)
"""

from __future__ import annotations

from pathlib import Path

from assistant.judge import DEFAULT_THRESHOLD, EntailmentJudge, entailment_index, load_nli_model

__all__ = ["DEFAULT_THRESHOLD", "EntailmentJudge", "entailment_index", "load_judge"]


def load_judge(path: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
               batch_size: int = 16) -> EntailmentJudge:
    """Load a local NLI model folder (config.json, tokenizer, weights) on CPU, offline."""
    return load_nli_model(path, threshold=threshold, batch_size=batch_size,
                          setting="--nli-model")
