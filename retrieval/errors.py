"""The one error hierarchy of chartdraft.

Every layer raises these; only ``assistant.problems`` turns them into HTTP problem responses
(RFC 9457) and the CLI into exit codes. They live in the lowest layer so every layer can raise them
without importing upward.

    ChartdraftError                 base; ``status`` is the HTTP status it maps to
    ├── BadInput          (400)     a request or file we cannot use; says what, where, how to fix
    │   └── ChartError    (422)     FHIR content that is malformed or not R4
    ├── NotFound          (404)     unknown patient, draft, evidence (or not visible to the caller)
    ├── Conflict          (409)     a state change that is not allowed now (sign with open flags)
    ├── AuthError         (401)     missing or invalid credentials
    │   └── Forbidden     (403)     valid credentials, wrong role
    ├── ModelUnavailable  (503)     the LLM backend is down, slow, or its circuit is open
    ├── CheckFailed       (422)     a guardrail refused (PHI detection could not run: fail closed)
    └── StoreError        (503)     the index, database or FHIR server could not be reached
"""

from __future__ import annotations


class ChartdraftError(Exception):
    """Base of every error chartdraft raises on purpose."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str, *, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        parts = [self.detail]
        if self.where:
            parts.append(f"(at {self.where})")
        if self.fix:
            parts.append(f"— {self.fix}")
        return " ".join(parts)


class BadInput(ChartdraftError):
    status = 400
    title = "Bad input"


class ChartError(BadInput):
    status = 422
    title = "Unusable FHIR content"


class NotFound(ChartdraftError):
    status = 404
    title = "Not found"


class Conflict(ChartdraftError):
    status = 409
    title = "Conflict"


class AuthError(ChartdraftError):
    status = 401
    title = "Not authenticated"


class Forbidden(AuthError):
    status = 403
    title = "Forbidden"


class ModelUnavailable(ChartdraftError):
    status = 503
    title = "Model unavailable"


class CheckFailed(ChartdraftError):
    status = 422
    title = "Check failed"


class StoreError(ChartdraftError):
    status = 503
    title = "Store unavailable"
