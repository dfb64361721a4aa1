"""Run a suite: materialize its charts, draft every case with every backend, score, write results.

In-process by default (one ``Runtime`` with its own data dir under ``--out``), or against a running
service (``--service URL``: charts POSTed to /v1/charts, drafts requested from /v1/drafts).

Resumable: each finished case is appended to ``OUT/cases.jsonl`` as one JSON line and skipped
when the run is started again with the same ``--out`` (the anchor date of the synthetic charts is
kept in ``OUT/state.json`` so a resumed run rebuilds the same charts).
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from assistant.draft import Draft, DraftStatement
from evals.scoring import flagged_statements, score
from evals.suite import Case, Materialized, expand, load_suite, materialize
from retrieval.errors import BadInput, ChartdraftError
from retrieval.evidence import Evidence

MODEL_BACKENDS = ("embedded", "openai")
BASELINE_PREFIX = "cqe-"  # cqe-embedded, cqe-openai: LlamaIndex CitationQueryEngine baselines
Progress = Callable[[int, int, str], None]


@dataclass
class RunConfig:
    suite: str
    out: Path
    backends: list[str] = field(default_factory=lambda: ["extractive"])
    workers: int = 1
    service: str | None = None
    token: str | None = None
    model: str | None = None
    limit: int | None = None
    max_statements: int | None = None  # cap model rephrasing per draft (keeps llm tests small)
    settings: dict[str, Any] = field(default_factory=dict)  # extra Settings fields
    mlflow_uri: str | None = None
    checker: bool = True  # also meta-evaluate the checks on their labelled corpus


def _check_backends(names: list[str]) -> None:
    ok = ("extractive", *MODEL_BACKENDS, *(BASELINE_PREFIX + b for b in MODEL_BACKENDS))
    for b in names:
        if b not in ok:
            raise BadInput(f"unknown backend {b!r}", where="--backend",
                           fix=f"use one or more of: {', '.join(ok)}")


def _state(out: Path, suite_hash: str) -> dict[str, Any]:
    path = out / "state.json"
    if path.exists():
        st = json.loads(path.read_text())
        if st.get("suite_sha256") != suite_hash:
            raise BadInput(f"{out} holds a run of a different version of this suite",
                           where="--out", fix="use a new --out folder (or delete the old one)")
        return dict(st)
    st = {"suite_sha256": suite_hash, "anchor": date.today().isoformat()}
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(st))
    return st


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Finished case records; a torn last line (the run was killed mid-write) is ignored."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


class _Sink:
    """Appends case records to the JSONL file from several worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()

    def write(self, rec: dict[str, Any]) -> None:
        line = json.dumps(rec, default=str)
        with self.lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


def run(cfg: RunConfig, *, progress: Progress | None = None) -> dict[str, Any]:
    """Run (or resume) a suite and return the results document (also written to OUT)."""
    from evals.results import build_results, write_outputs

    _check_backends(cfg.backends)
    suite, suite_hash = load_suite(cfg.suite)
    out = Path(cfg.out)
    state = _state(out, suite_hash)
    anchor = date.fromisoformat(state["anchor"])
    charts = {k: materialize(k, spec, out / "charts", anchor=anchor)
              for k, spec in suite.charts.items()}
    cases = expand(suite, charts, today=anchor)
    if cfg.limit is not None:
        cases = cases[: cfg.limit]
    sink = _Sink(out / "cases.jsonl")
    done = {(r["backend"], r["case_id"]) for r in read_jsonl(sink.path)}
    todo = [(b, c) for b in cfg.backends for c in cases if (b, c.id) not in done]

    engine = _engine(cfg, out, charts)
    t0 = time.perf_counter()
    total, finished = len(cfg.backends) * len(cases), len(done)
    lock = threading.Lock()

    def one(item: tuple[str, Case]) -> None:
        nonlocal finished
        backend, case = item
        rec = run_case(engine, case, backend, charts[case.chart])
        rec["suite"] = suite.name
        sink.write(rec)
        with lock:
            finished += 1
            if progress:
                progress(finished, total, f"{backend} {case.id}")

    try:
        # Model backends share one llama.cpp context: more workers only help extractive runs.
        workers = max(1, cfg.workers)
        if workers == 1:
            for item in todo:
                one(item)
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(one, todo))
    finally:
        engine.close()
        if progress:
            progress(finished, total, "done")
    records = [r for r in read_jsonl(sink.path)
               if r["backend"] in cfg.backends and r["case_id"] in {c.id for c in cases}]
    results = build_results(suite=suite, suite_hash=suite_hash, suite_path=cfg.suite,
                            cases=cases, records=records, cfg=cfg, anchor=anchor,
                            engine_info=engine.info(), wall_seconds=time.perf_counter() - t0,
                            with_checker=cfg.checker)
    write_outputs(results, out)
    if cfg.mlflow_uri:
        from evals.results import log_mlflow

        log_mlflow(results, cfg.mlflow_uri, out)
    return results


