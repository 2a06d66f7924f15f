"""Second-factor controls judged on what the driver observed (MFA_ENFORCE, MFA_ENROLL, MFA_OTP,
MFA_RECOVERY). Pure: no browser, no network; the observations carry no secret values."""

from __future__ import annotations

import base64
import binascii
import math
import re
from dataclasses import dataclass

from scanners.result import Evaluation, Finding, verdict

# -- MFA_ENFORCE ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectVisit:
    """A protected URL opened after the password step alone."""

    url: str
    status: int | None
    final_url: str
    signed_in: bool
    patient_data: bool
    asks_second_factor: bool
    sign_in_form: bool
    # A throttle or block page met instead of the portal's answer (scanners.refusals).
    refusal: str = ""

    @property
    def answered(self) -> bool:
        """The URL served its signed-in content."""
        return self.signed_in or self.patient_data


def evaluate_enforcement(
    second_factor_asked: bool,
    visits: list[DirectVisit],
    after_second_factor: list[DirectVisit] | None = None,
) -> Evaluation:
    """``after_second_factor``: the same URLs opened once the second factor was given, the
    positive control showing that their refusal before was the missing factor's doing."""
    applied = "no protected page answers before the second factor"
    if not second_factor_asked:
        return Evaluation(
            "inconclusive",
            "the MFA account was not asked for a second factor after its password "
            "(check accounts.mfa and the mfa section of the profile)",
            threshold=applied,
        )
    if not visits:
        return Evaluation("inconclusive", "no protected URL was opened", threshold=applied)
    blocked = [v for v in visits if v.refusal and not v.answered]
    if blocked:
        return Evaluation(
            "inconclusive",
            f"{blocked[0].url} met {blocked[0].refusal} after the password alone: a throttle or "
            "block page, not the portal's second-factor check",
            threshold=applied,
        )
    bypassed = [v for v in visits if v.answered]
    if not bypassed:
        after = {v.url: v for v in after_second_factor or []}
        if not after:
            return Evaluation(
                "inconclusive",
                "the positive control was not taken: the URLs refused after the password alone "
                "were not opened again after the second factor",
                threshold=applied,
            )
        closed = [v.url for v in visits if not (v.url in after and after[v.url].answered)]
        if closed:
            return Evaluation(
                "inconclusive",
                f"{closed[0]} did not answer after the second factor either (positive control): "
                "its refusal before cannot be credited to the missing second factor",
                threshold=applied,
            )
    findings: list[Finding] = []
    sent_back = 0
    for visit in visits:
        if visit.signed_in or visit.patient_data:
            shown = "patient data" if visit.patient_data else "a signed-in page"
            findings.append(
                Finding(
                    "mfa.bypass",
                    f"answered with {shown} after the password alone (HTTP {visit.status})",
                    where=visit.url,
                )
            )
        elif visit.asks_second_factor:
            sent_back += 1
        elif not (visit.sign_in_form or visit.status in (401, 403)):
            findings.append(
                Finding(
                    "mfa.unclear_answer",
                    f"neither the second-factor form nor the sign-in form (HTTP {visit.status}, "
                    f"at {visit.final_url})",
                    severity="warn",
                    where=visit.url,
                )
            )
    refused = len(visits) - len([f for f in findings if f.severity == "fail"])
    positive = ""
    if after_second_factor:
        opened = sum(v.answered for v in after_second_factor)
        positive = (
            f"; positive control: {opened} of {len(after_second_factor)} answered after the "
            "second factor"
        )
    return verdict(
        findings,
        measured=f"{len(visits)} protected URLs opened after the password alone: {refused} "
        f"refused, {sent_back} of them by sending the visitor back to the second factor" + positive,
        threshold=applied,
        passed_reason=f"all {len(visits)} protected URLs refused until the second factor",
        failed_reason="protected pages answer after the password alone",
    )


# -- MFA_ENROLL ----------------------------------------------------------------------------


def secret_bits(secret: str) -> int | None:
    """Bits of a base32 TOTP secret, or None if it is not base32."""
    cleaned = "".join(secret.split()).upper().rstrip("=")
    padded = cleaned + "=" * (-len(cleaned) % 8)
    try:
        return len(base64.b32decode(padded)) * 8
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class EnrolmentObservation:
    reauthentication_asked: bool
    secret_bits: int | None
    qr_read: bool
    key_shown: bool
    qr_and_key_agree: bool | None
    wrong_code_refused: bool
    confirmed: bool
    second_factor_asked_after: bool | None
    removed: bool
    qr_problem: str = ""
    # The portal answered the wrong code by going back to the start of the enrolment, so the
    # valid code confirmed a second offer; the secret judged is still the first offer's.
    restarted_after_wrong_code: bool = False


