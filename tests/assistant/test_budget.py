from __future__ import annotations

from assistant.budget import fit_to_budget
from retrieval.evidence import Evidence


def _ev(i: int, words: int) -> Evidence:
    return Evidence(id=f"Observation/{i}", patient_id="p", resource_type="Observation",
                    title=f"obs {i}", text="word " * words)


def count(text: str) -> int:
    return len(text.split())


def test_keeps_order_until_budget_is_spent() -> None:
    items = [_ev(i, 10) for i in range(10)]
    kept, dropped = fit_to_budget(items, budget_tokens=45, count_tokens=count, required=set())
    assert [e.id for e in kept] == [e.id for e in items[: len(kept)]]
    assert len(kept) + len(dropped) == 10
    assert sum(count(f"{e.id} {e.title} {e.text}") + 8 for e in kept) <= 45


def test_required_evidence_is_never_dropped() -> None:
    items = [_ev(i, 50) for i in range(5)]
    required = {items[3].id, items[4].id}
    kept, dropped = fit_to_budget(items, budget_tokens=10, count_tokens=count, required=required)
    assert required <= {e.id for e in kept}
    assert not required & set(dropped)
