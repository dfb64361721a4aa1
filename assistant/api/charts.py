"""/v1/charts: ingest a FHIR Bundle (JSON) or an NDJSON body; errors are reported per entry."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request

from assistant.api.deps import CurrentUser, Svc
from assistant.api.problems import PROBLEM_SCHEMA
from assistant.auth import require
from retrieval.errors import BadInput, ChartError
from retrieval.ingest import ingest_body

router = APIRouter(prefix="/v1/charts", tags=["charts"],
                   responses={k: PROBLEM_SCHEMA for k in (400, 401, 403, 413, 422)})
MAX_BODY = 64 * 1024 * 1024


@router.post("", summary="Ingest a FHIR Bundle or NDJSON body",
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/fhir+json": {"schema": {"type": "object"}},
                 "application/json": {"schema": {"type": "object"}},
                 "application/fhir+ndjson": {"schema": {"type": "string"}},
                 "application/x-ndjson": {"schema": {"type": "string"}}}}})
async def ingest(request: Request, svc: Svc, p: CurrentUser) -> dict[str, Any]:
    require(p, "chart.ingest")
    body = await request.body()
    if not body.strip():
        raise BadInput("empty body", where="body", fix="send a FHIR Bundle or NDJSON")
    if len(body) > MAX_BODY:
        raise BadInput(f"body larger than {MAX_BODY // 2**20} MB", where="body",
                       fix="split the export into several requests")
    rt = svc.rt
    report = await asyncio.to_thread(ingest_body, body, store=rt.store, index=rt.index,
                                      embedder=rt.embedder)
    out = report.as_json()
    if report.resources == 0 and report.issues:
        raise ChartError(f"nothing could be loaded: {report.issues[0]}", where="body",
                         fix="send FHIR R4 JSON (a Bundle or resources) or NDJSON")
    for pid in sorted(report.patients):
        await asyncio.to_thread(svc.audit, p, "chart.ingest", patient_id=pid,
                                purpose=f"{report.resources} resources")
    out["patient_ids"] = sorted(report.patients)
    return out
