"""`chartdraft eval checker`: score the checks on labelled statements (a safety team's own set).

A labels file (format in ``evals/labels/README.md``) names FHIR charts, patients and statements
with their citations, each labelled ``pass`` (a correct statement) or ``flag`` (a defect). Every
statement goes through the same checks a draft's statements go through
(:func:`chartdraft_guardrails.meta_eval.run_row`); it counts as flagged when its overall verdict is
anything but ``supported``. The report gives, per category and overall, precision and recall of
flagging and the false-flag rate on ``pass`` rows, each with a Wilson 95% interval.

    from evals.checker import load_labels, rows_for, evaluate
    sets = [load_labels(Path("evals/labels/realprose/synthea-dev.json"))]
    report = evaluate(rows_for(sets))
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chartdraft_guardrails.meta_eval import run_row
from chartdraft_guardrails.statement import CheckResult, worst

from assistant.draft import DOC_TYPES
from evals.metrics import wilson
from retrieval.errors import BadInput
from retrieval.evidence import Evidence

FORMAT = "chartdraft-checker-labels/1"
EXPECTED = ("pass", "flag")
_FIX_FORMAT = "see evals/labels/README.md for the format"

# A judge for the checker: a row -> an extra CheckResult (only ever adds a flag) or None when it
# did not run or had nothing to add. ``assistant.judge`` builds these.
RowJudge = Callable[[dict[str, Any], list[CheckResult]], CheckResult | None]


# ---------------------------------------------------------------------------------------------
# loading and validating


@dataclass
class LabelledStatement:
    id: str
    text: str
    citations: list[str]
    expected: str
    category: str
    why: str


@dataclass
class LabelledCase:
    id: str
    chart: Path
    patient: str
    doc_type: str
    statements: list[LabelledStatement]


@dataclass
class LabelSet:
    path: Path
    name: str
    cases: list[LabelledCase]

    @property
    def n(self) -> int:
        return sum(len(c.statements) for c in self.cases)


def _need(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
          what: str) -> Any:
    if key not in obj:
        raise BadInput(f"missing field {key!r} ({what})", where=where, fix=_FIX_FORMAT)
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, str) and not value.strip()):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadInput(f"field {key!r} must be a non-empty {names}, got {json.dumps(value)[:60]}",
                       where=where, fix=_FIX_FORMAT)
    return value


def load_labels(path: Path, charts_dir: Path | None = None) -> LabelSet:
    """Read and validate one labels file; chart paths are resolved but not loaded yet."""
    if not path.is_file():
        raise BadInput(f"no labels file at {path}", where=str(path),
                       fix="give the path of a labels JSON file, or `corpus`")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise BadInput(f"not UTF-8 text ({exc.reason})", where=str(path),
                       fix="save the labels file as UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"not valid JSON: {exc.msg}", where=f"{path}:{exc.lineno}:{exc.colno}",
                       fix="fix the JSON syntax (a JSON linter shows the spot)") from None
    if not isinstance(doc, dict):
        raise BadInput("the top level must be a JSON object", where=str(path), fix=_FIX_FORMAT)
    fmt = doc.get("format")
    if fmt != FORMAT:
        raise BadInput(f"unknown format {fmt!r}; expected {FORMAT!r}", where=f"{path}: format",
                       fix=f'add "format": "{FORMAT}" ({_FIX_FORMAT})')
    cases_raw = _need(doc, "cases", list, str(path), "the list of cases")
    base = charts_dir if charts_dir is not None else path.resolve().parent
    cases: list[LabelledCase] = []
    seen: set[str] = set()
    for i, c in enumerate(cases_raw):
        where = f"{path}: cases[{i}]"
        if not isinstance(c, dict):
            raise BadInput("a case must be a JSON object", where=where, fix=_FIX_FORMAT)
        cid = str(c.get("id") or f"case-{i + 1}")
        where = f"{path}: cases[{i}] ({cid})"
        chart_ref = _need(c, "chart", str, where, "the chart file or folder")
        chart = Path(chart_ref)
        if not chart.is_absolute():
            chart = base / chart
        if not chart.exists():
            hint = "--charts-dir" if charts_dir is not None else "the labels file's folder"
            raise BadInput(f"chart {chart_ref!r} does not exist (looked at {chart})", where=where,
                           fix=f"fix the path (relative paths are resolved against {hint}) or "
                               "pass --charts-dir DIR")
        patient = _need(c, "patient", str, where, "the Patient id").removeprefix("Patient/")
        doc_type = c.get("doc_type", "summary")
        if doc_type not in DOC_TYPES:
            raise BadInput(f"unknown doc_type {doc_type!r}", where=where,
                           fix=f"use one of {', '.join(DOC_TYPES)}")
        statements: list[LabelledStatement] = []
        for j, s in enumerate(_need(c, "statements", list, where, "the labelled statements")):
            sw = f"{where}.statements[{j}]"
            if not isinstance(s, dict):
                raise BadInput("a statement must be a JSON object", where=sw, fix=_FIX_FORMAT)
            text = _need(s, "text", str, sw, "the statement's sentence")
            cites = s.get("citations", [])
            if not isinstance(cites, list) or not all(isinstance(x, str) and x for x in cites):
                raise BadInput("citations must be a list of evidence ids (strings), e.g. "
                               '["Condition/123"]; [] for an uncited statement', where=sw,
                               fix=_FIX_FORMAT)
            expected = _need(s, "expected", str, sw, "pass or flag")
            if expected not in EXPECTED:
                raise BadInput(f"expected must be 'pass' or 'flag', got {expected!r}", where=sw,
                               fix="'pass': no check should flag it; 'flag': the checks must")
            category = _need(s, "category", str, sw, "the class of statement, free text")
            why = s.get("why", "")
            if not isinstance(why, str):
                raise BadInput("why must be a string", where=sw, fix=_FIX_FORMAT)
            sid = str(s.get("id") or f"{cid}-s{j + 1:02d}")
            if sid in seen:
                raise BadInput(f"statement id {sid!r} is used twice", where=sw,
                               fix="give every statement its own id")
            seen.add(sid)
            statements.append(LabelledStatement(sid, text.strip(), list(cites), expected,
                                                category.strip(), why))
        cases.append(LabelledCase(cid, chart, patient, doc_type, statements))
    name = doc.get("name") if isinstance(doc.get("name"), str) else path.stem
    return LabelSet(path=path, name=str(name), cases=cases)


@dataclass
class _LoadedChart:
    evidence: list[Evidence]
    patients: set[str]
    by_patient: dict[str, list[Evidence]] = field(default_factory=dict)
    by_id: dict[str, Evidence] = field(default_factory=dict)


class ChartCache:
    """Each chart path is loaded and normalized once; a bulk folder holds many patients."""

    def __init__(self) -> None:
        self._charts: dict[Path, _LoadedChart] = {}

    def _load(self, path: Path) -> _LoadedChart:
        key = path.resolve()
        if key not in self._charts:
            from retrieval.fhir_load import load_path
            from retrieval.normalize import normalize_all

            loaded = load_path(key)
            if not loaded.resources:
                first = f"; first problem: {loaded.issues[0]}" if loaded.issues else ""
                raise BadInput(f"no usable FHIR resources in {path}{first}", where=str(path),
                               fix="give a FHIR Bundle, an NDJSON file or a bulk-export folder")
            evidence, _ = normalize_all(loaded.resources)
            patients = {e.patient_id for e in evidence
                        if e.resource_type == "Patient" and e.patient_id}
            self._charts[key] = _LoadedChart(evidence, patients,
                                             by_id={e.id: e for e in evidence})
        return self._charts[key]

    def chart(self, path: Path, patient: str, where: str) -> tuple[list[Evidence], _LoadedChart]:
        """The patient's evidence plus knowledge (what a draft on them would see)."""
        loaded = self._load(path)
        if patient not in loaded.patients:
            known = sorted(loaded.patients)
            shown = ", ".join(known[:5]) + (" ..." if len(known) > 5 else "")
            raise BadInput(f"patient {patient!r} is not in chart {path.name}", where=where,
                           fix=f"use a Patient id from that chart ({shown or 'it has none'})")
        if patient not in loaded.by_patient:
            loaded.by_patient[patient] = [e for e in loaded.evidence
                                          if e.patient_id == patient or e.kind == "knowledge"]
        return loaded.by_patient[patient], loaded


