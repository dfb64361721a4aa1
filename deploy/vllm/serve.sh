#!/usr/bin/env bash
# The vLLM server chartdraft recommends for production (one GPU per replica).
# Run one per GPU: REPLICA=0 PORT=8001 ./serve.sh ; REPLICA=1 PORT=8002 ./serve.sh
# and list every replica in CHARTDRAFT_OPENAI_BASE_URLS (chartdraft balances and fails over).
set -euo pipefail

MODEL="${MODEL:-Qwen/Qwen2.5-7B-Instruct}"   # Apache-2.0, reliable JSON, 32k native context
SERVED_NAME="${SERVED_NAME:-chartdraft}"      # = CHARTDRAFT_OPENAI_MODEL
PORT="${PORT:-8001}"
HOST="${HOST:-127.0.0.1}"                      # loopback/cluster network only: charts are PHI
MAX_MODEL_LEN="${MAX_MODEL_LEN:-16384}"        # = CHARTDRAFT_CONTEXT_TOKENS
export CUDA_VISIBLE_DEVICES="${REPLICA:-0}"

args=(
  "$MODEL"
  --served-model-name "$SERVED_NAME"
  --host "$HOST" --port "$PORT"
  --max-model-len "$MAX_MODEL_LEN"
  # every request starts with the same system prompt and rules: cache their KV blocks
  --enable-prefix-caching
  # schema-guided decoding: the citation enum is compiled to a grammar by xgrammar
  --structured-outputs-config.backend xgrammar
  --gpu-memory-utilization 0.90
  --max-num-seqs 32
  # sampling comes from chartdraft (temperature 0), not the model's generation_config.json
  --generation-config vllm
  # request logging stays off (the default): prompts contain PHI
)
if [[ -n "${VLLM_API_KEY:-}" ]]; then args+=(--api-key "$VLLM_API_KEY"); fi  # = CHARTDRAFT_OPENAI_API_KEY

exec vllm serve "${args[@]}"
