"""Session lifetimes and endings measured from outside (SESS_IDLE, SESS_ABS, SESS_LOGOUT,
SESS_FIXATION, SESS_REVOKE, SESS_PWCHANGE, and Back after sign-out for SESS_LOGOUT/HDR_CACHE).

A probe replays a session's cookies after a known time, or after an event that must end it, and
records whether the portal still treated it as signed in. Evaluation is pure: it turns the probes
into a bracket ("alive at 18 s, gone at 22 s") and a verdict.

A session seen signed out proves nothing by itself: the cookies may not be replayable at all, or
the portal may be throttling, blocking or failing every request alike. So every verdict that
rests on "signed out" needs a positive control, the same replay answered "signed in" where it
should be (before the event, or a fresh session right after it), and no replay may have met a
throttle or block page (``SessionCheck.refusal``, from ``scanners.refusals``). Otherwise the
result is inconclusive and says which cause was not ruled out.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanners.result import Evaluation, Finding, verdict


@dataclass(frozen=True)
class SessionCheck:
    """One replay: how long after sign-in (or after the last activity) and what it found."""

    seconds: float
    signed_in: bool
    # Set when the answer was a throttle, CSRF/WAF or block page rather than the portal's view
    # of the session (``scanners.refusals.classify``): such a "signed out" proves nothing.
    refusal: str = ""


@dataclass(frozen=True)
class IdleMeasurement:
    threshold_seconds: float
    checks: tuple[SessionCheck, ...]
    # Positive control taken right after the last replay: a fresh session, replayed the same
    # way at once, must be signed in (rules out throttling, block pages and outages).
    control_after: SessionCheck | None = None


@dataclass(frozen=True)
class BusyMeasurement:
    threshold_seconds: float
    interval_seconds: float
    grace_seconds: float
    checks: tuple[SessionCheck, ...]
    control_after: SessionCheck | None = None


def duration(seconds: float) -> str:
    """``75.2`` -> ``1m15s``; short values keep one decimal."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{rest:02d}s" if hours else f"{minutes}m{rest:02d}s"


def _bracket(checks: tuple[SessionCheck, ...]) -> tuple[SessionCheck | None, SessionCheck | None]:
    alive = [c for c in checks if c.signed_in]
    gone = [c for c in checks if not c.signed_in]
    last_alive = max(alive, key=lambda c: c.seconds) if alive else None
    first_gone = min(gone, key=lambda c: c.seconds) if gone else None
    return last_alive, first_gone


def _other_cause(
    checks: tuple[SessionCheck, ...], control_after: SessionCheck | None, what: str
) -> str | None:
    """Why the signed-out replays may not be the portal's verdict on the session, or None."""
    refused = [c for c in checks if not c.signed_in and c.refusal]
    if refused:
        return (
            f"the replay after {duration(refused[0].seconds)} met {refused[0].refusal}, so "
            f"{what} cannot be told from a throttle or block page"
        )
    if control_after is not None and not control_after.signed_in:
        cause = f" ({control_after.refusal})" if control_after.refusal else ""
        return (
            "a fresh session replayed the same way right after the last replay was refused "
            f"too{cause}: throttling, uniform error pages or an outage explain the refusals as "
            f"well as {what}"
        )
    return None


def _control_text(control_after: SessionCheck | None) -> str:
    if control_after is None:
        return ""
    state = "signed in" if control_after.signed_in else "signed out"
    return f"; positive control: a fresh session replayed right after was {state}"


