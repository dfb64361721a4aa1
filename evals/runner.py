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
from typing import TYPE_CHECKING, Any

from assistant.draft import Draft, DraftStatement
from evals.scoring import flagged_statements, score
from evals.suite import Case, Materialized, expand, load_suite, materialize
from retrieval.errors import BadInput, ChartdraftError
from retrieval.evidence import Evidence

if TYPE_CHECKING:
    from evals.entailment import EntailmentJudge

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
    nli_model: Path | None = None  # local NLI model folder: adds the *_nli citation metrics


def _check_backends(names: list[str], *, service: str | None = None) -> None:
    ok = ("extractive", *MODEL_BACKENDS, *(BASELINE_PREFIX + b for b in MODEL_BACKENDS))
    for b in names:
        if b not in ok:
            raise BadInput(f"unknown backend {b!r}", where="--backend",
                           fix=f"use one or more of: {', '.join(ok)}")
        if service and b.startswith(BASELINE_PREFIX):
            # The baselines run LlamaIndex in this process; a service only drafts its own way.
            raise BadInput(f"backend {b!r} cannot run against a service ({service})",
                           where="--backend",
                           fix="run the cqe- baselines in-process (leave out --service), or "
                               f"pass --backend {','.join(('extractive', *MODEL_BACKENDS))}")


def _identity(cfg: RunConfig) -> dict[str, Any]:
    """What must not change between a run and its resumption: finished cases are kept as they
    are, so resuming with other code, model, settings or judge would mix two runs in one file."""
    from evals.results import git_commit

    sha, _ = git_commit()
    return {"git_commit": sha, "model": cfg.model, "service": cfg.service,
            "settings": json.loads(json.dumps(cfg.settings, default=str, sort_keys=True)),
            "max_statements": cfg.max_statements,
            "nli_model": str(cfg.nli_model) if cfg.nli_model else None}


