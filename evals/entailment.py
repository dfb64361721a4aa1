"""Optional entailment judge for the eval harness: a local NLI model scores citation support.

ALCE (Gao et al., 2023) judges whether cited passages support a statement with an NLI model. No
such model ships with chartdraft and none can be downloaded here, so the judge loads a local
Hugging Face sequence-classification folder the safety team provides (e.g. a cross-encoder NLI
model) and never touches the network: offline mode is forced and files are read locally only.

    judge = load_judge(Path("models/nli"))
    judge.entails("Metformin 500 mg tablet, twice daily", "Takes metformin.")  # P(entailment)
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrieval.errors import BadInput

DEFAULT_THRESHOLD = 0.5
# "not_entailment" (RTE-style two-class models) names the other class, not entailment.
_NEGATED = re.compile(r"^(not|non)[\s_-]*")


def entailment_index(id2label: dict[int, str]) -> int | None:
    """The class whose label names entailment (case-insensitive), or None when there is not
    exactly one."""
    hits = [int(i) for i, label in id2label.items()
            if "entail" in str(label).lower() and not _NEGATED.match(str(label).lower())]
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
        self._lock = threading.Lock()  # eval workers share one model

    @property
    def label(self) -> str:
        return str(self.model.config.id2label[self.entail_index])

    def entails(self, premise: str, hypothesis: str) -> float:
        return self.entails_batch([(premise, hypothesis)])[0]

    def entails_batch(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        import torch

        out: list[float] = []
        with self._lock, torch.no_grad():
            for i in range(0, len(pairs), self.batch_size):
                chunk = pairs[i:i + self.batch_size]
                enc = self.tokenizer([p for p, _ in chunk], [h for _, h in chunk], padding=True,
                                     truncation=True, max_length=self.max_length,
                                     return_tensors="pt")
                probs = torch.softmax(self.model(**enc).logits.float(), dim=-1)
                out += [float(p) for p in probs[:, self.entail_index]]
        return out

    def supported(self, premise: str, hypothesis: str) -> bool:
        return self.entails(premise, hypothesis) >= self.threshold

    def info(self) -> dict[str, Any]:
        """What the results manifest records about the judge."""
        return {"model": str(self.path), "config_sha256": self.config_sha256,
                "label": self.label, "threshold": self.threshold}


def load_judge(path: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
               batch_size: int = 16) -> EntailmentJudge:
    """Load a local NLI model folder (config.json, tokenizer, weights) on CPU, offline."""
    folder = Path(path).expanduser()
    where = f"--nli-model {folder}"
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise BadInput(f"no model config.json in {folder}", where=where,
                       fix="point --nli-model at a local Hugging Face NLI model folder "
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
                                        "enough), or leave out --nli-model") from exc
    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise BadInput(f"{config_file} is not a usable model config ({exc})", where=where,
                       fix="point --nli-model at a Hugging Face model folder") from exc
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
