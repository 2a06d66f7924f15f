"""Authentication steps: account lockout (AUTH_LOCKOUT) and account enumeration (AUTH_ENUM)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict

import pytest
from pydantic import SecretStr
from pytest_bdd import given, then, when

from portal.background import ProbeContext, SlowProbes, slow_probe
from portal.driver import SignInOutcome
from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.plugin import ControlRecord
from portal.profile import Account, Profile
from scanners.enumeration import FormComparison, evaluate_enumeration
from scanners.forms import FormAnswer, FormClient
from scanners.http import make_ssl_context
from scanners.lockout import LockoutMeasurement, LockoutRound, evaluate_lockout
from scanners.timeouts import duration
from steps.outcome import conclude

# -- AUTH_LOCKOUT: measured by a background probe (portal.background) ---------------------------


def _lockout_account(profile: Profile) -> tuple[Account | None, str]:
    account = profile.accounts.get("lockout")
    if account is None:
        return None, "the profile has no accounts.lockout (a dedicated account to lock out)"
    if not account.dedicated_test_account:
        return None, "accounts.lockout is not marked dedicated_test_account"
    return account, ""


class _Attempts:
    """Paced sign-in attempts from one browser, signing out after each one that succeeds."""

    def __init__(self, probe: ProbeContext) -> None:
        self.probe = probe
        self.pause = probe.profile.lockout.pause_seconds
        self.next_at = time.monotonic()
        self.page = probe.new_page()
        self.started = time.monotonic()

    def sign_in(self, account: Account) -> SignInOutcome:
        self.probe.wait_until(self.next_at, "the pause between sign-in attempts")
        # The portal judges an attempt after this moment, so times measured from it never
        # overstate how long a lock lasted.
        self.started = time.monotonic()
        outcome = self.probe.driver.sign_in(self.page, account)
        if outcome.signed_in:
            self.probe.driver.sign_out(self.page)
        self.probe.remember_cookies(self.page.context)
        self.next_at = time.monotonic() + self.pause
        return outcome


def _refused(outcome: SignInOutcome, what: str) -> str:
    if outcome.signed_in:
        raise Inconclusive(f"{what} signed in")
    if not outcome.error_message:
        raise Inconclusive(f"{what} showed no refusal message: {outcome.detail}")
    return outcome.error_message


@slow_probe("AUTH_LOCKOUT")
def measure_lockout(probe: ProbeContext) -> LockoutMeasurement:
    profile = probe.profile
    ceiling = int(profile.threshold("max_failures"))
    minimum = float(profile.threshold("lockout_seconds"))
    period = profile.lockout.period_seconds
    pause = profile.lockout.pause_seconds
    account, why_not = _lockout_account(profile)
    if account is None:
        return LockoutMeasurement(ceiling, pause, (), skipped=why_not)
    if not profile.sign_in.error:
        raise Inconclusive("AUTH_LOCKOUT needs sign_in.error, where a refused sign-in says so")
    wrong_password = "Wrong-" + secrets.token_urlsafe(12)
    wrong = account.model_copy(update={"password": SecretStr(wrong_password)})
    attempts = _Attempts(probe)
    rounds: list[LockoutRound] = []
    wrong_message = locked_message = ""
    locked_at: float | None = None
    # Never more wrong passwords in a row than the policy allows: the right one follows 1, 2,
    # 3 ... failures, so the threshold is found without hammering a portal that has none.
    for failures in range(1, ceiling + 1):
        probe.status = f"the right password after {failures} wrong ones"
        for _ in range(failures):
            wrong_message = _refused(attempts.sign_in(wrong), "a wrong password")
        last_failure_at = time.monotonic()
        right = attempts.sign_in(account)
        rounds.append(LockoutRound(failures, right.signed_in))
        if not right.signed_in:
            locked_message = _refused(right, "the right password")
            locked_at = last_failure_at
            break
    if locked_at is None:
        return LockoutMeasurement(ceiling, pause, tuple(rounds), wrong_message)
    # Early enough that one sign-in's own duration cannot carry the check past the period.
    grace = max(3.0, 0.05 * minimum)
    probe.wait_until(locked_at + minimum - grace, "the end of the policy's lockout period")
    still = attempts.sign_in(account)
    still_locked = (attempts.started - locked_at, still.signed_in)
    # An unknown username is never locked: its refusal is what "no such account" looks like.
    unknown = account.model_copy(
        update={"username": f"portal-audit-{secrets.token_hex(6)}", "password": wrong.password}
    )
    unknown_message = _refused(attempts.sign_in(unknown), "an unknown account")
    restored = None
    if still.signed_in:
        restored = still_locked
    elif period is not None:
        probe.wait_until(
            locked_at + period + max(2.0, 0.1 * period), "the portal's lockout period to end"
        )
        back = attempts.sign_in(account)
        restored = (attempts.started - locked_at, back.signed_in)
    return LockoutMeasurement(
        ceiling,
        pause,
        tuple(rounds),
        wrong_message,
        locked_message,
        unknown_message,
        still_locked,
        period,
        restored,
    )


@given(
    "the lockout test account was given wrong passwords until it locked, and tried again later",
    target_fixture="lockout_measurement",
)
def lockout_measured(
    slow_probes: SlowProbes, progress: Callable[[str], None]
) -> LockoutMeasurement:
    measurement: LockoutMeasurement = slow_probes.result("AUTH_LOCKOUT", progress)
    return measurement


@then(
    "it locked within the policy's number of failures, refused the right password with an "
    "ordinary message and stayed locked for the policy's period"
)
def lockout_meets_policy(
    lockout_measurement: LockoutMeasurement,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    m = lockout_measurement
    if not m.skipped:
        evidence.json(
            "sign-in attempts",
            {
                "ceiling (policy max_failures)": m.ceiling,
                "pause between attempts (s)": m.pause_seconds,
                "rounds": [asdict(r) for r in m.rounds],
                "still locked check": m.still_locked_check
                and f"{'accepted' if m.still_locked_check[1] else 'refused'} after "
                f"{duration(m.still_locked_check[0])}",
                "account back check": m.restored_check
                and f"{'accepted' if m.restored_check[1] else 'refused'} after "
                f"{duration(m.restored_check[0])}",
                "messages": {
                    "wrong password": m.wrong_password_message,
                    "right password while locked": m.locked_message,
                    "unknown account": m.unknown_account_message,
                },
            },
        )
    evaluation = evaluate_lockout(
        m,
        max_failures=int(profile.threshold("max_failures")),
        lockout_seconds=float(profile.threshold("lockout_seconds")),
    )
    conclude(evaluation, control_record, evidence, "lockout findings")


# -- AUTH_ENUM ------------------------------------------------------------------------------------


@when(
    "sign-in, and password reset where the portal has it, are tried many times for a known "
    "and an unknown account",
    target_fixture="enumeration_samples",
)
def enumeration_samples(profile: Profile, evidence: Evidence) -> list[FormComparison]:
    settings = profile.auth_enum
    if settings is None:
        pytest.skip("the profile has no auth_enum section (a known username and form fields)")
    samples = int(profile.threshold("samples"))
    known = settings.known_username
    unknown = f"portal-audit-{secrets.token_hex(6)}"
    hide = (known, unknown)
    context = make_ssl_context(profile.tls.ca_file)
    timeout = profile.timeouts.navigation_seconds

    def sample(page_url: str, field_name: str, values: dict[str, str]) -> FormAnswer:
        return FormClient(context, timeout).submit(page_url, field_name, values, hide)

    forms: list[tuple[str, str, str, Callable[[str], dict[str, str]]]] = []
    wrong_password = "Wrong-" + secrets.token_urlsafe(12)
    forms.append(
        (
            "sign-in",
            profile.url(profile.sign_in.url),
            settings.username_field,
            lambda user: {settings.username_field: user, settings.password_field: wrong_password},
        )
    )
    if settings.reset is not None:
        reset = settings.reset
        forms.append(
            ("password reset", profile.url(reset.url), reset.username_field,
             lambda user: {reset.username_field: user})
        )  # fmt: skip
    comparisons = []
    for name, url, field_name, values in forms:
        # One untimed answer each first: the first request of a kind may pay for warm-up.
        sample(url, field_name, values(known))
        sample(url, field_name, values(unknown))
        known_answers: list[FormAnswer] = []
        unknown_answers: list[FormAnswer] = []
        for index in range(samples):
            # Alternating (and swapping who goes first) spreads any drift over both sides.
            order = [(known, known_answers), (unknown, unknown_answers)]
            for user, answers in order if index % 2 == 0 else reversed(order):
                answers.append(sample(url, field_name, values(user)))
        comparisons.append(FormComparison(name, tuple(known_answers), tuple(unknown_answers)))
    evidence.json(
        "answers (usernames shown as <username>)",
        {
            c.form: {
                side: [
                    {"status": a.status, "location": a.location, "ms": round(a.elapsed * 1000, 1)}
                    | ({"error": a.error} if a.error else {})
                    for a in answers
                ]
                + [{"text": answers[0].text[:500]}] * bool(answers)
                for side, answers in (("known", c.known), ("unknown", c.unknown))
            }
            for c in comparisons
        },
    )
    if settings.reset is None:
        evidence.text("scope", "no password-reset form in the profile: sign-in compared only")
    return comparisons


@then("the portal answers both accounts alike in text, status and timing")
def answers_alike(
    enumeration_samples: list[FormComparison],
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_enumeration(
        enumeration_samples,
        tolerance_ms=float(profile.threshold("timing_tolerance_ms")),
        min_samples=int(profile.threshold("samples")),
    )
    conclude(evaluation, control_record, evidence, "enumeration findings")
