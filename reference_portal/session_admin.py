"""Recent sign-ins, shown on the account's sessions page (SESS_REVOKE, HIPAA 164.312(b))."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reference_portal.db import Database


@dataclass(frozen=True)
class SignInEvent:
    at: dt.datetime
    user_agent: str
    address: str


class SignInLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, account_id: int, at: float, user_agent: str, address: str) -> None:
        with self._db.connect() as conn:
            conn.execute(
                "INSERT INTO sign_in_events (account_id, at, user_agent, address) "
                "VALUES (?, ?, ?, ?)",
                (account_id, at, user_agent[:300], address[:64]),
            )

    def recent(self, account_id: int, limit: int = 10) -> list[SignInEvent]:
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT at, user_agent, address FROM sign_in_events WHERE account_id = ? "
                "ORDER BY at DESC LIMIT ?",
                (account_id, limit),
            ).fetchall()
        return [
            SignInEvent(dt.datetime.fromtimestamp(r["at"]), r["user_agent"], r["address"])
            for r in rows
        ]