def secret_source(observed: EnrolmentObservation) -> str:
    """Where the judged secret came from, naming only sources that yielded it.

    ``qr_read`` and ``key_shown`` are true only when the QR code held a secret and the key
    element showed a non-empty key. When both were read but differ, the secret judged is the QR
    code's (the enrolment.qr_key_mismatch warning says so), so the key is not named.
    """
    sources = []
    if observed.qr_read:
        sources.append("QR code")
    if observed.key_shown and not (observed.qr_read and observed.qr_and_key_agree is False):
        sources.append("key")
    if not sources:
        return "source not recorded"
    return "read from " + " and ".join(sources)


def evaluate_enrolment(observed: EnrolmentObservation, *, min_secret_bits: int) -> Evaluation:
    applied = f"secret >= {min_secret_bits} bits, confirmed by a valid code, re-authentication"
    if observed.secret_bits is None:
        problem = observed.qr_problem or "neither a readable QR code nor a base32 key was shown"
        return Evaluation("inconclusive", f"no TOTP secret was read: {problem}", threshold=applied)
    findings: list[Finding] = []
    if observed.secret_bits < min_secret_bits:
        findings.append(
            Finding(
                "enrol.short_secret",
                f"the TOTP secret has {observed.secret_bits} bits (policy: >= {min_secret_bits})",
            )
        )
    if not observed.wrong_code_refused:
        findings.append(
            Finding(
                "enrol.unconfirmed",
                "a wrong confirmation code completed the enrolment",
            )
        )
    if not observed.reauthentication_asked:
        findings.append(
            Finding(
                "enrol.no_reauthentication",
                "adding an authenticator did not ask for the current password",
            )
        )
    if observed.qr_and_key_agree is False:
        findings.append(
            Finding("enrol.qr_key_mismatch", "the QR code and the shown key differ", "warn")
        )
    if observed.qr_problem:
        findings.append(Finding("enrol.qr_unreadable", observed.qr_problem, "warn"))
    if not observed.confirmed and observed.wrong_code_refused:
        return Evaluation(
            "inconclusive",
            "a valid confirmation code was refused, so the enrolment could not be completed",
            threshold=applied,
            findings=tuple(findings),
        )
    if observed.second_factor_asked_after is False:
        findings.append(
            Finding(
                "enrol.not_enforced",
                "after enrolling, signing in did not ask for the second factor",
            )
        )
    if not observed.removed:
        findings.append(
            Finding("enrol.not_removed", "the test authenticator could not be removed", "warn")
        )
    restart = (
        " (the portal went back to the start: a new secret was enrolled)"
        if observed.restarted_after_wrong_code
        else ""
    )
    return verdict(
        findings,
        measured=f"secret {observed.secret_bits} bits ({secret_source(observed)}); wrong "
        f"confirmation code {'refused' if observed.wrong_code_refused else 'accepted'}"
        f"{restart}; re-authentication "
        f"{'asked' if observed.reauthentication_asked else 'not asked'}",
        threshold=applied,
        passed_reason=f"TOTP enrolment with a {observed.secret_bits}-bit secret, confirmed by a "
        "valid code after re-authentication",
        failed_reason="TOTP enrolment does not meet the requirement",
    )


# -- MFA_OTP -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OtpObservation:
    fresh_code_accepted: bool
    replay_accepted: bool
    stale_steps: int
    stale_accepted: bool
    wrong_codes_sent: int
    ended_after_wrong: int | None
    valid_after_wrong_accepted: bool | None
    # Where the replayed and the stale code led: a refusal counts only when the portal showed
    # its code form or sign-in form again, not an unknown page (a throttle or block page).
    refusal_states: tuple[str, ...] = ()


