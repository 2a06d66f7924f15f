"""Synthetic patients of the Harbor View Clinic portal: accounts by audit role, and charts.

Every name, number and value here is made up. The audit's provider generates the passwords
and TOTP secrets per run; the profile lists the medical record numbers and dates of birth as
markers that must never appear in an e-mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DOMAIN = "patients.harborview-clinic.example"


@dataclass(frozen=True)
class Patient:
    key: str  # the provider's variable stem: FLASK_SECURITY_<KEY>_PASSWORD
    email: str
    full_name: str
    mrn: str
    date_of_birth: str
    clinician: str
    enrolled_in_totp: bool = False
    results: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)


def _results(hemoglobin: str, ferritin: str, glucose: str) -> list[dict[str, Any]]:
    return [
        {"test": "Hemoglobin", "value": hemoglobin, "unit": "g/dL", "range": "12.0-15.5",
         "date": "2026-10-02"},
        {"test": "Ferritin", "value": ferritin, "unit": "ng/mL", "range": "15-150",
         "date": "2026-10-02"},
        {"test": "Fasting glucose", "value": glucose, "unit": "mg/dL", "range": "70-99",
         "date": "2026-09-14"},
    ]  # fmt: skip


def _messages(clinician: str, topic: str) -> list[dict[str, Any]]:
    return [
        {"from": clinician, "subject": f"Your {topic} results", "date": "2026-10-03",
         "body": f"Your {topic} results are in the normal range. No follow-up is needed."},
        {"from": "Harbor View Clinic scheduling", "subject": "Annual check-up",
         "date": "2026-09-20",
         "body": "It is time to book your annual check-up. Call us or reply to this message."},
    ]  # fmt: skip


PATIENTS: tuple[Patient, ...] = (
    Patient("PATIENT", f"maria.alvarez@{DOMAIN}", "Maria Alvarez", "4481-2290", "1979-03-12",
            "Dr. Ana Costa", results=_results("13.1", "48", "91"),
            messages=_messages("Dr. Ana Costa", "blood test")),
    Patient("MFA", f"kwame.mensah@{DOMAIN}", "Kwame Mensah", "5520-1187", "1985-11-30",
            "Dr. Ana Costa", enrolled_in_totp=True, results=_results("14.2", "88", "95"),
            messages=_messages("Dr. Ana Costa", "iron panel")),
    Patient("MFA_ENROL", f"layla.haddad@{DOMAIN}", "Layla Haddad", "6034-7781", "1993-02-17",
            "Dr. Ben Okoye", results=_results("12.8", "35", "88"),
            messages=_messages("Dr. Ben Okoye", "blood test")),
    Patient("LOCKOUT", f"piotr.kowalski@{DOMAIN}", "Piotr Kowalski", "3390-6612",
            "1962-07-08", "Dr. Ben Okoye", results=_results("14.9", "120", "97"),
            messages=_messages("Dr. Ben Okoye", "glucose")),
    Patient("PASSWORD_TESTER", f"erik.lindqvist@{DOMAIN}", "Erik Lindqvist", "6702-3318",
            "1968-09-04", "Dr. Ana Costa", results=_results("13.7", "64", "101"),
            messages=_messages("Dr. Ana Costa", "glucose")),
    Patient("RESET_TESTER", f"aiko.nakamura@{DOMAIN}", "Aiko Nakamura", "7113-0425",
            "1991-06-21", "Dr. Ben Okoye", results=_results("12.4", "22", "84"),
            messages=_messages("Dr. Ben Okoye", "iron panel")),
    Patient("ENUM", f"sean.brennan@{DOMAIN}", "Sean Brennan", "2257-9034", "1974-01-25",
            "Dr. Ana Costa", results=_results("15.0", "140", "92"),
            messages=_messages("Dr. Ana Costa", "blood test")),
)  # fmt: skip
