"""Auth: JWTs against a real JWKS endpoint, the dev key, API keys, roles, scopes, patient scope."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from jwks_server import KeyPair, jwks_server

from assistant.auth import Authenticator, check_patient, mint_dev_token, require
from assistant.settings import Settings
from retrieval.errors import AuthError, Forbidden, NotFound

ISS = "https://idp.example.test"


@pytest.fixture(scope="module")
def key() -> KeyPair:
    return KeyPair("k1")


@pytest.fixture(scope="module")
def jwks(key: KeyPair) -> Iterator[str]:
    with jwks_server(key) as base:
        yield f"{base}/jwks.json"


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(data_dir=tmp_path, **kw)  # type: ignore[arg-type]


def _bearer(tok: str) -> str:
    return f"Bearer {tok}"


def test_jwks_token_accepted_with_role_scope_and_patient(tmp_path: Path, key: KeyPair,
                                                         jwks: str) -> None:
    auth = Authenticator(_settings(tmp_path, jwks_url=jwks, jwt_issuers=[ISS]))
    tok = key.sign({"iss": ISS, "sub": "dr-a", "aud": "chartdraft", "role": "clinician",
                    "scope": "patient/*.read", "patient": "p-1"})
    p = auth.authenticate(_bearer(tok), None)
    assert (p.subject, p.role, p.patient, p.method) == ("dr-a", "clinician", "p-1", "jwt")
    check_patient(p, "p-1")
    with pytest.raises(NotFound):  # not 403: another patient's existence is not revealed
        check_patient(p, "p-2")


@pytest.mark.parametrize("claims, why", [
    ({"iss": "https://evil.test"}, "untrusted issuer"),
    ({"aud": "someone-else"}, "wrong audience"),
    ({"exp": int(time.time()) - 60}, "expired"),
    ({"role": "superuser"}, "unknown role"),
    ({"scope": "patient/*.read", "patient": None}, "patient scope without patient"),
])
def test_bad_jwts_refused(tmp_path: Path, key: KeyPair, jwks: str, claims: dict[str, object],
                          why: str) -> None:
    auth = Authenticator(_settings(tmp_path, jwks_url=jwks, jwt_issuers=[ISS]))
    base: dict[str, object] = {"iss": ISS, "sub": "dr-a", "aud": "chartdraft",
                               "role": "clinician", "scope": "user/*.read"}
    base.update(claims)
    with pytest.raises(AuthError) as exc:
        auth.authenticate(_bearer(key.sign({k: v for k, v in base.items() if v is not None})),
                          None)
    assert exc.value.fix, why


def test_symmetric_and_unsigned_tokens_refused(tmp_path: Path, jwks: str) -> None:
    auth = Authenticator(_settings(tmp_path, jwks_url=jwks))
    claims = {"iss": ISS, "sub": "x", "aud": "chartdraft", "role": "admin",
              "exp": int(time.time()) + 60}
    for tok in (jwt.encode(claims, "secret-secret-secret-secret-1234", algorithm="HS256"),
                jwt.encode(claims, None, algorithm="none")):
        with pytest.raises(AuthError, match="algorithm"):
            auth.authenticate(_bearer(tok), None)


def test_unknown_kid_refused(tmp_path: Path, jwks: str) -> None:
    other = KeyPair("not-published")
    auth = Authenticator(_settings(tmp_path, jwks_url=jwks))
    tok = other.sign({"iss": ISS, "sub": "x", "aud": "chartdraft", "role": "admin"})
    with pytest.raises(AuthError):
        auth.authenticate(_bearer(tok), None)


def test_dev_key_refused_unless_enabled(tmp_path: Path) -> None:
    on, off = _settings(tmp_path, dev_auth=True), _settings(tmp_path, dev_auth=False)
    tok = mint_dev_token("clinician", settings=on)
    assert Authenticator(on).authenticate(_bearer(tok), None).method == "dev"
    with pytest.raises(AuthError, match="development tokens are refused"):
        Authenticator(off).authenticate(_bearer(tok), None)
    assert (tmp_path / "dev-signing-key.pem").stat().st_mode & 0o077 == 0


def test_dev_token_scoped_to_patient(tmp_path: Path) -> None:
    s = _settings(tmp_path, dev_auth=True)
    p = Authenticator(s).authenticate(_bearer(mint_dev_token("clinician", "p-9", settings=s)),
                                      None)
    assert p.patient == "p-9" and "patient/*.read" in p.scopes
    require(p, "draft.sign")


def test_api_keys(tmp_path: Path) -> None:
    auth = Authenticator(_settings(tmp_path, api_keys={"ehr-key-123": "ehr-service"}))
    p = auth.authenticate(None, "ehr-key-123")
    assert p.role == "ehr-service" and p.patient is None and p.method == "api-key"
    require(p, "draft.create")
    with pytest.raises(Forbidden):
        require(p, "draft.sign")
    with pytest.raises(AuthError):
        auth.authenticate(None, "wrong")
    with pytest.raises(AuthError, match="no credentials"):
        auth.authenticate(None, None)


@pytest.mark.parametrize("role, action, allowed", [
    ("clinician", "draft.sign", True),       # clinicians sign
    ("ehr-service", "draft.sign", False),    # a service never signs for a person
    ("safety", "draft.feedback", True),      # the safety team rates drafts
    ("safety", "draft.review", False),       # ...but does not edit them
    ("admin", "audit.read", True),           # only admins read the audit log
    ("clinician", "audit.read", False),
    ("ehr-service", "chart.ingest", True),   # the EHR pushes charts
    ("clinician", "chart.ingest", False),
])
def test_role_table(tmp_path: Path, role: str, action: str, allowed: bool) -> None:
    s = _settings(tmp_path, dev_auth=True)
    p = Authenticator(s).authenticate(_bearer(mint_dev_token(role, settings=s)), None)
    if allowed:
        require(p, action)
    else:
        with pytest.raises(Forbidden):
            require(p, action)


def test_sign_needs_write_scope(tmp_path: Path) -> None:
    s = _settings(tmp_path, dev_auth=True)
    tok = mint_dev_token("clinician", settings=s, scope="user/*.read")
    p = Authenticator(s).authenticate(_bearer(tok), None)
    require(p, "draft.review")
    with pytest.raises(Forbidden, match="DocumentReference.write"):
        require(p, "draft.sign")
