"""SESS_IDLE's and SESS_ABS's background probes: sessions replayed after known idle times, and
a session kept busy past the absolute timeout.

Each records what it saw (``IdleMeasurement``, ``BusyMeasurement``) with a positive control
taken right after (a fresh session, replayed at once, is signed in); the verdicts are
``scanners.timeouts.evaluate_idle`` and ``evaluate_absolute``. steps/session.py registers the
probes with the run (``portal.background.slow_probe``) and judges what they measured.
"""

from __future__ import annotations

import time

from playwright.sync_api import Cookie, Page

from portal.background import ProbeContext
from portal.session_checks import check_session, signed_in_outcome
from scanners.timeouts import BusyMeasurement, IdleMeasurement, SessionCheck, duration


def _signed_in_context(probe: ProbeContext) -> tuple[list[Cookie], float]:
    """Sign in on a fresh browser, keep its cookies, close it so nothing keeps it alive."""
    context = probe.new_context()
    signed_in_outcome(probe.driver, context.new_page(), probe.profile.patient)
    cookies = context.cookies()
    signed_in_at = time.monotonic()
    probe.discard(context)
    return cookies, signed_in_at


def measure_idle_timeout(probe: ProbeContext) -> IdleMeasurement:
    threshold = probe.profile.thresholds.idle_timeout_seconds
    grace = max(2.0, 0.1 * threshold)
    # Several sessions, each tried once: a replay is itself activity and would restart the
    # idle clock of the session it tries.
    idle_times = [0.25 * threshold, 0.5 * threshold, 0.9 * threshold, threshold + grace]
    sessions = [(idle, *_signed_in_context(probe)) for idle in idle_times]
    checks = []
    for idle, cookies, signed_in_at in sessions:
        probe.wait_until(signed_in_at + idle, f"a session idle for {duration(idle)}")
        page = probe.new_page(cookies)
        checks.append(_timed_check(probe, page, signed_in_at))
        probe.discard(page.context)
    return IdleMeasurement(threshold, tuple(checks), _fresh_replay(probe))


def _timed_check(probe: ProbeContext, page: Page, since: float) -> SessionCheck:
    """One replay, timed from ``since`` to the moment that bounds what it found.

    Signed in: the session was alive when the check began (it reached the portal later still).
    Signed out: the portal had decided by the time its first answer arrived; a slow signed-out
    redirect chain (an identity provider's form, a loaded machine) must not count against it.
    """
    tried_at = time.monotonic()
    replay = check_session(probe.driver, page, probe.profile)
    if replay.signed_in:
        moment = tried_at
    else:
        moment = replay.answered_at if replay.answered_at is not None else time.monotonic()
    return SessionCheck(moment - since, replay.signed_in, replay.refusal)


def _fresh_replay(probe: ProbeContext) -> SessionCheck:
    """Positive control after the last replay: a new session, replayed at once, is signed in."""
    cookies, signed_in_at = _signed_in_context(probe)
    page = probe.new_page(cookies)
    check = _timed_check(probe, page, signed_in_at)
    probe.discard(page.context)
    return check


def measure_absolute_timeout(probe: ProbeContext) -> BusyMeasurement:
    threshold = probe.profile.thresholds.absolute_timeout_seconds
    idle = probe.profile.thresholds.idle_timeout_seconds
    grace = max(2.0, 0.05 * threshold)
    # Requests well inside the idle timeout, so only the absolute lifetime can end the session.
    interval = max(1.0, min(idle / 3, 60.0))
    context = probe.new_context()
    page = context.new_page()
    signed_in_outcome(probe.driver, page, probe.profile.patient)
    signed_in_at = time.monotonic()
    checks: list[SessionCheck] = []
    moment = signed_in_at
    while True:
        moment = min(moment + interval, signed_in_at + threshold + grace)
        probe.wait_until(moment, f"the busy session to reach {duration(threshold)}")
        check = _timed_check(probe, page, signed_in_at)
        checks.append(check)
        if not check.signed_in or moment >= signed_in_at + threshold + grace:
            break
    return BusyMeasurement(threshold, interval, grace, tuple(checks), _fresh_replay(probe))