def _state(out: Path, suite_hash: str, identity: dict[str, Any]) -> dict[str, Any]:
    path = out / "state.json"
    if path.exists():
        st = json.loads(path.read_text())
        if st.get("suite_sha256") != suite_hash:
            raise BadInput(f"{out} holds a run of a different version of this suite",
                           where="--out", fix="use a new --out folder (or delete the old one)")
        before = st.get("identity")
        if before is not None and before != identity:
            changed = sorted(k for k in identity if before.get(k) != identity[k])
            raise BadInput(f"{out} holds a run made with a different {', '.join(changed)}; "
                           "resuming would mix two runs in one results file",
                           where="--out", fix="use a new --out folder, or resume with the "
                           "same commit and options")
        return dict(st)
    st = {"suite_sha256": suite_hash, "anchor": date.today().isoformat(), "identity": identity}
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

    _check_backends(cfg.backends, service=cfg.service)
    judge = None
    if cfg.nli_model is not None:  # loaded first: a bad folder fails before any drafting
        from evals.entailment import load_judge

        judge = load_judge(cfg.nli_model)
    suite, suite_hash = load_suite(cfg.suite)
    out = Path(cfg.out)
    state = _state(out, suite_hash, _identity(cfg))
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
        rec = run_case(engine, case, backend, charts[case.chart], judge=judge)
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
                            engine_info={**engine.info(),
                                         "entailment": judge.info() if judge else None},
                            wall_seconds=time.perf_counter() - t0,
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
    """Drafts from a running chartdraft service; charts are POSTed to it first.

    The token needs both ``chart.ingest`` and ``draft.create``: the ``ehr-service`` role.
    """

    POLL_S = 0.1
    DEADLINE_S = 600.0  # one draft; a local model on a CPU can be slow, but not forever

    def __init__(self, cfg: RunConfig, charts: dict[str, Materialized]) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
        self.url = (cfg.service or "").rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers=headers,
                                   timeout=httpx.Timeout(self.DEADLINE_S, connect=10))
        self.patients: set[str] = set()
        try:
            for m in charts.values():
                for p in m.paths:
                    for ctype, body in _bodies(Path(p)):
                        self._upload(ctype, body)
        except BaseException:
            self.client.close()
            raise

    def _send(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = self.client.request(method, path, **kw)
        except httpx.ConnectError as exc:
            raise BadInput(f"no chartdraft service answers at {self.url} ({exc})",
                           where="--service",
                           fix="start it (chartdraft serve) or correct the URL") from exc
        except httpx.HTTPError as exc:
            raise ChartdraftError(f"{method} {path} on {self.url} failed: "
                                  f"{type(exc).__name__}: {exc}", where="--service",
                                  fix="check the service is up and its log") from exc
        if r.status_code >= 400:
            raise _problem(r)
        return r

    def _upload(self, ctype: str, body: bytes) -> None:
        from retrieval.errors import ChartError

        try:
            r = self._send("POST", "/v1/charts", content=body, headers={"Content-Type": ctype})
        except ChartError:
            # A file with no usable resource: the in-process ingest skips it too (its
            # issues are reported there); a case on a patient it held fails on its own.
            return
        self.patients.update(r.json().get("patient_ids") or [])

    def draft(self, case: Case, backend: str, events: list[DraftStatement]) -> Draft:
        from retrieval.errors import NotFound

        body = {"patient_id": case.patient_id, "doc_type": case.doc_type,
                "encounter_id": case.encounter_id, "order_id": case.order_id,
                "backend": backend}
        try:
            draft_id = self._send("POST", "/v1/drafts", json=body).json()["id"]
        except NotFound as exc:
            # The service decides (a case may expect the refusal); say when the cause is
            # that its ingest did not yield the patient the suite's chart holds.
            if case.patient_id in self.patients or exc.where != "patient_id":
                raise
            raise NotFound(f"{exc.detail}; the service did not report this patient when the "
                           "suite's charts were posted to it", where="--service",
                           fix="check the service's ingest (GET /v1/patients) and its log"
                           ) from exc
        self._follow(draft_id, events)
        deadline = time.monotonic() + self.DEADLINE_S
        while True:  # "done" is published after the draft is saved; this is a safety net
            data = self._send("GET", f"/v1/drafts/{draft_id}").json()
            if data.get("status") in ("draft", "signed", "rejected", "failed"):
                break
            if time.monotonic() > deadline:
                raise ChartdraftError(f"draft {draft_id} still {data.get('status')!r} after "
                                      f"{self.DEADLINE_S:.0f} s", where="--service",
                                      fix="check the service's model backend and its log")
            time.sleep(self.POLL_S)
        if data.get("status") == "failed":
            raise ChartdraftError(f"the service failed draft {draft_id}: "
                                  f"{data.get('error') or 'no reason given'}",
                                  where="--service", fix="see the service's log")
        return Draft.model_validate({k: v for k, v in data.items() if k in Draft.model_fields})

    def _follow(self, draft_id: str, events: list[DraftStatement]) -> None:
        """Statements as generated, from the draft's server-sent events (what the in-process
        run gets from ``on_event``), so the as-generated metrics are measured here too."""
        import httpx

        path = f"/v1/drafts/{draft_id}/events"
        deadline = time.monotonic() + self.DEADLINE_S
        try:
            with self.client.stream("GET", path, headers={"Accept": "text/event-stream"}) as r:
                if r.status_code >= 400:
                    r.read()
                    raise _problem(r)
                name, data = "message", []
                for line in r.iter_lines():
                    if time.monotonic() > deadline:
                        raise ChartdraftError(f"draft {draft_id} not done after "
                                              f"{self.DEADLINE_S:.0f} s", where="--service",
                                              fix="check the service's model backend and log")
                    if line.startswith("event:"):
                        name = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif not line:
                        if name == "statement" and data:
                            ev = json.loads("\n".join(data))
                            events.append(DraftStatement.model_validate(ev["statement"]))
                        elif name == "done":
                            return
                        name, data = "message", []
        except httpx.HTTPError as exc:
            raise ChartdraftError(f"GET {path} on {self.url} failed: {type(exc).__name__}: "
                                  f"{exc}", where="--service",
                                  fix="check the service is up and its log") from exc

    def info(self) -> dict[str, Any]:
        return {"service": self.url, "models": {}, "settings_fingerprint": None}

    def close(self) -> None:
        self.client.close()


def _problem(r: Any) -> ChartdraftError:
    """The service's RFC 9457 problem as our own error: same class, its where and fix."""
    from retrieval.errors import (
        AuthError,
        ChartError,
        CheckFailed,
        Conflict,
        Forbidden,
        ModelUnavailable,
        NotFound,
        StoreError,
    )

    try:
        body = r.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = str(body.get("detail") or body.get("title") or r.text[:300] or r.reason_phrase)
    where, fix = body.get("where"), body.get("fix")
    known = (AuthError, Forbidden, NotFound, Conflict, ModelUnavailable, CheckFailed,
             StoreError, ChartError, BadInput)
    cls: type[ChartdraftError] = next(
        (c for c in known if c.status == r.status_code and c.title == body.get("title")),
        next((c for c in known if c.status == r.status_code),
             BadInput if r.status_code < 500 else ChartdraftError))
    if r.status_code in (401, 403):
        # The service's own fix speaks to an API client; here the token comes from --token.
        where = "--token"
        fix = ("pass --token with a token of role ehr-service (it ingests charts and asks for "
               "drafts), e.g. `chartdraft token --role ehr-service` on a dev service")
    req = r.request
    return cls(f"service answered {r.status_code} to {req.method} {req.url.path}: {detail}",
               where=where or "--service", fix=fix or "see the service's log")


def _files(p: Path) -> list[Path]:
    """The files the in-process loader reads (``retrieval.fhir_load.load_path``)."""
    from retrieval.fhir_load import _FHIR_SUFFIXES

    if p.is_dir():
        return sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")
                      and x.name.lower().endswith(_FHIR_SUFFIXES))
    return [p]


