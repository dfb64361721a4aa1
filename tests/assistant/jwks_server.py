"""A real JWKS endpoint on loopback (http.server) and RSA keys, for the auth and CDS JWT tests."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa


class KeyPair:
    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or uuid.uuid4().hex[:8]
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, Any]:
        d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        d.update(kid=self.kid, alg="RS256", use="sig")
        return dict(d)

    def sign(self, claims: dict[str, Any], headers: dict[str, Any] | None = None,
             ttl: int = 300) -> str:
        now = int(time.time())
        body = {"iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex, **claims}
        body = {k: v for k, v in body.items() if v is not None}  # None = leave the claim out
        return jwt.encode(body, self.private, algorithm="RS256",
                          headers={"kid": self.kid, "typ": "JWT", **(headers or {})})


@contextmanager
def jwks_server(*keys: KeyPair) -> Iterator[str]:
    """Serve {"keys": [...]} at http://127.0.0.1:PORT/jwks.json; yields the base URL."""
    body = json.dumps({"keys": [k.jwk() for k in keys]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            code = 200 if self.path.startswith("/jwks.json") else 404
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            if code == 200:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
