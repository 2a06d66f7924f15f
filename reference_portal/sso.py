"""The portal's SSO mode: sign-in delegated to an OpenID Connect provider on another origin.

With ``serve --sso-issuer URL --sso-ca FILE`` (client id and secret from the environment),
``/login`` starts an authorization code flow with PKCE (S256): ``state`` is bound to the
visitor's anonymous pre-sign-in session, ``nonce`` to the ID token, and ``prompt=login`` asks the
provider to authenticate the patient for every new portal session. The callback exchanges the
code over TLS verified against the given CA, validates the ID token (signature from the
provider's JWKS, issuer, audience, nonce, expiry, and an ``auth_time`` no older than the
request), maps ``sub`` to the seeded account of that username and then signs in exactly as a
password sign-in does (``Portal.complete_sign_in``: a new session ID, the same cookie and
timeouts). ``/logout`` ends the portal session as before and then sends the browser to the
provider's ``end_session_endpoint`` (RP-initiated logout) with ``id_token_hint`` and
``post_logout_redirect_uri``.

Why ``prompt=login``: the provider keeps a session of its own. Accepting it silently would let
the next visit recreate every portal session that ended (idle, absolute, "end other sessions")
without a password, and the portal's timeouts would mean nothing on a shared computer.

In SSO mode password change and reset and the second factor are the provider's business: the
portal serves no password form, no password or MFA pages, and its ``/account/password``,
``/account/mfa`` and ``/password/forgot`` say so.

Only the standard library and ``cryptography`` are used (ES256 and RS256 ID tokens).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import re
import secrets
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from reference_portal.db import Database
from reference_portal.sessions import Session, hash_token
from reference_portal.settings import SsoConfig

if TYPE_CHECKING:
    from reference_portal.app import Portal

log = logging.getLogger(__name__)

CALLBACK_PATH = "/login/sso/callback"
SIGNED_OUT_PATH = "/login?signed_out=1"
SCOPE = "openid email profile"
# How long a started sign-in may take at the provider before its callback is refused.
PENDING_SECONDS = 600.0
# Tolerated difference between the provider's clock and the portal's.
CLOCK_SKEW_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 10.0
MAX_DOCUMENT_BYTES = 256 * 1024
ACCEPTED_ALGORITHMS = ("ES256", "RS256")
MIN_RSA_BITS = 2048
# Pages the portal does not serve in SSO mode, answered with where to go instead.
MANAGED_PAGES = ("/account/password", "/account/mfa", "/password/forgot")

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sso_pending (
    state_hash TEXT PRIMARY KEY,
    session_hash TEXT NOT NULL,
    nonce TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    next_path TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sso_sessions (
    session_hash TEXT PRIMARY KEY REFERENCES sessions(token_hash) ON DELETE CASCADE,
    id_token TEXT NOT NULL
);
"""


class SsoError(Exception):
    """The provider could not be used: unreachable, untrusted, or an unexpected answer."""


class TokenRejected(SsoError):
    """The ID token failed validation; the sign-in is refused."""


class UnknownKey(TokenRejected):
    """No key of the provider's JWKS matches the token (the JWKS may have rotated)."""


# -- ID token validation (pure: no I/O) --------------------------------------------------------


