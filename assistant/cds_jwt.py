"""Verify the JWT a CDS client (the EHR) sends with each CDS Hooks call (CDS Hooks 2.0, Trust).

The spec: ``Authorization: Bearer <JWT>`` signed with an asymmetric key; header ``alg``, ``kid``,
``typ`` and optionally ``jku``; claims ``iss``, ``aud`` (the service endpoint URL), ``exp`` (at most
five minutes ahead), ``iat``, ``jti`` (unique: a replayed token is refused).

Trusted issuers come from ``settings.cds_issuers``; each entry is ``ISSUER`` (keys from the token's
``jku``, which must lie under ISSUER, so a token cannot point us at someone else's keys) or
``ISSUER JWKS_URL`` (keys from that URL only). The development issuer (``chartdraft-dev``, the local
dev key) is accepted only when ``dev_auth`` is on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from retrieval.errors import AuthError

ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]
MAX_LIFETIME_S = 300
LEEWAY_S = 30

JwksFetcher = Callable[[str], dict[str, Any]]


def parse_issuers(entries: list[str]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for e in entries:
        iss, _, url = e.strip().partition(" ")
        out[iss] = url.strip() or None
    return out


class ReplayCache:
    """jti values seen until their token expires. With ``claim`` (the service database's
    ``Store.claim_jti``) every worker and replica sharing the database refuses a replay;
    without it, only this process remembers."""

    def __init__(self, claim: Callable[[str, float], bool] | None = None) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._claim = claim

    def check_and_add(self, key: str, exp: float) -> bool:
        if self._claim is not None:
            return self._claim(key, exp + LEEWAY_S)
        now = time.time()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            if key in self._seen and self._seen[key] > now:
                return False
            self._seen[key] = exp + LEEWAY_S
            return True


class CachedJwks:
    """Fetch JWKS documents over HTTP, cached for a few minutes per URL."""

    def __init__(self, ttl_s: float = 300, timeout_s: float = 3.0) -> None:
        self.ttl_s, self.timeout_s = ttl_s, timeout_s
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> dict[str, Any]:
        with self._lock:
            hit = self._cache.get(url)
        if hit and hit[0] > time.time():
            return hit[1]
        try:
            resp = httpx.get(url, timeout=self.timeout_s)
            resp.raise_for_status()
            doc = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthError(f"cannot fetch the CDS client's keys ({type(exc).__name__})",
                            where="jku", fix="check the issuer's JWKS URL is reachable") from exc
        with self._lock:
            self._cache[url] = (time.time() + self.ttl_s, doc)
        return dict(doc)


class CdsJwtVerifier:
    def __init__(self, issuers: dict[str, str | None], *, fetch_jwks: JwksFetcher | None = None,
                 replay: ReplayCache | None = None, dev_key: Any = None) -> None:
        self.issuers = issuers
        self.fetch_jwks = fetch_jwks or CachedJwks()
        self.replay = replay or ReplayCache()
        self.dev_key = dev_key  # public key of the local dev key, only when dev_auth is on

    def verify(self, authorization: str | None, *, audience: str) -> dict[str, Any]:
        """Return the verified claims, or raise AuthError saying what was wrong."""
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError("CDS Hooks call without a bearer JWT", where="Authorization header",
                            fix="the CDS client must send 'Authorization: Bearer <JWT>'")
        token = authorization.split(" ", 1)[1].strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed CDS client JWT: {exc}", where="Authorization header",
                            fix="send a signed JWT") from exc
        if header.get("alg") not in ASYMMETRIC:
            raise AuthError(f"algorithm {header.get('alg')!r} is not accepted", where="JWT alg",
                            fix="sign with an asymmetric algorithm (ES384 or RS384)")
        iss = unverified.get("iss")
        key = self._key_for(str(iss), header)
        try:
            claims = jwt.decode(token, key, algorithms=ASYMMETRIC, audience=audience,
                                issuer=iss, leeway=LEEWAY_S,
                                options={"require": ["iss", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as exc:
            raise AuthError(f"CDS client JWT rejected: {exc}", where="Authorization header",
                            fix=f"aud must be {audience}; exp within five minutes") from exc
        if float(claims["exp"]) > time.time() + MAX_LIFETIME_S + LEEWAY_S:
            raise AuthError("CDS client JWT lives longer than five minutes", where="exp",
                            fix="set exp at most 5 minutes ahead")
        if not self.replay.check_and_add(f"{iss}|{claims['jti']}", float(claims["exp"])):
            raise AuthError("this CDS client JWT was already used", where="jti",
                            fix="send a fresh jti with every call")
        return dict(claims)

    def _key_for(self, iss: str, header: dict[str, Any]) -> Any:
        if iss == "chartdraft-dev" and self.dev_key is not None:
            return self.dev_key
        if iss not in self.issuers:
            raise AuthError(f"CDS client issuer {iss!r} is not trusted", where="iss",
                            fix="add it to CHARTDRAFT_CDS_ISSUERS")
        url = self.issuers[iss]
        if url is None:
            jku = header.get("jku")
            if not jku:
                raise AuthError("no jku in the JWT header and no JWKS configured for this issuer",
                                where="jku", fix="configure 'ISSUER JWKS_URL' in cds_issuers")
            if not str(jku).startswith(iss.rstrip("/") + "/"):
                raise AuthError("jku is not under the issuer's URL", where="jku",
                                fix="serve the JWKS under the issuer URL or configure it")
            url = str(jku)
        doc = self.fetch_jwks(url)
        kid = header.get("kid")
        for k in doc.get("keys", []):
            if kid is None or k.get("kid") == kid:
                try:
                    return jwt.PyJWK(k).key
                except jwt.PyJWTError:
                    continue
        raise AuthError(f"no key {kid!r} in the issuer's JWKS", where="kid",
                        fix="publish the signing key in the JWKS")
