"""A real FHIR server for tests: fhirsnake (PyPI) under uvicorn on a free loopback port.

fhirsnake serves resources from a folder and supports read, search by ``_id``, create (POST
/{type}) and update (PUT /{type}/{id}) in memory. It has no transaction endpoint (POST on the base
answers 405), no paging and no search by patient: see the tests that rely on which of these.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def fhirsnake_python() -> Path:
    """fhirsnake pins an old FastAPI, so `make install` gives it its own venv under .cache/."""
    py = REPO / ".cache" / "fhirsnake-venv" / "bin" / "python"
    if not py.exists():
        import pytest

        pytest.skip("fhirsnake venv missing: run `make install` (it builds .cache/fhirsnake-venv)")
    return py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


@contextmanager
def fhirsnake(root: Path, resources: list[dict[str, Any]] | None = None,
              port: int | None = None) -> Iterator[str]:
    """Start fhirsnake serving ``resources`` (written under root/resources); yields the base URL."""
    python = fhirsnake_python()
    res_dir = root / "resources"
    res_dir.mkdir(parents=True, exist_ok=True)
    (res_dir / "Patient").mkdir(exist_ok=True)  # at least one type, so the index is not empty
    for r in resources or []:
        d = res_dir / r["resourceType"]
        d.mkdir(exist_ok=True)
        (d / f"{r['id']}.json").write_text(json.dumps(r))
    port = port or free_port()
    venv_lib = REPO / ".cache" / "fhirsnake-venv" / "lib"
    app_dir = next(venv_lib.glob("python*/site-packages/fhirsnake"))
    proc = subprocess.Popen(
        [str(python), "-m", "uvicorn", "main:app", "--app-dir", str(app_dir),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + "/", proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
