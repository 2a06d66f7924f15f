"""Caregiver (proxy) access: an account may open the records of the patients it was granted.

Records of a patient are addressed by medical record number (``/patients/<mrn>/results``). An
account may open its own patient's and its granted patients' records; any other patient's
record answers 404, exactly like a patient that does not exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reference_portal.db import Database
from reference_portal.records import Patient
from reference_portal.seed import SEED_ACCOUNTS

if TYPE_CHECKING:
    from reference_portal.app import Portal, SignedIn


def seed_grants(db: Database) -> None:
    """Grant each seeded caregiver the patients its seed entry names (by MRN)."""
    with db.connect() as conn:
        for seeded in SEED_ACCOUNTS:
            row = conn.execute(
                "SELECT id FROM accounts WHERE username = ?", (seeded.username,)
            ).fetchone()
            if row is None:
                continue
            conn.execute("DELETE FROM proxy_grants WHERE account_id = ?", (row["id"],))
            for mrn in seeded.proxy_for:
                conn.execute(
                    "INSERT INTO proxy_grants (account_id, patient_id) "
                    "SELECT ?, id FROM patients WHERE mrn = ?",
                    (row["id"], mrn),
                )


class ProxyPages:
    def __init__(self, portal: Portal) -> None:
        self.portal = portal
        self._db = portal.sessions.database

    def routes(self) -> list[Route]:
        return [
            Route("/patients", self.patient_list, methods=["GET"]),
            Route("/patients/{mrn}/results", self.results, methods=["GET"]),
            Route("/patients/{mrn}/messages", self.messages, methods=["GET"]),
        ]

    def _granted_ids(self, account_id: int) -> list[int]:
        with self._db.connect() as conn:
            rows = conn.execute(
                "SELECT patient_id FROM proxy_grants WHERE account_id = ? ORDER BY patient_id",
                (account_id,),
            ).fetchall()
        return [int(row["patient_id"]) for row in rows]

    def _patient_by_mrn(self, mrn: str) -> Patient | None:
        with self._db.connect() as conn:
            row = conn.execute("SELECT id FROM patients WHERE mrn = ?", (mrn,)).fetchone()
        return self.portal.records.patient(int(row["id"])) if row else None

    def _may_open(self, who: SignedIn, patient: Patient) -> bool:
        if not self.portal.settings.proxy_checks_grants:
            return True
        if who.account.patient_id == patient.id:
            return True
        return patient.id in self._granted_ids(who.account.id)

    def patient_list(self, request: Request) -> Response:
        who = self.portal.signed_in(request)
        if who is None:
            return self.portal.to_sign_in(request)
        patients = [who.patient] if who.patient else []
        for patient_id in self._granted_ids(who.account.id):
            granted = self.portal.records.patient(patient_id)
            if granted is not None and granted not in patients:
                patients.append(granted)
        return self.portal.render_signed_in(
            request, "proxy_patients.html", who, "/patients", patients=patients
        )

    def _target(self, request: Request) -> tuple[SignedIn | None, Patient | None]:
        who = self.portal.signed_in(request)
        if who is None:
            return None, None
        patient = self._patient_by_mrn(str(request.path_params["mrn"]))
        if patient is None or not self._may_open(who, patient):
            return who, None
        return who, patient

    def results(self, request: Request) -> Response:
        who, patient = self._target(request)
        if who is None:
            return self.portal.to_sign_in(request)
        if patient is None:
            return self.portal.error_page(request, 404)
        return self.portal.render_signed_in(
            request,
            "results.html",
            who,
            "/patients",
            patient=patient,
            results=self.portal.records.lab_results(patient.id),
        )

    def messages(self, request: Request) -> Response:
        who, patient = self._target(request)
        if who is None:
            return self.portal.to_sign_in(request)
        if patient is None:
            return self.portal.error_page(request, 404)
        return self.portal.render_signed_in(
            request,
            "messages.html",
            who,
            "/patients",
            patient=patient,
            messages=self.portal.records.messages(patient.id),
        )
