"""Read access to accounts and patient records."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from reference_portal.db import Database


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    patient_id: int | None


@dataclass(frozen=True)
class Patient:
    id: int
    full_name: str
    date_of_birth: dt.date
    mrn: str


@dataclass(frozen=True)
class LabResult:
    test_name: str
    value: str
    unit: str
    reference_range: str
    flag: str | None
    collected_on: dt.date
    ordered_by: str


@dataclass(frozen=True)
class Message:
    sender: str
    subject: str
    body: str
    sent_at: dt.datetime
    unread: bool


@dataclass(frozen=True)
class Appointment:
    starts_at: dt.datetime
    clinician: str
    department: str
    location: str
    reason: str


def _account(row: sqlite3.Row) -> Account:
    return Account(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        patient_id=row["patient_id"],
    )


class Records:
    def __init__(self, db: Database) -> None:
        self._db = db

    def account_by_id(self, account_id: int) -> Account | None:
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT id, username, display_name, patient_id FROM accounts WHERE id = ?",
                (account_id,),
            ).fetchone()
        return _account(row) if row else None

    def credentials_by_username(self, username: str) -> tuple[Account, str] | None:
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT id, username, display_name, patient_id, password_hash "
                "FROM accounts WHERE username = ?",
                (username,),
            ).fetchone()
        return (_account(row), row["password_hash"]) if row else None

    def patient(self, patient_id: int) -> Patient | None:
        with self._db.connect() as conn:
            row = conn.execute(
                "SELECT id, full_name, date_of_birth, mrn FROM patients WHERE id = ?",
                (patient_id,),
            ).fetchone()
        if row is None:
            return None
        return Patient(
            id=row["id"],
            full_name=row["full_name"],
            date_of_birth=dt.date.fromisoformat(row["date_of_birth"]),
            mrn=row["mrn"],
        )

    def lab_results(self, patient_id: int) -> list[LabResult]:
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM lab_results WHERE patient_id = ? ORDER BY collected_on DESC, id",
                (patient_id,),
            ).fetchall()
        return [
            LabResult(
                test_name=row["test_name"],
                value=row["value"],
                unit=row["unit"],
                reference_range=row["reference_range"],
                flag=row["flag"],
                collected_on=dt.date.fromisoformat(row["collected_on"]),
                ordered_by=row["ordered_by"],
            )
            for row in rows
        ]

    def messages(self, patient_id: int) -> list[Message]:
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM messages WHERE patient_id = ? ORDER BY sent_at DESC, id",
                (patient_id,),
            ).fetchall()
        return [
            Message(
                sender=row["sender"],
                subject=row["subject"],
                body=row["body"],
                sent_at=dt.datetime.fromisoformat(row["sent_at"]),
                unread=row["read_at"] is None,
            )
            for row in rows
        ]

    def upcoming_appointments(self, patient_id: int, now: dt.datetime) -> list[Appointment]:
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM appointments WHERE patient_id = ? AND starts_at >= ? "
                "ORDER BY starts_at",
                (patient_id, now.isoformat(timespec="minutes")),
            ).fetchall()
        return [
            Appointment(
                starts_at=dt.datetime.fromisoformat(row["starts_at"]),
                clinician=row["clinician"],
                department=row["department"],
                location=row["location"],
                reason=row["reason"],
            )
            for row in rows
        ]
