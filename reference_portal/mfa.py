"""TOTP second factor: enrolment with a QR code, sign-in challenges and recovery codes.

An account with an active factor signs in in two steps. After the password the visitor holds a
fresh *anonymous* session plus a challenge naming the account; only a valid code (or an unused
recovery code) turns it into a signed-in session, so no protected page answers in between.
Codes are accepted once (the last used time step is kept), within one step of drift, and a
challenge ends after a few wrong codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

import pyotp
import qrcode
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from reference_portal.db import Database
from reference_portal.records import Account
from reference_portal.seed import SEED_ACCOUNTS
from reference_portal.sessions import Session, csrf_matches, hash_token
from reference_portal.settings import PortalSettings

if TYPE_CHECKING:
    from reference_portal.app import Portal

ISSUER = "Riverside Health"
TOTP_PERIOD = 30
TOTP_DIGITS = 6
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 10  # 80 bits, shown as 16 base32 characters
WRONG_CODE_ERROR = "That code is not valid. Check your authenticator app and try again."
TOO_MANY_CODES_ERROR = "Too many incorrect codes. Please sign in again."
REAUTH_ERROR = "Your password was not correct."


@dataclass(frozen=True)
class Factor:
    account_id: int
    secret: str
    active: bool
    confirmed: bool
    last_used_step: int


def totp_at(secret: str, step: int) -> str:
    """RFC 6238 (SHA-1). Not pyotp's, which refuses the short_totp_secret weakness's secrets."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**TOTP_DIGITS:0{TOTP_DIGITS}d}"


def new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def _code_hash(code: str) -> str:
    normalised = code.replace("-", "").replace(" ", "").upper()
    return hashlib.sha256(normalised.encode("ascii", "replace")).hexdigest()


