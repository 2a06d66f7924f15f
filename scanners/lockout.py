"""AUTH_LOCKOUT: what a series of sign-in attempts showed, and the verdict on it.

The probe (steps/authentication.py) finds the lockout threshold by trying the right password
after 1, 2, 3 ... consecutive wrong ones, never more than the policy's maximum in a row; then,
while the account is locked, it tries the right password once shortly before the policy's
minimum lockout period ends, and (when the profile states the portal's period) once after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanners.result import Evaluation, Finding, verdict
from scanners.timeouts import duration


@dataclass(frozen=True)
class LockoutRound:
    """``failures`` consecutive wrong passwords, then the right one: accepted or refused."""

    failures: int
    right_password_accepted: bool


@dataclass(frozen=True)
class LockoutMeasurement:
    ceiling: int
    pause_seconds: float
    rounds: tuple[LockoutRound, ...]
    # The messages of a refused wrong password, of the refused right password while locked, and
    # of an unknown account refused as often: compared, never reported verbatim with secrets.
    wrong_password_message: str = ""
    locked_message: str = ""
    unknown_account_message: str = ""
    # Seconds after locking at which the right password was tried again, and whether it worked.
    still_locked_check: tuple[float, bool] | None = None
    period_seconds: float | None = None
    restored_check: tuple[float, bool] | None = None
    skipped: str = ""

    @property
    def threshold(self) -> int | None:
        """Consecutive failures after which the right password was refused, if any."""
        return next((r.failures for r in self.rounds if not r.right_password_accepted), None)


def _same_message(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def evaluate_lockout(
    measurement: LockoutMeasurement, *, max_failures: int, lockout_seconds: float
) -> Evaluation:
    threshold_text = f"locked after <= {max_failures} failures for >= {duration(lockout_seconds)}"
    if measurement.skipped:
        return Evaluation("skipped", measurement.skipped, threshold=threshold_text)
    if not measurement.rounds:
        return Evaluation(
            "inconclusive", "no sign-in attempt was completed", threshold=threshold_text
        )
    findings: list[Finding] = []
    measured: list[str] = []
    threshold = measurement.threshold
    if threshold is None:
        tried = max(r.failures for r in measurement.rounds)
        measured.append(f"not locked: the right password still worked after {tried} failures")
        findings.append(
            Finding(
                "lockout.none_within_policy",
                f"the account was not locked after {tried} consecutive wrong passwords "
                f"(policy: at most {max_failures})",
            )
        )
        return verdict(
            findings,
            measured="; ".join(measured),
            threshold=threshold_text,
            passed_reason="",
            failed_reason=f"no lockout within {max_failures} consecutive failures",
        )
    measured.append(f"locked after {threshold} consecutive failures")
    if threshold > max_failures:
        findings.append(
            Finding(
                "lockout.threshold_too_high",
                f"locked only after {threshold} failures (policy: at most {max_failures})",
            )
        )
    reveals = not (
        _same_message(measurement.locked_message, measurement.wrong_password_message)
        or _same_message(measurement.locked_message, measurement.unknown_account_message)
    )
    measured.append(
        "refusal while locked "
        + ("differs from" if reveals else "matches")
        + " an ordinary refused sign-in"
    )
    if reveals:
        findings.append(
            Finding(
                "lockout.message_reveals_account",
                "while locked, the right password gets a message that differs from both a wrong "
                "password's and an unknown account's, telling an attacker the account exists",
            )
        )
    if measurement.still_locked_check is not None:
        after, accepted = measurement.still_locked_check
        measured.append(
            f"right password {'accepted' if accepted else 'refused'} "
            f"{duration(after)} after locking"
        )
        if accepted:
            findings.append(
                Finding(
                    "lockout.too_short",
                    f"the lock ended before {duration(after)} "
                    f"(policy: at least {duration(lockout_seconds)})",
                )
            )
    else:
        findings.append(
            Finding(
                "lockout.duration_unmeasured",
                "the lockout period was not measured",
                severity="warn",
            )
        )
    if measurement.restored_check is not None:
        after, accepted = measurement.restored_check
        measured.append(
            f"account {'back' if accepted else 'still locked'} {duration(after)} after locking"
        )
        if not accepted:
            period = duration(measurement.period_seconds or 0)
            findings.append(
                Finding(
                    "lockout.not_restored",
                    f"the account did not come back after the stated lockout period ({period})",
                )
            )
    else:
        findings.append(
            Finding(
                "lockout.unlock_not_checked",
                "the profile gives no lockout period, so the account was left locked",
                severity="warn",
            )
        )
    return verdict(
        findings,
        measured="; ".join(measured),
        threshold=threshold_text,
        passed_reason=(
            f"locked after {threshold} consecutive failures (policy <= {max_failures}), "
            "refused the right password with an ordinary message"
        ),
        failed_reason="account lockout does not meet the policy",
    )
