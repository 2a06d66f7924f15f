"""Session lifetimes measured from outside (SESS_IDLE, SESS_ABS).

A probe replays a session's cookies after a known time and records whether the portal still
treated it as signed in. Evaluation is pure: it turns the probes into a bracket ("alive at 18 s,
gone at 22 s") and a verdict. At least one probe must have seen the session alive, or an expiry
could have any cause (cookies not replayable, portal down) and the result is inconclusive.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanners.result import Evaluation, Finding


@dataclass(frozen=True)
class SessionCheck:
    """One replay: how long after sign-in (or after the last activity) and what it found."""

    seconds: float
    signed_in: bool


@dataclass(frozen=True)
class IdleMeasurement:
    threshold_seconds: float
    checks: tuple[SessionCheck, ...]


@dataclass(frozen=True)
class BusyMeasurement:
    threshold_seconds: float
    interval_seconds: float
    grace_seconds: float
    checks: tuple[SessionCheck, ...]


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
    bracket = (
        f"expired after {duration(first_gone.seconds)} idle, "
        f"alive at {duration(last_alive.seconds)}"
    )
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
        measured = (
            f"ended after {duration(first_gone.seconds)} of activity ({every}; alive at "
            f"{duration(last_alive.seconds)})"
        )
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
    return Evaluation(
        "inconclusive",
        f"the busy session was not followed up to {duration(limit)}",
        measured=every,
        threshold=applied,
    )
