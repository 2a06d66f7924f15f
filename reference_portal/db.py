"""SQLite storage: schema migrations and a per-use connection helper.

Accounts (sign-in identities) and patients (records) are separate tables so later features
(MFA factors, lockout counters, caregiver/proxy grants, e-mail addresses) become new
migrations and tables keyed by ``accounts.id`` instead of rewrites.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

# Each entry moves the schema one version forward; append, never edit a released entry.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE patients (
        id INTEGER PRIMARY KEY,
        full_name TEXT NOT NULL,
        date_of_birth TEXT NOT NULL,
        mrn TEXT NOT NULL UNIQUE
    );
    CREATE TABLE accounts (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        display_name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        -- the account holder's own record; caregiver access will be a separate grants table
        patient_id INTEGER REFERENCES patients(id) ON DELETE SET NULL,
        created_at REAL NOT NULL,
        password_changed_at REAL NOT NULL
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen_at REAL NOT NULL
    );
    CREATE INDEX sessions_by_account ON sessions(account_id);
    CREATE TABLE lab_results (
        id INTEGER PRIMARY KEY,
        patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        test_name TEXT NOT NULL,
        value TEXT NOT NULL,
        unit TEXT NOT NULL,
        reference_range TEXT NOT NULL,
        flag TEXT,
        collected_on TEXT NOT NULL,
        ordered_by TEXT NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        sender TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        read_at TEXT
    );
    CREATE TABLE appointments (
        id INTEGER PRIMARY KEY,
        patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        starts_at TEXT NOT NULL,
        clinician TEXT NOT NULL,
        department TEXT NOT NULL,
        location TEXT NOT NULL,
        reason TEXT NOT NULL
    );
    """,
    # 2: what the account's "active sessions and recent sign-ins" page shows (SESS_REVOKE).
    """
    ALTER TABLE sessions ADD COLUMN user_agent TEXT NOT NULL DEFAULT '';
    CREATE TABLE sign_in_events (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        at REAL NOT NULL,
        user_agent TEXT NOT NULL,
        address TEXT NOT NULL
    );
    CREATE INDEX sign_in_events_by_account ON sign_in_events(account_id, at);
    """,
    # 3: e-mail addresses and password-reset links (RESET_TOKEN, RESET_MAIL).
    """
    ALTER TABLE accounts ADD COLUMN email TEXT NOT NULL DEFAULT '';
    CREATE TABLE password_resets (
        token_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        expires_at REAL,
        used_at REAL
    );
    CREATE INDEX password_resets_by_account ON password_resets(account_id);
    """,
    # 4: lockout counters, TOTP factors, recovery codes, second-factor challenges and caregiver
    # grants (AUTH_LOCKOUT, MFA_*, PROXY_ACCESS).
    """
    CREATE TABLE sign_in_failures (
        account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        failures INTEGER NOT NULL,
        locked_until REAL NOT NULL
    );
    CREATE TABLE totp_factors (
        account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
        secret TEXT NOT NULL,
        active INTEGER NOT NULL,
        confirmed INTEGER NOT NULL,
        last_used_step INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE recovery_codes (
        id INTEGER PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        code_hash TEXT NOT NULL,
        used_at REAL
    );
    CREATE INDEX recovery_codes_by_account ON recovery_codes(account_id);
    CREATE TABLE mfa_challenges (
        session_hash TEXT PRIMARY KEY,
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        wrong_codes INTEGER NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE proxy_grants (
        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
        patient_id INTEGER NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        PRIMARY KEY (account_id, patient_id)
    );
    """,
)


class Database:
    """Opens a short-lived connection per unit of work, so any thread may use it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """Yield a connection inside a transaction that commits on success."""
        with closing(sqlite3.connect(self.path, timeout=10)) as connection:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys = ON")
            with connection:
                yield connection

    def migrate(self) -> int:
        with closing(sqlite3.connect(self.path, timeout=10)) as connection:
            connection.execute("PRAGMA journal_mode = WAL")
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                # executescript commits on its own, so the version bump rides in the script.
                connection.executescript(
                    f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;"
                )
            return len(MIGRATIONS)
