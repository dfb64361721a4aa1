"""Tokens per second of the embedded model (or an OpenAI-compatible server), printed, not asserted.

    .venv/bin/python -m evals.bench_llm                    # embedded SmolLM2, 2 threads
    .venv/bin/python -m evals.bench_llm --base-url http://127.0.0.1:8001/v1 --model chartdraft

For each case it streams one generation and reports: prompt tokens, time to first token (prompt
evaluation), prompt tokens/s, output tokens, generation tokens/s (after the first token), and the
total. Cases: free-mode draft JSON under the citation schema, a constrained-mode rephrasing, and
unconstrained text (to show what the grammar costs). The pipeline's per-stage timings come from
``make bench`` (evals.bench).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from assistant.llm.base import LLMBackend
from assistant.llm.citations import draft_schema, rephrase_schema
from prompts.registry import render, render_rephrase, section_titles
from retrieval.evidence import Evidence


def _evidence(n: int) -> list[Evidence]:
    """Synthetic evidence of a realistic size (no real patient)."""
    meds = [("Metformin", "500 mg", "twice daily"), ("Lisinopril", "10 mg", "once daily"),
            ("Atorvastatin", "40 mg", "at bedtime"), ("Furosemide", "20 mg", "once daily")]
    out = []
    for i in range(n):
        name, dose, freq = meds[i % len(meds)]
        out.append(Evidence(
            id=f"MedicationRequest/bench-{i}", patient_id="bench",
            resource_type="MedicationRequest",
            date=f"2024-0{1 + i % 9}-1{i % 10}", title=name,
            text=f"{name} {dose} oral tablet, 1 tablet {freq} by mouth, active"))
    return out


def _stream_case(backend: LLMBackend, messages: list[dict[str, str]],
                 schema: dict[str, Any] | None, max_tokens: int) -> dict[str, float]:
    t0 = time.perf_counter()
    first: float | None = None
    pieces = 0
    for _ in backend.stream(messages, schema=schema, max_tokens=max_tokens, temperature=0.0):
        if first is None:
            first = time.perf_counter() - t0
        pieces += 1
    total = time.perf_counter() - t0
    u = backend.last_usage or {}
    tin, tout = int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", pieces))
    ttft = first or total
    gen_s = max(total - ttft, 1e-9)
    return {
        "prompt_tokens": tin,
        "ttft_s": round(ttft, 3),
        "prompt_tok_per_s": round(tin / ttft, 1) if ttft else 0.0,
        "output_tokens": tout,
        "gen_tok_per_s": round((tout - 1) / gen_s, 1) if tout > 1 else 0.0,
        "total_s": round(total, 3),
    }


def run(backend: LLMBackend, *, max_tokens: int = 256, n_evidence: int = 12,
        repeat: int = 1) -> dict[str, Any]:
    ev = _evidence(n_evidence)
    draft = render("summary", evidence=ev, patient={"name": "Bench Patient"})
    schema = draft_schema([e.id for e in ev], section_titles("summary"))
    reph = render_rephrase("Take metformin 500 mg by mouth twice a day.", evidence=ev[:1])
    cases = {
        "draft_json": (draft.messages, schema, max_tokens),
        "rephrase_json": (reph.messages, rephrase_schema(), 80),
        "free_text": (draft.messages, None, max_tokens),
    }
    results: dict[str, Any] = {"backend": backend.name, "model": backend.model}
    for name, (msgs, sch, mt) in cases.items():
        runs = [_stream_case(backend, msgs, sch, mt) for _ in range(repeat)]
        results[name] = runs[-1] if repeat == 1 else {
            k: round(sum(r[k] for r in runs) / repeat, 3) for k in runs[0]}
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model-path", type=Path, default=None, help="GGUF file (embedded)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--base-url", action="append", default=None,
                    help="OpenAI-compatible base URL (repeat for replicas)")
    ap.add_argument("--model", default="chartdraft", help="served model name (with --base-url)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--evidence", type=int, default=12, help="number of synthetic sources")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print JSON only")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    backend: LLMBackend
    if args.base_url:
        from assistant.llm.openai_compat import OpenAICompatBackend

        backend = OpenAICompatBackend(args.base_url, model=args.model)
    else:
        from assistant.llm.embedded import EmbeddedBackend

        backend = EmbeddedBackend(args.model_path, context_tokens=8192, threads=args.threads)
    load_s = time.perf_counter() - t0
    res = run(backend, max_tokens=args.max_tokens, n_evidence=args.evidence, repeat=args.repeat)
    res["load_s"] = round(load_s, 3)
    if args.json:
        print(json.dumps(res, indent=2))
        return
    print(f"backend={res['backend']} model={res['model']} load={res['load_s']}s")
    cols = ["prompt_tokens", "ttft_s", "prompt_tok_per_s", "output_tokens", "gen_tok_per_s",
            "total_s"]
    print(f"{'case':<14}" + "".join(f"{c:>18}" for c in cols))
    for case in ("draft_json", "rephrase_json", "free_text"):
        print(f"{case:<14}" + "".join(f"{res[case][c]:>18}" for c in cols))


if __name__ == "__main__":
    main()
