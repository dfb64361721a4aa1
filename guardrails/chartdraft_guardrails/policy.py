"""The fix / drop / re-ask / flag policy applied to failing statements (see policy.yaml).

The pipeline passes a re-ask callback (a plain callable) and a re-check function; this module owns
the bounded loop. What is still failing at the end stays flagged with its reasons, or is dropped
and recorded, as the policy says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from chartdraft_guardrails.statement import CheckResult, Statement, worst
from retrieval.errors import BadInput

Action = Literal["repair", "reask", "drop", "flag"]
ACTIONS: tuple[str, ...] = ("repair", "reask", "drop", "flag")
POLICY_PATH = Path(__file__).with_name("policy.yaml")


@dataclass(frozen=True)
class ReaskRequest:
    statement: Statement
    reasons: list[str]


ReaskFn = Callable[[list[ReaskRequest]], list[Statement | None]]
RecheckFn = Callable[[Statement], list[CheckResult]]


@dataclass
class PolicyOutcome:
    original: Statement
    statement: Statement | None  # None when dropped
    results: list[CheckResult]
    action: str = "kept"  # kept | repaired | reasked | dropped | flagged
    attempts: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.statement is not None and worst(self.results) != "supported"


@lru_cache(maxsize=4)
def load_policy(path: str = str(POLICY_PATH)) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"cannot read guardrail policy: {exc}", where=path) from exc
    for check, per in (data.get("actions") or {}).items():
        for doc_type, acts in per.items():
            bad = [a for a in acts if a not in ACTIONS]
            if bad:
                raise BadInput(
                    f"unknown action(s) {bad} for {check}/{doc_type}",
                    where=path,
                    fix=f"use {', '.join(ACTIONS)}",
                )
    return data


def actions_for(check: str, doc_type: str, policy: dict[str, Any] | None = None) -> list[str]:
    per = (policy or load_policy()).get("actions", {}).get(check, {})
    return list(per.get(doc_type) or per.get("default") or ["flag"])


def failing(results: list[CheckResult]) -> list[CheckResult]:
    return [r for r in results if r.verdict != "supported"]


def _plan(results: list[CheckResult], doc_type: str, policy: dict[str, Any]) -> list[str]:
    """The action chain for a statement: that of its most severe failing check."""
    fails = failing(results)
    if not fails:
        return []
    order = ["phi", "injection", "contradiction", "citation", "support", "links",
             "interpretation", "judge"]
    checks = sorted({r.check for r in fails}, key=lambda c: order.index(c) if c in order else 99)
    return actions_for(checks[0], doc_type, policy)


def repair(statement: Statement, results: list[CheckResult]) -> Statement | None:
    """Certain fixes only: drop citations that are not usable when usable ones remain."""
    bad = {i for r in results if r.verdict == "invalid_citation" for i in r.evidence_ids}
    keep = [c for c in statement.citations if c not in bad]
    if bad and keep and len(keep) < len(statement.citations):
        return Statement(text=statement.text, citations=keep)
    return None


def apply_policy(
    items: list[tuple[Statement, list[CheckResult]]],
    *,
    doc_type: str,
    recheck: RecheckFn,
    reask: ReaskFn | None = None,
    max_attempts: int | None = None,
    policy: dict[str, Any] | None = None,
) -> list[PolicyOutcome]:
    """Resolve failing statements by the policy; return one outcome per input, in order."""
    pol = policy or load_policy()
    limit = pol.get("max_reask_attempts", 2) if max_attempts is None else max_attempts
    outs = [PolicyOutcome(s, s, r) for s, r in items]
    for o in outs:
        if failing(o.results) and "repair" in _plan(o.results, doc_type, pol):
            fixed = repair(o.statement, o.results)  # type: ignore[arg-type]
            if fixed is not None:
                res = recheck(fixed)
                o.history.append("repaired: " + "; ".join(r.reason for r in failing(o.results)))
                if not failing(res):
                    o.statement, o.results, o.action = fixed, res, "repaired"
    for attempt in range(1, limit + 1):
        todo = [
            o
            for o in outs
            if o.statement is not None
            and failing(o.results)
            and "reask" in _plan(o.results, doc_type, pol)
        ]
        if not todo or reask is None:
            break
        answers = reask(
            [
                ReaskRequest(o.statement, [r.reason for r in failing(o.results)])  # type: ignore[arg-type]
                for o in todo
            ]
        )
        for o, new in zip(todo, answers, strict=False):
            o.attempts = attempt
            o.history.append("reasked: " + "; ".join(r.reason for r in failing(o.results)))
            if new is None:
                continue
            o.statement, o.results = new, recheck(new)
            if not failing(o.results):
                o.action = "reasked"
    for o in outs:
        if o.statement is None or not failing(o.results):
            continue
        chain = [a for a in _plan(o.results, doc_type, pol) if a in ("drop", "flag")]
        if chain and chain[0] == "drop":
            o.history.append("dropped: " + "; ".join(r.reason for r in failing(o.results)))
            o.statement, o.action = None, "dropped"
        else:
            o.action = "flagged"
    return outs