def evaluate_otp(
    observed: OtpObservation, *, max_drift_steps: int, max_wrong_codes: int
) -> Evaluation:
    applied = (
        f"each code once; codes older than {max_drift_steps} step(s) refused; "
        f"at most {max_wrong_codes} wrong codes"
    )
    if not observed.fresh_code_accepted:
        return Evaluation(
            "inconclusive", "a fresh, valid code was refused: cannot judge", threshold=applied
        )
    if "unknown" in observed.refusal_states:
        return Evaluation(
            "inconclusive",
            "a replayed or stale code led to neither the code form nor the sign-in form (a "
            "throttle or block page?): its refusal cannot be credited to the one-time rule",
            threshold=applied,
        )
    findings: list[Finding] = []
    if observed.replay_accepted:
        findings.append(Finding("otp.replay", "a code that had just been used was accepted again"))
    if observed.stale_accepted:
        findings.append(
            Finding(
                "otp.stale",
                f"a code from {observed.stale_steps} steps ago was accepted "
                f"(policy: drift <= {max_drift_steps})",
            )
        )
    if observed.ended_after_wrong is not None:
        throttle = f"sign-in ended after {observed.ended_after_wrong} wrong codes"
        if observed.ended_after_wrong > max_wrong_codes:
            findings.append(Finding("otp.not_throttled", throttle + f" (> {max_wrong_codes})"))
    elif observed.valid_after_wrong_accepted:
        throttle = f"a valid code was still accepted after {observed.wrong_codes_sent} wrong codes"
        findings.append(Finding("otp.not_throttled", throttle))
    else:
        throttle = f"a valid code was refused after {observed.wrong_codes_sent} wrong codes"
    measured = (
        f"replayed code {'accepted' if observed.replay_accepted else 'refused'}; code from "
        f"{observed.stale_steps} steps ago {'accepted' if observed.stale_accepted else 'refused'}; "
        + throttle
    )
    return verdict(
        findings,
        measured=measured,
        threshold=applied,
        passed_reason="codes are single-use, stale codes are refused and wrong codes throttled",
        failed_reason="one-time codes are not handled safely",
    )


# -- MFA_RECOVERY --------------------------------------------------------------------------


def estimate_code_bits(codes: list[str]) -> float | None:
    """Entropy of one recovery code judged from the alphabet all codes use and their length."""
    stripped = [re.sub(r"[\s\-_.]", "", code) for code in codes]
    stripped = [code for code in stripped if code]
    if not stripped:
        return None
    characters = set("".join(stripped))
    if characters <= set("0123456789"):
        alphabet = 10
    elif characters <= set("0123456789abcdef") or characters <= set("0123456789ABCDEF"):
        alphabet = 16
    elif characters <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") or characters <= set(
        "abcdefghijklmnopqrstuvwxyz234567"
    ):
        alphabet = 32
    elif characters <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") or characters <= set(
        "0123456789abcdefghijklmnopqrstuvwxyz"
    ):
        alphabet = 36
    else:
        alphabet = 62
    return min(len(code) for code in stripped) * math.log2(alphabet)


@dataclass(frozen=True)
class RecoveryObservation:
    codes_shown: int
    estimated_bits: float | None
    first_use_accepted: bool
    second_use_accepted: bool
    # Where the second use led: a refusal counts only on the portal's own forms, not on an
    # unknown page (a throttle or block page).
    second_use_state: str = ""


def evaluate_recovery(observed: RecoveryObservation, *, min_bits: int) -> Evaluation:
    applied = f"single-use, >= {min_bits} bits"
    if observed.codes_shown == 0 or observed.estimated_bits is None:
        return Evaluation(
            "inconclusive", "no recovery codes were shown after enrolment", threshold=applied
        )
    if not observed.first_use_accepted:
        return Evaluation(
            "inconclusive", "a fresh recovery code was refused: cannot judge", threshold=applied
        )
    if observed.second_use_state == "unknown":
        return Evaluation(
            "inconclusive",
            "the used recovery code's second use led to neither the code form nor the sign-in "
            "form (a throttle or block page?): its refusal cannot be credited to single use",
            threshold=applied,
        )
    findings: list[Finding] = []
    if observed.second_use_accepted:
        findings.append(Finding("recovery.reusable", "a recovery code worked a second time"))
    if observed.estimated_bits < min_bits:
        findings.append(
            Finding(
                "recovery.weak",
                f"recovery codes carry about {observed.estimated_bits:.0f} bits "
                f"(policy: >= {min_bits})",
            )
        )
    return verdict(
        findings,
        measured=f"{observed.codes_shown} codes of about {observed.estimated_bits:.0f} bits; "
        f"second use {'accepted' if observed.second_use_accepted else 'refused'}",
        threshold=applied,
        passed_reason=f"recovery codes work once and carry about {observed.estimated_bits:.0f} "
        "bits",
        failed_reason="recovery codes are not safe",
    )