NDJSON_CHUNK = 32 * 2**20  # under the service's 64 MB body limit


def _bodies(p: Path) -> list[tuple[str, bytes]]:
    """(content type, body) to POST for one chart path. JSON files go alone; NDJSON files are
    joined into one body, because the in-process run loads a folder at once and a resource
    refers to others in other files of a bulk export (Encounter -> Location, ...): posted one
    file at a time, those references would not resolve and the charts would differ. Only an
    export over NDJSON_CHUNK is split (at line ends)."""
    import gzip

    out: list[tuple[str, bytes]] = []
    chunk: list[bytes] = []
    size = 0
    for f in _files(p):
        data = f.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        if not f.name.lower().removesuffix(".gz").endswith((".ndjson", ".jsonl")):
            out.append(("application/fhir+json", data))
            continue
        for line in data.splitlines(keepends=True):
            if size + len(line) > NDJSON_CHUNK and chunk:
                out.append(("application/fhir+ndjson", b"".join(chunk)))
                chunk, size = [], 0
            chunk.append(line if line.endswith(b"\n") else line + b"\n")
            size += len(chunk[-1])
    if chunk:
        out.append(("application/fhir+ndjson", b"".join(chunk)))
    return out


def _engine(cfg: RunConfig, out: Path, charts: dict[str, Materialized]) -> _Engine:
    if cfg.service:
        return Service(cfg, charts)
    return InProcess(cfg, out, charts)


# ---- one case ------------------------------------------------------------------------------------

def run_case(engine: _Engine, case: Case, backend: str, chart_set: Materialized,
             *, judge: EntailmentJudge | None = None) -> dict[str, Any]:
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
                   required_sections=engine.required_sections(case.doc_type), judge=judge)
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
