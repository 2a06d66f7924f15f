"""Checks that run at the same time: which checks share a group (never two on one account at
once), what the catalogue declares for it, and a full audit run in workers."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import pytest

import steps.test_audit  # noqa: F401 - registers the slow probes
from portal.background import registered
from portal.catalogue import ACCOUNT_REFERENCES, load_catalogue
from portal.errors import Inconclusive
from portal.parallel import Selected, read_selection, write_selection
from portal.probe_mailbox import ProbeMailbox, post_outcome, post_started
from portal.profile import ACCOUNT_ROLES, Profile, load_profile
from portal.roles import BACKGROUND, parallel_groups
from tests.audits import issued_secrets, leaked_secrets, run_audit
from tests.test_features_and_roles import ENV, _profile
from tests.test_profile import _certificate_pem

REFERENCE = Path(__file__).resolve().parent.parent / "profiles" / "reference.yaml"
PASSWORD_CONTROLS = {
    "PWD_LENGTH",
    "PWD_BLOCKLIST",
    "PWD_STRENGTH",
    "PWD_NOCOMPOSITION",
    "PWD_CHANGE",
    "SESS_PWCHANGE",
    "RESET_MAIL",
}


def all_ids() -> list[str]:
    return [control.id for control in load_catalogue().controls]


def test_every_account_a_control_uses_is_one_a_profile_can_name() -> None:
    for control in load_catalogue().controls:
        for reference in control.uses:
            assert reference in ACCOUNT_ROLES | ACCOUNT_REFERENCES, (control.id, reference)


def test_the_background_controls_are_those_with_a_slow_probe() -> None:
    assert set(registered()) == BACKGROUND


def reference_profile(tmp_path: Path) -> Profile:
    (tmp_path / "ca.pem").write_bytes(_certificate_pem())
    text = REFERENCE.read_text(encoding="utf-8")
    env = {name: "value-" + name for name in re.findall(r"\$\{(\w+)\}", text)}
    env |= {"REFERENCE_PORTAL_URL": "https://127.0.0.1:8443/"}
    env |= {"REFERENCE_PORTAL_HTTP_URL": "http://127.0.0.1:8080/"}
    env |= {"REFERENCE_PORTAL_CA": str(tmp_path / "ca.pem")}
    return load_profile(REFERENCE, env=env)


def test_the_checks_of_one_account_run_in_one_group(tmp_path: Path) -> None:
    profile = reference_profile(tmp_path)
    groups = parallel_groups(profile, all_ids())
    # Changing the tester's password signs its other sessions out: one after another.
    assert len({groups[c] for c in PASSWORD_CONTROLS}) == 1
    patient = groups["PREFLIGHT"]
    for control in ("SESS_LOGOUT", "SESS_REVOKE", "HDR_CACHE", "AUTH_ENUM", "AUTH_HTTPS"):
        assert groups[control] == patient
    assert groups["MFA_ENROLL"] == groups["MFA_RECOVERY"] != groups["MFA_OTP"]
    # The TLS controls share one scan; a probe's scenario only collects, on its own.
    assert len({groups[c.id] for c in load_catalogue().controls if c.id.startswith("TLS_")}) == 1
    assert groups["SESS_IDLE"] != patient and groups["SESS_IDLE"] != groups["SESS_ABS"]
    assert len(set(groups.values())) >= 8


def test_two_roles_of_one_username_share_a_group(tmp_path: Path) -> None:
    # The lockout account is the password tester: locking it would break the password checks.
    profile = load_profile(_profile(tmp_path, "audit.tester"), env=ENV)
    groups = parallel_groups(profile, ["PWD_LENGTH", "PWD_CHANGE", "MFA_OTP", "TLS_CERT"])
    assert groups["PWD_LENGTH"] == groups["PWD_CHANGE"]
    separate = load_profile(_profile(tmp_path, "audit.locked"), env=ENV)
    assert parallel_groups(separate, ["PWD_LENGTH"]) == {"PWD_LENGTH": "account:audit.tester"}


def test_the_selection_is_handed_over_whole(tmp_path: Path) -> None:
    selection = [
        Selected("steps/test_audit.py::test_a", "test_a", "PWD_LENGTH", None, False, "account:x"),
        Selected("steps/test_audit.py::test_b", "test_b", "SESS_IDLE", "out of scope", True, ""),
    ]
    write_selection(tmp_path, selection)
    assert read_selection(tmp_path) == selection
    assert read_selection(tmp_path / "elsewhere") == []


def test_checks_of_one_account_never_overlap_in_a_parallel_audit(tmp_path: Path) -> None:
    # Each password check changes the tester's password, which signs out its other sessions:
    # run beside each other they would refuse each other's changes.
    run = run_audit(
        tmp_path,
        markexpr="pwd_length or pwd_blocklist or pwd_change or sess_idle or tls_cert",
        workers=2,
    )
    summary = run.summary
    assert summary is not None and summary["workers"] == 2, run.output[-3000:]
    statuses = run.statuses()
    assert set(statuses) == {"PWD_LENGTH", "PWD_BLOCKLIST", "PWD_CHANGE", "SESS_IDLE", "TLS_CERT"}
    # SESS_IDLE's measurement came from the controller's probe through the mailbox.
    assert all(status == "passed" for status in statuses.values()), statuses
    # The hand-over files are the run's working data, not its reports.
    assert not (run.run_dir / "work").exists()
    checked, leaks = leaked_secrets(run.run_dir, run.secrets + issued_secrets(run))
    assert checked and not leaks, leaks


def test_a_probe_outcome_reaches_a_worker_through_the_mailbox(tmp_path: Path) -> None:
    post_started(tmp_path, ["SESS_IDLE", "SESS_ABS", "AUTH_LOCKOUT"])
    measured: Future[object] = Future()
    measured.set_result({"checks": (1.0, 2.0)})
    post_outcome(tmp_path, "SESS_IDLE", measured)
    failed: Future[object] = Future()
    failed.set_exception(Inconclusive("the run stopped while waiting"))
    post_outcome(tmp_path, "SESS_ABS", failed)
    lost: Future[object] = Future()
    lost.set_exception(RuntimeError(threading.Lock()))  # cannot be pickled
    post_outcome(tmp_path, "AUTH_LOCKOUT", lost)
    mailbox = ProbeMailbox(tmp_path)
    said: list[str] = []
    assert mailbox.result("SESS_IDLE", said.append) == {"checks": (1.0, 2.0)}
    with pytest.raises(Inconclusive, match="stopped while waiting"):
        mailbox.result("SESS_ABS", said.append)
    with pytest.raises(Inconclusive, match="outcome was lost: RuntimeError"):
        mailbox.result("AUTH_LOCKOUT", said.append)
    with pytest.raises(Inconclusive, match="not started"):
        mailbox.result("RESET_TOKEN", said.append)
    mailbox.wait_all(said.append)  # every started probe has ended: returns at once
    assert said == []


def test_running_probes_say_what_they_wait_for_only_while_nothing_else_is_heard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a parallel run the workers wait for the probes out of sight: the controller says what
    each probe waits for, but only once no scenario has ended for a while."""
    from portal import background
    from portal.browser import QUIET_ARGS, find_chromium
    from portal.evidence import Redactor

    def probe(context: background.ProbeContext) -> str:
        context.wait_until(time.monotonic() + 30, "the test to let go")
        return "done"

    def waiting() -> bool:
        context = probes.contexts.get("TEST_WAIT")
        return context is not None and context.deadline is not None

    monkeypatch.setitem(background._REGISTRY, "TEST_WAIT", probe)
    probes = background.SlowProbes(
        cast(Any, None),
        cast(Any, None),
        Redactor(),
        lambda runtime: runtime.chromium.launch(executable_path=find_chromium(), args=QUIET_ARGS),
    )
    lines: list[str] = []
    heard = [float("inf")]  # a scenario ended just now, always
    probes.start(["TEST_WAIT"])
    probes.say_while_quiet(lines.append, lambda: heard[0], every=0.2)
    try:
        assert _within(20, waiting), "the probe never started waiting"
        time.sleep(1.0)  # five rounds of the progress loop: absence has no event to wait for
        assert lines == [], "progress was said while scenarios were still ending"
        heard[0] = 0.0  # nothing heard for long
        assert _within(5, lambda: bool(lines)), "no progress while the workers were quiet"
        assert lines[0].startswith("TEST_WAIT: waiting for the test to let go, "), lines
        assert lines[0].endswith(" s remaining"), lines
    finally:
        probes.stop()  # ends the probe's wait: it ends inconclusive
    assert isinstance(probes.futures["TEST_WAIT"].exception(timeout=20), Inconclusive)


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