# ---- engines: in-process or a running service ---------------------------------------------------

class _Engine:
    def draft(self, case: Case, backend: str, events: list[DraftStatement]) -> Draft:
        raise NotImplementedError

    def required_sections(self, doc_type: str) -> list[str]:
        from prompts.registry import section_titles

        return section_titles(doc_type)

    def info(self) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class InProcess(_Engine):
    def __init__(self, cfg: RunConfig, out: Path, charts: dict[str, Materialized]) -> None:
        from assistant.runtime import Runtime
        from assistant.settings import Settings
        from retrieval.ingest import ingest_paths

        extra = dict(cfg.settings)
        if cfg.model:
            if any(b.endswith("openai") for b in cfg.backends):
                extra.setdefault("openai_model", cfg.model)
            if any(b.endswith("embedded") for b in cfg.backends):
                extra.setdefault("embedded_model_path", cfg.model)
        self.settings = Settings(data_dir=out / "data", **extra)
        self.rt = Runtime(self.settings)
        self.max_statements = cfg.max_statements
        self.lock = threading.Lock()  # one llama.cpp context: one generation at a time
        paths = [p for m in charts.values() for p in m.paths]
        if paths:
            ingest_paths(paths, store=self.rt.store, index=self.rt.index,
                         embedder=self.rt.embedder)

    def draft(self, case: Case, backend: str, events: list[DraftStatement]) -> Draft:
        from assistant.pipeline import DraftRequest, run_draft

        assert case.patient_id is not None
        if backend.startswith(BASELINE_PREFIX):
            from evals.baselines import cqe_draft

            with self.lock:
                return cqe_draft(self.rt, case, backend[len(BASELINE_PREFIX):])
        req = DraftRequest(patient_id=case.patient_id, doc_type=case.doc_type,
                           encounter_id=case.encounter_id, order_id=case.order_id,
                           backend=backend)

        def on_event(ev: dict[str, Any]) -> None:
            if ev.get("type") == "statement":
                events.append(ev["statement"].model_copy(deep=True))

        if backend == "extractive":
            return run_draft(self.rt, req, on_event=on_event)
        with self.lock, _capped(self.rt, backend, self.max_statements):
            return run_draft(self.rt, req, on_event=on_event)

    def info(self) -> dict[str, Any]:
        models = {}
        for name in MODEL_BACKENDS:
            b = self.rt._backends.get(name)
            if b is not None:
                models[name] = b.model
        return {"settings_fingerprint": self.settings.fingerprint(), "models": models,
                "mode": self.settings.mode, "service": None}

    def close(self) -> None:
        self.rt.close()


class _capped:
    """Cap the model calls of one draft (for the small llm test): later calls raise, so the
    pipeline keeps the composed sentence for those statements, exactly as when a rephrasing fails.
    """

    def __init__(self, rt: Any, backend: str, cap: int | None) -> None:
        self.rt, self.backend, self.cap = rt, backend, cap
        self.patched: list[tuple[Any, Any]] = []

    def __enter__(self) -> None:
        from retrieval.errors import ModelUnavailable

        if self.cap is None:
            return
        try:
            backends = [self.rt.backend(self.backend)]
        except ModelUnavailable:
            return  # the pipeline falls back to extractive and says so
        for b in backends:
            orig = b.complete
            calls = {"n": 0}

            def complete(*a: Any, _o: Any = orig, _c: Any = calls, **k: Any) -> Any:
                _c["n"] += 1
                if _c["n"] > self.cap:  # type: ignore[operator]
                    from assistant.llm.base import Completion

                    return Completion(text="", tokens_in=0, tokens_out=0, finish_reason="cap",
                                      model="", backend="", seconds=0.0)
                return _o(*a, **k)

            b.complete = complete
            self.patched.append((b, orig))

    def __exit__(self, *exc: Any) -> None:
        for b, orig in self.patched:
            b.complete = orig


