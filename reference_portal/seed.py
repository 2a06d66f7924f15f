"""Seeded accounts and their records. Passwords come only from the environment."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from reference_portal.db import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeedLabResult:
    test_name: str
    value: str
    unit: str
    reference_range: str
    flag: str | None
    days_ago: int
    ordered_by: str


@dataclass(frozen=True)
class SeedMessage:
    sender: str
    subject: str
    body: str
    days_ago: int
    read: bool


@dataclass(frozen=True)
class SeedAppointment:
    days_ahead: int
    time_of_day: dt.time
    clinician: str
    department: str
    location: str
    reason: str


@dataclass(frozen=True)
class SeedAccount:
    username: str
    password_env: str
    full_name: str
    date_of_birth: dt.date
    mrn: str
    lab_results: tuple[SeedLabResult, ...]
    messages: tuple[SeedMessage, ...]
    appointments: tuple[SeedAppointment, ...]
    email: str = ""
    # The variable holding this account's TOTP secret: the account starts enrolled in MFA.
    totp_env: str | None = None
    # Medical record numbers of the patients this (caregiver) account was granted.
    proxy_for: tuple[str, ...] = ()


SEED_ACCOUNTS: tuple[SeedAccount, ...] = (
    SeedAccount(
        username="patient.alvarez",
        password_env="REFERENCE_PATIENT_PASSWORD",
        full_name="Maria Alvarez",
        date_of_birth=dt.date(1984, 3, 12),
        mrn="4481-2290",
        lab_results=(
            SeedLabResult("Hemoglobin A1c", "5.4", "%", "4.0-5.6", None, 6, "Dr. Priya Raman"),
            SeedLabResult("LDL cholesterol", "131", "mg/dL", "< 100", "High", 6, "Dr. Priya Raman"),
            SeedLabResult(
                "Thyroid stimulating hormone", "2.1", "mIU/L", "0.4-4.0", None, 6, "Dr. Priya Raman"
            ),
            SeedLabResult(
                "Vitamin D, 25-hydroxy", "24", "ng/mL", "30-100", "Low", 41, "Dr. Priya Raman"
            ),
        ),
        messages=(
            SeedMessage(
                "Dr. Priya Raman, Family Medicine",
                "Your recent lab results",
                "Hi Maria, your A1c and thyroid results are normal. Your LDL cholesterol is a "
                "little high; let's talk about diet and exercise at your physical.",
                2,
                False,
            ),
            SeedMessage(
                "Riverside Clinic front desk",
                "Appointment reminder",
                "This is a reminder of your annual physical. Please arrive 15 minutes early "
                "and bring a list of your current medications.",
                5,
                False,
            ),
            SeedMessage(
                "Nurse Tom Becker, RN",
                "Vitamin D supplement",
                "As discussed on the phone, please take 2000 IU of vitamin D3 daily and we "
                "will recheck your level in three months.",
                39,
                True,
            ),
        ),
        appointments=(
            SeedAppointment(
                9,
                dt.time(9, 30),
                "Dr. Priya Raman",
                "Family Medicine",
                "Riverside Clinic, Suite 210",
                "Annual physical",
            ),
            SeedAppointment(
                23,
                dt.time(7, 45),
                "Laboratory services",
                "Laboratory",
                "Riverside Clinic, ground floor",
                "Fasting lipid panel",
            ),
        ),
    ),
    SeedAccount(
        username="patient.okafor",
        password_env="REFERENCE_PATIENT2_PASSWORD",
        full_name="Daniel Okafor",
        date_of_birth=dt.date(1979, 11, 2),
        mrn="5520-1187",
        lab_results=(
            SeedLabResult(
                "White blood cell count", "6.8", "10^3/uL", "4.0-11.0", None, 3, "Dr. Helen Cho"
            ),
            SeedLabResult("Creatinine", "1.1", "mg/dL", "0.7-1.3", None, 3, "Dr. Helen Cho"),
            SeedLabResult("Potassium", "5.3", "mmol/L", "3.5-5.1", "High", 3, "Dr. Helen Cho"),
        ),
        messages=(
            SeedMessage(
                "Dr. Helen Cho, Cardiology",
                "Potassium result",
                "Hello Daniel, your potassium is slightly high. Please avoid salt substitutes "
                "and we will repeat the test before your cardiology follow-up.",
                1,
                False,
            ),
            SeedMessage(
                "Riverside pharmacy",
                "Prescription ready",
                "Your lisinopril refill is ready for pickup at the Riverside pharmacy.",
                12,
                True,
            ),
        ),
        appointments=(
            SeedAppointment(
                6,
                dt.time(10, 15),
                "Riverside Clinic laboratory",
                "Laboratory",
                "Riverside Clinic, ground floor",
                "Repeat basic metabolic panel",
            ),
            SeedAppointment(
                34,
                dt.time(15, 0),
                "Dr. Helen Cho",
                "Cardiology",
                "Riverside Heart Center, 3rd floor",
                "Blood pressure follow-up",
            ),
        ),
    ),
    # Dedicated to the password controls (PWD_*, SESS_PWCHANGE, RESET_MAIL), whose checks
    # change this account's password and put it back.
    SeedAccount(
        username="patient.lindqvist",
        password_env="REFERENCE_PASSWORD_TESTER_PASSWORD",
        full_name="Erik Lindqvist",
        date_of_birth=dt.date(1968, 9, 4),
        mrn="6702-3318",
        lab_results=(
            SeedLabResult("Hemoglobin", "14.2", "g/dL", "13.5-17.5", None, 10, "Dr. Priya Raman"),
        ),
        messages=(),
        appointments=(),
        email="erik.lindqvist@patients.riverside-health.example",
    ),
    # Dedicated to RESET_TOKEN, which resets this account's password alongside the other checks.
    SeedAccount(
        username="patient.nakamura",
        password_env="REFERENCE_RESET_TESTER_PASSWORD",
        full_name="Aiko Nakamura",
        date_of_birth=dt.date(1991, 6, 21),
        mrn="7113-0425",
        lab_results=(
            SeedLabResult("Ferritin", "48", "ng/mL", "15-150", None, 20, "Dr. Helen Cho"),
        ),
        messages=(),
        appointments=(),
        email="aiko.nakamura@patients.riverside-health.example",
    ),
    # Dedicated to the authentication, MFA and caregiver controls (AUTH_*, MFA_*, PROXY_ACCESS).
    # Enrolled in TOTP from the start, with a secret each run generates (MFA_ENFORCE, MFA_OTP).
    SeedAccount(
        username="patient.mensah",
        password_env="REFERENCE_MFA_PASSWORD",
        totp_env="REFERENCE_MFA_TOTP_SECRET",
        full_name="Kwame Mensah",
        date_of_birth=dt.date(1975, 2, 14),
        mrn="8204-5561",
        lab_results=(
            SeedLabResult("Glucose, fasting", "92", "mg/dL", "70-99", None, 8, "Dr. Helen Cho"),
        ),
        messages=(),
        appointments=(),
    ),
    # Enrols an authenticator and removes it again on every run (MFA_ENROLL, MFA_RECOVERY).
    SeedAccount(
        username="patient.haddad",
        password_env="REFERENCE_MFA_ENROL_PASSWORD",
        full_name="Layla Haddad",
        date_of_birth=dt.date(1988, 12, 1),
        mrn="8315-6672",
        lab_results=(),
        messages=(),
        appointments=(),
    ),
    # Locked out on purpose by AUTH_LOCKOUT.
    SeedAccount(
        username="patient.kowalski",
        password_env="REFERENCE_LOCKOUT_PASSWORD",
        full_name="Piotr Kowalski",
        date_of_birth=dt.date(1963, 7, 30),
        mrn="8426-7783",
        lab_results=(),
        messages=(),
        appointments=(),
    ),
    # The known username whose refused sign-ins AUTH_ENUM times (it may get locked doing so).
    SeedAccount(
        username="patient.brennan",
        password_env="REFERENCE_ENUM_PASSWORD",
        full_name="Siobhan Brennan",
        date_of_birth=dt.date(1982, 4, 9),
        mrn="8537-8894",
        lab_results=(),
        messages=(),
        appointments=(),
    ),
    # A caregiver with a record of her own, granted Daniel Okafor's records but no one else's.
    SeedAccount(
        username="caregiver.jones",
        password_env="REFERENCE_PROXY_PASSWORD",
        full_name="Grace Jones",
        date_of_birth=dt.date(1958, 10, 17),
        mrn="8648-9905",
        lab_results=(
            SeedLabResult("Vitamin B12", "410", "pg/mL", "200-900", None, 15, "Dr. Priya Raman"),
        ),
        messages=(),
        appointments=(),
        proxy_for=("5520-1187",),
    ),
)


def password_variables() -> tuple[str, ...]:
    """The environment variables the seeded accounts read their passwords from."""
    return tuple(account.password_env for account in SEED_ACCOUNTS)


def secret_variables() -> tuple[str, ...]:
    """The environment variables the seeded accounts read their TOTP secrets from."""
    return tuple(account.totp_env for account in SEED_ACCOUNTS if account.totp_env)


def seed(
    db: Database,
    hash_password: Callable[[str], str],
    env: Mapping[str, str],
    *,
    now: dt.datetime | None = None,
) -> None:
    """Create or refresh the seeded accounts; records are rebuilt relative to today."""
    now = now or dt.datetime.now().replace(second=0, microsecond=0)
    today = now.date()
    stamp = time.time()
    for account in SEED_ACCOUNTS:
        password = env.get(account.password_env)
        if not password:
            log.warning(
                "%s is not set; %s gets an unusable random password",
                account.password_env,
                account.username,
            )
            password = secrets.token_urlsafe(32)
        password_hash = hash_password(password)
        with db.connect() as conn:
            conn.execute(
                "INSERT INTO patients (full_name, date_of_birth, mrn) VALUES (?, ?, ?) "
                "ON CONFLICT (mrn) DO UPDATE SET full_name = excluded.full_name, "
                "date_of_birth = excluded.date_of_birth",
                (account.full_name, account.date_of_birth.isoformat(), account.mrn),
            )
            patient_id = conn.execute(
                "SELECT id FROM patients WHERE mrn = ?", (account.mrn,)
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO accounts (username, display_name, password_hash, patient_id, "
                "created_at, password_changed_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name, "
                "password_hash = excluded.password_hash, patient_id = excluded.patient_id, "
                "password_changed_at = excluded.password_changed_at",
                (account.username, account.full_name, password_hash, patient_id, stamp, stamp),
            )
            for table in ("lab_results", "messages", "appointments"):
                conn.execute(f"DELETE FROM {table} WHERE patient_id = ?", (patient_id,))
            conn.executemany(
                "INSERT INTO lab_results (patient_id, test_name, value, unit, reference_range, "
                "flag, collected_on, ordered_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        patient_id,
                        lab.test_name,
                        lab.value,
                        lab.unit,
                        lab.reference_range,
                        lab.flag,
                        (today - dt.timedelta(days=lab.days_ago)).isoformat(),
                        lab.ordered_by,
                    )
                    for lab in account.lab_results
                ],
            )
            conn.executemany(
                "INSERT INTO messages (patient_id, sender, subject, body, sent_at, read_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        patient_id,
                        message.sender,
                        message.subject,
                        message.body,
                        (sent := now - dt.timedelta(days=message.days_ago, hours=3)).isoformat(),
                        (sent + dt.timedelta(hours=1)).isoformat() if message.read else None,
                    )
                    for message in account.messages
                ],
            )
            conn.executemany(
                "INSERT INTO appointments (patient_id, starts_at, clinician, department, "
                "location, reason) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        patient_id,
                        dt.datetime.combine(
                            today + dt.timedelta(days=visit.days_ahead), visit.time_of_day
                        ).isoformat(timespec="minutes"),
                        visit.clinician,
                        visit.department,
                        visit.location,
                        visit.reason,
                    )
                    for visit in account.appointments
                ],
            )
