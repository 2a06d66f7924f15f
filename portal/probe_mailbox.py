"""Slow probes' measurements handed from the controller to the workers that judge them.

When checks run at the same time (``portal.parallel``), the slow probes run in the controller
and their scenarios in any worker. Each probe's outcome, its measurement or the exception that
ended it, is posted as a file under the run's work directory (private, removed when the reports
are written) once the probe ends; ``ProbeMailbox`` reads it there with the interface of
``portal.background.SlowProbes``, polling until it is posted.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from portal.errors import Inconclusive

POLL_SECONDS = 0.5
STARTED_FILE = "started.json"


def mailbox_dir(run_dir: Path) -> Path:
    return run_dir / "work" / "probes"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_bytes(data)
    partial.replace(path)


def post_started(run_dir: Path, control_ids: Iterable[str]) -> None:
    """Which probes the controller started (before any scenario runs)."""
    _write_atomic(mailbox_dir(run_dir) / STARTED_FILE, json.dumps(sorted(control_ids)).encode())


def post_outcome(run_dir: Path, control_id: str, future: Future[Any]) -> None:
    """A finished probe's measurement, or the exception that ended it."""
    exception = future.exception()
    outcome: tuple[str, Any] = ("error", exception) if exception else ("ok", future.result())
    try:
        data = pickle.dumps(outcome)
    except Exception:  # noqa: BLE001 - an exception that cannot cross processes
        shown = f"{type(exception).__name__}: {exception}" if exception else "its measurement"
        data = pickle.dumps(("error", Inconclusive(f"the probe's outcome was lost: {shown}")))
    _write_atomic(mailbox_dir(run_dir) / f"{control_id}.pickle", data)


class ProbeMailbox:
    """A worker's view of the controller's probes: their outcomes as they are posted."""

    def __init__(self, run_dir: Path) -> None:
        self.directory = mailbox_dir(run_dir)

    def _started(self) -> set[str]:
        path = self.directory / STARTED_FILE
        return set(json.loads(path.read_text("utf-8"))) if path.exists() else set()

    def result(self, control_id: str, progress: Callable[[str], None], every: float = 10.0) -> Any:
        """The probe's measurement; blocks, reporting progress, until it is posted."""
        if control_id not in self._started():
            raise Inconclusive(f"the slow probe for {control_id} was not started in this run")
        path = self.directory / f"{control_id}.pickle"
        began = last_said = time.monotonic()
        while not path.exists():
            time.sleep(POLL_SECONDS)
            if time.monotonic() - last_said >= every:
                last_said = time.monotonic()
                progress(f"{control_id}: waiting {last_said - began:.0f} s for its probe")
        # Written by this run's controller into this run's private work directory.
        status, value = pickle.loads(path.read_bytes())  # noqa: S301
        if status == "error":
            raise value
        return value

    def wait_for(self, control_ids: Iterable[str], progress: Callable[[str], None]) -> None:
        """Wait until these probes have ended (whatever their outcome)."""
        for control_id in control_ids:
            try:
                self.result(control_id, progress)
            except Exception:  # noqa: BLE001 - each probe's own scenario reports it
                continue

    def wait_all(self, progress: Callable[[str], None]) -> None:
        """Wait until every probe the controller started has ended."""
        self.wait_for(sorted(self._started()), progress)

    def stop(self) -> None:
        """The probes are the controller's to stop."""
