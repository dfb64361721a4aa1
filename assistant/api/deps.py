"""Dependency aliases (FastAPI full-stack template style): Svc, Rt, DbSession, CurrentUser."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from assistant.api.snapshots import SnapshotCache
from assistant.audit import AuditEvent
from assistant.auth import Authenticator, Principal
from assistant.cds_jwt import CdsJwtVerifier
from assistant.jobs import Jobs
from assistant.runtime import Runtime
from assistant.settings import Settings
from assistant.store import Store


@dataclass
class Services:
    """Built once at start-up (create_app) and shared by every request."""

    settings: Settings
    rt: Runtime
    store: Store
    jobs: Jobs
    auth: Authenticator
    cds: CdsJwtVerifier
    outbox_wake: threading.Event = field(default_factory=threading.Event)
    snapshots: SnapshotCache = field(default_factory=SnapshotCache)

    def audit(self, p: Principal, action: str, **kw: Any) -> None:
        self.store.append_audit(AuditEvent(actor=p.subject, role=p.role, action=action, **kw))

    def has_patient(self, patient_id: str) -> bool:
        """Is this patient's chart loaded? One indexed read of their Patient evidence, where
        ChartStore.patient() parses every patient's row: this runs on every summary/CDS call."""
        return bool(self.rt.store.evidence_for(patient_id, ["Patient"]))


# Trivial dependencies are async so they run on the event loop: FastAPI sends every sync one
# to the threadpool, a hop per request that shows at 50 concurrent clients.
async def get_services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


_bearer = HTTPBearer(auto_error=False, description="JWT (SMART scopes) or a dev token")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Service API key")


# Sync on purpose (so in the threadpool): verifying a JWT may fetch the issuer's JWKS.
def current_user(
    svc: Annotated[Services, Depends(get_services)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    api_key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    auth = f"{bearer.scheme} {bearer.credentials}" if bearer else None
    return svc.auth.authenticate(auth, api_key)


async def get_runtime(svc: Annotated[Services, Depends(get_services)]) -> Runtime:
    return svc.rt


async def get_store(svc: Annotated[Services, Depends(get_services)]) -> Store:
    return svc.store


Svc = Annotated[Services, Depends(get_services)]
Rt = Annotated[Runtime, Depends(get_runtime)]
DbSession = Annotated[Store, Depends(get_store)]
CurrentUser = Annotated[Principal, Depends(current_user)]