class Service(_Engine):
    """Drafts from a running chartdraft service; charts are POSTed to it first."""

    def __init__(self, cfg: RunConfig, charts: dict[str, Materialized]) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
        self.client = httpx.Client(base_url=cfg.service or "", headers=headers, timeout=600)
        self.url = cfg.service
        for m in charts.values():
            for p in m.paths:
                for f in _files(Path(p)):
                    ctype = ("application/fhir+ndjson" if f.suffix == ".ndjson"
                             else "application/fhir+json")
                    r = self.client.post("/v1/charts", content=f.read_bytes(),
                                         headers={"Content-Type": ctype})
                    if r.status_code >= 400 and r.status_code != 422:
                        raise BadInput(f"service refused chart {f}: {r.status_code} {r.text}",
                                       where="--service", fix="check the URL and --token")

    def draft(self, case: Case, backend: str, events: list[DraftStatement]) -> Draft:
        body = {"patient_id": case.patient_id, "doc_type": case.doc_type,
                "encounter_id": case.encounter_id, "order_id": case.order_id}
        if backend != "default":
            body["backend"] = backend
        r = self.client.post("/v1/drafts", json=body)
        if r.status_code >= 400:
            raise _problem(r)
        draft_id = r.json()["id"]
        while True:
            g = self.client.get(f"/v1/drafts/{draft_id}")
            if g.status_code >= 400:
                raise _problem(g)
            data = g.json()
            if data.get("status") in ("draft", "signed", "rejected", "failed"):
                break
            time.sleep(0.5)
        if data.get("status") == "failed":
            raise ChartdraftError(f"service failed the draft: {data.get('checks')}")
        return Draft.model_validate({k: v for k, v in data.items()
                                     if k in Draft.model_fields})

    def info(self) -> dict[str, Any]:
        return {"service": self.url, "models": {}, "settings_fingerprint": None}

    def close(self) -> None:
        self.client.close()


def _problem(r: Any) -> ChartdraftError:
    try:
        body = r.json()
        detail = body.get("detail") or body.get("title") or r.text
    except ValueError:
        detail = r.text
    err = BadInput(str(detail)) if r.status_code < 500 else ChartdraftError(str(detail))
    return err


def _files(p: Path) -> list[Path]:
    if p.is_dir():
        return sorted(x for x in p.rglob("*") if x.suffix in (".json", ".ndjson"))
    return [p]


def _engine(cfg: RunConfig, out: Path, charts: dict[str, Materialized]) -> _Engine:
    if cfg.service:
        return Service(cfg, charts)
    return InProcess(cfg, out, charts)


# ---- one case ------------------------------------------------------------------------------------

def run_case(engine: _Engine, case: Case, backend: str, chart_set: Materialized
             ) -> dict[str, Any]:
    rec: dict[str, Any] = {"backend": backend, "case_id": case.id, "doc_type": case.doc_type,
                           "patient_id": case.patient_id, "tags": case.tags,
                           "groups": case.groups, "status": "ok"}
    if chart_set.missing or case.patient_id is None:
        rec.update(status="skipped", error=chart_set.missing or "no patient", metrics={})
        return rec
    chart: list[Evidence] = chart_set.evidence.get(case.patient_id, [])
    events: list[DraftStatement] = []
    t0 = time.perf_counter()
    try:
        draft = engine.draft(case, backend, events)
    except ChartdraftError as exc:
        expected = case.expect.error
        rec.update(status="expected_error" if expected else "error",
                   error=f"{type(exc).__name__}: {exc}",
                   metrics={"case_error": [0 if expected else 1, 1]})
        return rec
    except Exception as exc:  # a crash is a finding, not a reason to stop the run
        rec.update(status="error", error=f"{type(exc).__name__}: {exc}",
                   trace=traceback.format_exc(limit=6), metrics={"case_error": [1, 1]})
        return rec
    wall = time.perf_counter() - t0
    scored = score(draft, case, chart, generated=events or None,
                   required_sections=engine.required_sections(case.doc_type))
    if case.expect.error:  # it should have been refused
        scored["metrics"]["case_error"] = [1, 1]
    rec.update(
        metrics=scored["metrics"], details=scored["details"],
        flagged=flagged_statements(draft),
        model=draft.model, mode=draft.mode, draft_backend=draft.backend,
        fallback_reason=draft.fallback_reason, prompt_id=draft.prompt_id,
        prompt_version=draft.prompt_version, timings={**draft.timings, "wall": wall},
        tokens_in=draft.tokens_in, tokens_out=draft.tokens_out,
        draft_checks=_jsonable(draft.checks),
        statements=[{"section": sec.title, "text": s.text, "citations": s.citations,
                     "verdict": s.verdict} for sec in draft.sections for s in sec.statements],
    )
    return rec


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
