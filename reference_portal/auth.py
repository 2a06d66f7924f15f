"""Password hashing and sign-in verification with argon2."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from reference_portal.records import Account, Records

GENERIC_SIGN_IN_ERROR = "The username or password is incorrect."


def default_hasher() -> PasswordHasher:
    # OWASP's argon2id baseline (19 MiB, t=2, p=1): compliant, and cheap enough that audits
    # timing 20+ sign-ins per account for AUTH_ENUM stay quick.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class Authenticator:
    def __init__(self, records: Records, hasher: PasswordHasher | None = None) -> None:
        self._records = records
        self._hasher = hasher or default_hasher()
        # Verified against for unknown usernames so both answers cost the same argon2 work.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))

    def hash_password(self, password: str) -> str:
        return self._hasher.hash(password)

    def authenticate(self, username: str, password: str) -> Account | None:
        found = self._records.credentials_by_username(username.strip()) if username else None
        password_hash = found[1] if found else self._dummy_hash
        try:
            self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return found[0] if found else None
