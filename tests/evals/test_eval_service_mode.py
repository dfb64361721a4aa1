"""`chartdraft eval run SUITE --service URL`: the smoke suite drafted by a running service.

The real service runs under uvicorn on a free loopback port (its own data dir, extractive
backend, dev auth). The runner POSTs the suite's charts to /v1/charts and asks for each draft
through /v1/drafts, so this measures the service exactly as an EHR would use it; the in-process
run of the same suite must give the same headline safety numbers (same charts, same pipeline).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from api_service import _wait_up  # noqa: E402  (the API tests' start-up wait, reused)
from fhirsnake_server import free_port  # noqa: E402

from assistant.auth import mint_dev_token  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from evals.runner import RunConfig, _bodies, run  # noqa: E402
from evals.schema import problems  # noqa: E402
from retrieval.errors import BadInput, ChartdraftError  # noqa: E402

SAFETY = ("unsupported_final", "omission", "forbidden_hit", "phi_leak", "injection_success")


@dataclass
class Running:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path
    up: bool = False

    def ready(self) -> Running:
        """Wait for start-up only when first needed: it overlaps the in-process run."""
        if not self.up:
            _wait_up(self.url, self.proc, self.log)
            self.up = True
        return self

    def token(self, role: str = "ehr-service") -> str:
        return mint_dev_token(role, settings=Settings(data_dir=self.data_dir, dev_auth=True))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("eval-service")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({"CHARTDRAFT_DATA_DIR": str(root / "data"), "CHARTDRAFT_BACKEND": "extractive",
                "CHARTDRAFT_DEV_AUTH": "true", "CHARTDRAFT_PUBLIC_URL": url})
    for k in ("CHARTDRAFT_DATABASE_URL", "CHARTDRAFT_FHIR_SERVER_URL", "CHARTDRAFT_API_KEYS"):
        env.pop(k, None)
    log = root / "service.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "assistant.api.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        yield Running(url=url, data_dir=root / "data", proc=proc, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def both_runs(service: Running, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    in_process = run(RunConfig(suite="smoke", out=tmp_path_factory.mktemp("smoke-inproc"),
                               backends=["extractive"], checker=False))
    out = tmp_path_factory.mktemp("smoke-service")
    via_service = run(RunConfig(suite="smoke", out=out, backends=["extractive"],
                                service=service.ready().url, token=service.token(),
                                checker=False))
    return out, via_service, in_process


def test_service_run_is_valid_and_scored(service: Running, both_runs: tuple[
        Path, dict[str, Any], dict[str, Any]]) -> None:
    out, results, _ = both_runs
    assert problems(json.loads((out / "results.json").read_text())) == []
    assert results["manifest"]["service"] == service.url
    cases = results["cases"]
    assert len(cases) == 3
    assert all(c["status"] == "ok" for c in cases), [c.get("error") for c in cases]
    for c in cases:
        m = c["metrics"]
        assert m["citation_coverage"][1] > 0  # clinical statements were scored
        assert m["statements_cited"][0] > 0  # against the evidence the service returned
        assert m["omission"][1] > 0  # and required facts looked for in them
        assert m["unsupported_generated"][1] > 0  # statements as streamed by the service
        assert m["injection_success"] is not None and m["phi_leak"][1] == 1
        assert c["statements"] and c["timings"]["wall"] > 0


def test_service_gives_the_in_process_safety_numbers(
        both_runs: tuple[Path, dict[str, Any], dict[str, Any]]) -> None:
    _, via_service, in_process = both_runs
    a = via_service["runs"]["extractive"]["aggregate"]
    b = in_process["runs"]["extractive"]["aggregate"]
    for name in SAFETY:
        assert (a[name]["k"], a[name]["n"]) == (b[name]["k"], b[name]["n"]), name
    # extractive drafting is deterministic: every metric of every case agrees
    svc = {c["case_id"]: c["metrics"] for c in via_service["cases"]}
    local = {c["case_id"]: c["metrics"] for c in in_process["cases"]}
    assert svc == local


@pytest.mark.parametrize("role", [None, "clinician"])
def test_bad_token_is_a_clear_error(service: Running, tmp_path: Path, role: str | None) -> None:
    token = service.token(role) if role else "not-a-token"
    with pytest.raises(ChartdraftError) as exc:  # 401 / 403 (a clinician cannot ingest charts)
        run(RunConfig(suite="smoke", out=tmp_path, backends=["extractive"],
                      service=service.ready().url, token=token, checker=False))
    err = exc.value
    assert err.status == (403 if role else 401)
    assert err.where == "--token" and err.fix and "ehr-service" in err.fix
    assert not (tmp_path / "cases.jsonl").exists()


def test_no_service_at_the_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as exc:
        run(RunConfig(suite="smoke", out=tmp_path, backends=["extractive"],
                      service=f"http://127.0.0.1:{free_port()}", token="t", checker=False))
    assert exc.value.where == "--service" and exc.value.fix


def test_backend_the_service_refuses_fails_before_anything_runs(service: Running,
                                                                tmp_path: Path) -> None:
    with pytest.raises(BadInput) as exc:
        run(RunConfig(suite="smoke", out=tmp_path, backends=["cqe-embedded"],
                      service=service.url, token=service.token(), checker=False))
    assert exc.value.where == "--backend" and exc.value.fix
    assert not list(tmp_path.iterdir())  # nothing written, nothing posted


def test_ndjson_export_is_posted_as_one_body(tmp_path: Path) -> None:
    """A bulk export's files refer to each other: the service must get them together, as the
    in-process loader reads them (and .gz and .jsonl too)."""
    (tmp_path / "Patient.000.ndjson").write_text('{"resourceType": "Patient", "id": "a"}')
    (tmp_path / "Encounter.000.ndjson.gz").write_bytes(
        gzip.compress(b'{"resourceType": "Encounter", "id": "e"}\n'))
    (tmp_path / "Location.jsonl").write_text('{"resourceType": "Location", "id": "l"}\n')
    (tmp_path / "bundle.json").write_text('{"resourceType": "Bundle", "type": "collection"}')
    (tmp_path / "notes.txt").write_text("not FHIR")
    bodies = _bodies(tmp_path)
    assert sorted(ct for ct, _ in bodies) == ["application/fhir+json", "application/fhir+ndjson"]
    nd = next(b for ct, b in bodies if ct.endswith("ndjson"))
    assert [json.loads(x)["id"] for x in nd.splitlines()] == ["e", "l", "a"]
