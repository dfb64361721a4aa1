"""The versioned results.json schema (evals/results.schema.json) and its validator."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from retrieval.errors import BadInput

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).resolve().parent / "results.schema.json"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return dict(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def problems(doc: Any) -> list[str]:
    """Every schema violation as ``path: message`` (empty when valid)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]


def validate(doc: Any, *, where: str = "results.json") -> None:
    errs = problems(doc)
    if errs:
        shown = "; ".join(errs[:5]) + (f" (+{len(errs) - 5} more)" if len(errs) > 5 else "")
        raise BadInput(f"results do not match schema {SCHEMA_VERSION}: {shown}", where=where,
                       fix="re-run `chartdraft eval run` with this version of chartdraft")


def load(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadInput(f"no results file at {p}", where=str(path),
                       fix="pass a results.json (or the --out folder of a run)") from exc
    except ValueError as exc:
        raise BadInput(f"{p} is not JSON: {exc}", where=str(p)) from exc
    validate(doc, where=str(p))
    return dict(doc)
