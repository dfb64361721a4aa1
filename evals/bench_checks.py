"""Check latency for a 40-statement draft (``make bench`` -> ``python -m evals.bench checks``).

Uses the largest shared Synthea chart; statements are built from its own evidence (values, dates,
procedures, conditions), half of them edited to be wrong. Prints the median over repeats of:
cold (first draft on a chart: builds the per-chart facts), warm (the pipeline's case: the chart
context is cached), and warm with Presidio NER for names (PHI-on; built once, not timed).
Then the checks' accuracy on the labelled real-prose splits (``evals/labels/realprose/*-dev.json``
and ``*-test.json``, when present): pass rate on correct statements, recall on defects, and the
lowest per-category recall, as ``chartdraft eval checker`` computes them.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from chartdraft_guardrails import api
from chartdraft_guardrails.api import check_draft
from chartdraft_guardrails.statement import Statement

from retrieval.evidence import Evidence

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "synthea-r4-bundles"
LABELS = Path(__file__).resolve().parent / "labels" / "realprose"


def _chart() -> list[Evidence]:
    from retrieval.fhir_load import load_path
    from retrieval.normalize import normalize_all

    best: list[Evidence] = []
    for f in sorted(DATA.glob("*.json")):
        ev, _ = normalize_all(load_path(f).resources)
        if len(ev) > len(best):
            best = ev
    return best


def _statements(chart: list[Evidence], n: int = 40) -> list[Statement]:
    out: list[Statement] = []
    pool = [e for e in chart if e.resource_type in ("Observation", "Procedure", "Condition",
                                                    "Immunization", "MedicationRequest")]
    for i, e in enumerate(pool):
        if len(out) >= n:
            break
        v = e.data.get("value")
        when = (e.date or "")[:10]
        if isinstance(v, int | float) and e.data.get("unit"):
            shown = v * (1.5 if i % 2 else 1.0)
            text = f"{e.title.split('[')[0].strip()} was {shown:.1f} {e.data['unit']} on {when}."
        else:
            text = f"{e.title} on {when}." if i % 2 == 0 else f"{e.title} in 1999."
        out.append(Statement(text=text, citations=[e.id]))
    return out


def _time(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    latency()
    labelled()


def labelled() -> None:
    from evals.checker import ChartCache, evaluate, load_labels, rows_for

    cache = ChartCache()  # the splits share charts: load each once
    for split in ("dev", "test"):
        files = sorted(LABELS.glob(f"*-{split}.json"))
        if not files:
            print(f"labelled {split} split: no *-{split}.json in {LABELS}")
            continue
        t0 = time.perf_counter()
        sets = [load_labels(f) for f in files]
        report = evaluate(rows_for(sets, cache))
        rules = report["rules"]
        o, mcr = rules["overall"], rules["min_category_recall"]
        worst_cat = min(((v["recall"]["value"], c) for c, v in rules["per_category"].items()
                         if v["recall"]["value"] is not None), default=(None, "–"))
        print(f"{split} split ({', '.join(s.name for s in sets)}; n={o['n']}): pass rate on "
              f"supported {_show(o['pass_rate'])} (target >= 0.97); recall on defects "
              f"{_show(o['recall'])} (target >= 0.97); min category recall "
              f"{'–' if mcr is None else f'{mcr:.3f}'} ({worst_cat[1]}; target >= 0.90); "
              f"{time.perf_counter() - t0:.1f}s")
        for name, st in report.get("per_set", {}).items():
            print(f"  {name}: n={st['n']}; pass rate {_show(st['pass_rate'])}; "
                  f"recall {_show(st['recall'])}")


def _show(rate: dict[str, Any]) -> str:
    if rate["value"] is None:
        return "–"
    return f"{rate['value']:.3f} [{rate['lo']:.2f}, {rate['hi']:.2f}]"


def latency() -> None:
    if not DATA.exists():
        print(f"skipped: {DATA} is absent")
        return
    chart = _chart()
    sts = _statements(chart)
    pid = next(e.patient_id for e in chart if e.resource_type == "Patient") or ""
    shown = {e.id for e in chart}
    sections = [("Recent results", sts[:20]), ("Recent encounters and procedures", sts[20:])]

    def run(ner: bool = False) -> None:
        check_draft(sections, chart=chart, shown_ids=shown, patient_id=pid, doc_type="summary",
                    phi_ner=ner)

    def cold() -> None:
        api._contexts.clear()
        run()

    print(f"chart: {len(chart)} evidence units; draft: {len(sts)} statements")
    print(f"check_draft cold (builds chart facts): median {_time(cold, 5):.1f} ms")
    run()
    print(f"check_draft warm, PHI patterns only:   median {_time(run, 15):.1f} ms "
          f"(target < 50 ms)")
    run(True)  # builds the Presidio analyzer once
    print(f"check_draft warm, PHI with NER:        median {_time(lambda: run(True), 5):.1f} ms")


if __name__ == "__main__":
    main()
