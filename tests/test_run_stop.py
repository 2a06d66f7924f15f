"""A run ends in bounded time: the run deadline and SIGTERM/SIGINT write the reports and stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from portal.profile import load_profile
from portal.run_stop import BASE_RUN_SECONDS, RunStopper, policy_waits, run_seconds
from tests.audits import (
    REFERENCE_PROFILE,
    ROOT,
    AuditResult,
    audit_env,
    issued_secrets,
    leaked_secrets,
)
from tests.test_profile import ENV, GOOD, write


class Exited(Exception):
    pass


def _stopper(reasons: list[str], status: int = 2) -> tuple[RunStopper, list[int]]:
    exits: list[int] = []

    def finish(reason: str) -> int:
        reasons.append(reason)
        return status

    return RunStopper(finish, exit=exits.append), exits


def _wait_for(condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def test_the_deadline_stops_the_run_with_its_reason() -> None:
    reasons: list[str] = []
    stopper, exits = _stopper(reasons, status=2)
    stopper.arm(0.2)
    _wait_for(lambda: exits, 10)
    assert reasons == ["stopped at the run deadline (0.2 s)"]
    assert exits == [2]
    assert not stopper.disarm(), "a run already stopping cannot also finish normally"


def test_a_run_that_finishes_first_is_not_stopped() -> None:
    reasons: list[str] = []
    stopper, exits = _stopper(reasons)
    stopper.arm(0.3)
    assert stopper.disarm()
    time.sleep(0.5)  # past the deadline: nothing may happen any more
    assert reasons == [] and exits == []


def test_a_signal_asks_for_the_stop_and_the_watchdog_writes_it() -> None:
    reasons: list[str] = []
    stopper, exits = _stopper(reasons, status=1)
    previous = signal.getsignal(signal.SIGTERM)
    stopper.arm(600)
    try:
        assert signal.getsignal(signal.SIGTERM) != previous
        os.kill(os.getpid(), signal.SIGTERM)
        _wait_for(lambda: exits, 10)
        assert reasons == ["stopped by SIGTERM"] and exits == [1]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_failing_report_writer_still_ends_the_run_as_an_internal_error() -> None:
    exits: list[int] = []

    def finish(reason: str) -> int:
        raise OSError("disk full")

    stopper = RunStopper(finish, exit=exits.append)
    stopper.arm(0.05)
    _wait_for(lambda: exits, 10)
    assert exits == [4]


def test_the_default_deadline_follows_the_longest_policy_wait(tmp_path: Path) -> None:
    profile = load_profile(
        write(tmp_path, GOOD + "    policy: {absolute_timeout_seconds: 7200}\n"), ENV
    )
    waits = policy_waits(profile)
    assert max(waits.values()) == 7200
    assert run_seconds(profile) == BASE_RUN_SECONDS + 1.5 * 7200


def test_a_profile_deadline_wins(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD + "    timeouts: {run_seconds: 45}\n"), ENV)
    assert run_seconds(profile) == 45


def _start_audit(tmp_path: Path, markexpr: str) -> tuple[subprocess.Popen[str], AuditResult]:
    env = audit_env(tmp_path)
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "portal.audit",
        "--profile",
        str(REFERENCE_PROFILE),
        "--run-dir",
        str(run_dir),
        "--no-latest",
        "--no-html",
        "-m",
        markexpr,
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    secret_values = [v for k, v in env.items() if k.endswith(("PASSWORD", "TOTP_SECRET"))]
    return process, AuditResult(-1, run_dir, "", None, secret_values)


def _stopped_run(tmp_path: Path, send: signal.Signals, markexpr: str, ready: object) -> AuditResult:
    """Start an audit, wait until ``ready(run_dir)``, send ``send`` to the whole process group
    (as a terminal's Ctrl-C or a CI job's cancel does) and collect what the run left."""
    process, result = _start_audit(tmp_path, markexpr)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    try:
        _wait_for(lambda: ready(tmp_path) or process.poll() is not None, 240)  # type: ignore[operator]
        assert process.poll() is None, "the audit ended before it could be interrupted"
        sent = time.monotonic()
        os.killpg(process.pid, send)
        result.status = process.wait(timeout=90)
        result.output = f"stopped {time.monotonic() - sent:.1f} s after the signal\n"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        reader.join(timeout=30)
    result.output += "".join(output)
    summary = result.run_dir / "summary.json"
    result.summary = json.loads(summary.read_text()) if summary.is_file() else None
    return result


def _a_password_was_set(tmp_path: Path) -> bool:
    log = tmp_path / "issued-tokens.txt"
    # Session tokens are 43 characters of URL-safe base64; anything else is a password set.
    return log.is_file() and any(
        len(line) != 43 for line in log.read_text(encoding="utf-8").splitlines()
    )


@pytest.mark.parametrize("send", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_run_writes_its_summary_and_leaves_no_secret(
    tmp_path: Path, send: signal.Signals
) -> None:
    result = _stopped_run(tmp_path, send, "passwords or sess_idle", _a_password_was_set)
    assert result.status == 2, result.output
    assert (result.run_dir / "exit-status").read_text().strip() == "2"
    assert result.summary is not None, result.output
    assert result.summary["stopped"] == f"stopped by {send.name}"
    assert result.summary["verdict"] == "inconclusive"
    statuses = result.statuses()
    unfinished = {
        cid
        for cid, c in result.summary["controls"].items()
        if c["reason"].startswith(f"stopped by {send.name}")
    }
    assert "SESS_IDLE" in unfinished, statuses
    assert all(statuses[cid] == "inconclusive" for cid in unfinished)
    assert "Traceback" not in result.output
    secrets = result.secrets + issued_secrets(result)
    assert any(len(s) != 43 for s in secrets), "a password set by a check is among the needles"
    checked, leaks = leaked_secrets(result.run_dir, secrets)
    assert not leaks, f"a secret reached {leaks}"
    assert checked > 3
    assert not (result.run_dir / "work").exists(), "unredacted working files are removed"