class MfaStore:
    """Factors, recovery codes and sign-in challenges in SQLite."""

    def __init__(
        self, db: Database, settings: PortalSettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock

    # -- factors --------------------------------------------------------------------------
    def factor(self, account_id: int) -> Factor | None:
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT account_id, secret, active, confirmed, last_used_step FROM totp_factors "
                "WHERE account_id = ?",
                (account_id,),
            ).fetchone()
        if row is None:
            return None
        return Factor(
            row["account_id"],
            row["secret"],
            bool(row["active"]),
            bool(row["confirmed"]),
            row["last_used_step"],
        )

    def required_for(self, account: Account) -> bool:
        factor = self.factor(account.id)
        return factor is not None and factor.active

    def begin_enrolment(self, account_id: int) -> str:
        secret = base64.b32encode(secrets.token_bytes(self._settings.totp_secret_bytes)).decode()
        # Compliant: the factor does nothing until a code from it confirms the enrolment.
        active = not self._settings.totp_enrolment_needs_confirmation
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO totp_factors (account_id, secret, active, confirmed, last_used_step, "
                "created_at) VALUES (?, ?, ?, 0, -1, ?) ON CONFLICT (account_id) DO UPDATE SET "
                "secret = excluded.secret, active = excluded.active, confirmed = 0, "
                "last_used_step = -1, created_at = excluded.created_at",
                (account_id, secret, int(active), self._clock()),
            )
        return secret

    def confirm_enrolment(self, account_id: int, code: str) -> list[str] | None:
        """Activate a pending factor with a valid code; returns new recovery codes, or None."""
        factor = self.factor(account_id)
        if factor is None or factor.confirmed:
            return None
        accepted = self.verify_code(account_id, code)
        if not accepted and self._settings.totp_enrolment_needs_confirmation:
            return None
        with self._db.connect() as conn:
            conn.execute(
                "UPDATE totp_factors SET active = 1, confirmed = 1 WHERE account_id = ?",
                (account_id,),
            )
        return self.replace_recovery_codes(account_id)

    def remove(self, account_id: int) -> None:
        with self._db.connect() as conn:
            conn.execute("DELETE FROM totp_factors WHERE account_id = ?", (account_id,))
            conn.execute("DELETE FROM recovery_codes WHERE account_id = ?", (account_id,))

    def install(self, account_id: int, secret: str) -> None:
        """An already confirmed factor (seeded accounts whose secret comes from the env)."""
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO totp_factors (account_id, secret, active, confirmed, last_used_step, "
                "created_at) VALUES (?, ?, 1, 1, -1, ?) ON CONFLICT (account_id) DO UPDATE SET "
                "secret = excluded.secret, active = 1, confirmed = 1, last_used_step = -1",
                (account_id, secret, self._clock()),
            )

    def verify_code(self, account_id: int, code: str) -> bool:
        factor = self.factor(account_id)
        code = code.strip().replace(" ", "")
        if factor is None or len(code) != TOTP_DIGITS or not code.isdigit():
            return False
        current = int(self._clock() // TOTP_PERIOD)
        for step in (current - 1, current, current + 1):
            if not hmac.compare_digest(totp_at(factor.secret, step), code):
                continue
            if self._settings.otp_rejects_replay and step <= factor.last_used_step:
                return False
            with self._db.connect() as conn:
                conn.execute(
                    "UPDATE totp_factors SET last_used_step = MAX(last_used_step, ?) "
                    "WHERE account_id = ?",
                    (step, account_id),
                )
            return True
        return False

    # -- recovery codes -------------------------------------------------------------------
    def replace_recovery_codes(self, account_id: int) -> list[str]:
        codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        with self._db.connect() as conn:
            conn.execute("DELETE FROM recovery_codes WHERE account_id = ?", (account_id,))
            conn.executemany(
                "INSERT INTO recovery_codes (account_id, code_hash) VALUES (?, ?)",
                [(account_id, _code_hash(code)) for code in codes],
            )
        return codes

    def use_recovery_code(self, account_id: int, code: str) -> bool:
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT id FROM recovery_codes WHERE account_id = ? AND code_hash = ? "
                "AND used_at IS NULL",
                (account_id, _code_hash(code)),
            ).fetchone()
            if row is None:
                return False
            if self._settings.recovery_codes_single_use:
                conn.execute(
                    "UPDATE recovery_codes SET used_at = ? WHERE id = ?", (self._clock(), row["id"])
                )
        return True

    # -- sign-in challenges ---------------------------------------------------------------
    def open_challenge(self, session_hash: str, account_id: int) -> None:
        with self._db.connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO mfa_challenges (session_hash, account_id, wrong_codes, "
                "created_at) VALUES (?, ?, 0, ?)",
                (session_hash, account_id, self._clock()),
            )

    def challenge(self, session: Session | None) -> int | None:
        """The account a session is proving its second factor for, if any."""
        if session is None:
            return None
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT account_id FROM mfa_challenges WHERE session_hash = ?",
                (session.token_hash,),
            ).fetchone()
        return None if row is None else int(row["account_id"])

    def wrong_code(self, session: Session) -> bool:
        """Count a wrong code; True when the challenge is used up and has been ended."""
        limit = self._settings.otp_wrong_code_limit
        with self._db.connect() as conn:
            conn.execute(
                "UPDATE mfa_challenges SET wrong_codes = wrong_codes + 1 WHERE session_hash = ?",
                (session.token_hash,),
            )
            row = conn.execute(
                "SELECT wrong_codes FROM mfa_challenges WHERE session_hash = ?",
                (session.token_hash,),
            ).fetchone()
            if row is not None and limit is not None and row["wrong_codes"] >= limit:
                conn.execute(
                    "DELETE FROM mfa_challenges WHERE session_hash = ?", (session.token_hash,)
                )
                return True
        return False

    def close_challenge(self, session: Session) -> None:
        with self._db.connect() as conn:
            conn.execute("DELETE FROM mfa_challenges WHERE session_hash = ?", (session.token_hash,))


def seed_factors(db: Database, settings: PortalSettings, env: Mapping[str, str]) -> None:
    """Give the seeded accounts that name a TOTP secret variable their confirmed factor."""
    store = MfaStore(db, settings)
    for seeded in SEED_ACCOUNTS:
        variable = seeded.totp_env
        if not variable:
            continue
        secret = env.get(variable)
        with db.connect() as conn:
            row = conn.execute(
                "SELECT id FROM accounts WHERE username = ?", (seeded.username,)
            ).fetchone()
        if row is None:
            continue
        if secret:
            store.install(int(row["id"]), secret)
        else:
            # Without its secret the account cannot pass MFA; it still requires it.
            store.install(int(row["id"]), pyotp.random_base32(32))