def rows_for(sets: Iterable[LabelSet], cache: ChartCache | None = None) -> list[dict[str, Any]]:
    """Rows in the shape ``meta_eval.run_row`` takes, with ``type``/``label`` from the labels."""
    cache = cache or ChartCache()
    rows: list[dict[str, Any]] = []
    for ls in sets:
        for case in ls.cases:
            where = f"{ls.path}: case {case.id}"
            chart, loaded = cache.chart(case.chart, case.patient, where)
            for s in case.statements:
                # A citation to another patient's resource in the same file: pass it as cited so
                # the citation check sees whose it is (as meta_eval rows do).
                foreign = [loaded.by_id[c] for c in s.citations
                           if c in loaded.by_id and loaded.by_id[c].patient_id not in
                           (case.patient, None)]
                rows.append({
                    "id": s.id, "set": ls.name, "text": s.text, "citations": s.citations,
                    "chart": chart, "patient_id": case.patient, "cited": foreign,
                    "doc_type": case.doc_type, "type": s.category, "label": s.expected,
                    "why": s.why,
                })
    return rows


def corpus_rows(synthea_dir: Path | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The checks' built-in corpus as rows (its ``type`` is the category, ``label`` expected)."""
    from chartdraft_guardrails.corpus import load

    corpus = load(synthea_dir=synthea_dir)
    rows = [{**r, "set": "corpus"} for r in corpus.rows]
    return rows, corpus.skipped


# ---------------------------------------------------------------------------------------------
# scoring


def _rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"value": k / n if n else None, "k": k, "n": n, "lo": lo, "hi": hi}


