"""CDS client JWTs: verified against a real JWKS on loopback, per the CDS Hooks 2.0 trust rules."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from jwks_server import KeyPair, jwks_server
from service_store_fixtures import BACKENDS, open_store

from assistant.cds_jwt import CdsJwtVerifier, ReplayCache, parse_issuers
from assistant.store import Store
from retrieval.errors import AuthError

AUD = "http://127.0.0.1:8000/cds-services/chartdraft-patient-view"


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return KeyPair("ehr-1")


@pytest.fixture(scope="module")
def base(key: KeyPair) -> Iterator[str]:
    with jwks_server(key) as url:
        yield url


def _verifier(base: str, mode: str = "jku") -> CdsJwtVerifier:
    entry = base if mode == "jku" else f"{base} {base}/jwks.json"
    return CdsJwtVerifier(parse_issuers([entry]))


def _tok(key: KeyPair, base: str, **claims: object) -> str:
    body: dict[str, object] = {"iss": base, "sub": "ehr-client", "aud": AUD}
    body.update(claims)
    return key.sign(body, headers={"jku": f"{base}/jwks.json"})


@pytest.mark.parametrize("mode", ["jku", "configured"])
def test_valid_token_accepted_once(key: KeyPair, base: str, mode: str) -> None:
    v = _verifier(base, mode)
    tok = _tok(key, base)
    assert v.verify(f"Bearer {tok}", audience=AUD)["sub"] == "ehr-client"
    with pytest.raises(AuthError, match="already used"):  # jti replay
        v.verify(f"Bearer {tok}", audience=AUD)


@pytest.mark.parametrize("claims, match", [
    ({"aud": "http://127.0.0.1:8000/cds-services/other"}, "rejected"),  # aud = this service
    ({"exp": int(time.time()) - 120}, "rejected"),                      # expired
    ({"exp": int(time.time()) + 3600}, "five minutes"),                 # lives too long
    ({"jti": None}, "rejected"),                                         # jti required
    ({"iss": "https://untrusted.test"}, "not trusted"),
])
def test_bad_tokens_refused(key: KeyPair, base: str, claims: dict[str, object],
                            match: str) -> None:
    with pytest.raises(AuthError, match=match):
        _verifier(base).verify(f"Bearer {_tok(key, base, **claims)}", audience=AUD)


def test_jku_outside_issuer_refused(key: KeyPair, base: str) -> None:
    tok = key.sign({"iss": base, "sub": "x", "aud": AUD},
                   headers={"jku": "http://127.0.0.2:1/jwks.json"})
    with pytest.raises(AuthError, match="jku"):
        _verifier(base).verify(f"Bearer {tok}", audience=AUD)


def test_symmetric_and_missing_tokens_refused(base: str) -> None:
    hs = jwt.encode({"iss": base, "aud": AUD, "exp": int(time.time()) + 60, "jti": "1",
                     "iat": int(time.time())}, "k" * 32, algorithm="HS256")
    with pytest.raises(AuthError, match="algorithm"):
        _verifier(base).verify(f"Bearer {hs}", audience=AUD)
    with pytest.raises(AuthError, match="without a bearer"):
        _verifier(base).verify(None, audience=AUD)


def test_key_not_in_jwks_refused(base: str) -> None:
    stranger = KeyPair("ehr-1")  # same kid, different key: the signature fails
    with pytest.raises(AuthError):
        _verifier(base).verify(f"Bearer {_tok(stranger, base)}", audience=AUD)


@pytest.fixture(params=BACKENDS)
def shared_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from open_store(request.param, tmp_path)


def test_a_replay_is_refused_by_every_worker_sharing_the_database(
        key: KeyPair, base: str, shared_db: Store, tmp_path: Path) -> None:
    # Two service workers: separate verifiers (and, for SQLite, separate connections to one file).
    other = Store(shared_db.url) if shared_db.url.startswith("sqlite") else shared_db
    a, b = (CdsJwtVerifier(parse_issuers([base]), replay=ReplayCache(claim=s.claim_jti))
            for s in (shared_db, other))
    tok = _tok(key, base)
    assert a.verify(f"Bearer {tok}", audience=AUD)["sub"] == "ehr-client"
    with pytest.raises(AuthError, match="already used"):
        b.verify(f"Bearer {tok}", audience=AUD)
    assert b.verify(f"Bearer {_tok(key, base)}", audience=AUD)  # a fresh jti is fine
    # An id whose token has expired may be recorded again.
    assert shared_db.claim_jti("iss|old", time.time() - 1)
    assert shared_db.claim_jti("iss|old", time.time() + 60)
    assert not other.claim_jti("iss|old", time.time() + 60)
    if other is not shared_db:
        other.close()