def evaluate_idle(measurement: IdleMeasurement) -> Evaluation:
    threshold = measurement.threshold_seconds
    applied = f"idle sessions end within {duration(threshold)}"
    checks = tuple(sorted(measurement.checks, key=lambda c: c.seconds))
    last_alive, first_gone = _bracket(checks)
    listing = ", ".join(
        f"{duration(c.seconds)} {'alive' if c.signed_in else 'signed out'}" for c in checks
    )
    if last_alive is None:
        return Evaluation(
            "inconclusive",
            "no replayed idle session was ever signed in, so an expiry cannot be attributed "
            f"to the idle timeout ({listing})",
            measured=listing,
            threshold=applied,
        )
    if first_gone is not None and first_gone.seconds < last_alive.seconds:
        return Evaluation(
            "inconclusive",
            f"inconsistent replays: signed out after {duration(first_gone.seconds)} idle but "
            f"alive after {duration(last_alive.seconds)} ({listing})",
            measured=listing,
            threshold=applied,
        )
    if last_alive.seconds >= threshold:
        return Evaluation(
            "failed",
            f"a session idle for {duration(last_alive.seconds)} was still signed in; the idle "
            f"timeout must be at most {duration(threshold)}",
            measured=f"still alive after {duration(last_alive.seconds)} idle ({listing})",
            threshold=applied,
            findings=(
                Finding(
                    "session.idle_timeout_too_long",
                    f"alive after {duration(last_alive.seconds)} idle",
                    where=f"threshold {duration(threshold)}",
                ),
            ),
        )
    if first_gone is None:
        return Evaluation(
            "inconclusive",
            f"no replay reached the idle timeout of {duration(threshold)} ({listing})",
            measured=listing,
            threshold=applied,
        )
    # A session seen alive is evidence on its own; only the "signed out" replays need their
    # other causes ruled out, so the check comes just before a pass.
    other = _other_cause(checks, measurement.control_after, "the idle timeout")
    if other is not None:
        return Evaluation("inconclusive", other, measured=listing, threshold=applied)
    bracket = (
        f"expired after {duration(first_gone.seconds)} idle, "
        f"alive at {duration(last_alive.seconds)}"
    ) + _control_text(measurement.control_after)
    return Evaluation(
        "passed",
        f"idle sessions end on the server within {duration(threshold)} ({bracket})",
        measured=bracket,
        threshold=applied,
    )


def evaluate_absolute(measurement: BusyMeasurement) -> Evaluation:
    threshold = measurement.threshold_seconds
    limit = threshold + measurement.grace_seconds
    applied = f"sessions end within {duration(threshold)} of sign-in, even while active"
    checks = tuple(sorted(measurement.checks, key=lambda c: c.seconds))
    every = f"requests every {duration(measurement.interval_seconds)}"
    if not checks or not checks[0].signed_in:
        return Evaluation(
            "inconclusive",
            "the busy session was not signed in at its first request, so its end cannot be "
            "attributed to the absolute timeout",
            measured=every,
            threshold=applied,
        )
    last_alive, first_gone = _bracket(checks)
    last_alive = last_alive or checks[0]
    if first_gone is not None and first_gone.seconds <= limit:
        other = _other_cause(checks, measurement.control_after, "the absolute timeout")
        if other is not None:
            return Evaluation("inconclusive", other, measured=every, threshold=applied)
        measured = (
            f"ended after {duration(first_gone.seconds)} of activity ({every}; alive at "
            f"{duration(last_alive.seconds)})"
        ) + _control_text(measurement.control_after)
        return Evaluation(
            "passed",
            f"a busy session ended within {duration(threshold)} of sign-in",
            measured=measured,
            threshold=applied,
        )
    if last_alive.seconds >= limit:
        return Evaluation(
            "failed",
            f"a session kept busy was still signed in {duration(last_alive.seconds)} after "
            f"sign-in; it must end within {duration(threshold)}",
            measured=f"alive after {duration(last_alive.seconds)} ({every})",
            threshold=applied,
            findings=(
                Finding(
                    "session.no_absolute_timeout",
                    f"alive {duration(last_alive.seconds)} after sign-in",
                    where=f"threshold {duration(threshold)}",
                ),
            ),
        )
    seen = ", ".join(
        f"{'signed in' if c.signed_in else 'signed out'} at {duration(c.seconds)}" for c in checks
    )
    return Evaluation(
        "inconclusive",
        f"the busy session was not followed up to {duration(limit)}",
        measured=f"{every}; {seen}",
        threshold=applied,
    )


