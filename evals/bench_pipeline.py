"""Drafting benchmark: per document type and backend, time per stage, tokens in and out, tokens/s,
and the share of wall time spent outside the model (target: under 5% where a model writes).

    python -m evals.bench pipeline

Runs warm (one untimed draft first, so model and index loading are not counted), on synthetic
patients in a throwaway data dir; prints medians over the patients.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from assistant.pipeline import DraftRequest, run_draft
from assistant.runtime import Runtime
from assistant.settings import Settings
from retrieval.ingest import ingest_paths
from retrieval.synth import write

PATIENTS = 2
DOC_TYPES = ("summary", "discharge-instructions", "prior-auth")
# (label, backend, drafting mode)
CONFIGS = (("extractive", "extractive", None), ("embedded/constrained", "embedded", "constrained"),
           ("embedded/free", "embedded", "free"))
MODEL_STAGES = ("generate",)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(data_dir=Path(tmp) / "data", context_tokens=4096, max_output_tokens=512)
        rt = Runtime(base)
        charts = write(PATIENTS, 777, Path(tmp) / "charts")
        ingest_paths(charts, store=rt.store, index=rt.index, embedder=rt.embedder)
        pids = [p.id for p in rt.store.patients()]
        print(f"{PATIENTS} synthetic patients, medians; 'outside' = share of wall time not in "
              "the model (target < 5% where the model writes)")
        print(f"{'doc type':24} {'backend':22} {'total s':>8} {'gen s':>7} {'outside':>8} "
              f"{'tok in':>7} {'tok out':>7} {'tok/s':>6}  stages (s)")
        for label, backend, mode in CONFIGS:
            run_rt = Runtime(base.model_copy(update={"backend": backend, "drafting_mode": mode}))
            run_rt.__dict__.update(store=rt.store, index=rt.index, embedder=rt.embedder)
            for doc_type in DOC_TYPES:
                run_draft(run_rt, DraftRequest(pids[0], doc_type))  # warm-up, not counted
                rows = [run_draft(run_rt, DraftRequest(pid, doc_type)) for pid in pids]
                total = statistics.median(d.timings.get("total", 0) for d in rows)
                gen = statistics.median(sum(d.timings.get(s, 0) for s in MODEL_STAGES)
                                        for d in rows)
                tin = statistics.median(d.tokens_in for d in rows)
                tout = statistics.median(d.tokens_out for d in rows)
                outside = "n/a" if gen == 0 else f"{100 * (total - gen) / total:.1f}%"
                tps = f"{tout / gen:.1f}" if gen else "-"
                stages = {k: round(statistics.median(d.timings.get(k, 0) for d in rows), 3)
                          for k in rows[0].timings if k != "total"}
                print(f"{doc_type:24} {label:22} {total:8.2f} {gen:7.2f} {outside:>8} "
                      f"{tin:7.0f} {tout:7.0f} {tps:>6}  {stages}", flush=True)
        rt.close()


if __name__ == "__main__":
    main()
