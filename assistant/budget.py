"""Cut the gathered evidence to what fits the model's context (required evidence first)."""

from __future__ import annotations

from collections.abc import Callable

from retrieval.evidence import Evidence


def fit_to_budget(
    evidence: list[Evidence],
    *,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    required: set[str],
) -> tuple[list[Evidence], list[str]]:
    """Keep evidence in order until the budget is spent; return (kept, dropped ids).

    Required evidence is never dropped silently: if it alone overflows the budget it is still kept
    and the caller records the overflow, because a discharge draft that omits a medication is worse
    than a slower one.
    """
    kept: list[Evidence] = []
    dropped: list[str] = []
    used = 0
    for e in evidence:
        cost = count_tokens(f"{e.id} {e.title} {e.text}") + 8  # tags and numbering around it
        if e.id in required or used + cost <= budget_tokens:
            kept.append(e)
            used += cost
        else:
            dropped.append(e.id)
    return kept, dropped


def rough_token_count(text: str) -> int:
    """For the extractive path, which has no tokenizer: ~4 characters per token."""
    return max(1, len(text) // 4)