# -- SESS_LOGOUT, SESS_FIXATION, SESS_REVOKE, SESS_PWCHANGE: a session an event must end ------


@dataclass(frozen=True)
class SessionEnding:
    """A session replayed after an event that must leave it signed out (or anonymous).

    ``positive`` is the positive control named by ``positive_name``: the same replay, where it
    must sign in (the same cookies just before sign-out, the other browser just before the
    revoke, the cookies issued at sign-in), did (None: not taken). ``control_after`` is a
    session the event must *not* end, or a fresh one, checked the same way right after the
    refused replay: signed in proves the refusal is not a throttle, a uniform error page or an
    outage. ``refusal`` is set when the refused replay was itself a throttle or block page.
    ``anonymous`` is the negative control for a replay that looks signed in: a browser holding
    no cookie at all, checked the same way, looked signed in too (None: not taken). Then the
    check cannot tell a session from no session, and "still signed in" proves nothing.
    """

    event: str
    after: bool
    positive: bool | None
    positive_name: str
    control_after: bool | None = None
    control_name: str = "a fresh sign-in"
    refusal: str = ""
    anonymous: bool | None = None


def evaluate_session_ended(ending: SessionEnding, *, control: str, finding_key: str) -> Evaluation:
    """Verdict on "the session does not sign anyone in after ``ending.event``".

    ``control`` names the control in the threshold text; ``finding_key`` the failure's key.
    """
    event = ending.event
    applied = f"no session signs in after {event} ({control})"
    measured = (
        f"replay after {event}: {_alive(ending.after)}; positive control ("
        f"{ending.positive_name}): {_alive(ending.positive)}"
    )
    if ending.control_after is not None:
        measured += f"; control right after ({ending.control_name}): {_alive(ending.control_after)}"
    if ending.anonymous is not None:
        measured += f"; negative control (a browser without cookies): {_alive(ending.anonymous)}"
    if ending.after and ending.anonymous:
        return Evaluation(
            "inconclusive",
            f"the replay after {event} looked signed in, but so did a browser holding no cookie "
            "at all: the signed-in check cannot tell a session from none (check "
            "signed_in.indicator), so the replay proves nothing",
            measured=measured,
            threshold=applied,
        )
    if ending.after:
        return Evaluation(
            "failed",
            f"the replayed session still signs in after {event}",
            measured=measured,
            threshold=applied,
            findings=(Finding(finding_key, f"the replayed session was signed in after {event}"),),
        )
    if ending.positive is not True:
        why = "was not taken" if ending.positive is None else "was refused too"
        return Evaluation(
            "inconclusive",
            f"the positive control ({ending.positive_name}) {why}, so the refusal after "
            f"{event} cannot be credited to it: the cookies may not be replayable, the session "
            "may have expired, or the portal answers every replay alike",
            measured=measured,
            threshold=applied,
        )
    if ending.refusal:
        return Evaluation(
            "inconclusive",
            f"the replay after {event} met {ending.refusal}: a throttle or block page, not the "
            "portal's verdict on the session",
            measured=measured,
            threshold=applied,
        )
    if ending.control_after is False:
        return Evaluation(
            "inconclusive",
            f"{ending.control_name}, checked the same way right after, was refused too: "
            "throttling, uniform error pages or an outage explain the refusal as well as "
            f"{event}",
            measured=measured,
            threshold=applied,
        )
    return Evaluation(
        "passed",
        f"no session signs in after {event}, where the same replay signs in otherwise",
        measured=measured,
        threshold=applied,
    )


def _alive(signed_in: bool | None) -> str:
    return "not checked" if signed_in is None else "signed in" if signed_in else "signed out"


