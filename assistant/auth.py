"""Who is calling, and what they may do: bearer JWTs, API keys, roles, SMART scopes, patient scope.

- **JWT** (``Authorization: Bearer ...``): asymmetric only (RS256, ES256); keys from the JWKS at
  ``settings.jwks_url``; ``iss`` in ``settings.jwt_issuers`` (when set), ``aud`` =
  ``settings.jwt_audience``, ``exp`` required. Claims: ``sub``, ``role`` (one of ROLES), ``scope``
  (SMART, space separated: ``patient/*.read user/*.read user/DocumentReference.write``) and, with a
  ``patient/`` scope, ``patient`` — the one patient this token may touch.
- **API key** (``X-API-Key``) for services: ``settings.api_keys`` maps key -> role (no patient
  scope).
- **Development key**: an ES256 key generated once into the data dir; ``mint_dev_token`` signs with
  it; tokens it signed are refused unless ``settings.dev_auth`` is on.

A token scoped to one patient gets ``NotFound`` for every other patient (it learns nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from assistant.settings import Settings, get_settings
from retrieval.errors import AuthError, BadInput, Forbidden, NotFound

ALGORITHMS = ["RS256", "ES256"]
ROLES = ("clinician", "ehr-service", "safety", "admin")
DEV_ISSUER = "chartdraft-dev"
DEV_KID = "chartdraft-dev-1"
READ_SCOPES = {"patient/*.read", "patient/*.rs", "user/*.read", "user/*.rs", "system/*.read",
               "system/*.rs"}
WRITE_DOC_SCOPES = {"user/DocumentReference.write", "user/DocumentReference.c",
                    "user/DocumentReference.cud", "user/*.write"}

# action -> roles allowed. Reads of a patient's data also need a read scope (JWTs).
PERMISSIONS: dict[str, frozenset[str]] = {
    "chart.read": frozenset(ROLES),
    "chart.ingest": frozenset({"ehr-service", "admin"}),
    "draft.create": frozenset({"clinician", "ehr-service"}),
    "draft.read": frozenset(ROLES),
    "draft.review": frozenset({"clinician"}),  # edit, acknowledge, reject
    "draft.sign": frozenset({"clinician"}),
    "draft.feedback": frozenset({"clinician", "safety"}),
    "cds.call": frozenset({"ehr-service", "admin"}),
    "audit.read": frozenset({"admin"}),
}
DEFAULT_DEV_SCOPES: dict[str, str] = {
    "clinician": "user/*.read user/DocumentReference.write",
    "ehr-service": "system/*.read",
    "safety": "user/*.read",
    "admin": "user/*.read",
}


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    patient: str | None = None  # set: this caller may only see this patient
    method: str = "jwt"  # jwt | api-key | dev | cds

    def can(self, action: str) -> bool:
        return self.role in PERMISSIONS.get(action, frozenset())


def require(p: Principal, action: str) -> None:
    if not p.can(action):
        raise Forbidden(f"role {p.role!r} may not {action}", where="role",
                        fix=f"use a token with one of the roles: "
                            f"{', '.join(sorted(PERMISSIONS.get(action, ())))}")
    if p.method in ("jwt", "dev"):
        if action == "draft.sign" and not p.scopes & WRITE_DOC_SCOPES:
            raise Forbidden("signing needs the scope user/DocumentReference.write", where="scope",
                            fix="request user/DocumentReference.write for this token")
        if not p.scopes & (READ_SCOPES | {"patient/*.read"}) and action != "audit.read":
            raise Forbidden("no read scope on this token", where="scope",
                            fix="request patient/*.read or user/*.read")


def check_patient(p: Principal, patient_id: str | None) -> None:
    """404, never 403, so a patient-scoped token cannot learn whether another patient exists."""
    if p.patient is not None and patient_id != p.patient:
        raise NotFound(f"no patient {patient_id!r}", where="patient",
                       fix="use an id from GET /v1/patients")


# --- the development key ------------------------------------------------------------------------
def _dev_key_path(settings: Settings) -> Path:
    return settings.data_dir / "dev-signing-key.pem"


def dev_private_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """Created once (0600) in the data dir; never leaves it."""
    path = _dev_key_path(settings)
    if not path.exists():
        settings.ensure_dirs()
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        try:
            tmp.rename(path) if not path.exists() else tmp.unlink()
        except OSError:
            tmp.unlink(missing_ok=True)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    return loaded


def mint_dev_token(role: str, patient: str | None = None, *, settings: Settings | None = None,
                   subject: str | None = None, scope: str | None = None,
                   ttl_s: int = 3600) -> str:
    """A development token signed with the local dev key (accepted only with dev_auth on)."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}", where="role", fix=f"use one of {', '.join(ROLES)}")
    s = settings or get_settings()
    if scope is None:
        scope = DEFAULT_DEV_SCOPES[role]
        if patient:
            scope = scope.replace("user/*.read", "patient/*.read").replace(
                "system/*.read", "patient/*.read")
    now = int(time.time())
    claims: dict[str, Any] = {"iss": DEV_ISSUER, "sub": subject or f"dev-{role}",
                              "aud": s.jwt_audience, "iat": now, "exp": now + ttl_s,
                              "jti": uuid.uuid4().hex, "role": role, "scope": scope}
    if patient:
        claims["patient"] = patient
    return jwt.encode(claims, dev_private_key(s), algorithm="ES256", headers={"kid": DEV_KID})


