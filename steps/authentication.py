"""Authentication steps: account lockout (AUTH_LOCKOUT) and account enumeration (AUTH_ENUM)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import pytest
from pytest_bdd import given, then, when

from portal.background import SlowProbes, slow_probe
from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.form_sampling import answers_evidence, sample_forms
from portal.lockout_sign_ins import measure_lockout
from portal.profile import Profile
from portal.run import ControlRecord
from scanners.enumeration import FormComparison, evaluate_enumeration
from scanners.http import fetch, make_ssl_context
from scanners.lockout import LockoutMeasurement, evaluate_lockout
from steps.outcome import conclude

# -- AUTH_LOCKOUT: measured by a background probe (portal.lockout_sign_ins) -------------------

# Registered here, next to the scenario that reads it; it runs from the start of the run.
slow_probe("AUTH_LOCKOUT")(measure_lockout)


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
        max_failures=profile.thresholds.max_failures,
        lockout_seconds=profile.thresholds.lockout_seconds,
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
    comparisons, pacer = sample_forms(profile, profile.thresholds.samples)
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
        tolerance_ms=profile.thresholds.timing_tolerance_ms,
        min_samples=profile.thresholds.samples,
    )
    conclude(evaluation, control_record, evidence, "enumeration findings")
