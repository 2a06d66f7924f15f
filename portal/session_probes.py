"""SESS_IDLE's and SESS_ABS's background probes: sessions replayed after known idle times, and
a session kept busy past the absolute timeout.

Each records what it saw (``IdleMeasurement``, ``BusyMeasurement``) with a positive control
taken right after (a fresh session, replayed at once, is signed in); the verdicts are
``scanners.timeouts.evaluate_idle`` and ``evaluate_absolute``. steps/session.py registers the
probes with the run (``portal.background.slow_probe``) and judges what they measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from playwright.sync_api import Cookie, Page

from portal.background import ProbeContext
from portal.session_checks import check_session, signed_in_outcome
from scanners.timeouts import BusyMeasurement, IdleMeasurement, SessionCheck, duration


def _signed_in_context(probe: ProbeContext) -> tuple[list[Cookie], float]:
    """Sign in on a fresh browser, keep its cookies, close it so nothing keeps it alive.

    The time returned is taken once the browser is closed: no request of that browser can have
    touched the session later, so an idle time counted from it is never overstated.
    """
    context = probe.new_context()
    signed_in_outcome(probe.driver, context.new_page(), probe.profile.patient)
    cookies = context.cookies()
    probe.discard(context)
    return cookies, time.monotonic()


@dataclass(frozen=True)
class _IdleSession:
    idle: float
    cookies: list[Cookie]
    signed_in_at: float

    @property
    def due(self) -> float:
        return self.signed_in_at + self.idle


def measure_idle_timeout(probe: ProbeContext) -> IdleMeasurement:
    threshold = probe.profile.thresholds.idle_timeout_seconds
    grace = max(2.0, 0.1 * threshold)
    # Several sessions, each tried once: a replay is itself activity and would restart the
    # idle clock of the session it tries. Each replay is due at its own session's sign-in plus
    # its idle time; signing in the longest wait first keeps slow sign-ins (a loaded machine)
    # from making the short waits late.
    planned = [threshold + grace, 0.9 * threshold, 0.5 * threshold, 0.25 * threshold]
    sessions = [_IdleSession(idle, *_signed_in_context(probe)) for idle in planned]
    checks = _replay_when_due(probe, sessions)
    # Every replay came too late to find its session alive: the bracket has no lower end. Try
    # shorter waits on fresh sessions, alone, so nothing else can delay them.
    for idle in (0.25 * threshold, 0.1 * threshold):
        if any(check.signed_in or check.refusal for check in checks):
            break
        checks += _replay_when_due(probe, [_IdleSession(idle, *_signed_in_context(probe))])
    return IdleMeasurement(threshold, tuple(checks), _fresh_replay(probe))


def _replay_when_due(probe: ProbeContext, sessions: list[_IdleSession]) -> list[SessionCheck]:
    """Replay each session once, in the order they fall due (the shorter wait first on a tie)."""
    checks = []
    for session in sorted(sessions, key=lambda s: (s.due, s.idle)):
        probe.wait_until(session.due, f"a session idle for {duration(session.idle)}")
        page = probe.new_page(session.cookies)
        checks.append(_timed_check(probe, page, session.signed_in_at))
        probe.discard(page.context)
    return checks


def _timed_check(probe: ProbeContext, page: Page, since: float) -> SessionCheck:
    """One replay, timed from ``since`` to the moment that bounds what it found.

    Signed in: the session was alive when the check began (it reached the portal later still).
    Signed out: the portal had decided by the time its first answer reached the browser
    (``answer_moment``); a slow signed-out redirect chain (an identity provider's form) or a
    loaded machine must not count against it.
    """
    tried_at = time.monotonic()
    replay = check_session(probe.driver, page, probe.profile)
    if replay.signed_in:
        return SessionCheck(tried_at - since, True)
    moment = time.monotonic() if replay.answered_at is None else max(tried_at, replay.answered_at)
    return SessionCheck(moment - since, False, replay.refusal)


def _fresh_replay(probe: ProbeContext) -> SessionCheck:
    """Positive control after the last replay: a new session, replayed at once, is signed in."""
    cookies, signed_in_at = _signed_in_context(probe)
    page = probe.new_page(cookies)
    check = _timed_check(probe, page, signed_in_at)
    probe.discard(page.context)
    return check


def busy_schedule(threshold: float, interval: float, grace: float) -> list[float]:
    """When (seconds after sign-in) the busy session is checked.

    Every ``interval`` up to the threshold, then every eighth of the grace to its end: the
    session's birth is only known within the sign-in's last request, so its end is found by
    checking often while it may come, and an answer that arrives late (a loaded machine) still
    leaves a later check whose answer can arrive within the grace.
    """
    moments = []
    moment = interval
    while moment < threshold:
        moments.append(moment)
        moment += interval
    return [*moments, *(threshold + grace * step / 8 for step in range(9))]


def measure_absolute_timeout(probe: ProbeContext) -> BusyMeasurement:
    threshold = probe.profile.thresholds.absolute_timeout_seconds
    idle = probe.profile.thresholds.idle_timeout_seconds
    grace = max(2.0, 0.05 * threshold)
    # Requests well inside the idle timeout, so only the absolute lifetime can end the session.
    interval = max(1.0, min(idle / 3, 60.0))
    context = probe.new_context()
    page = context.new_page()
    signed_in_outcome(probe.driver, page, probe.profile.patient)
    # Counted from the end of the sign-in. The session was made a little earlier (within the
    # sign-in's last request, seconds on a loaded machine); counting from the request that set
    # its cookie instead left the end unprovable within the grace whenever that request was
    # slow, so the grace covers that part of the sign-in.
    signed_in_at = time.monotonic()
    checks: list[SessionCheck] = []
    for offset in busy_schedule(threshold, interval, grace):
        probe.wait_until(signed_in_at + offset, f"the busy session to reach {duration(threshold)}")
        check = _timed_check(probe, page, signed_in_at)
        checks.append(check)
        if not check.signed_in:
            break
    return BusyMeasurement(threshold, interval, grace, tuple(checks), _fresh_replay(probe))
