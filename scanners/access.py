"""PROXY_ACCESS: what a caregiver account saw at granted and not-granted record URLs.

A not-granted record "refused" proves nothing unless the same signed-in caregiver is shown the
granted records (the positive control) before and after it, and the refusal is the portal's
own: not a throttle or a CSRF/WAF/block page (``RecordVisit.refusal``, from
``scanners.refusals``). A granted URL reopened after the not-granted ones (``reopened``) shows the
session was not signed out, expired or throttled in between.
"""

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
    # A throttle, CSRF, WAF or block page met instead of the portal's answer, if any.
    refusal: str = ""
    # A granted URL opened again after the not-granted ones: the session still works.
    reopened: bool = False

    @property
    def refused(self) -> bool:
        return not self.patient_data and (self.status in REFUSING_STATUSES or self.sign_in_form)

    @property
    def loaded(self) -> bool:
        return self.patient_data and self.status == 200


def evaluate_proxy_access(visits: list[RecordVisit]) -> Evaluation:
    applied = "granted records load; other patients' records answer 403/404 (or sign-in)"
    granted = [v for v in visits if v.granted and not v.reopened]
    reopened = [v for v in visits if v.granted and v.reopened]
    others = [v for v in visits if not v.granted]
    broken = [v for v in granted if not v.loaded]
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
        if not v.refused and not (v.refusal and not v.patient_data)
    ]
    statuses = ", ".join(sorted({str(v.status) for v in others}))
    measured = (
        f"{len(granted)} granted record URLs loaded; {len(others)} not-granted URLs "
        f"answered {statuses}, {sum(v.refused for v in others)} refused"
    )
    if reopened:
        state = "loaded" if reopened[-1].loaded else "not loaded"
        measured += f"; granted URL reopened after them: {state}"
    if not findings:
        # Every not-granted URL was refused: only now do other causes of a refusal matter.
        blocked = [v for v in others if v.refusal]
        if blocked:
            return Evaluation(
                "inconclusive",
                f"{blocked[0].url} answered with {blocked[0].refusal}: a throttle or block page, "
                "not the portal's access decision",
                measured=measured,
                threshold=applied,
            )
        lost = [v for v in reopened if not v.loaded]
        if lost:
            return Evaluation(
                "inconclusive",
                f"the granted record no longer loaded after the not-granted ones ({lost[0].url}: "
                f"HTTP {lost[0].status}"
                + (f", {lost[0].refusal}" if lost[0].refusal else "")
                + "): the caregiver's session was signed out, expired or throttled, so their "
                "refusals prove nothing",
                measured=measured,
                threshold=applied,
            )
    return verdict(
        findings,
        measured=measured,
        threshold=applied,
        passed_reason="the caregiver sees the granted patient's records and no one else's",
        failed_reason="the caregiver can open records of a patient it was not granted",
    )
