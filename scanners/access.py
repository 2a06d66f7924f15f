"""PROXY_ACCESS: what a caregiver account saw at granted and not-granted record URLs."""

from __future__ import annotations

from dataclasses import dataclass

from scanners.result import Evaluation, Finding, verdict

REFUSING_STATUSES = frozenset({401, 403, 404})


@dataclass(frozen=True)
class RecordVisit:
    url: str
    granted: bool
    status: int | None
    final_url: str
    patient_data: bool
    sign_in_form: bool

    @property
    def refused(self) -> bool:
        return not self.patient_data and (self.status in REFUSING_STATUSES or self.sign_in_form)


def evaluate_proxy_access(visits: list[RecordVisit]) -> Evaluation:
    applied = "granted records load; other patients' records answer 403/404 (or sign-in)"
    granted = [v for v in visits if v.granted]
    others = [v for v in visits if not v.granted]
    broken = [v for v in granted if not v.patient_data or v.status != 200]
    if not granted or not others:
        return Evaluation("inconclusive", "granted and not-granted URLs are both needed", "")
    if broken:
        first = broken[0]
        return Evaluation(
            "inconclusive",
            f"the granted patient's record did not load for the proxy account ({first.url}: "
            f"HTTP {first.status}), so a refusal elsewhere proves nothing",
            threshold=applied,
        )
    findings = [
        Finding(
            "proxy.not_granted_visible",
            f"answered HTTP {v.status}"
            + (" with patient data" if v.patient_data else " without refusing"),
            where=v.url,
        )
        for v in others
        if not v.refused
    ]
    statuses = ", ".join(sorted({str(v.status) for v in others}))
    return verdict(
        findings,
        measured=f"{len(granted)} granted record URLs loaded; {len(others)} not-granted URLs "
        f"answered {statuses}, {sum(v.refused for v in others)} refused",
        threshold=applied,
        passed_reason="the caregiver sees the granted patient's records and no one else's",
        failed_reason="the caregiver can open records of a patient it was not granted",
    )