def _stats(outcomes: list[tuple[str, bool]]) -> dict[str, Any]:
    """outcomes: (expected, flagged) pairs -> counts and rates with intervals."""
    tp = sum(1 for e, f in outcomes if e == "flag" and f)
    fn = sum(1 for e, f in outcomes if e == "flag" and not f)
    fp = sum(1 for e, f in outcomes if e == "pass" and f)
    tn = sum(1 for e, f in outcomes if e == "pass" and not f)
    return {
        "n": len(outcomes), "pass_rows": fp + tn, "flag_rows": tp + fn,
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": _rate(tp, tp + fp),  # of what was flagged, how much was a defect
        "recall": _rate(tp, tp + fn),  # of the defects, how many were flagged
        "false_flag_rate": _rate(fp, fp + tn),  # correct statements a clinician sees flagged
        "pass_rate": _rate(tn, fp + tn),  # correct statements shown as verified
    }


def _reasons(results: list[CheckResult]) -> list[str]:
    return [f"{r.check}: {r.verdict}: {r.reason}" for r in results if r.verdict != "supported"]


def _block(scored: list[dict[str, Any]], flag_key: str) -> dict[str, Any]:
    per: dict[str, list[tuple[str, bool]]] = {}
    for s in scored:
        per.setdefault(s["category"], []).append((s["expected"], s[flag_key]))
    per_category = {c: _stats(v) for c, v in sorted(per.items())}
    out: dict[str, Any] = {"overall": _stats([(s["expected"], s[flag_key]) for s in scored]),
                           "per_category": per_category}
    recalls = [v["recall"]["value"] for v in per_category.values()
               if v["recall"]["value"] is not None]
    out["min_category_recall"] = min(recalls) if recalls else None
    return out


