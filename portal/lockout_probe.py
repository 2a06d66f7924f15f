"""AUTH_LOCKOUT's probe: which sign-in attempt comes next, until the account locks, then timing it.

``LockoutSequence`` talks to the portal only through the small ``SignInTarget`` interface (the
audit implements it with the Playwright portal driver in portal/lockout_sign_ins.py, the project's
tests with plain HTTP form posts) and waits through a ``Pacer``, so both run the same decisions.
Every attempt is timestamped just before it is submitted and just after its answer; the
recorded ``LockoutMeasurement`` is judged by ``scanners.lockout.evaluate_lockout``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from scanners.lockout import (
    Attempt,
    LockoutMeasurement,
    Step,
    Who,
    growing,
    imposed_delays,
    tolerance,
)


@dataclass(frozen=True)
class SignInAnswer:
    """What the portal showed after one sign-in; ``detail`` explains an answer without message."""

    signed_in: bool
    message: str = ""
    captcha: bool = False
    detail: str = ""


class SignInTarget(Protocol):
    """One client signing in to the portal (a browser, or a script posting the form)."""

    @property
    def has_other_account(self) -> bool: ...

    def attempt(self, who: Who) -> SignInAnswer: ...


class Pacer(Protocol):
    def wait_until(self, moment: float, what: str) -> None:
        """Return at ``moment`` (time.monotonic()); may raise to stop the probe."""
        ...


@dataclass
class LockoutSequence:
    """Sign in until the account locks (or the policy's number of failures is reached), then
    time the lock.

    1. The right password once (the account works, any count starts from zero), the first wrong
       password (the ordinary refusal, in a fresh window) and an unknown login name's first
       refusal.
    2. A wrong password and the right one, alternately, until the right one is refused or
       ``ceiling`` failures were counted: a count that successes do not clear locks here, and
       the threshold is exact, never more than one wrong password in a row.
    3. Otherwise k wrong passwords in a row and then the right one, k = 2 ... ceiling: a count
       that a success resets locks at exactly k.
    4. Once locked: a fresh login name and the unknown one, the latter until it has had as many
       failures as the account; the right password again at half, nine tenths and (nearly) all
       of the policy's minimum after the last failure, until accepted; another account's right
       password; and, when the profile states the portal's period, the right password once
       more after it.

    A delay the portal states ("try again in 20 s") is waited out before the next attempt; a
    right password refused with a delay shorter than the policy minimum is tried again after it
    (a delay, not a lock). Growing delays stop the sequence once they add up to the minimum.
    """

    target: SignInTarget
    pacer: Pacer
    ceiling: int
    minimum_seconds: float
    period_seconds: float | None = None
    pause_seconds: float = 1.0
    settle_seconds: float | None = None
    status: Callable[[str], None] = lambda _: None
    clock: Callable[[], float] = time.monotonic
    _attempts: list[Attempt] = field(default_factory=list, init=False)
    _origin: float = field(default=0.0, init=False)
    _next_at: float = field(default=0.0, init=False)
    _lock_index: int | None = field(default=None, init=False)
    _round: int = field(default=0, init=False)

    def run(self) -> LockoutMeasurement:
        self._origin = self._next_at = self.clock()
        try:
            problem = self._run()
        except _Stop as stop:
            problem = stop.reason
        return LockoutMeasurement(
            self.ceiling,
            self.pause_seconds,
            tuple(self._attempts),
            self._lock_index,
            self.period_seconds,
            problem=problem,
        )

    # Each phase returns normally when it found what it looked for and raises _Stop otherwise.
    def _run(self) -> str:
        self.status("the right password before any failure")
        if not self._try("right", "control").signed_in:
            return "the right password was refused before any wrong one (locked already?)"
        self.status("the first wrong password and an unknown login name")
        self._try("wrong", "baseline")
        self._try("unknown", "baseline")
        if not self._alternate() and not self._consecutive():
            return ""
        self._after_lock()
        return ""

    def _alternate(self) -> bool:
        for failures in range(1, self.ceiling + 1):
            self.status(f"the right password after {failures} wrong ones, each followed by it")
            if failures > 1:
                self._try("wrong", "alternating")
            if self._right_refused("alternating"):
                return True
        return False

    def _consecutive(self) -> bool:
        for in_a_row in range(2, self.ceiling + 1):
            self.status(f"the right password after {in_a_row} wrong ones in a row")
            self._round = in_a_row
            for _ in range(in_a_row):
                self._try("wrong", "consecutive")
            if self._right_refused("consecutive"):
                return True
            if self._delays_reach_minimum(in_a_row):
                return False
        return False

    def _after_lock(self) -> None:
        assert self._lock_index is not None
        # As many failures for the unknown name as the account needed to lock, so a per-name
        # throttle that also counts unknown names shows the same answer for it.
        wrong = [a for a in self._attempts if a.who == "wrong"]
        consecutive = self._attempts[self._lock_index].step == "consecutive"
        failures = self._round if consecutive else len(wrong)
        last_failure = max(a.ended for a in self._attempts if a.who == "wrong")
        self.status("other login names from the same client while locked")
        self._try("fresh", "after lock")
        unknown = sum(1 for a in self._attempts if a.who == "unknown")
        for _ in range(failures - unknown):
            self._try("unknown", "after lock")
        # Halfway and nine tenths into the minimum, so a lock that is clearly too short is seen
        # to be; then a little before the minimum (within the tolerance evaluate_lockout
        # allows), so a lock of exactly the minimum can still be seen in place.
        minimum = self.minimum_seconds
        for moment in (0.5 * minimum, 0.9 * minimum, minimum - tolerance(minimum) / 2):
            self._pace(self._origin + last_failure + moment, "the policy's minimum lockout period")
            unlocked = self._try("right", "lock check").signed_in
            if unlocked:
                break
        if not unlocked:
            if self.target.has_other_account:
                self._try("other", "after lock")
            if self.period_seconds is not None:
                settle = self.settle_seconds
                if settle is None:
                    settle = max(2.0, 0.1 * self.period_seconds)
                moment = last_failure + self.period_seconds + settle
                self._pace(self._origin + moment, "the portal's lockout period to end")
                self._try("right", "lock check")
        elif self.target.has_other_account:
            self._try("other", "after lock")

    # -- helpers -----------------------------------------------------------------------------
    def _pace(self, moment: float, what: str) -> None:
        self._next_at = max(self._next_at, moment)
        self.pacer.wait_until(self._next_at, what)

    def _try(self, who: Who, step: Step) -> Attempt:
        self._pace(self._next_at, "the pause between sign-in attempts")
        started = self.clock()
        answer = self.target.attempt(who)
        ended = self.clock()
        attempt = Attempt(
            who,
            step,
            started - self._origin,
            ended - self._origin,
            answer.signed_in,
            " ".join(answer.message.split()),
            answer.captcha,
        )
        self._attempts.append(attempt)
        if attempt.captcha:
            raise _Stop("")
        if not attempt.signed_in and not attempt.message:
            raise _Stop(f"the answer to {_WHO[who]} showed no refusal message: {answer.detail}")
        if who != "right" and attempt.signed_in and who != "other":
            raise _Stop(f"{_WHO[who]} signed in")
        self._next_at = ended + self.pause_seconds
        delay = attempt.retry_after
        if delay is not None and delay <= self.minimum_seconds:
            self._next_at = max(self._next_at, ended + delay + 0.1)
        return attempt

    def _right_refused(self, step: Step) -> bool:
        attempt = self._try("right", step)
        index = len(self._attempts) - 1
        # A stated delay shorter than the policy minimum: wait it out and try again, and call
        # it a lock only if the right password is still refused after it.
        delay = attempt.retry_after
        while not attempt.signed_in and delay is not None and delay < self.minimum_seconds:
            if self._attempts[-1].ended - self._attempts[index].started > self.minimum_seconds:
                break
            attempt = self._try("right", "delayed")
            delay = attempt.retry_after
            if attempt.signed_in:
                return False
        if attempt.signed_in:
            return False
        self._lock_index = index
        return True

    def _delays_reach_minimum(self, in_a_row: int) -> bool:
        run = [a for a in self._attempts if a.who == "wrong"][-in_a_row:]
        delays = imposed_delays(tuple(self._attempts), run)
        return growing(delays) and sum(delays) >= self.minimum_seconds


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_WHO: dict[Who, str] = {
    "right": "the right password",
    "wrong": "a wrong password",
    "unknown": "an unknown login name",
    "fresh": "a fresh login name",
    "other": "another account",
}
