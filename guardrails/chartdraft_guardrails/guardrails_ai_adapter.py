"""Optional bridge to guardrails-ai 0.11: our checks as one custom validator.

Offline only: telemetry and litellm's remote price list are switched off before the import, and
NLTK finds an offline "punkt" marker (guardrails-ai downloads it at import time otherwise). The
hub is never used. The pipeline does not depend on this module: guardrails-ai's re-ask calls the
LLM itself through litellm and its ``filter`` drops the whole output, so the fix/drop/re-ask
policy stays in ``policy.py``; this adapter lets a guardrails-ai Guard run our checks (for users
who already have Guards) and records the verdict in its validation log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.statement import Statement
from retrieval.evidence import Evidence

_guard_mod: Any = None
_validator_cls: Any = None


def _offline_import() -> tuple[Any, Any]:
    global _guard_mod, _validator_cls
    if _guard_mod is not None:
        return _guard_mod, _validator_cls
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("GUARDRAILS_RUN_SYNC", "true")
    import nltk

    here = Path(__file__).with_name("nltk_data")
    nltk.data.path.insert(0, str(here))
    try:
        import llama_index.core as li

        nltk.data.path.append(str(Path(li.__file__).parent / "_static" / "nltk_cache"))
    except ImportError:
        pass
    from guardrails.validators import (
        FailResult,
        PassResult,
        Validator,
        register_validator,
    )

    import guardrails as gd

    @register_validator(name="chartdraft/statement-checks", data_type="string")
    class ChartdraftChecks(Validator):  # type: ignore[misc]
        """Every chartdraft check on one statement; the context comes in ``metadata``."""

        def _validate(self, value: Any, metadata: dict[str, Any]) -> Any:
            results = check_statement(
                Statement(text=str(value), citations=list(metadata.get("citations", []))),
                cited=metadata.get("cited", []),
                chart=metadata["chart"],
                shown_ids=set(metadata.get("shown_ids", [])),
                patient_id=metadata["patient_id"],
                doc_type=metadata.get("doc_type", "summary"),
            )
            fails = [r for r in results if r.verdict != "supported"]
            if not fails:
                return PassResult()
            return FailResult(error_message="; ".join(f"{r.check}: {r.reason}" for r in fails))

    _guard_mod, _validator_cls = gd, ChartdraftChecks
    return _guard_mod, _validator_cls


def guard(on_fail: str = "noop") -> Any:
    """A guardrails-ai Guard running our checks (``on_fail``: noop, exception, refrain...)."""
    gd, cls = _offline_import()
    return gd.Guard().use(cls(on_fail=on_fail))


def validate_statement(
    statement: Statement,
    *,
    cited: list[Evidence],
    chart: list[Evidence],
    shown_ids: set[str],
    patient_id: str,
    doc_type: str,
) -> tuple[bool, list[str]]:
    """Run one statement through a Guard; (passed, failure reasons)."""
    outcome = guard().validate(
        statement.text,
        metadata={
            "citations": statement.citations,
            "cited": cited,
            "chart": chart,
            "shown_ids": sorted(shown_ids),
            "patient_id": patient_id,
            "doc_type": doc_type,
        },
    )
    reasons = [s.failure_reason for s in (outcome.validation_summaries or []) if s.failure_reason]
    return bool(outcome.validation_passed), reasons
