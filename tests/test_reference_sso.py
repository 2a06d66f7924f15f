"""The reference portal's SSO mode without a provider: ID token validation, PKCE, the
single-use sign-in state, and the command line's SSO settings."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from reference_portal.cli import build_parser, sso_config
from reference_portal.db import Database
from reference_portal.sessions import SessionStore
from reference_portal.settings import PortalSettings, SsoConfig
from reference_portal.sso import (
    SsoStore,
    TokenRejected,
    UnknownKey,
    b64url_encode,
    code_challenge,
    validate_id_token,
)

ISSUER = "https://localhost:8443"
CLIENT = "riverside-patient-portal"
NONCE = "n-0S6_WzA2Mj"
NOW = 1_800_000_000.0


def _int_bytes(value: int, length: int | None = None) -> str:
    size = length or (value.bit_length() + 7) // 8
    return b64url_encode(value.to_bytes(size, "big"))


class EcKey:
    def __init__(self, kid: str = "ec-1") -> None:
        self.kid = kid
        self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _int_bytes(numbers.x, 32),
            "y": _int_bytes(numbers.y, 32),
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        }

    def sign(self, data: bytes) -> bytes:
        r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class RsaKey:
    def __init__(self, kid: str = "rsa-1") -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict[str, str]:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "n": _int_bytes(numbers.n), "e": _int_bytes(numbers.e)} | {
            "kid": self.kid,
            "use": "sig",
        }

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "patient.alvarez",
        "aud": CLIENT,
        "exp": NOW + 600,
        "iat": NOW - 5,
        "auth_time": NOW - 10,
        "nonce": NONCE,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def token(
    key: EcKey | RsaKey, body: Mapping[str, Any], *, header: dict[str, Any] | None = None
) -> str:
    alg = "ES256" if isinstance(key, EcKey) else "RS256"
    head = header if header is not None else {"alg": alg, "kid": key.kid, "typ": "JWT"}
    signing_input = ".".join(
        b64url_encode(json.dumps(part).encode()) for part in (head, dict(body))
    )
    return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"


def validate(id_token: str, jwks: Mapping[str, Any], **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": CLIENT,
        "nonce": NONCE,
        "now": NOW,
        "authenticated_since": NOW - 20,
    }
    arguments.update(overrides)
    return validate_id_token(id_token, jwks, **arguments)


@pytest.fixture(scope="module")
def ec_key() -> EcKey:
    return EcKey()


@pytest.fixture(scope="module")
def rsa_key() -> RsaKey:
    return RsaKey()


@pytest.fixture(scope="module")
def jwks(ec_key: EcKey, rsa_key: RsaKey) -> dict[str, Any]:
    return {"keys": [ec_key.jwk(), rsa_key.jwk()]}


def test_a_good_token_signed_either_way_is_accepted(
    ec_key: EcKey, rsa_key: RsaKey, jwks: dict[str, Any]
) -> None:
    for key in (ec_key, rsa_key):
        accepted = validate(token(key, claims()), jwks)
        assert accepted.subject == "patient.alvarez"
        assert accepted.auth_time == NOW - 10


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"iss": "https://localhost:9999"}, "issuer"),
        ({"aud": "another-client"}, "audience"),
        ({"aud": [CLIENT, "another-client"]}, "authorized party"),
        ({"azp": "another-client"}, "authorized party"),
        ({"nonce": "a-replayed-nonce"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"exp": NOW - 60}, "expired"),
        ({"exp": None}, "exp"),
        ({"iat": NOW + 600}, "future"),
        ({"sub": ""}, "subject"),
        ({"auth_time": NOW - 3600}, "did not authenticate"),
        ({"auth_time": None}, "did not authenticate"),
    ],
)
def test_claims_that_do_not_fit_this_sign_in_are_refused(
    ec_key: EcKey, jwks: dict[str, Any], changes: dict[str, Any], why: str
) -> None:
    with pytest.raises(TokenRejected, match=why):
        validate(token(ec_key, claims(**changes)), jwks)


def test_expiry_and_issue_time_allow_for_clock_skew(ec_key: EcKey, jwks: dict[str, Any]) -> None:
    validate(token(ec_key, claims(exp=NOW - 10, iat=NOW + 10)), jwks)


def test_a_signature_by_another_key_is_refused(ec_key: EcKey, jwks: dict[str, Any]) -> None:
    impostor = EcKey(kid=ec_key.kid)  # claims the provider's key id
    with pytest.raises(TokenRejected, match="signature"):
        validate(token(impostor, claims()), jwks)


def test_a_token_changed_after_signing_is_refused(ec_key: EcKey, jwks: dict[str, Any]) -> None:
    header, _, signature = token(ec_key, claims()).split(".")
    forged = b64url_encode(json.dumps(claims(sub="patient.okafor")).encode())
    with pytest.raises(TokenRejected, match="signature"):
        validate(f"{header}.{forged}.{signature}", jwks)


def test_unsigned_and_symmetric_tokens_are_refused(ec_key: EcKey, jwks: dict[str, Any]) -> None:
    body = b64url_encode(json.dumps(claims()).encode())
    for alg in ("none", "HS256"):
        head = b64url_encode(json.dumps({"alg": alg, "kid": ec_key.kid}).encode())
        with pytest.raises(TokenRejected, match="algorithm"):
            validate(f"{head}.{body}.", jwks)


def test_an_unknown_key_id_asks_for_a_fresh_jwks(ec_key: EcKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(UnknownKey):
        validate(token(EcKey(kid="rotated"), claims()), jwks)


def test_malformed_tokens_are_refused(jwks: dict[str, Any]) -> None:
    for bad in ("", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.e30"):
        with pytest.raises(TokenRejected):
            validate(bad, jwks)


def test_pkce_s256_matches_rfc_7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_a_started_sign_in_is_taken_once_and_only_while_fresh(tmp_path: Path) -> None:
    db = Database(tmp_path / "portal.sqlite3")
    db.migrate()
    sessions = SessionStore(db, idle_timeout=60, absolute_timeout=600)
    _, session = sessions.create(None)
    store = SsoStore(db)
    now = time.time()
    state, pending = store.start(session, "/results", now)
    taken = store.take(state, now + 1)
    assert taken == pending and taken.session_hash == session.token_hash
    assert store.take(state, now + 2) is None
    stale, _ = store.start(session, "/dashboard", now)
    assert store.take(stale, now + 3600) is None
    assert store.take("not-a-state", now) is None


def _serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *argv])


def test_sso_mode_needs_issuer_ca_and_client_credentials(tmp_path: Path) -> None:
    ca = str(tmp_path / "ca.pem")
    credentials = {"REFERENCE_SSO_CLIENT_ID": "portal", "REFERENCE_SSO_CLIENT_SECRET": "s3cret"}
    assert sso_config(_serve_args(), credentials) is None
    config = sso_config(_serve_args("--sso-issuer", ISSUER, "--sso-ca", ca), credentials)
    assert config is not None and config.issuer == ISSUER and config.origin == ISSUER
    assert "s3cret" not in repr(config)
    with pytest.raises(ValueError, match="go together"):
        sso_config(_serve_args("--sso-issuer", ISSUER), credentials)
    with pytest.raises(ValueError, match="https"):
        sso_config(_serve_args("--sso-issuer", "http://localhost:1", "--sso-ca", ca), credentials)
    with pytest.raises(ValueError, match="REFERENCE_SSO_CLIENT_SECRET"):
        sso_config(_serve_args("--sso-issuer", ISSUER, "--sso-ca", ca), {})


def test_sso_mode_lets_sign_out_s_form_redirect_to_the_provider() -> None:
    sso = SsoConfig(ISSUER + "/", Path("ca.pem"), "portal", "secret")
    policy = PortalSettings(sso=sso).content_security_policy
    assert f"form-action 'self' {ISSUER};" in policy + ";"
    assert "form-action 'self'" in PortalSettings().content_security_policy
    assert ISSUER not in PortalSettings().content_security_policy