def evaluate(rows: list[dict[str, Any]], judge: RowJudge | None = None) -> dict[str, Any]:
    """Run every row through the checks (and the judge, when given) and score flagging."""
    scored: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    judge_s = 0.0
    for row in rows:
        results = run_row(row)
        verdict = worst(results)
        item: dict[str, Any] = {
            "id": row.get("id", ""), "set": row.get("set", ""), "text": row["text"],
            "citations": list(row.get("citations", [])), "category": row["type"],
            "expected": row["label"], "why": row.get("why", ""), "verdict": verdict,
            "flagged": verdict != "supported", "reasons": _reasons(results),
        }
        if judge is not None:
            tj = time.perf_counter()
            jr = judge(row, results)
            judge_s += time.perf_counter() - tj
            # ``judge_flagged`` is None when the judge could not run on this row.
            # A result from check "judge" is its answer; anything else (check "judge_error")
            # says it could not run, and the row counts for the rules alone.
            answered = jr if jr is not None and jr.check == "judge" else None
            item["judge_verdict"] = answered.verdict if answered else None
            item["judge_reason"] = jr.reason if jr is not None else "over --judge-max-calls"
            item["judge_status"] = ("over budget" if jr is None else "answered" if answered
                                    else "skipped" if jr.check == "judge_skipped" else "error")
            item["judge_flagged"] = (answered.verdict != "supported") if answered else None
            item["combined_flagged"] = item["flagged"] or bool(item["judge_flagged"])
            item["combined_verdict"] = worst([*results, answered]) if answered else verdict
        scored.append(item)
    elapsed = time.perf_counter() - t0
    report: dict[str, Any] = {"rows": len(scored), "rules": _block(scored, "flagged")}
    by_verdict: dict[str, dict[str, int]] = {}
    for s in scored:
        counts = by_verdict.setdefault(s["expected"], {})
        counts[s["verdict"]] = counts.get(s["verdict"], 0) + 1
    report["by_verdict"] = by_verdict
    sets = sorted({s["set"] for s in scored})
    if len(sets) > 1:
        report["per_set"] = {
            name: _stats([(s["expected"], s["flagged"]) for s in scored if s["set"] == name])
            for name in sets}
    report["errors"] = [
        {"kind": "miss" if s["expected"] == "flag" else "false flag", "id": s["id"],
         "set": s["set"], "category": s["category"], "text": s["text"],
         "citations": s["citations"], "why": s["why"], "verdict": s["verdict"],
         "reasons": s["reasons"]}
        for s in scored if s["flagged"] != (s["expected"] == "flag")]
    report["seconds"] = {"total": elapsed, "checks": elapsed - judge_s}
    if judge is not None:
        report["seconds"]["judge"] = judge_s
        ran = [s for s in scored if s["judge_flagged"] is not None]
        report["judge"] = {
            "ran": len(ran), "could_not_run": len(scored) - len(ran),
            # The judge alone on the rows it ran on: its agreement with the labels.
            "alone": _block([{**s, "jf": s["judge_flagged"]} for s in ran], "jf"),
            "agreement": _rate(sum(1 for s in ran
                                   if s["judge_flagged"] == (s["expected"] == "flag")), len(ran)),
            "by_verdict": _count_by(ran, "judge_verdict"),
            "not_run": _not_run([s for s in scored if s["judge_flagged"] is None]),
        }
        report["combined"] = _block(scored, "combined_flagged")
        report["combined_errors"] = [
            {"kind": "miss" if s["expected"] == "flag" else "false flag", "id": s["id"],
             "category": s["category"], "text": s["text"], "verdict": s["combined_verdict"],
             "judge": f"{s['judge_verdict']}: {s['judge_reason']}"}
            for s in scored if s["combined_flagged"] != (s["expected"] == "flag")]
    return report


