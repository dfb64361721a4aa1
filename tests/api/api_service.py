"""The real service on loopback, for the API tests: uvicorn in a subprocess (free port, temp
data dir, extractive backend, dev auth on, an EHR API key), a real FHIR server (fhirsnake) for
write-back, a JWKS for the CDS client, and synthetic charts from retrieval.synth ingested through
POST /v1/charts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "assistant"))

from fhirsnake_server import fhirsnake, free_port  # noqa: E402
from jwks_server import KeyPair, jwks_server  # noqa: E402

from assistant.auth import mint_dev_token  # noqa: E402
from assistant.settings import Settings  # noqa: E402

EHR_KEY = "ehr-test-key-0123456789"


@dataclass
class Service:
    url: str
    data_dir: Path
    fhir_url: str
    cds_key: KeyPair
    cds_issuer: str
    bundles: list[dict[str, Any]]
    patient_ids: list[str] = field(default_factory=list)
    log: Path | None = None

    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, dev_auth=True)

    def token(self, role: str, patient: str | None = None, **kw: Any) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint_dev_token(role, patient,
                                                            settings=self.settings(), **kw)}

    def client(self, headers: dict[str, str] | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers or {}, timeout=60)

    def cds_jwt(self, service_id: str, **claims: Any) -> dict[str, str]:
        tok = self.cds_key.sign({"iss": self.cds_issuer, "sub": "ehr-client",
                                 "aud": f"{self.url}/cds-services/{service_id}", **claims},
                                headers={"jku": f"{self.cds_issuer}/jwks.json"})
        return {"Authorization": f"Bearer {tok}"}


def _wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("service did not start in 90 s")


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from retrieval.synth import generate

    root = tmp_path_factory.mktemp("service")
    bundles = generate(4, 11)
    key = KeyPair("ehr-cds-1")
    with jwks_server(key) as issuer, fhirsnake(root / "fhir") as fhir_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ)
        env.update({
            "CHARTDRAFT_DATA_DIR": str(root / "data"),
            "CHARTDRAFT_BACKEND": "extractive",
            "CHARTDRAFT_DEV_AUTH": "true",
            "CHARTDRAFT_API_KEYS": json.dumps({EHR_KEY: "ehr-service"}),
            "CHARTDRAFT_PUBLIC_URL": url,
            "CHARTDRAFT_FHIR_SERVER_URL": fhir_url,
            "CHARTDRAFT_CDS_ISSUERS": json.dumps([issuer]),
        })
        env.pop("CHARTDRAFT_DATABASE_URL", None)
        if os.environ.get("CHARTDRAFT_TEST_POSTGRES_URL"):
            env["CHARTDRAFT_DATABASE_URL"] = os.environ["CHARTDRAFT_TEST_POSTGRES_URL"]
            from sqlalchemy import create_engine

            from assistant.store.schema import metadata

            eng = create_engine(env["CHARTDRAFT_DATABASE_URL"])
            metadata.drop_all(eng)
            eng.dispose()
        log = root / "service.log"
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "assistant.api.app:create_app", "--factory",
                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                env=env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            _wait_up(url, proc, log)
            svc = Service(url=url, data_dir=root / "data", fhir_url=fhir_url, cds_key=key,
                          cds_issuer=issuer, bundles=bundles, log=log)
            with svc.client({"X-API-Key": EHR_KEY}) as c:
                for b in bundles[:3]:  # the 4th is kept back for the CDS prefetch test
                    r = c.post("/v1/charts", content=json.dumps(b),
                               headers={"Content-Type": "application/fhir+json"})
                    assert r.status_code == 200, r.text
                    svc.patient_ids += r.json()["patient_ids"]
            yield svc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
