"""Server-side sessions: only a SHA-256 of each token is stored; timeouts are enforced here."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reference_portal.db import Database

# token_urlsafe(32) is 43 characters; anything far longer is not one of ours.
MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True)
class Session:
    token_hash: str
    account_id: int | None
    csrf_token: str
    created_at: float
    last_seen_at: float

    @property
    def authenticated(self) -> bool:
        return self.account_id is not None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_matches(session: Session | None, submitted: str | None) -> bool:
    if session is None or not submitted:
        return False
    return secrets.compare_digest(session.csrf_token.encode(), submitted.encode())


@dataclass(frozen=True)
class ActiveSession:
    token_hash: str
    created_at: float
    last_seen_at: float
    user_agent: str


class SessionStore:
    def __init__(
        self,
        db: Database,
        *,
        idle_timeout: float,
        absolute_timeout: float,
        clock: Callable[[], float] = time.time,
        issued_token_log: Path | None = None,
        token_bytes: int = 32,
    ) -> None:
        self.token_bytes = token_bytes
        self.database = db
        self._db = db
        self.idle_timeout = idle_timeout
        self.absolute_timeout = absolute_timeout
        self._clock = clock
        self._issued_token_log = issued_token_log

    def record_issued(self, secret: str) -> None:
        """Test hook only: lets portal-audit's own tests prove that no session cookie value or
        password set by a check reaches an audit artifact. Never set for a real deployment."""
        if self._issued_token_log is not None:
            with self._issued_token_log.open("a", encoding="utf-8") as log:
                log.write(secret + "\n")

    def create(self, account_id: int | None, user_agent: str = "") -> tuple[str, Session]:
        """Start a session under a brand-new token; returns the raw token for the cookie."""
        token = secrets.token_urlsafe(self.token_bytes)
        self.record_issued(token)
        now = self._clock()
        session = Session(
            token_hash=hash_token(token),
            account_id=account_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
        )
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO sessions (token_hash, account_id, csrf_token, created_at, "
                "last_seen_at, user_agent) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    session.token_hash,
                    session.account_id,
                    session.csrf_token,
                    session.created_at,
                    session.last_seen_at,
                    user_agent[:300],
                ),
            )
        return token, session

    def load(self, token: str | None) -> Session | None:
        """Return the live session for a token and mark it used; expired sessions are deleted."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        token_hash = hash_token(token)
        now = self._clock()
        with self._db.connect() as conn:
            self._purge(conn, now)
            row = conn.execute(
                "SELECT token_hash, account_id, csrf_token, created_at FROM sessions "
                "WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", (now, token_hash)
            )
        return Session(
            token_hash=row["token_hash"],
            account_id=row["account_id"],
            csrf_token=row["csrf_token"],
            created_at=row["created_at"],
            last_seen_at=now,
        )

    def promote(self, session: Session, account_id: int) -> None:
        """Authenticate an existing session in place (only the session_fixation weakness)."""
        with self._db.connect() as conn:
            conn.execute(
                "UPDATE sessions SET account_id = ? WHERE token_hash = ?",
                (account_id, session.token_hash),
            )

    def active_for(self, account_id: int) -> list[ActiveSession]:
        now = self._clock()
        with self._db.connect() as conn:
            self._purge(conn, now)
            rows = conn.execute(
                "SELECT token_hash, created_at, last_seen_at, user_agent FROM sessions "
                "WHERE account_id = ? ORDER BY created_at DESC",
                (account_id,),
            ).fetchall()
        return [
            ActiveSession(r["token_hash"], r["created_at"], r["last_seen_at"], r["user_agent"])
            for r in rows
        ]

    def end_others(self, session: Session) -> int:
        """End every other session of the same account; returns how many ended."""
        with self._db.connect() as conn:
            cursor = conn.execute(
                "DELETE FROM sessions WHERE account_id = ? AND token_hash != ?",
                (session.account_id, session.token_hash),
            )
            return cursor.rowcount

    def delete(self, session: Session) -> None:
        with self._db.connect() as conn:
            conn.execute("DELETE FROM sessions WHERE token_hash = ?", (session.token_hash,))

    def purge_expired(self) -> None:
        with self._db.connect() as conn:
            self._purge(conn, self._clock())

    def _purge(self, conn: sqlite3.Connection, now: float) -> None:
        conn.execute(
            "DELETE FROM sessions WHERE last_seen_at <= ? OR created_at <= ?",
            (now - self.idle_timeout, now - self.absolute_timeout),
        )
