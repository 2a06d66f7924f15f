"""Changing a password, and resetting a forgotten one by an e-mailed link.

Change: signed in, with the current password, against the policy in ``passwords``; the account's
other sessions end and the account holder gets a notification e-mail. Reset: a random link
(256-bit token, only its SHA-256 stored) that works once and expires, sent to the account's
address with the same answer whether or not the account exists; the reset page sends no Referer
and completing it signs nobody in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from reference_portal.db import Database
from reference_portal.mail import Mailer
from reference_portal.passwords import PasswordPolicy
from reference_portal.records import Account
from reference_portal.sessions import csrf_matches

if TYPE_CHECKING:
    from reference_portal.app import Portal

log = logging.getLogger(__name__)

RESET_TOKEN_BYTES = 32
RESET_REQUESTED = (
    "If an account matches what you entered, we have sent a link to its e-mail address. "
    "The link works once and expires in {lifetime}."
)
CHANGED_SUBJECT = "Your Riverside Health password was changed"
RESET_SUBJECT = "Reset your Riverside Health password"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _lifetime_text(seconds: float | None) -> str:
    if seconds is None:
        return "a while"
    if seconds >= 120:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"


@dataclass(frozen=True)
class Contact:
    account: Account
    email: str


class PasswordPages:
    """Routes and storage for password change and reset; one per portal."""

    def __init__(self, portal: Portal, mailer: Mailer | None) -> None:
        self.portal = portal
        self.settings = portal.settings
        self.db = portal.sessions.database
        self.mailer = mailer

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/account/password", self.change_page, methods=["GET"]),
            Route("/account/password", self.change_submit, methods=["POST"]),
            Route("/password/forgot", self.forgot_page, methods=["GET"]),
            Route("/password/forgot", self.forgot_submit, methods=["POST"]),
            Route("/password/reset/{token}", self.reset_page, methods=["GET"]),
            Route("/password/reset/{token}", self.reset_submit, methods=["POST"]),
            Route("/help", self.help_page, methods=["GET"]),
        ]

    # -- policy and storage --------------------------------------------------------------

    def policy(self) -> PasswordPolicy:
        return PasswordPolicy(
            min_length=self.settings.password_min_length,
            check_blocklist=self.settings.password_blocklist_checked,
            min_score=self.settings.password_min_zxcvbn_score,
            composition_rules=self.settings.password_composition_rules,
        )

    def _store_password(self, account: Account, password: str) -> None:
        password_hash = self.portal.authenticator.hash_password(password)
        self.portal.sessions.record_issued(password)
        with self.db.connect() as conn:
            conn.execute(
                "UPDATE accounts SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                (password_hash, time.time(), account.id),
            )
            # A changed password makes every outstanding reset link useless.
            conn.execute(
                "UPDATE password_resets SET used_at = ? WHERE account_id = ? AND used_at IS NULL",
                (time.time(), account.id),
            )

    def _email_of(self, account_id: int) -> str:
        with self.db.connect() as conn:
            row = conn.execute("SELECT email FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return str(row["email"]) if row else ""

    def _find(self, identifier: str) -> Contact | None:
        identifier = identifier.strip()
        if not identifier:
            return None
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT id, email FROM accounts WHERE username = ? OR (email != '' AND email = ? "
                "COLLATE NOCASE)",
                (identifier, identifier),
            ).fetchone()
        if row is None:
            return None
        account = self.portal.records.account_by_id(int(row["id"]))
        return Contact(account, str(row["email"])) if account else None

    def _notify_changed(self, account: Account, password: str) -> None:
        if self.mailer is None:
            return
        when = dt.datetime.now().strftime("%d %B %Y at %H:%M")
        body = (
            "Hello,\n\n"
            f"The password of your Riverside Health patient portal account was changed on {when}.\n"
            "If you made this change, there is nothing else to do. If you did not, reset your "
            "password now and call us on 555-0100.\n"
        )
        if self.settings.mail_quotes_new_password:
            body += f"\nFor your records, your new password is: {password}\n"
        self.mailer.send(self._email_of(account.id), CHANGED_SUBJECT, body)

    # -- change --------------------------------------------------------------------------

    def _change_context(self, request: Request, **extra: object) -> dict[str, object]:
        return {
            "guidance": self.policy().guidance(),
            "asks_current": self.settings.password_change_needs_current,
            "min_length": self.settings.password_min_length,
            "problems": (),
            "suggestions": (),
            "changed": False,
        } | extra

    def change_page(self, request: Request) -> Response:
        who = self.portal.signed_in(request)
        if who is None:
            return self.portal.to_sign_in(request)
        return self.portal.render_signed_in(
            request,
            "change_password.html",
            who,
            "/account/password",
            **self._change_context(request),
        )

    async def change_submit(self, request: Request) -> Response:
        fields = await _form(request, "csrf_token", "current_password", "new_password", "confirm")
        return await run_in_threadpool(self._change_submit, request, fields)

    def _change_submit(self, request: Request, fields: Mapping[str, str]) -> Response:
        who = self.portal.signed_in(request)
        if who is None:
            return self.portal.to_sign_in(request)
        if not csrf_matches(who.session, fields["csrf_token"]):
            return self.portal.error_page(request, 403)
        account = who.account
        new = fields["new_password"]
        problems: list[str] = []
        suggestions: tuple[str, ...] = ()
        if self.settings.password_change_needs_current and (
            self.portal.authenticator.authenticate(account.username, fields["current_password"])
            is None
        ):
            problems.append("Your current password is not correct.")
        elif new != fields["confirm"]:
            problems.append("The new password and its confirmation differ.")
        else:
            verdict = self.policy().check(new, (account.username, account.display_name))
            problems.extend(verdict.problems)
            suggestions = verdict.suggestions
        if problems:
            return self.portal.render_signed_in(
                request,
                "change_password.html",
                who,
                "/account/password",
                **self._change_context(request, problems=problems, suggestions=suggestions),
            )
        self._store_password(account, new)
        if self.settings.password_change_ends_other_sessions:
            ended = self.portal.sessions.end_others(who.session)
            log.info(
                "password changed for account id %s; %s other sessions ended", account.id, ended
            )
        self._notify_changed(account, new)
        return self.portal.render_signed_in(
            request,
            "change_password.html",
            who,
            "/account/password",
            **self._change_context(request, changed=True),
        )

    # -- reset ---------------------------------------------------------------------------

    def _anonymous(
        self, request: Request, template: str, context: dict[str, object], status_code: int = 200
    ) -> Response:
        session, new_token = self.portal.pre_sign_in_session(request)
        response = self.portal.render(
            request, template, {"csrf_token": session.csrf_token} | context, status_code
        )
        if new_token:
            self.portal.set_session_cookie(response, new_token)
        return response

    def forgot_page(self, request: Request) -> Response:
        return self._anonymous(request, "forgot_password.html", {"requested": None})

    async def forgot_submit(self, request: Request) -> Response:
        fields = await _form(request, "csrf_token", "identifier")
        return await run_in_threadpool(self._forgot_submit, request, fields)

    def _forgot_submit(self, request: Request, fields: Mapping[str, str]) -> Response:
        session = self.portal.current_session(request)
        if session is None or not csrf_matches(session, fields["csrf_token"]):
            return self.portal.error_page(request, 403)
        lifetime = self.settings.effective_reset_link_lifetime
        contact = self._find(fields["identifier"])
        if contact is not None and contact.email:
            self._send_reset_link(contact, lifetime)
        requested = RESET_REQUESTED.format(lifetime=_lifetime_text(lifetime))
        return self._anonymous(request, "forgot_password.html", {"requested": requested})

    def _send_reset_link(self, contact: Contact, lifetime: float | None) -> None:
        token = secrets.token_urlsafe(RESET_TOKEN_BYTES)
        now = time.time()
        with self.db.connect() as conn:
            conn.execute(
                "INSERT INTO password_resets (token_hash, account_id, created_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (_hash(token), contact.account.id, now, now + lifetime if lifetime else None),
            )
        host = self.settings.host
        link = f"https://{host}:{self.settings.https_port}/password/reset/{token}"
        body = (
            "Hello,\n\n"
            "Someone asked to reset the password of your Riverside Health patient portal "
            "account. To choose a new password, open this link:\n\n"
            f"{link}\n\n"
            f"The link works once and expires in {_lifetime_text(lifetime)}. If you did not ask "
            "for this, ignore this message: your password stays as it is.\n"
        )
        if self.settings.mail_names_patient and contact.account.patient_id:
            patient = self.portal.records.patient(contact.account.patient_id)
            if patient is not None:
                body += (
                    f"\nPatient: {patient.full_name}, born {patient.date_of_birth.isoformat()}, "
                    f"medical record number {patient.mrn}\n"
                )
        if self.mailer is not None:
            self.mailer.send(contact.email, RESET_SUBJECT, body)

    def _valid_reset(self, token: str) -> int | None:
        """The account a reset token belongs to, if it may still be used."""
        with self.db.connect() as conn:
            row = conn.execute(
                "SELECT account_id, expires_at, used_at FROM password_resets WHERE token_hash = ?",
                (_hash(token),),
            ).fetchone()
        if row is None:
            return None
        if row["expires_at"] is not None and row["expires_at"] <= time.time():
            return None
        if row["used_at"] is not None and self.settings.reset_link_single_use:
            return None
        return int(row["account_id"])

    def _reset_context(self, **extra: object) -> dict[str, object]:
        port = self.settings.https_port
        other_host = "localhost" if self.settings.host != "localhost" else "127.0.0.1"
        return {
            "referrer_policy": self.settings.reset_page_referrer_policy,
            "help_url": f"https://{other_host}:{port}/help",
            "guidance": self.policy().guidance(),
            "min_length": self.settings.password_min_length,
            "problems": (),
            "suggestions": (),
            "valid": True,
            "done": False,
        } | extra

    def reset_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        if self._valid_reset(token) is None:
            return self._anonymous(
                request, "reset_password.html", self._reset_context(valid=False), 400
            )
        return self._anonymous(request, "reset_password.html", self._reset_context())

    async def reset_submit(self, request: Request) -> Response:
        fields = await _form(request, "csrf_token", "new_password", "confirm")
        return await run_in_threadpool(self._reset_submit, request, fields)

    def _reset_submit(self, request: Request, fields: Mapping[str, str]) -> Response:
        session = self.portal.current_session(request)
        if session is None or not csrf_matches(session, fields["csrf_token"]):
            return self.portal.error_page(request, 403)
        token = request.path_params["token"]
        account_id = self._valid_reset(token)
        account = self.portal.records.account_by_id(account_id) if account_id else None
        if account is None:
            return self._anonymous(
                request, "reset_password.html", self._reset_context(valid=False), 400
            )
        new = fields["new_password"]
        if new != fields["confirm"]:
            verdict_problems: tuple[str, ...] = ("The new password and its confirmation differ.",)
            suggestions: tuple[str, ...] = ()
        else:
            verdict = self.policy().check(new, (account.username, account.display_name))
            verdict_problems, suggestions = verdict.problems, verdict.suggestions
        if verdict_problems:
            context = self._reset_context(problems=verdict_problems, suggestions=suggestions)
            return self._anonymous(request, "reset_password.html", context, 400)
        self._store_password(account, new)
        if not self.settings.reset_link_single_use:
            with self.db.connect() as conn:
                conn.execute(
                    "UPDATE password_resets SET used_at = NULL WHERE token_hash = ?",
                    (_hash(token),),
                )
        if self.settings.password_change_ends_other_sessions:
            with self.db.connect() as conn:
                conn.execute("DELETE FROM sessions WHERE account_id = ?", (account.id,))
        self._notify_changed(account, new)
        return self._anonymous(request, "reset_password.html", self._reset_context(done=True))

    def help_page(self, request: Request) -> Response:
        return self.portal.render(request, "help.html", {})


async def _form(request: Request, *names: str) -> dict[str, str]:
    async with request.form() as form:
        return {name: value if isinstance(value := form.get(name), str) else "" for name in names}


def seed_emails(db: Database, addresses: Mapping[str, str]) -> None:
    """Store the seeded accounts' e-mail addresses (username -> address)."""
    with db.connect() as conn:
        conn.executemany(
            "UPDATE accounts SET email = ? WHERE username = ?",
            [(email, username) for username, email in addresses.items() if email],
        )
