"""Authentication steps: account lockout (AUTH_LOCKOUT) and account enumeration (AUTH_ENUM)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import asdict

import pytest
from pydantic import SecretStr
from pytest_bdd import given, then, when

from portal.background import ProbeContext, SlowProbes, slow_probe
from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.form_sampling import answers_evidence, sample_forms
from portal.lockout_probe import LockoutSequence, SignInAnswer
from portal.profile import Account, Profile
from portal.run import ControlRecord
from scanners.enumeration import FormComparison, evaluate_enumeration
from scanners.http import fetch, make_ssl_context
from scanners.lockout import LockoutMeasurement, Who, evaluate_lockout
from steps.outcome import conclude

# -- AUTH_LOCKOUT: measured by a background probe (portal.background) ---------------------------
# The order of attempts is portal/lockout_probe.py's, the verdict scanners/lockout.py's; here
# the browser signs in.


def _lockout_account(profile: Profile) -> tuple[Account | None, str]:
    account = profile.accounts.get("lockout")
    if account is None:
        return None, "the profile has no accounts.lockout (a dedicated account to lock out)"
    if not account.dedicated_test_account:
        return None, "accounts.lockout is not marked dedicated_test_account"
    return account, ""


class _BrowserSignIns:
    """The lockout probe's ``SignInTarget``: one browser signing in, and out after a success."""

    def __init__(self, probe: ProbeContext, account: Account) -> None:
        self.probe = probe
        wrong = SecretStr("Wrong-" + secrets.token_urlsafe(12))
        unknown = f"portal-audit-{secrets.token_hex(6)}"
        self.accounts: dict[Who, Account] = {
            "right": account,
            "wrong": account.model_copy(update={"password": wrong}),
            "unknown": account.model_copy(update={"username": unknown, "password": wrong}),
        }
        self.wrong = wrong
        # Another real account's right password shows whether the lock is keyed on the client.
        self.other = probe.profile.accounts.get("patient")
        self.captcha = probe.profile.lockout.captcha
        self.page = probe.new_page()

    @property
    def has_other_account(self) -> bool:
        return self.other is not None

    def _account(self, who: Who) -> Account:
        if who == "other":
            if self.other is None:
                raise Inconclusive("the profile has no accounts.patient to try after the lock")
            return self.other
        if who == "fresh":
            fresh = f"portal-audit-{secrets.token_hex(6)}"
            return self.accounts["right"].model_copy(
                update={"username": fresh, "password": self.wrong}
            )
        return self.accounts[who]

    def _captcha_shown(self) -> bool:
        if not self.captcha:
            return False
        return self.page.locator(self.captcha).first.is_visible()

    def attempt(self, who: Who) -> SignInAnswer:
        try:
            outcome = self.probe.driver.sign_in(self.page, self._account(who))
        except Inconclusive:
            # A CAPTCHA in place of the form is an answer; any other missing form is not.
            if self._captcha_shown():
                return SignInAnswer(False, captcha=True)
            raise
        finally:
            self.probe.remember_cookies(self.page.context)
        if outcome.signed_in:
            self.probe.driver.sign_out(self.page)
            return SignInAnswer(True)
        return SignInAnswer(
            False, outcome.error_message, captcha=self._captcha_shown(), detail=outcome.detail
        )


@slow_probe("AUTH_LOCKOUT")
def measure_lockout(probe: ProbeContext) -> LockoutMeasurement:
    profile = probe.profile
    ceiling = int(profile.threshold("max_failures"))
    pause = profile.lockout.pause_seconds
    account, why_not = _lockout_account(profile)
    if account is None:
        return LockoutMeasurement(ceiling, pause, skipped=why_not)
    if not profile.sign_in.error:
        raise Inconclusive("AUTH_LOCKOUT needs sign_in.error, where a refused sign-in says so")

    def show(status: str) -> None:
        probe.status = status

    return LockoutSequence(
        _BrowserSignIns(probe, account),
        probe,
        ceiling=ceiling,
        minimum_seconds=float(profile.threshold("lockout_seconds")),
        period_seconds=profile.lockout.period_seconds,
        pause_seconds=pause,
        status=show,
    ).run()


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
        # Who signed in and how it went; passwords and usernames are never part of an attempt.
        evidence.json(
            "sign-in attempts",
            {
                "ceiling (policy max_failures)": m.ceiling,
                "pause between attempts (s)": m.pause_seconds,
                "portal's stated period (s)": m.period_seconds,
                "lock found at attempt": m.lock_index,
                "problem": m.problem or None,
                "attempts (s since the first)": [
                    asdict(a) | {"retry_after": a.retry_after} for a in m.attempts
                ],
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
    if profile.auth_enum is None:
        pytest.skip("the profile has no auth_enum section (a known username and form fields)")
    # Dozens of submissions follow, each allowed the navigation timeout: a portal that does not
    # answer one request within the reachability timeout would only make them all time out.
    reachable = fetch(
        profile.url(profile.sign_in.url),
        ssl_context=make_ssl_context(profile.tls.ca_file),
        timeout=profile.timeouts.reachability_seconds,
        kind="page",
    )
    if reachable.error:
        raise Inconclusive(
            f"the sign-in form did not answer at {reachable.url}: {reachable.error}; no samples "
            "were sent"
        )
    comparisons, pacer = sample_forms(profile, int(profile.threshold("samples")))
    evidence.json("answers (usernames shown as <username>)", answers_evidence(comparisons))
    if pacer.describe():
        evidence.text("throttling", pacer.describe())
    if profile.auth_enum.reset is None:
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
