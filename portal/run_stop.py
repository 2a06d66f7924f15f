"""Ending a run in bounded time: the whole-run deadline, SIGTERM and SIGINT.

A run that cannot finish (a portal that never answers, a wait longer than anyone will sit
through, an operator pressing Ctrl-C) still ends with its summary written: the controls that had
finished keep their outcome, every unfinished one is inconclusive with the reason, the artifacts
are redacted, and the process exits with the verdict's status (2, or 1 when a finished control
already failed).

The stop happens on a watchdog thread, never inside whatever the main thread was doing: a signal
handler only asks for the stop, the watchdog writes the reports through the ``finish``
callback and then ends the process at once, so no half-finished step can write afterwards.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType

from portal.profile import Profile

# Work that is not waiting, on top of the longest wait: the scenarios themselves, browser start,
# TLS scan, the checks that run after the background probes.
BASE_RUN_SECONDS = 1800.0
WAIT_FACTOR = 1.5
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def policy_waits(profile: Profile) -> dict[str, float]:
    """The waits the profile's policy asks for, by what is waited for (seconds)."""
    waits = {
        "idle timeout": profile.thresholds.idle_timeout_seconds,
        "absolute timeout": profile.thresholds.absolute_timeout_seconds,
        "lockout period": float(
            profile.lockout.period_seconds or profile.thresholds.lockout_seconds
        )
        + profile.thresholds.max_failures * profile.lockout.pause_seconds,
    }
    if profile.passwords is not None and profile.passwords.reset is not None:
        waits["reset link lifetime"] = float(
            profile.passwords.reset.link_lifetime_seconds
            or profile.thresholds.max_link_lifetime_seconds
        )
    if profile.mailbox is not None:
        waits["e-mail"] = profile.mailbox.wait_seconds
    return waits


def run_seconds(profile: Profile) -> float:
    """The run's deadline: the profile's ``timeouts.run_seconds``, else derived from the
    longest policy wait (the waits run concurrently, so the longest one dominates)."""
    if profile.timeouts.run_seconds is not None:
        return float(profile.timeouts.run_seconds)
    return BASE_RUN_SECONDS + WAIT_FACTOR * max(policy_waits(profile).values())


class RunStopper:
    """Stops the run once, at the deadline or on a signal, through ``finish(reason) -> status``."""

    def __init__(self, finish: Callable[[str], int], *, exit: Callable[[int], None] = os._exit):
        self._finish = finish
        self._exit = exit
        self._requested = threading.Event()
        self._lock = threading.Lock()
        self._done = False
        self._reason = ""
        self._deadline: float | None = None
        self._seconds = 0.0
        self._previous: dict[int, object] = {}
        self._thread = threading.Thread(target=self._watch, name="run-stopper", daemon=True)

    def arm(self, seconds: float) -> None:
        """Start the watchdog with the deadline ``seconds`` from now, and take SIGTERM/SIGINT."""
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._on_signal)
        self._thread.start()

    @property
    def seconds(self) -> float:
        return self._seconds

    def request(self, reason: str) -> None:
        """Ask for the stop (safe from a signal handler: it only sets an event)."""
        if not self._requested.is_set():
            self._reason = reason
            self._requested.set()

    def disarm(self) -> bool:
        """The run is finishing normally: no stop any more. False if a stop already began."""
        with self._lock:
            if self._done:
                return False
            self._done = True
        for number, handler in self._previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        self._previous.clear()
        self._requested.set()  # wakes the watchdog, which sees _done and ends
        return True

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        if self._requested.is_set():
            # A second signal while the stop is being written: the operator insists.
            sys.stderr.write(f"portal-audit: {name} again; the reports are being written\n")
            return
        self.request(f"stopped by {name}")

    def _watch(self) -> None:
        assert self._deadline is not None
        remaining = self._deadline - time.monotonic()
        if not self._requested.wait(max(0.0, remaining)):
            self.request(f"stopped at the run deadline ({self._seconds:g} s)")
        with self._lock:
            if self._done:
                return
            self._done = True
        sys.stderr.write(f"portal-audit: {self._reason}; writing the reports\n")
        try:
            status = self._finish(self._reason)
        except BaseException as exc:  # noqa: BLE001 - the process ends either way
            sys.stderr.write(f"portal-audit: could not write the reports: {exc}\n")
            status = 4
        sys.stderr.flush()
        sys.stdout.flush()
        self._exit(status)
