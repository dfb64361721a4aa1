"""Load charts from a FHIR server by base URL: ``Patient/$everything`` or per-type searches.

Paging follows ``link[relation=next]``. A server that does not support ``$everything`` (404, 400,
405, 501) is asked per resource type instead (``Condition?patient=ID``...). Because some small
servers ignore search parameters, every resource that names a different patient is dropped: a
chart never receives another patient's data. Connection failures and refused credentials raise
``StoreError``; an error answer to one search becomes a ``LoadIssue`` and the rest goes on.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

import httpx

from retrieval.errors import BadInput, StoreError
from retrieval.fhir_ids import is_fhir_id
from retrieval.fhir_load import LoadIssue, LoadResult, dedupe, iter_refs, load_json

DEFAULT_TYPES = [
    "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance", "Observation",
    "DiagnosticReport", "Procedure", "Immunization", "DocumentReference", "CarePlan", "Coverage",
    "ServiceRequest", "Appointment",
]
# Resources a chart points at but that belong to no patient; fetched by id afterwards.
_DIRECTORY_TYPES = ("Medication", "Practitioner", "Organization")
_UNSUPPORTED = {400, 404, 405, 422, 501}
MAX_PAGES = 1000  # a server whose next links loop forever must not hang us


def load_server(
    base_url: str,
    *,
    token: str | None = None,
    patient_ids: list[str] | None = None,
    resource_types: list[str] | None = None,
    use_everything: bool = True,
    client: httpx.Client | None = None,
    timeout: float = 30,
) -> LoadResult:
    """Every chart (or the charts of ``patient_ids``) on the server at ``base_url``."""
    base = base_url.rstrip("/") + "/"
    for pid in patient_ids or []:
        if not is_fhir_id(pid):
            raise BadInput(f"patient id {pid[:80]!r} is not a FHIR id", where="patient ids",
                           fix="give the Patient's logical id (1-128 of A-Z a-z 0-9 - .)")
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        return _Loader(http, base, headers, resource_types or DEFAULT_TYPES).run(
            patient_ids, use_everything)
    finally:
        if own:
            http.close()


class _Loader:
    """One load: the HTTP client, and whether ``$everything`` turned out to work."""

    def __init__(self, http: httpx.Client, base: str, headers: dict[str, str],
                 types: list[str]) -> None:
        self.http, self.base, self.headers, self.types = http, base, headers, types
        self.everything_ok: bool | None = None

    def run(self, patient_ids: list[str] | None, use_everything: bool) -> LoadResult:
        result = LoadResult()
        if patient_ids is None:
            listed = self.search("Patient")
            result.extend(listed)
            patient_ids = sorted(listed.patient_ids())
        for pid in patient_ids:
            result.extend(self.one_patient(pid, use_everything))
        result.extend(self.directory(result))
        return dedupe(result)

    def one_patient(self, pid: str, use_everything: bool) -> LoadResult:
        if use_everything and self.everything_ok is not False:
            got = self.pages(f"{self.base}Patient/{pid}/$everything", probe=True)
            if got is not None:
                self.everything_ok = True
                return _only_patient(got, pid)
            self.everything_ok = False  # the server said no: stop asking for every patient
        result = LoadResult()
        patient = self.pages(f"{self.base}Patient/{pid}")
        if patient is not None:
            result.extend(patient)
        for rtype in self.types:
            result.extend(self.search(rtype, {"patient": pid}))
        return _only_patient(result, pid)

    def search(self, rtype: str, params: dict[str, str] | None = None) -> LoadResult:
        url = str(httpx.URL(f"{self.base}{rtype}", params=params or {}))
        return self.pages(url) or LoadResult()

    def directory(self, loaded: LoadResult) -> LoadResult:
        """Fetch the Medication/Practitioner/Organization resources the charts point at."""
        have = {r.ref for r in loaded.resources}
        wanted = sorted({ref for r in loaded.resources for ref in iter_refs(r.resource)
                         if ref.startswith(_DIRECTORY_TYPES) and "/" in ref.split("?")[0]}
                        - have)  # "Medication?code=..." is a conditional reference, not an id
        out = LoadResult()
        for ref in wanted:
            rtype, _, rid = ref.split("/_history/")[0].partition("/")  # a versioned ref is fine
            if not is_fhir_id(rid):  # it goes into the URL path: never let it change the path
                out.issues.append(LoadIssue(self.base, ref[:80], rtype, None,
                                            "reference id is not a FHIR id; not fetched"))
                continue
            got = self.pages(f"{self.base}{ref}", quiet_404=True)
            if got is not None:
                out.extend(got)
        return out

    def pages(self, url: str, *, probe: bool = False, quiet_404: bool = False) -> LoadResult | None:
        """GET ``url`` and every next page. None when the first answer is an error we can
        route around (``probe``: unsupported operation; ``quiet_404``: gone)."""
        result = LoadResult()
        seen: set[str] = set()
        next_url: str | None = url
        page = 0
        while next_url and next_url not in seen and page < MAX_PAGES:
            seen.add(next_url)
            resp = self._get(next_url)
            if resp.status_code >= 400:
                if page == 0 and ((probe and resp.status_code in _UNSUPPORTED)
                                  or (quiet_404 and resp.status_code == 404)):
                    return None
                result.issues.append(LoadIssue(next_url, f"HTTP {resp.status_code}", None, None,
                                               _outcome_text(resp)))
                return result
            try:
                body = resp.json()
            except ValueError:
                result.issues.append(LoadIssue(next_url, f"page {page + 1}", None, None,
                                               "the server answered with something that is not "
                                               "JSON"))
                return result
            result.extend(load_json(body, source=next_url))
            next_url = _next_link(body, next_url)
            page += 1
        return result

    def _get(self, url: str) -> httpx.Response:
        try:
            resp = self.http.get(url, headers=self.headers)
        except httpx.TimeoutException as exc:
            raise StoreError(f"the FHIR server timed out on {url}", where=self.base,
                             fix="try again, or raise the timeout") from exc
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the FHIR server ({exc.__class__.__name__})",
                             where=self.base, fix="check the base URL and the network") from exc
        if resp.status_code in (401, 403):
            raise StoreError(f"the FHIR server refused the request (HTTP {resp.status_code}): "
                             f"{_outcome_text(resp)}", where=url,
                             fix="pass a valid bearer token (--token) with read scopes")
        return resp


def _next_link(body: Any, current: str) -> str | None:
    if not isinstance(body, dict):
        return None
    for link in body.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return urljoin(current, str(link["url"]))
    return None


def _outcome_text(resp: httpx.Response) -> str:
    """The diagnostics of an OperationOutcome, else the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200] or resp.reason_phrase
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        parts = [i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code")
                 for i in body.get("issue") or [] if isinstance(i, dict)]
        return "; ".join(p for p in parts if p) or "OperationOutcome without details"
    return str(body)[:200]


def _only_patient(result: LoadResult, pid: str) -> LoadResult:
    """Drop resources that belong to another patient (servers that ignore ``?patient=``)."""
    kept = [r for r in result.resources if r.patient_id in (None, pid)]
    dropped = len(result.resources) - len(kept)
    # Resources without a patient are only kept if they are directory entries.
    kept = [r for r in kept if r.patient_id == pid or r.resource_type in _DIRECTORY_TYPES]
    out = LoadResult(resources=kept, issues=result.issues, notices=list(result.notices))
    if dropped:
        out.notices.append(f"Patient/{pid}: the server returned {dropped} resource(s) of other "
                           "patients; they were dropped")
    return out