def otpauth_uri(secret: str, username: str) -> str:
    label = quote(f"{ISSUER}:{username}")
    query = urlencode(
        {"secret": secret, "issuer": ISSUER, "digits": TOTP_DIGITS, "period": TOTP_PERIOD},
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def qr_png(uri: str) -> bytes:
    image = qrcode.make(uri, border=4, box_size=6)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _safe_next(value: str | None) -> str | None:
    # Imported on use: app.py imports this module.
    from reference_portal.app import safe_next

    return safe_next(value)


def _default_landing() -> str:
    from reference_portal.app import DEFAULT_LANDING

    return DEFAULT_LANDING


class MfaPages:
    """The second-factor page of sign-in and the account's authenticator settings."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self.store = MfaStore(portal.sessions.database, portal.settings)

    def routes(self) -> list[Route]:
        return [
            Route("/login/mfa", self.challenge_page, methods=["GET"]),
            Route("/login/mfa", self.challenge_submit, methods=["POST"]),
            Route("/login/mfa/cancel", self.challenge_cancel, methods=["POST"]),
            Route("/account/mfa", self.settings_page, methods=["GET"]),
            Route("/account/mfa/setup", self.setup, methods=["POST"]),
            Route("/account/mfa/qr.png", self.qr_image, methods=["GET"]),
            Route("/account/mfa/confirm", self.confirm, methods=["POST"]),
            Route("/account/mfa/remove", self.remove, methods=["POST"]),
        ]

    # -- sign-in -------------------------------------------------------------------------
    def required_for(self, account: Account) -> bool:
        return self.store.required_for(account)

    def start_challenge(self, request: Request, pre_session: Session, account: Account) -> str:
        """After a correct password: returns the session token that awaits the second factor."""
        if not self.portal.settings.mfa_enforced_on_every_path:
            token = self.portal.complete_sign_in(request, pre_session, account)
        else:
            self.portal.sessions.delete(pre_session)
            token, _ = self.portal.sessions.create(None)
        self.store.open_challenge(hash_token(token), account.id)
        return token

    def pending_redirect(self, request: Request) -> Response | None:
        """Send a visitor with an open challenge back to the second factor."""
        session = self.portal.current_session(request)
        if self.store.challenge(session) is None:
            return None
        next_path = request.query_params.get("next")
        target = "/login/mfa" + (f"?next={next_path}" if next_path else "")
        if next_path and _safe_next(next_path) is None:
            target = "/login/mfa"
        return RedirectResponse(target, status_code=303)

    def _render_challenge(
        self, request: Request, session: Session, error: str | None, status_code: int = 200
    ) -> Response:
        return self.portal.render(
            request,
            "mfa_challenge.html",
            {
                "csrf_token": session.csrf_token,
                "next_path": _safe_next(request.query_params.get("next")),
                "error_text": error,
                "show_recovery": request.query_params.get("recovery") == "1",
            },
            status_code=status_code,
        )

    def challenge_page(self, request: Request) -> Response:
        session = self.portal.current_session(request)
        if session is None or self.store.challenge(session) is None:
            return RedirectResponse("/login", status_code=303)
        return self._render_challenge(request, session, None)

    async def challenge_submit(self, request: Request) -> Response:
        async with request.form() as form:
            fields = {
                name: value if isinstance(value := form.get(name), str) else ""
                for name in ("csrf_token", "code", "recovery_code", "next")
            }
        return await run_in_threadpool(self._challenge_submit, request, fields)

    def _challenge_submit(self, request: Request, fields: Mapping[str, str]) -> Response:
        session = self.portal.current_session(request)
        account_id = self.store.challenge(session)
        if session is None or account_id is None:
            return RedirectResponse("/login", status_code=303)
        if not csrf_matches(session, fields["csrf_token"]):
            return self.portal.error_page(request, 403)
        if fields["recovery_code"]:
            accepted = self.store.use_recovery_code(account_id, fields["recovery_code"])
        else:
            accepted = self.store.verify_code(account_id, fields["code"])
        if not accepted:
            if self.store.wrong_code(session):
                return self.portal.render_login(
                    request,
                    session,
                    error_id="sign-in-error",
                    error_text=TOO_MANY_CODES_ERROR,
                    status_code=429,
                )
            return self._render_challenge(request, session, WRONG_CODE_ERROR, 401)
        self.store.close_challenge(session)
        target = _safe_next(fields["next"]) or _default_landing()
        if session.authenticated:
            return RedirectResponse(target, status_code=303)
        account = self.portal.records.account_by_id(account_id)
        if account is None:
            return RedirectResponse("/login", status_code=303)
        token = self.portal.complete_sign_in(request, session, account)
        response = RedirectResponse(
            self.portal.landing_after_sign_in(target, token), status_code=303
        )
        self.portal.set_session_cookie(response, token)
        return response

    async def challenge_cancel(self, request: Request) -> Response:
        async with request.form() as form:
            submitted = form.get("csrf_token")
            csrf = submitted if isinstance(submitted, str) else ""
        session = self.portal.current_session(request)
        if session is not None and csrf_matches(session, csrf):
            self.store.close_challenge(session)
        return RedirectResponse("/login", status_code=303)

    # -- account settings ----------------------------------------------------------------
    def _settings_page(
        self,
        request: Request,
        *,
        step: str,
        error: str | None = None,
        key: str | None = None,
        recovery_codes: list[str] | None = None,
        status_code: int = 200,
    ) -> Response:
        who = self.portal.signed_in(request)
        assert who is not None
        factor = self.store.factor(who.account.id)
        response = self.portal.render_signed_in(
            request,
            "account_mfa.html",
            who,
            "/account/mfa",
            step=step,
            enrolled=factor is not None and factor.confirmed,
            error_text=error,
            totp_key=key,
            recovery_codes=recovery_codes or [],
            removed=request.query_params.get("removed") == "1",
        )
        response.status_code = status_code
        return response

    def settings_page(self, request: Request) -> Response:
        if self.portal.signed_in(request) is None:
            return self.portal.to_sign_in(request)
        return self._settings_page(request, step="overview")

    async def _form(self, request: Request, *names: str) -> dict[str, str]:
        async with request.form() as form:
            return {
                name: value if isinstance(value := form.get(name), str) else "" for name in names
            }

    def _reauthenticated(self, account: Account, password: str) -> bool:
        return self.portal.authenticator.authenticate(account.username, password) is not None

    async def setup(self, request: Request) -> Response:
        fields = await self._form(request, "csrf_token", "password")
        return await run_in_threadpool(self._setup, request, fields)

    def _setup(self, request: Request, fields: Mapping[str, str]) -> Response:
        who = self.portal.signed_in(request)
        if who is None:
            return self.portal.to_sign_in(request)
        if not csrf_matches(who.session, fields["csrf_token"]):
            return self.portal.error_page(request, 403)
        factor = self.store.factor(who.account.id)
        if factor is not None and factor.confirmed:
            return self._settings_page(request, step="overview")
        if not self._reauthenticated(who.account, fields["password"]):
            return self._settings_page(
                request, step="overview", error=REAUTH_ERROR, status_code=401
            )
        secret = self.store.begin_enrolment(who.account.id)
        return self._settings_page(request, step="confirm", key=secret)

    def qr_image(self, request: Request) -> Response:
        who = self.portal.signed_in(request)
        factor = self.store.factor(who.account.id) if who else None
        if who is None or factor is None or factor.confirmed:
            return self.portal.error_page(request, 404)
        png = qr_png(otpauth_uri(factor.secret, who.account.username))
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    async def confirm(self, request: Request) -> Response:
        fields = await self._form(request, "csrf_token", "code")
        return await run_in_threadpool(self._confirm, request, fields)

    def _confirm(self, request: Request, fields: Mapping[str, str]) -> Response:
        who = self.portal.signed_in(request)
        if who is None:
            return self.portal.to_sign_in(request)
        if not csrf_matches(who.session, fields["csrf_token"]):
            return self.portal.error_page(request, 403)
        factor = self.store.factor(who.account.id)
        if factor is None or factor.confirmed:
            return self._settings_page(request, step="overview")
        codes = self.store.confirm_enrolment(who.account.id, fields["code"])
        if codes is None:
            return self._settings_page(
                request, step="confirm", key=factor.secret, error=WRONG_CODE_ERROR, status_code=400
            )
        return self._settings_page(request, step="done", recovery_codes=codes)

    async def remove(self, request: Request) -> Response:
        fields = await self._form(request, "csrf_token", "password")
        return await run_in_threadpool(self._remove, request, fields)

    def _remove(self, request: Request, fields: Mapping[str, str]) -> Response:
        who = self.portal.signed_in(request)
        if who is None:
            return self.portal.to_sign_in(request)
        if not csrf_matches(who.session, fields["csrf_token"]):
            return self.portal.error_page(request, 403)
        if not self._reauthenticated(who.account, fields["password"]):
            return self._settings_page(
                request, step="overview", error=REAUTH_ERROR, status_code=401
            )
        self.store.remove(who.account.id)
        return RedirectResponse("/account/mfa?removed=1", status_code=303)