@dataclass(frozen=True)
class IdToken:
    """What the portal uses of a validated ID token."""

    subject: str
    auth_time: float | None
    claims: Mapping[str, Any]


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or not _BASE64URL.fullmatch(text):
        raise TokenRejected("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected("not base64url") from None


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_object(part: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(part))
    except (UnicodeDecodeError, ValueError):
        raise TokenRejected(f"the token's {what} is not JSON") from None
    if not isinstance(value, dict):
        raise TokenRejected(f"the token's {what} is not a JSON object")
    return value


def public_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """The public key of a JWK (EC P-256 or RSA)."""
    try:
        if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            x = int.from_bytes(b64url_decode(jwk["x"]), "big")
            y = int.from_bytes(b64url_decode(jwk["y"]), "big")
            return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
        if jwk.get("kty") == "RSA":
            e = int.from_bytes(b64url_decode(jwk["e"]), "big")
            n = int.from_bytes(b64url_decode(jwk["n"]), "big")
            return rsa.RSAPublicNumbers(e, n).public_key()
    except (KeyError, ValueError):
        raise TokenRejected("a key of the provider's JWKS is malformed") from None
    raise TokenRejected(f"unsupported key type {jwk.get('kty')!r}")


def _signature_valid(
    algorithm: str,
    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    signing_input: bytes,
    signature: bytes,
) -> bool:
    try:
        if algorithm == "ES256" and isinstance(key, ec.EllipticCurvePublicKey):
            if len(signature) != 64:
                return False
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
            return True
        if algorithm == "RS256" and isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                return False
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False


def _signing_keys(jwks: Mapping[str, Any], algorithm: str, kid: object) -> list[dict[str, Any]]:
    kty = "EC" if algorithm == "ES256" else "RSA"
    keys = [
        key
        for key in jwks.get("keys", [])
        if isinstance(key, dict)
        and key.get("kty") == kty
        and key.get("use", "sig") == "sig"
        and key.get("alg", algorithm) == algorithm
    ]
    if kid is not None:
        keys = [key for key in keys if key.get("kid") == kid]
    return keys


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenRejected(f"the token has no numeric {name}")
    return float(value)


def validate_id_token(
    token: str,
    jwks: Mapping[str, Any],
    *,
    issuer: str,
    audience: str,
    nonce: str,
    now: float,
    authenticated_since: float | None = None,
    skew: float = CLOCK_SKEW_SECONDS,
) -> IdToken:
    """Check an ID token as OpenID Connect Core 3.1.3.7 asks; raise TokenRejected otherwise.

    ``authenticated_since``: the provider must have authenticated the user at or after this
    time (the sign-in request's start), less ``skew``: the portal asked for ``prompt=login``.
    """
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise TokenRejected("not a signed JWT")
    header = _json_object(parts[0], "header")
    algorithm = header.get("alg")
    if algorithm not in ACCEPTED_ALGORITHMS:
        raise TokenRejected(f"signature algorithm {algorithm!r} is not accepted")
    if "crit" in header:
        raise TokenRejected("the token names critical header parameters")
    keys = _signing_keys(jwks, algorithm, header.get("kid"))
    if not keys:
        raise UnknownKey(f"no {algorithm} key of the provider's JWKS matches the token")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    signature = b64url_decode(parts[2])
    if not any(_signature_valid(algorithm, public_key(k), signing_input, signature) for k in keys):
        raise TokenRejected("the token's signature does not verify")
    claims = _json_object(parts[1], "claims")
    if claims.get("iss") != issuer:
        raise TokenRejected("the token's issuer is not the configured provider")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if audience not in audiences:
        raise TokenRejected("the token is not meant for this portal (audience)")
    if ("azp" in claims or len(audiences) > 1) and claims.get("azp") != audience:
        raise TokenRejected("the token's authorized party is not this portal")
    if now > _number(claims, "exp") + skew:
        raise TokenRejected("the token has expired")
    if _number(claims, "iat") > now + skew:
        raise TokenRejected("the token was issued in the future")
    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not secrets.compare_digest(
        token_nonce.encode(), nonce.encode()
    ):
        raise TokenRejected("the token's nonce is not the one this sign-in sent")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenRejected("the token names no subject")
    auth_time = _number(claims, "auth_time") if "auth_time" in claims else None
    if authenticated_since is not None and (
        auth_time is None or auth_time < authenticated_since - skew
    ):
        raise TokenRejected("the provider did not authenticate the user for this sign-in")
    return IdToken(subject=subject, auth_time=auth_time, claims=claims)


def code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 4.2)."""
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


# -- talking to the provider ----------------------------------------------------------------


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class ProviderClient:
    """The provider's discovery document, JWKS and token endpoint, over TLS verified against
    the configured CA only (and no proxy, no redirects)."""

    def __init__(self, config: SsoConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._jwks: dict[str, Any] | None = None

    def _opener(self) -> urllib.request.OpenerDirector:
        try:
            context = ssl.create_default_context(cafile=str(self.config.ca_file))
        except (OSError, ssl.SSLError) as exc:
            message = f"cannot read the provider's CA file {self.config.ca_file}: {exc}"
            raise SsoError(message) from None
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=context),
            _NoRedirects(),
        )

    def _json(
        self, url: str, data: bytes | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        if urlsplit(url).scheme != "https":
            raise SsoError(f"refusing a provider URL that is not https: {url}")
        request = urllib.request.Request(
            url,
            data=data,
            headers={"Accept": "application/json", **(headers or {})},
            method="GET" if data is None else "POST",
        )
        try:
            with self._opener().open(request, timeout=HTTP_TIMEOUT_SECONDS) as answer:
                body = answer.read(MAX_DOCUMENT_BYTES + 1)
        except urllib.error.HTTPError as exc:
            error = ""
            with contextlib.suppress(ValueError, AttributeError, OSError):
                error = str(json.loads(exc.read(4096)).get("error", ""))
            raise SsoError(f"{url} answered HTTP {exc.code} {error}".rstrip()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SsoError(f"{url} could not be reached: {reason}") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise SsoError(f"{url} answered with more than {MAX_DOCUMENT_BYTES} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise SsoError(f"{url} did not answer with JSON") from None

    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                issuer = self.config.issuer
                url = issuer.rstrip("/") + "/.well-known/openid-configuration"
                document = self._json(url)
                if not isinstance(document, dict) or document.get("issuer") != issuer:
                    raise SsoError(f"{url} does not describe the issuer {issuer}")
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(document.get(name), str):
                        raise SsoError(f"{url} names no {name}")
                self._metadata = document
            return self._metadata

    def jwks(self, *, refresh: bool = False) -> dict[str, Any]:
        uri = self.metadata()["jwks_uri"]
        with self._lock:
            if self._jwks is None or refresh:
                document = self._json(uri)
                if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
                    raise SsoError(f"{uri} is not a JWK set")
                self._jwks = document
            return self._jwks

    def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> str:
        """The ID token the token endpoint gives for an authorization code."""
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        # client_secret_basic (RFC 6749 2.3.1): both parts form-encoded before base64.
        user = urlencode({"": self.config.client_id})[1:]
        password = urlencode({"": self.config.client_secret})[1:]
        basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        answer = self._json(
            self.metadata()["token_endpoint"],
            data=urlencode(fields).encode("ascii"),
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        id_token = answer.get("id_token") if isinstance(answer, dict) else None
        if not isinstance(id_token, str):
            raise SsoError("the token endpoint answered without an ID token")
        return id_token


# -- server-side state: started sign-ins and the ID token of each SSO session -------------------


@dataclass(frozen=True)
class PendingSignIn:
    session_hash: str
    nonce: str
    code_verifier: str
    next_path: str
    created_at: float


class SsoStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        with db.connect() as conn:
            conn.executescript(SCHEMA)

    def start(self, session: Session, next_path: str, now: float) -> tuple[str, PendingSignIn]:
        """A new sign-in bound to ``session``; returns its ``state`` and what it must match."""
        state = secrets.token_urlsafe(32)
        pending = PendingSignIn(
            session_hash=session.token_hash,
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            next_path=next_path,
            created_at=now,
        )
        with self._db.connect() as conn:
            conn.execute("DELETE FROM sso_pending WHERE created_at <= ?", (now - PENDING_SECONDS,))
            conn.execute(
                "INSERT INTO sso_pending (state_hash, session_hash, nonce, code_verifier, "
                "next_path, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    hash_token(state),
                    pending.session_hash,
                    pending.nonce,
                    pending.code_verifier,
                    pending.next_path,
                    pending.created_at,
                ),
            )
        return state, pending

    def take(self, state: str, now: float) -> PendingSignIn | None:
        """The sign-in ``state`` names, once: it is deleted; None if unknown or too old."""
        if not state or len(state) > 128:
            return None
        with self._db.connect() as conn:
            row = conn.execute(
                "DELETE FROM sso_pending WHERE state_hash = ? RETURNING session_hash, nonce, "
                "code_verifier, next_path, created_at",
                (hash_token(state),),
            ).fetchone()
        if row is None or row["created_at"] <= now - PENDING_SECONDS:
            return None
        return PendingSignIn(
            row["session_hash"],
            row["nonce"],
            row["code_verifier"],
            row["next_path"],
            row["created_at"],
        )

    def link(self, session_hash: str, id_token: str) -> None:
        with self._db.connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sso_sessions (session_hash, id_token) VALUES (?, ?)",
                (session_hash, id_token),
            )

    def id_token_for(self, session_hash: str) -> str | None:
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT id_token FROM sso_sessions WHERE session_hash = ?", (session_hash,)
            ).fetchone()
        return row["id_token"] if row else None


# -- the portal's SSO pages --------------------------------------------------------------------


class SsoSignIn:
    """Sign-in, its callback and sign-out's redirect, for a ``Portal`` in SSO mode."""

    def __init__(self, portal: Portal, config: SsoConfig) -> None:
        self.portal = portal
        self.config = config
        self.client = ProviderClient(config)
        self.store = SsoStore(portal.sessions.database)
        host = portal.settings.host
        shown = f"[{host}]" if ":" in host else host
        origin = f"https://{shown}:{portal.settings.https_port}"
        self.redirect_uri = origin + CALLBACK_PATH
        self.post_logout_redirect_uri = origin + SIGNED_OUT_PATH

    def routes(self) -> list[Route]:
        return [
            Route(CALLBACK_PATH, self.callback, methods=["GET"]),
            *(Route(path, self.managed_by_provider, methods=["GET"]) for path in MANAGED_PAGES),
        ]

    def _page(self, request: Request, title: str, detail: str, status_code: int) -> Response:
        context = {"title": title, "detail": detail, "status_code": status_code}
        return self.portal.render(request, "error.html", context, status_code=status_code)

    def start(self, request: Request, next_path: str) -> Response:
        """``/login`` for a visitor who is not signed in: off to the provider."""
        if request.query_params.get("signed_out") == "1":
            provider = self.config.provider_name
            detail = f"You have signed out of the patient portal and of {provider}."
            return self._page(request, "You have signed out", detail, 200)
        session, new_token = self.portal.pre_sign_in_session(request)
        try:
            endpoint = self.client.metadata()["authorization_endpoint"]
        except SsoError as exc:
            log.warning("SSO sign-in unavailable: %s", exc)
            return self._unavailable(request)
        state, pending = self.store.start(session, next_path, time.time())
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": SCOPE,
                "state": state,
                "nonce": pending.nonce,
                "code_challenge": code_challenge(pending.code_verifier),
                "code_challenge_method": "S256",
                "prompt": "login",
            }
        )
        response = RedirectResponse(f"{endpoint}?{query}", status_code=303)
        if new_token:
            self.portal.set_session_cookie(response, new_token)
        return response

    def callback(self, request: Request) -> Response:
        params = request.query_params
        pending = self.store.take(params.get("state", ""), time.time())
        session = self.portal.current_session(request)
        if (
            pending is None
            or session is None
            or session.authenticated
            or not secrets.compare_digest(pending.session_hash, session.token_hash)
        ):
            # Unknown, used or expired state, or a browser other than the one that started.
            return self._refused(request, "this sign-in was not started here or has expired")
        if params.get("iss") not in (None, self.config.issuer):
            return self._refused(request, "the answer names another issuer")
        if "error" in params or not params.get("code"):
            return self._refused(request, f"the provider answered {params.get('error', 'no code')}")
        try:
            id_token = self.client.exchange_code(
                params["code"], pending.code_verifier, self.redirect_uri
            )
            claims = self._validated(id_token, pending)
        except TokenRejected as exc:
            return self._refused(request, f"ID token refused: {exc}")
        except SsoError as exc:
            log.warning("SSO sign-in unavailable: %s", exc)
            return self._unavailable(request)
        found = self.portal.records.credentials_by_username(claims.subject)
        if found is None:
            return self._refused(request, "no portal account is linked to that identity")
        token = self.portal.complete_sign_in(request, session, found[0])
        self.store.link(hash_token(token), id_token)
        target = self.portal.landing_after_sign_in(pending.next_path, token)
        response = RedirectResponse(target, status_code=303)
        self.portal.set_session_cookie(response, token)
        return response

    def _validated(self, id_token: str, pending: PendingSignIn) -> IdToken:
        for refresh in (False, True):
            try:
                return validate_id_token(
                    id_token,
                    self.client.jwks(refresh=refresh),
                    issuer=self.config.issuer,
                    audience=self.config.client_id,
                    nonce=pending.nonce,
                    now=time.time(),
                    authenticated_since=pending.created_at,
                )
            except UnknownKey:
                if refresh:
                    raise
        raise AssertionError("unreachable")

    def logout_target(self, session: Session) -> str:
        """Where sign-out sends the browser: the provider's end-session endpoint when the
        session came from the provider (read before the session is deleted)."""
        id_token = self.store.id_token_for(session.token_hash)
        if id_token is None:
            return SIGNED_OUT_PATH
        try:
            endpoint = self.client.metadata().get("end_session_endpoint")
        except SsoError as exc:
            log.warning("RP-initiated logout unavailable: %s", exc)
            return SIGNED_OUT_PATH
        if not isinstance(endpoint, str):
            return SIGNED_OUT_PATH
        query = urlencode(
            {
                "id_token_hint": id_token,
                "post_logout_redirect_uri": self.post_logout_redirect_uri,
                "client_id": self.config.client_id,
            }
        )
        return f"{endpoint}?{query}"

    def managed_by_provider(self, request: Request) -> Response:
        detail = (
            f"Your password, password reset and two-step verification are managed by "
            f"{self.config.provider_name}, where you sign in."
        )
        return self._page(request, f"Managed by {self.config.provider_name}", detail, 200)

    def _refused(self, request: Request, why: str) -> Response:
        log.warning("SSO sign-in refused: %s", why)
        detail = "The sign-in could not be completed. Please start again."
        return self._page(request, "Sign-in not completed", detail, 400)

    def _unavailable(self, request: Request) -> Response:
        detail = f"{self.config.provider_name} cannot be reached. Please try again in a moment."
        return self._page(request, "Sign-in unavailable", detail, 503)
