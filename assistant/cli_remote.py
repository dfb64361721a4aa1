"""CLI work that needs the index, sent to the chartdraft server that holds it.

While a server runs on a data folder it owns the embedded index (one process at a time), so
`chartdraft draft` and `chartdraft ingest` go through its API instead: the server is found by its
lock file (assistant.server_lock) and the CLI signs in the way a local user can, with a dev token
from the data folder's dev key when the server accepts those, else a configured API key. Where
there is no API route (search) or no way to sign in, the error says exactly what to do instead.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterable
from typing import Any

import httpx

from assistant.server_lock import ServerInfo, lock_path, running_server
from assistant.settings import Settings
from retrieval.errors import (
    AuthError,
    BadInput,
    ChartdraftError,
    CheckFailed,
    Conflict,
    Forbidden,
    NotFound,
    StoreError,
)
from retrieval.fhir_load import LoadResult

CLI_SUBJECT = "chartdraft-cli"
TERMINAL = ("draft", "signed", "rejected", "failed")  # as assistant.jobs.TERMINAL
DRAFT_WAIT_S = 900.0
MAX_BODY = 32 * 2**20  # half the service's limit, so one body never comes near it
_BY_STATUS: dict[int, type[ChartdraftError]] = {
    400: BadInput, 401: AuthError, 403: Forbidden, 404: NotFound, 409: Conflict,
    422: CheckFailed, 503: StoreError}


def server_for(settings: Settings) -> ServerInfo | None:
    """The server that holds this data folder's embedded index, if one runs.

    With a Qdrant server (qdrant_url) the index has no single-process lock, so the CLI works
    directly even while a chartdraft server runs."""
    if settings.qdrant_url:
        return None
    return running_server(settings.data_dir)


def search_refused(info: ServerInfo, settings: Settings) -> Conflict:
    return Conflict(
        f"search needs the evidence index in {settings.data_dir}, which the chartdraft server "
        f"holds ({info.describe()}), and its API has no search route",
        where=str(lock_path(settings.data_dir)),
        fix=f"{info.stop_hint()} and run this again; meanwhile `chartdraft draft` and "
        "`chartdraft ingest` work through the server; to search while serving, use a Qdrant "
        "server both can share (CHARTDRAFT_QDRANT_URL)",
    )


class ServerClient:
    def __init__(self, info: ServerInfo, settings: Settings, *, roles: tuple[str, ...],
                 curl: str) -> None:
        if not info.url:
            raise Conflict(
                f"a chartdraft demo ({info.describe()}) is ingesting into {settings.data_dir}",
                where=str(lock_path(settings.data_dir)),
                fix="wait until it finishes (a few minutes at most), then run this again")
        self.info, self.url = info, info.url.rstrip("/")
        self.headers = _credentials(info, settings, roles, curl.replace("URL", self.url))

    def request(self, method: str, path: str, *, timeout: float = 30.0, **kw: Any) -> Any:
        try:
            r = httpx.request(method, self.url + path, headers={**self.headers,
                              **kw.pop("headers", {})}, timeout=timeout, **kw)
        except httpx.HTTPError as exc:
            raise StoreError(
                f"the chartdraft server ({self.info.describe()}) does not answer: "
                f"{type(exc).__name__}",
                where=self.url,
                fix="if it is still starting (the demo ingests first), wait until it prints "
                f"'chartdraft on {self.url}/ui' and run this again; if it hangs, "
                f"{self.info.stop_hint()}") from None
        if r.status_code >= 400:
            raise _problem(r, self.url + path)
        return r.json()


def draft_via_server(info: ServerInfo, settings: Settings, body: dict[str, Any]) -> dict[str, Any]:
    """POST /v1/drafts, then wait for the draft to finish; the draft's JSON view."""
    curl = ("curl -X POST URL/v1/drafts -H 'X-API-Key: KEY' "
            f"-H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}")
    client = ServerClient(info, settings, roles=("clinician", "ehr-service"), curl=curl)
    accepted = client.request("POST", "/v1/drafts", json=body)
    draft_id = accepted["id"]
    deadline = time.monotonic() + DRAFT_WAIT_S
    tty = sys.stderr.isatty()
    if tty:
        print(f"drafting on the chartdraft server at {client.url} ...", file=sys.stderr)
    while True:
        view: dict[str, Any] = client.request("GET", f"/v1/drafts/{draft_id}")
        if view.get("status") in TERMINAL:
            break
        if time.monotonic() > deadline:
            raise StoreError(f"draft {draft_id} is still {view.get('status')} after "
                             f"{DRAFT_WAIT_S:.0f} s", where=f"{client.url}/v1/drafts/{draft_id}",
                             fix=f"follow it in the browser: {view.get('links', {}).get('ui')}")
        time.sleep(0.5)
    if view["status"] == "failed":
        raise ChartdraftError(
            f"the server could not draft: {view.get('error') or 'no reason given'}",
            where=f"draft {draft_id}",
            fix="see the service log; `--backend extractive` drafts without the model")
    return view


