"""The one error envelope: every error becomes RFC 9457 ``application/problem+json``.

Our errors (``retrieval.errors``) carry status, title, detail and, when known, ``where`` and
``fix``; validation errors, unknown routes and wrong methods get the same shape; anything
unexpected is a 500 with an id to quote and no stack trace, no exception text (which could carry
clinical text) ever reaching the client.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from retrieval.errors import ChartdraftError

log = logging.getLogger("chartdraft.api")
MEDIA_TYPE = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "description": "An RFC 9457 problem",
    "content": {MEDIA_TYPE: {"schema": {"type": "object", "properties": {
        "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
        "detail": {"type": "string"}, "instance": {"type": "string"},
        "where": {"type": "string"}, "fix": {"type": "string"}}}}},
}


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def problem(status: int, title: str, detail: str, *, instance: str, where: str | None = None,
            fix: str | None = None, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"urn:chartdraft:problem:{_slug(title)}", "title": title,
                            "status": status, "detail": detail, "instance": instance}
    if where:
        body["where"] = where
    if fix:
        body["fix"] = fix
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


class ProblemError(ChartdraftError):
    """A ChartdraftError with a status and extension members (e.g. the open flags on a 409)."""

    def __init__(self, status: int, title: str, detail: str, *, where: str | None = None,
                 fix: str | None = None, **extra: Any) -> None:
        super().__init__(detail, where=where, fix=fix)
        self.status, self.title, self.extra = status, title, extra


def install(app: FastAPI) -> None:
    async def on_ours(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ChartdraftError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        extra = getattr(exc, "extra", {}) if isinstance(exc, ProblemError) else {}
        return problem(exc.status, exc.title, exc.detail, instance=request.url.path,
                       where=exc.where, fix=exc.fix, headers=headers, **extra)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return problem(422, "Invalid request", f"{first.get('msg')} ({len(errors)} problem(s))",
                       instance=request.url.path, where=where,
                       fix="see the OpenAPI schema at /openapi.json",
                       errors=[{"where": ".".join(str(x) for x in e.get("loc", ())),
                                "problem": e.get("msg")} for e in errors[:20]])

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        titles = {404: "Not found", 405: "Method not allowed", 400: "Bad input"}
        detail = str(exc.detail) if exc.status_code != 404 else f"no route {request.url.path}"
        fix = "see /docs for the routes" if exc.status_code in (404, 405) else None
        return problem(exc.status_code, titles.get(exc.status_code, "HTTP error"), detail,
                       instance=request.url.path, fix=fix,
                       headers=getattr(exc, "headers", None))

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        incident = uuid.uuid4().hex[:12]
        # Type only: exception text may quote chart content, which never goes to the logs.
        log.error("unexpected %s on %s %s (incident %s)", type(exc).__name__, request.method,
                  request.url.path, incident)
        return problem(500, "Internal error", f"an unexpected error happened (incident "
                       f"{incident})", instance=request.url.path,
                       fix="retry; if it persists, report the incident id")

    app.add_exception_handler(ChartdraftError, on_ours)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
