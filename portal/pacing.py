"""Pacing a flow's submissions and waiting out a portal's throttle, within a budget.

A portal that allows a few submissions a minute answers the rest with HTTP 429 (or a "too many
requests" page). Read as the portal's decision, such an answer becomes a false verdict. A
``Pacer`` keeps the profile's least interval between two submissions of one flow
(``rate_limits.pacing_seconds``), and when the portal throttles anyway, waits what its
Retry-After asks (or a short back-off when it names no time) as long as the control's budget
(``rate_limits.budget_seconds``) lasts. Past the budget the caller reports the control
inconclusive with the throttle as the reason. Waits are bounded timed pauses: pacing is about time.
"""

from __future__ import annotations

import threading
import time

from scanners.refusals import Refusal

# When a throttle names no Retry-After: first wait, doubled on each further throttle.
FIRST_BACK_OFF = 2.0


class Pacer:
    def __init__(
        self, interval: float, budget: float, stopping: threading.Event | None = None
    ) -> None:
        self.interval = interval
        self.budget = budget
        self.waited = 0.0
        self.throttles = 0
        self._next_at = 0.0
        self._back_off = FIRST_BACK_OFF
        self._stopping = stopping or threading.Event()

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def turn(self) -> None:
        """Wait until the flow's least interval since the last submission has passed."""
        self._pause(self._next_at - time.monotonic())
        self._next_at = time.monotonic() + self.interval

    def back_off(self, refusal: Refusal) -> bool:
        """After a throttle: wait as asked and return True, or False when over the budget."""
        self.throttles += 1
        wait = refusal.retry_after if refusal.retry_after is not None else self._back_off
        self._back_off *= 2
        if self.waited + wait > self.budget or self._stopping.is_set():
            return False
        self.waited += wait
        self._pause(wait)
        self._next_at = time.monotonic() + self.interval
        return True

    def describe(self) -> str:
        if not self.throttles:
            return ""
        return (
            f"the portal throttled {self.throttles} time(s); waited {self.waited:.0f} s of a "
            f"{self.budget:.0f} s budget"
        )