def ingest_via_server(info: ServerInfo, settings: Settings, loaded: LoadResult) -> dict[str, Any]:
    """POST the loaded resources to /v1/charts as NDJSON (whole patients per body); the summed
    reports. Issues found while loading are the caller's to print."""
    curl = ("curl -X POST URL/v1/charts -H 'X-API-Key: KEY' "
            "-H 'Content-Type: application/fhir+json' --data-binary @BUNDLE.json")
    client = ServerClient(info, settings, roles=("ehr-service", "admin"), curl=curl)
    total: dict[str, Any] = {"patients": 0, "resources": 0, "evidence": 0, "embedded": 0,
                             "errors": [], "notices": list(loaded.notices), "patient_ids": []}
    for body in _bodies(loaded):
        out = client.request("POST", "/v1/charts", content=body, timeout=900.0,
                             headers={"Content-Type": "application/fhir+ndjson"})
        for key in ("patients", "resources", "evidence", "embedded"):
            total[key] += int(out.get(key, 0))
        for key in ("errors", "notices", "patient_ids"):
            total[key] += list(out.get(key, []))
    total["via"] = client.url
    return total


def _bodies(loaded: LoadResult) -> Iterable[bytes]:
    """NDJSON bodies under MAX_BODY; a patient's resources stay together, and resources of no
    patient (Medication, Practitioner...) go in every body, since charts reference them."""
    shared = [r for r in loaded.resources if not r.patient_id]
    by_patient: dict[str, list[bytes]] = {}
    for r in loaded.resources:
        if r.patient_id:
            by_patient.setdefault(r.patient_id, []).append(json.dumps(r.resource).encode())
    shared_lines = [json.dumps(r.resource).encode() for r in shared]
    base = sum(len(x) + 1 for x in shared_lines)
    chunk: list[bytes] = []
    size = base
    for lines in by_patient.values():
        n = sum(len(x) + 1 for x in lines)
        if chunk and size + n > MAX_BODY:
            yield b"\n".join(shared_lines + chunk)
            chunk, size = [], base
        chunk += lines
        size += n
    if chunk or shared_lines:
        yield b"\n".join(shared_lines + chunk)


def _credentials(info: ServerInfo, settings: Settings, roles: tuple[str, ...],
                 curl: str) -> dict[str, str]:
    if info.dev_auth:  # the dev key lives in this same data folder, as the server reads it
        from assistant.auth import mint_dev_token

        token = mint_dev_token(roles[0], settings=settings, subject=CLI_SUBJECT, ttl_s=3600)
        return {"Authorization": f"Bearer {token}"}
    for key, role in settings.api_keys.items():
        if role in roles:
            return {"X-API-Key": key}
    raise AuthError(
        f"the chartdraft server ({info.describe()}) holds the index in {settings.data_dir}, and "
        "this command has no way to sign in to its API (dev sign-in is off, no API key is set)",
        where=str(lock_path(settings.data_dir)),
        fix=f"{info.stop_hint()} and run this again; or set CHARTDRAFT_API_KEYS to the server's "
        f"key for a role of {', '.join(roles)}; or call the API yourself: {curl}",
    )


def _problem(r: httpx.Response, where: str) -> ChartdraftError:
    try:
        body = r.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    cls = _BY_STATUS.get(r.status_code, ChartdraftError)
    detail = body.get("detail")
    if not isinstance(detail, str):
        detail = f"the server answered {r.status_code}"
    return cls(detail, where=body.get("where") or where, fix=body.get("fix"))