def _not_run(scored: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in scored:
        out[s["judge_status"]] = out.get(s["judge_status"], 0) + 1
    errors = [s["judge_reason"] for s in scored if s["judge_status"] == "error"]
    if errors:
        out["first_errors"] = errors[:3]
    return out


def _count_by(scored: list[dict[str, Any]], key: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for s in scored:
        counts = out.setdefault(s["expected"], {})
        counts[str(s[key])] = counts.get(str(s[key]), 0) + 1
    return out


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The gate's numbers: of the combined rules+judge result when a judge ran, else the rules."""
    block = report.get("combined") or report["rules"]
    o = block["overall"]
    return {"pass_rate": o["pass_rate"]["value"], "recall": o["recall"]["value"],
            "min_category_recall": block["min_category_recall"], "n": o["n"]}


def gate_failures(report: dict[str, Any], fail_under_pass: float | None,
                  fail_under_flag: float | None) -> list[str]:
    h = headline(report)
    out = []
    if fail_under_pass is not None and h["pass_rate"] is not None \
            and h["pass_rate"] < fail_under_pass:
        out.append(f"pass rate on supported statements {h['pass_rate']:.3f} < {fail_under_pass}")
    if fail_under_flag is not None and h["recall"] is not None and h["recall"] < fail_under_flag:
        out.append(f"recall on defects {h['recall']:.3f} < {fail_under_flag}")
    return out


# ---------------------------------------------------------------------------------------------
# printing


def _fmt(rate: dict[str, Any]) -> str:
    if rate["value"] is None:
        return "–"
    return f"{rate['value']:.3f} [{rate['lo']:.2f}, {rate['hi']:.2f}]"


def render(report: dict[str, Any], *, errors: int = 0, title: str = "checker") -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    blocks = [("rules", report["rules"])]
    if "judge" in report:
        blocks += [("judge alone", report["judge"]["alone"]), ("rules + judge", report["combined"])]
    for label, block in blocks:
        t = Table(title=f"{title}: {label} (flagged = verdict not 'supported'; 95% Wilson)")
        for col in ("category", "n", "pass", "flag", "TP", "FP", "FN", "TN"):
            t.add_column(col, justify="left" if col == "category" else "right")
        for col in ("precision", "recall", "false-flag rate"):
            t.add_column(col, justify="right")
        items = [*block["per_category"].items(), ("OVERALL", block["overall"])]
        for name, s in items:
            t.add_row(name, str(s["n"]), str(s["pass_rows"]), str(s["flag_rows"]), str(s["tp"]),
                      str(s["fp"]), str(s["fn"]), str(s["tn"]), _fmt(s["precision"]),
                      _fmt(s["recall"]), _fmt(s["false_flag_rate"]),
                      end_section=name == list(block["per_category"])[-1])
        console.print(t)
    for name, s in report.get("per_set", {}).items():
        console.print(f"set {name}: n={s['n']} pass rate {_fmt(s['pass_rate'])}, "
                      f"recall {_fmt(s['recall'])}")
    for expected, counts in sorted(report["by_verdict"].items()):
        shown = ", ".join(f"{v} {n}" for v, n in sorted(counts.items(), key=lambda x: -x[1]))
        console.print(f"expected {expected}: {shown}")
    if "judge" in report:
        j = report["judge"]
        console.print(f"judge: answered on {j['ran']} rows, not on {j['could_not_run']} "
                      f"({j['not_run']}); agreement with labels {_fmt(j['agreement'])}",
                      markup=False, highlight=False)
    top = report.get("combined") or report["rules"]
    mcr = top["min_category_recall"]
    console.print(f"pass rate on supported: {_fmt(top['overall']['pass_rate'])}; "
                  f"recall on defects: {_fmt(top['overall']['recall'])}; "
                  f"min category recall: {'–' if mcr is None else f'{mcr:.3f}'}")
    secs = report["seconds"]
    rows = max(1, report["rows"])
    judge_part = f"; judge {secs['judge'] / rows:.2f} s a statement" if "judge" in secs else ""
    console.print(f"time: checks {1000 * secs['checks'] / rows:.1f} ms a statement on average "
                  f"(building each chart's facts once included){judge_part}")
    errs = report["errors"]
    if errors and errs:
        console.print(f"\n{len(errs)} misses and false flags (first {min(errors, len(errs))}):")
        for e in errs[:errors]:
            console.print(f"- [{e['kind']}] {e['category']} {e['id']}: {e['text']!r} "
                          f"cites {e['citations']}", markup=False, highlight=False)
            if e["why"]:
                console.print(f"    why: {e['why']}", markup=False, highlight=False)
            console.print(f"    verdict {e['verdict']}" + "".join(
                f"\n    {r}" for r in e["reasons"]), markup=False, highlight=False)
    if errors and report.get("combined_errors"):
        ce = report["combined_errors"]
        console.print(f"\nrules + judge: {len(ce)} misses and false flags "
                      f"(first {min(errors, len(ce))}):")
        for e in ce[:errors]:
            console.print(f"- [{e['kind']}] {e['category']} {e['id']}: {e['text']!r} -> "
                          f"{e['verdict']}; judge {e['judge']}", markup=False, highlight=False)