# -- Back after sign-out (SESS_LOGOUT, HDR_CACHE) ------------------------------------------


@dataclass(frozen=True)
class BackCheck:
    """The page Back returns to after sign-out, and the same page before sign-out.

    ``data_before`` is the positive control: that page, in the same browser before sign-out,
    showed patient data to the same detector that must find none after.
    """

    url_before: str
    data_before: bool
    url_after: str
    data_after: bool
    refusal: str = ""


def evaluate_back_after_sign_out(check: BackCheck) -> Evaluation:
    applied = "Back after sign-out shows no patient data"
    measured = (
        f"before sign-out {check.url_before}: "
        f"{'patient data' if check.data_before else 'no patient data'}; Back after sign-out "
        f"{check.url_after}: {'patient data' if check.data_after else 'no patient data'}"
    )
    if check.data_after:
        return Evaluation(
            "failed",
            f"pressing Back after sign-out shows patient data ({check.url_after})",
            measured=measured,
            threshold=applied,
            findings=(
                Finding(
                    "session.back_shows_data",
                    "patient data shown on Back after sign-out",
                    where=check.url_after,
                ),
            ),
        )
    if not check.data_before:
        return Evaluation(
            "inconclusive",
            f"the page Back returns to ({check.url_before}) showed no patient data before "
            "sign-out either, so its absence after sign-out proves nothing (check the "
            "patient_data selectors)",
            measured=measured,
            threshold=applied,
        )
    if check.refusal:
        return Evaluation(
            "inconclusive",
            f"Back after sign-out met {check.refusal}: a throttle or block page, not the "
            "portal's answer to a signed-out browser",
            measured=measured,
            threshold=applied,
        )
    return Evaluation(
        "passed",
        "Back after sign-out shows no patient data, where the same page showed it before",
        measured=measured,
        threshold=applied,
    )


# -- SESS_REVOKE: the list of active sessions ------------------------------------------------


def evaluate_session_listing(
    active: int | None, recent: int | None, *, signed_in_browsers: int = 2
) -> Evaluation:
    """SESS_REVOKE: the sessions page lists every signed-in browser and the recent sign-ins.

    ``active`` and ``recent`` are the counts the sessions page showed (None: the profile names
    no selector for that list, so that half of the control's statement cannot be checked and the
    result is inconclusive unless the other half already failed). Finding keys:
    ``session.list_missing_sessions`` (fewer active sessions listed than ``signed_in_browsers``)
    and ``session.list_no_recent_sign_in`` (no recent sign-in listed).
    """
    shown = "not checked (no selector)" if active is None else str(active)
    listed = "not checked (no selector)" if recent is None else str(recent)
    findings: list[Finding] = []
    if active is not None and active < signed_in_browsers:
        findings.append(
            Finding(
                "session.list_missing_sessions",
                f"only {active} active session(s) listed, {signed_in_browsers} expected",
            )
        )
    if recent is not None and recent < 1:
        findings.append(Finding("session.list_no_recent_sign_in", "no recent sign-in is listed"))
    unchecked = [
        f"sessions_page.{name}"
        for name, count in (("active_sessions", active), ("recent_sign_ins", recent))
        if count is None
    ]
    if unchecked and not findings:
        return Evaluation(
            status="inconclusive",
            reason=f"the profile names no {' or '.join(unchecked)} selector, so the listing "
            "the control requires could not be checked",
            measured=f"active sessions listed: {shown}; recent sign-ins listed: {listed}",
            threshold=f"{signed_in_browsers} active sessions and a recent sign-in listed",
        )
    return verdict(
        findings,
        measured=f"active sessions listed: {shown}; recent sign-ins listed: {listed}",
        threshold=f"{signed_in_browsers} active sessions and a recent sign-in listed (SESS_REVOKE)",
        passed_reason="the sessions page lists the signed-in browsers and the recent sign-ins",
        failed_reason="the sessions page does not list every signed-in browser and recent sign-in",
    )