# --- verification -------------------------------------------------------------------------------
class Authenticator:
    """Built once per app; holds the JWKS client (with its key cache)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def _jwks(self) -> jwt.PyJWKClient | None:
        url = self.settings.jwks_url
        return jwt.PyJWKClient(url, cache_keys=True, lifespan=300) if url else None

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        if api_key:
            return self._api_key(api_key)
        if not authorization:
            raise AuthError("no credentials", where="Authorization header",
                            fix="send 'Authorization: Bearer <JWT>' or 'X-API-Key: <key>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header is not a bearer token",
                            where="Authorization header", fix="use 'Bearer <JWT>'")
        return self.verify_jwt(token.strip())

    def _api_key(self, key: str) -> Principal:
        for known, role in self.settings.api_keys.items():
            if hmac.compare_digest(known.encode(), key.encode()):
                if role not in ROLES:
                    raise AuthError("this API key has an unknown role configured",
                                    fix=f"map it to one of {', '.join(ROLES)}")
                digest = hashlib.sha256(key.encode()).hexdigest()[:8]
                return Principal(subject=f"api-key:{digest}", role=role, method="api-key")
        raise AuthError("unknown API key", where="X-API-Key", fix="ask an admin for a key")

    def verify_jwt(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AuthError(f"malformed token: {exc}", where="Authorization header",
                            fix="send a signed JWT") from exc
        if header.get("alg") not in ALGORITHMS:
            raise AuthError(f"algorithm {header.get('alg')!r} is not accepted", where="JWT header",
                            fix="sign with RS256 or ES256")
        iss = unverified.get("iss")
        if iss == DEV_ISSUER:
            if not self.settings.dev_auth:
                raise AuthError("development tokens are refused here", where="iss",
                                fix="set CHARTDRAFT_DEV_AUTH=true only on a development machine")
            key: Any = dev_private_key(self.settings).public_key()
            method = "dev"
        else:
            if self.settings.jwt_issuers and iss not in self.settings.jwt_issuers:
                raise AuthError(f"issuer {iss!r} is not trusted", where="iss",
                                fix="add it to CHARTDRAFT_JWT_ISSUERS")
            if self._jwks is None:
                raise AuthError("no JWKS configured to verify this token", where="server",
                                fix="set CHARTDRAFT_JWKS_URL")
            try:
                key = self._jwks.get_signing_key_from_jwt(token).key
            except jwt.PyJWTError as exc:
                raise AuthError(f"no key to verify this token: {exc}", where="kid",
                                fix="check the token's kid against the JWKS") from exc
            method = "jwt"
        try:
            claims = jwt.decode(token, key, algorithms=ALGORITHMS,
                                audience=self.settings.jwt_audience,
                                options={"require": ["exp", "sub", "aud"]})
        except jwt.PyJWTError as exc:
            raise AuthError(f"token rejected: {exc}", where="Authorization header",
                            fix="get a fresh token for this audience") from exc
        return principal_from_claims(claims, method)


def principal_from_claims(claims: dict[str, Any], method: str) -> Principal:
    role = claims.get("role")
    if isinstance(role, list):
        role = next((r for r in role if r in ROLES), None)
    if role not in ROLES:
        raise Forbidden(f"token has no chartdraft role (got {role!r})", where="role claim",
                        fix=f"issue the token with role one of {', '.join(ROLES)}")
    scopes = frozenset(str(claims.get("scope", "")).split())
    patient = claims.get("patient")
    if any(s.startswith("patient/") for s in scopes):
        if not patient:
            raise AuthError("a patient/ scope needs a patient claim", where="patient claim",
                            fix="issue the token in a patient launch context")
    else:
        patient = None
    return Principal(subject=str(claims["sub"]), role=str(role), scopes=scopes,
                     patient=str(patient) if patient else None, method=method)


def dev_jwks(settings: Settings) -> dict[str, Any]:
    """The dev key's public half as a JWKS (what a test or a local EHR simulator can fetch)."""
    pub = dev_private_key(settings).public_key()
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(pub))
    jwk.update(kid=DEV_KID, use="sig", alg="ES256")
    return {"keys": [jwk]}
