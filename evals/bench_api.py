"""API latency at 50 concurrent clients: GET /v1/patients/{id}/summary and a CDS Hooks
patient-view call, against the real service (uvicorn on loopback, extractive backend).

    python -m evals.bench api        # via the bench runner (make bench)
    python -m evals.bench_api        # alone

Prints p50/p95 (ms) per endpoint, and the service's CPU time per request (Linux): latency at 50
clients is mostly queueing behind that CPU, and unlike latency it hardly moves when something else
loads the machine, so compare it too when measuring a change. The summary is warmed first, so it
measures the stored-summary path an EHR hits on every chart open; the CDS call measures the
answer the EHR waits for (the draft itself is generated in the background, as the spec's async
pattern intends).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

CLIENTS = 50
ROUNDS = 6  # requests per client per endpoint
EHR_KEY = "bench-ehr-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


async def _hammer(url: str, make: Any, clients: int, rounds: int) -> tuple[list[float], int]:
    times: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
        async def one(i: int) -> None:
            nonlocal errors
            for _ in range(rounds):
                method, path, kw = make(i)
                t0 = time.perf_counter()
                r = await c.request(method, path, **kw)
                times.append((time.perf_counter() - t0) * 1000)
                if r.status_code >= 400:
                    errors += 1
        await asyncio.gather(*(one(i) for i in range(clients)))
    return times, errors


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), from /proc; None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    from retrieval.synth import generate

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, CHARTDRAFT_DATA_DIR=str(data), CHARTDRAFT_BACKEND="extractive",
                   CHARTDRAFT_DEV_AUTH="true", CHARTDRAFT_PUBLIC_URL=url,
                   CHARTDRAFT_API_KEYS=json.dumps({EHR_KEY: "ehr-service"}))
        for k in ("CHARTDRAFT_DATABASE_URL", "CHARTDRAFT_CDS_ISSUERS", "CHARTDRAFT_CONFIG"):
            env.pop(k, None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "assistant.api.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 90
            while True:
                try:
                    if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("service did not start")
                time.sleep(0.3)
            ehr = {"X-API-Key": EHR_KEY}
            pids: list[str] = []
            t0 = time.perf_counter()
            for b in generate(3, 5):
                r = httpx.post(url + "/v1/charts", content=json.dumps(b), headers=ehr,
                               timeout=300)
                r.raise_for_status()
                pids += r.json()["patient_ids"]
            print(f"ingested {len(pids)} synthetic patients in {time.perf_counter() - t0:.1f}s")
            for pid in pids:  # warm: one current summary per patient
                r = httpx.get(f"{url}/v1/patients/{pid}/summary", params={"wait": 60},
                              headers=ehr, timeout=120)
                r.raise_for_status()

            def summary(i: int) -> tuple[str, str, dict[str, Any]]:
                return "GET", f"/v1/patients/{pids[i % len(pids)]}/summary", {"headers": ehr}

            def cds(i: int) -> tuple[str, str, dict[str, Any]]:
                body = {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
                        "context": {"userId": "Practitioner/bench",
                                    "patientId": pids[i % len(pids)]}}
                return "POST", "/cds-services/chartdraft-patient-view", {"json": body}

            for name, make in (("GET /v1/patients/{id}/summary", summary),
                               ("POST /cds-services/chartdraft-patient-view", cds)):
                cpu0 = _cpu_s(proc.pid)
                times, errors = asyncio.run(_hammer(url, make, CLIENTS, ROUNDS))
                cpu1 = _cpu_s(proc.pid)
                cpu = "" if cpu0 is None or cpu1 is None else \
                    f"  server_cpu={(cpu1 - cpu0) * 1000 / len(times):5.1f} ms/req"
                print(f"{name:46s} clients={CLIENTS} n={len(times)} "
                      f"p50={_pct(times, 0.5):7.1f} ms  p95={_pct(times, 0.95):7.1f} ms  "
                      f"median={statistics.median(times):7.1f} ms  errors={errors}{cpu}",
                      flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
