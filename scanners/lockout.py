"""AUTH_LOCKOUT: the sign-in attempts a lockout probe makes, in which order, and the verdict.

Portals limit password guessing in different ways, and a probe that assumes one of them misreads
the others. This module recognises:

- a *consecutive* count: N wrong passwords in a row lock the account, a success resets the count;
- a per-login-name count in a *sliding window* that a success does not clear (often lifted a
  fixed time after the first failure in the window, so the lock seen after the last failure is
  shorter than the window);
- a *per-client* throttle: once it trips, other login names from the same client are refused too;
- *growing delays*: failures are answered more and more slowly, or the portal says "try again
  in N s", without ever refusing the right password once the delay has passed;
- a *CAPTCHA* after N failures, after which the right password cannot be tried automatically.

``portal.lockout_probe.LockoutSequence`` decides which attempt comes next and records each one,
timestamped just before it is submitted and just after its answer. ``evaluate_lockout`` here is
pure: it reads the recorded attempts and returns an ``Evaluation``.

Durations are brackets, never point estimates: a lock lasted at least from the end of the last
failure to the start of the last attempt known to be refused, and at most from the start of the
last failure to the end of the first attempt known to be accepted. A slow machine widens the
bracket; it cannot move it across the policy's minimum, and a bracket that straddles the minimum
is reported as inconclusive.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from scanners.refusals import classify
from scanners.result import Evaluation, Finding, verdict
from scanners.timeouts import duration

Who = Literal["right", "wrong", "unknown", "fresh", "other"]
"""Who signs in: the lockout account with its ``right`` or a ``wrong`` password; an ``unknown``
login name (the same one for the whole probe) or a ``fresh`` one (new at every attempt) with a
wrong password; ``other``, another real account, with its right password."""

Step = Literal[
    "control",  # the right password before any failure: the account works at all
    "baseline",  # the first wrong password and the first unknown name, in a fresh window
    "alternating",  # one wrong password, then the right one: does a success clear the count?
    "consecutive",  # k wrong passwords in a row, then the right one
    "delayed",  # the right password again, after waiting a delay the portal stated
    "after lock",  # other login names from the same client while the account is locked
    "lock check",  # the right password again, later, to time the lock
]

_RETRY = re.compile(
    r"(?:try|retry|sign in|log in|again)\D{0,40}?(?:in|after)\s+(\d+(?:[.,]\d+)?)\s*"
    r"(s\b|secs?\b|seconds?\b|m\b|mins?\b|minutes?\b|h\b|hours?\b)",
    re.IGNORECASE,
)
_WAIT = re.compile(
    r"wait\s+(\d+(?:[.,]\d+)?)\s*(s\b|secs?\b|seconds?\b|m\b|mins?\b|minutes?\b|h\b|hours?\b)",
    re.IGNORECASE,
)


def stated_delay(message: str) -> float | None:
    """Seconds a refusal asks to wait ("Try again in 30 seconds", "wait 2 min"), or None."""
    match = _RETRY.search(message) or _WAIT.search(message)
    if match is None:
        return None
    value = float(match.group(1).replace(",", "."))
    unit = match.group(2).lower()
    return value * (3600 if unit.startswith("h") else 60 if unit.startswith("m") else 1)


@dataclass(frozen=True)
class Attempt:
    """One sign-in. Times are seconds since the probe began, read before and after."""

    who: Who
    step: Step
    started: float
    ended: float
    signed_in: bool
    message: str = ""
    captcha: bool = False

    @property
    def elapsed(self) -> float:
        return self.ended - self.started

    @property
    def retry_after(self) -> float | None:
        return None if self.signed_in else stated_delay(self.message)


@dataclass(frozen=True)
class LockoutMeasurement:
    ceiling: int
    pause_seconds: float
    attempts: tuple[Attempt, ...] = ()
    # Index into ``attempts`` of the right password's first refusal (the lock), if any.
    lock_index: int | None = None
    # The portal's own lockout period from the profile, if stated: the check waited that long.
    period_seconds: float | None = None
    skipped: str = ""
    # Why the probe stopped before it could conclude (an answer it could not read ...).
    problem: str = ""

    @property
    def captcha_index(self) -> int | None:
        return next((i for i, a in enumerate(self.attempts) if a.captcha), None)


# -- evaluation (pure) ---------------------------------------------------------------------------


def tolerance(minimum_seconds: float) -> float:
    """Allowance for a portal that counts its period in whole seconds: 1 s, less for short ones."""
    return min(1.0, 0.05 * minimum_seconds)


def imposed_delays(attempts: tuple[Attempt, ...], failures: list[Attempt]) -> list[float]:
    """For each failure, how long the portal held the guesser back before the next guess.

    That is how much longer its answer took than the first wrong password's (a slow machine
    slows every answer alike; a tarpit only the later failures), or a delay the portal stated
    on that answer or on the refusals that followed it.
    """
    first_wrong = next((a for a in attempts if a.who == "wrong"), None)
    usual = first_wrong.elapsed if first_wrong is not None else 0.0
    delays = []
    for failure in failures:
        index = attempts.index(failure)
        delay = max(failure.elapsed - usual, failure.retry_after or 0.0, 0.0)
        for later in attempts[index + 1 :]:
            if later.who == "wrong":
                break
            if later.retry_after is not None:
                delay = max(delay, later.ended + later.retry_after - failure.ended)
        delays.append(delay)
    return delays


def growing(delays: list[float]) -> bool:
    """Delays that grow with each failure (at least three, the last one 1 s or more and at
    least double the first, none much shorter than the one before)."""
    return (
        len(delays) >= 3
        and delays[-1] >= 1.0
        and delays[-1] >= 2 * max(delays[0], 0.25)
        and all(later >= 0.8 * earlier for earlier, later in zip(delays, delays[1:], strict=False))
    )


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@dataclass(frozen=True)
class _Bracket:
    low: float | None  # the lock lasted at least this long
    high: float | None  # and at most this long

    def describe(self, since: str) -> str:
        # Rounded outwards, so the words never claim a tighter bracket than was measured.
        low = None if self.low is None else _rounded(self.low, math.floor)
        high = None if self.high is None else _rounded(self.high, math.ceil)
        if low is not None and high is not None:
            return f"between {low} and {high} after {since}"
        if low is not None:
            return f"at least {low} after {since} (not seen to end)"
        return f"at most {high} after {since}"


def _rounded(seconds: float, direction: Callable[[float], int]) -> str:
    step = 0.1 if seconds < 60 else 1.0
    return duration(direction(seconds / step) * step)


def _bracket(attempts: tuple[Attempt, ...], lock_index: int, origin: Attempt) -> _Bracket:
    checks = [a for a in attempts[lock_index:] if a.who == "right"]
    refused = [a for a in checks if not a.signed_in]
    accepted = [a for a in checks if a.signed_in]
    first_accepted = min(accepted, key=lambda a: a.started) if accepted else None
    if first_accepted is not None:
        refused = [a for a in refused if a.started < first_accepted.started]
    last_refused = max(refused, key=lambda a: a.started) if refused else None
    low = last_refused.started - origin.ended if last_refused is not None else None
    if low is not None and last_refused is origin:
        low = 0.0
    high = first_accepted.ended - origin.started if first_accepted is not None else None
    return _Bracket(None if low is None else max(0.0, low), high)


def evaluate_lockout(
    measurement: LockoutMeasurement, *, max_failures: int, lockout_seconds: float
) -> Evaluation:
    """The verdict on a recorded lockout probe (see the module docstring for the models)."""
    minimum = lockout_seconds
    allowance = tolerance(minimum)
    applied = f"locked after <= {max_failures} failures for >= {duration(minimum)}"
    if allowance:
        applied += f" ({duration(allowance)} allowed for the portal's clock)"
    m = measurement
    if m.skipped:
        return Evaluation("skipped", m.skipped, threshold=applied)
    attempts = m.attempts
    control = attempts[0] if attempts else None
    if control is None:
        return Evaluation(
            "inconclusive", m.problem or "no sign-in attempt was made", threshold=applied
        )
    if control.captcha:
        return Evaluation(
            "inconclusive",
            "the sign-in form asked for a CAPTCHA before any wrong password: "
            "the right password cannot be tried automatically",
            threshold=applied,
        )
    if not control.signed_in:
        return Evaluation(
            "inconclusive", m.problem or "the right password did not sign in", threshold=applied
        )
    wrong = [a for a in attempts if a.who == "wrong"]
    unknown = [a for a in attempts if a.who == "unknown"]
    ordinary = wrong[0].message if wrong else ""
    findings: list[Finding] = []
    measured: list[str] = []

    captcha = m.captcha_index
    if captcha is not None and (m.lock_index is None or captcha < m.lock_index):
        return _captcha_verdict(m, captcha, max_failures, applied)
    if m.problem:
        return Evaluation(
            "inconclusive",
            m.problem,
            measured=f"{len(attempts)} sign-in attempts",
            threshold=applied,
        )
    if m.lock_index is None:
        return _unlocked_verdict(m, wrong, max_failures, minimum, allowance, applied)

    lock = attempts[m.lock_index]
    refusal = classify(None, lock.message)
    if refusal is not None and not refusal.throttled:
        # A throttle is a form of lock (growing delays pass by the catalogue); a CSRF or WAF
        # page appearing after some attempts is not.
        return Evaluation(
            "inconclusive",
            f"the right password was refused by a page that is not the portal's lock: "
            f"{refusal.reason}",
            measured=f"{len(attempts)} sign-in attempts",
            threshold=applied,
        )
    before = attempts[: m.lock_index]
    failures_before = [a for a in before if a.who == "wrong"]
    total = len(failures_before)
    successes = [a for a in before if a.who == "right" and a.signed_in]
    last_success = max(successes, key=lambda a: a.started)
    in_a_row = sum(1 for a in failures_before if a.started > last_success.started)
    last_failure = failures_before[-1]
    if lock.step == "alternating":
        threshold = total
        model = (
            "a count of failures per login name that a success does not clear (sliding window)"
            if total > 1
            else "locked after a single failure"
        )
        how = (
            f"the right password was accepted after {total - 1} failures, each followed by it, "
            f"and refused after the {_ordinal(total)}"
            if total > 1
            else "the right password was refused right after the first failure"
        )
    else:
        threshold = in_a_row
        model = "consecutive failures (a success resets the count)"
        alternated = sum(1 for a in failures_before if a.step in ("baseline", "alternating"))
        how = (
            f"{alternated} failures each followed by a success never locked; the right "
            f"password was accepted after {in_a_row - 1} wrong ones in a row and refused after "
            f"{in_a_row}"
        )
    measured.append(
        f"locked after {threshold} failures (between the {_ordinal(threshold - 1)} and the "
        f"{_ordinal(threshold)}: threshold {threshold}); model: {model}"
        if threshold > 1
        else f"locked after 1 failure; model: {model}"
    )
    measured.append(how)
    if threshold > max_failures:
        findings.append(
            Finding(
                "lockout.threshold_too_high",
                f"locked only after {threshold} failures (policy: at most {max_failures})",
            )
        )

    # Per-client throttle: other login names from this client refused too.
    after = [a for a in attempts[m.lock_index + 1 :] if a.step == "after lock"]
    fresh = next((a for a in after if a.who == "fresh"), None)
    other = next((a for a in after if a.who == "other"), None)
    baseline_unknown = unknown[0].message if unknown else ""
    per_client_reasons = []
    if other is not None and not other.signed_in:
        per_client_reasons.append("another account's right password was refused from this client")
    if (
        fresh is not None
        and baseline_unknown
        and not _same(fresh.message, baseline_unknown)
        and _same(fresh.message, lock.message)
    ):
        per_client_reasons.append(
            "a login name never used before got the lock's answer instead of an unknown name's"
        )
    if per_client_reasons:
        measured.append("per-client throttle: " + "; ".join(per_client_reasons))
        findings.append(
            Finding(
                "lockout.per_client",
                "the lock is (also) keyed on the client: "
                + "; ".join(per_client_reasons)
                + ". Guesses spread over many clients may not be stopped; whether the account "
                "itself locks cannot be told from one client",
                severity="warn",
            )
        )
    elif other is not None and other.signed_in:
        measured.append("another account still signed in from this client (per-name lock)")

    # The locked answer against the first wrong password's and an unknown name's, the latter
    # given as many failures as the account.
    same_failures = unknown[-1] if unknown else None
    like_wrong = _same(lock.message, ordinary)
    like_unknown = same_failures is not None and _same(lock.message, same_failures.message)
    comparisons = [
        f"{'matches' if like_wrong else 'differs from'} the first wrong password's",
    ]
    if same_failures is not None:
        comparisons.append(
            f"{'matches' if like_unknown else 'differs from'} an unknown name's after "
            f"{len(unknown)} failures"
        )
    measured.append("refusal while locked " + " and ".join(comparisons))
    if not like_wrong and not like_unknown:
        findings.append(
            Finding(
                "lockout.message_reveals_account",
                "while locked, the right password gets a message that differs from both the "
                "first wrong password's and an unknown name's given as many failures, telling "
                "an attacker the account exists",
            )
        )

    # How long the lock lasted, from the last failure (judged) and from the first refusal.
    from_failure = _bracket(attempts, m.lock_index, last_failure)
    from_refusal = _bracket(attempts, m.lock_index, lock)
    measured.append(
        f"lock lasted {from_failure.describe('the last failure')} "
        f"({from_refusal.describe('the first refusal of the right password')})"
    )
    stated = lock.retry_after
    if stated is not None:
        measured.append(f"the portal said to try again in {duration(stated)}")
    required = minimum - allowance
    lasted_enough = from_failure.low is not None and from_failure.low >= required
    if from_failure.high is not None and from_failure.high < required:
        findings.append(
            Finding(
                "lockout.too_short",
                f"the lock ended {from_failure.describe('the last failure')} "
                f"(policy: at least {duration(minimum)})",
            )
        )
    elif not lasted_enough:
        undecided = (
            f"the lock's duration ({from_failure.describe('the last failure')}) cannot be "
            f"placed on either side of the policy's {duration(minimum)}"
        )
        if not any(f.severity == "fail" for f in findings):
            return Evaluation(
                "inconclusive",
                undecided,
                measured="; ".join(measured),
                threshold=applied,
                findings=tuple(findings),
            )
        findings.append(Finding("lockout.duration_undecided", undecided, severity="warn"))
    if m.period_seconds is not None:
        if from_failure.high is None:
            findings.append(
                Finding(
                    "lockout.not_restored",
                    "the account did not come back after the portal's stated lockout period "
                    f"({duration(m.period_seconds)})",
                )
            )
    elif from_failure.high is None:
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
        threshold=applied,
        passed_reason=(
            f"locked after {threshold} failures (policy <= {max_failures}) for at least "
            f"{_rounded(from_failure.low or 0, math.floor)} after the last failure (policy >= "
            f"{duration(minimum)}), with an ordinary refusal"
        ),
        failed_reason="account lockout does not meet the policy",
    )


def _captcha_verdict(
    m: LockoutMeasurement, index: int, max_failures: int, applied: str
) -> Evaluation:
    shown = m.attempts[index]
    # A CAPTCHA on the answer to a wrong password came with that failure counted.
    before = m.attempts[: index + 1] if shown.who == "wrong" else m.attempts[:index]
    failures = [a for a in before if a.who == "wrong"]
    successes = [a for a in before if a.who == "right" and a.signed_in]
    last_success = max(successes, key=lambda a: a.started)
    in_a_row = sum(1 for a in failures if a.started > last_success.started)
    consecutive = shown.step == "consecutive" or (shown.step != "alternating" and in_a_row > 1)
    count = in_a_row if consecutive else len(failures)
    measured = (
        f"model: CAPTCHA after {count} failures"
        + (" in a row" if consecutive else " (a success did not clear the count)")
        + "; the right password cannot be tried past a CAPTCHA, so the lock's duration was "
        "not measured"
    )
    unmeasured = Finding(
        "lockout.duration_unmeasurable",
        "a CAPTCHA stops automated sign-in: how long it stays cannot be measured",
        severity="warn",
    )
    if count > max_failures:
        finding = Finding(
            "lockout.threshold_too_high",
            f"a CAPTCHA appeared only after {count} failures (policy: at most {max_failures})",
        )
        return verdict(
            [finding, unmeasured],
            measured=measured,
            threshold=applied,
            passed_reason="",
            failed_reason="account lockout does not meet the policy",
        )
    return verdict(
        [unmeasured],
        measured=measured,
        threshold=applied,
        passed_reason=(
            f"a CAPTCHA after {count} failures (policy <= {max_failures}) stops automated "
            "guessing; its duration cannot be measured"
        ),
        failed_reason="",
    )


def _unlocked_verdict(
    m: LockoutMeasurement,
    wrong: list[Attempt],
    max_failures: int,
    minimum: float,
    allowance: float,
    applied: str,
) -> Evaluation:
    attempts = m.attempts
    longest: list[Attempt] = []
    run: list[Attempt] = []
    for attempt in attempts:
        if attempt.who == "wrong":
            run.append(attempt)
        elif attempt.who == "right" and attempt.signed_in:
            run = []
        if len(run) > len(longest):
            longest = list(run)
    delays = imposed_delays(attempts, longest)
    listing = ", ".join(duration(d) for d in delays)
    if growing(delays):
        spent = 0.0
        within: int | None = None
        for count, delay in enumerate(delays, start=1):
            spent += delay
            if spent >= minimum - allowance:
                within = count
                break
        measured = (
            f"model: growing delays (after {len(delays)} wrong passwords in a row the portal "
            f"held the next guess back {listing}); the right password was never refused once "
            "a delay had passed"
        )
        if within is not None and within <= max_failures:
            return Evaluation(
                "passed",
                f"growing delays let at most {within} guesses reach the password check within "
                f"{duration(minimum)} (policy: at most {max_failures} per {duration(minimum)})",
                measured=measured,
                threshold=applied,
            )
        reached = "more than " + str(len(delays)) if within is None else str(within)
        return verdict(
            [
                Finding(
                    "lockout.delay_too_short",
                    f"growing delays still let {reached} guesses reach the password check within "
                    f"{duration(minimum)} (policy: at most {max_failures})",
                )
            ],
            measured=measured,
            threshold=applied,
            passed_reason="",
            failed_reason=f"delays too short: more than {max_failures} guesses per "
            f"{duration(minimum)}",
        )
    alternating = sum(1 for a in wrong if a.step in ("baseline", "alternating"))
    measured = (
        f"not locked: the right password still worked after {len(longest)} wrong ones in a row "
        f"and after {alternating} failures each followed by it"
    )
    return verdict(
        [
            Finding(
                "lockout.none_within_policy",
                f"the account was not locked after {len(longest)} consecutive wrong passwords "
                f"(policy: at most {max_failures})",
            )
        ],
        measured=measured + (f" (answers took {listing})" if listing else ""),
        threshold=applied,
        passed_reason="",
        failed_reason=f"no lockout within {max_failures} consecutive failures",
    )
