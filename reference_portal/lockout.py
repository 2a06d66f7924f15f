"""Password sign-in with account lockout and answers that never reveal whether an account exists.

Consecutive wrong passwords are counted per account; at the threshold the account is locked for
the lockout period, during which even the right password is refused. A locked account, an
unknown username and a wrong password all get the same message and cost the same argon2 work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from reference_portal.auth import GENERIC_SIGN_IN_ERROR, Authenticator
from reference_portal.db import Database
from reference_portal.records import Account, Records
from reference_portal.settings import PortalSettings

# Only with the enumerating_sign_in_errors weakness: answers that tell the two cases apart.
UNKNOWN_ACCOUNT_ERROR = "We could not find an account with that username."
WRONG_PASSWORD_ERROR = "The password is incorrect for this account."


@dataclass(frozen=True)
class SignInAttempt:
    """The outcome of a username/password submission: an account, or a message to show."""

    account: Account | None
    error_text: str = ""


class SignInGuard:
    def __init__(
        self,
        db: Database,
        records: Records,
        authenticator: Authenticator,
        settings: PortalSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._records = records
        self._authenticator = authenticator
        self._settings = settings
        self._clock = clock

    def attempt(self, username: str, password: str) -> SignInAttempt:
        found = self._records.credentials_by_username(username.strip()) if username else None
        # Always verified, locked or not, so a locked account answers as slowly as any other.
        account = self._authenticator.authenticate(username, password)
        if found is None:
            return SignInAttempt(None, self._refusal(known=False))
        account_id = found[0].id
        now = self._clock()
        if self._locked(account_id, now):
            return SignInAttempt(None, self._refusal(known=True))
        if account is None:
            self._record_failure(account_id, now)
            return SignInAttempt(None, self._refusal(known=True))
        self._reset(account_id)
        return SignInAttempt(account)

    def _refusal(self, *, known: bool) -> str:
        if not self._settings.enumerating_sign_in_errors:
            return GENERIC_SIGN_IN_ERROR
        return WRONG_PASSWORD_ERROR if known else UNKNOWN_ACCOUNT_ERROR

    def _locked(self, account_id: int, now: float) -> bool:
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT locked_until FROM sign_in_failures WHERE account_id = ?", (account_id,)
            ).fetchone()
        return row is not None and row["locked_until"] > now

    def _record_failure(self, account_id: int, now: float) -> None:
        threshold = self._settings.lockout_threshold
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO sign_in_failures (account_id, failures, locked_until) "
                "VALUES (?, 1, 0) ON CONFLICT (account_id) DO UPDATE SET "
                "failures = failures + 1",
                (account_id,),
            )
            failures = conn.execute(
                "SELECT failures FROM sign_in_failures WHERE account_id = ?", (account_id,)
            ).fetchone()["failures"]
            if threshold is not None and failures >= threshold:
                # Attempts while locked are not counted, so the lock never extends itself.
                conn.execute(
                    "UPDATE sign_in_failures SET failures = 0, locked_until = ? "
                    "WHERE account_id = ?",
                    (now + self._settings.lockout_seconds, account_id),
                )

    def _reset(self, account_id: int) -> None:
        with self._db.connect() as conn:
            conn.execute("DELETE FROM sign_in_failures WHERE account_id = ?", (account_id,))
