"""One audit run: its profile, redactor and target, what each control measured and concluded,
the order scenarios run in and which of them must not run against this portal.

``start_audit`` loads and validates the profile before any browser starts (exit status 3 on a
bad profile) and has the profile's target provider start its portal when it names one;
``begin_run`` then arms the run's deadline, orders the scenarios and starts the slow probes.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from portal.abilities import ability_warnings
from portal.allure_writer import install_redacting_writer
from portal.background import SlowProbes
from portal.background import registered as registered_probes
from portal.catalogue import Control, load_catalogue
from portal.contexts import launch_browser
from portal.driver import load_driver
from portal.evidence import Redactor
from portal.parallel import (
    Handoff,
    Selected,
    handoff_of,
    is_controller,
    is_worker,
    read_selection,
    write_selection,
)
from portal.probe_mailbox import ProbeMailbox, post_outcome, post_started
from portal.profile import DEFAULT_DRIVER, Profile, load_profile, target_of
from portal.profile_file import ProfileError, read_raw
from portal.report_files import PRIVATE_UMASK
from portal.resources import reports_root, suite_root
from portal.roles import conflicts as account_conflicts
from portal.roles import parallel_groups
from portal.roles import waits as account_waits
from portal.run_stop import RunStopper, run_seconds
from portal.summary import ControlResult
from portal.targets import NoProvider, Target, start_target
from portal.waivers import Waiver, load_waivers

DEFAULT_PROFILE = suite_root() / "profiles" / "reference.yaml"
RUNS_DIR = reports_root() / "runs"
AUDIT_KEY = pytest.StashKey["AuditRun"]()
RECORD_KEY = pytest.StashKey["ControlRecord"]()
EXIT_BAD_PROFILE = 3
# The audit's own failure (a bug, a crash in the plugin or a driver), never a verdict.
EXIT_INTERNAL_ERROR = 4


def controls_of(items: list[pytest.Item]) -> list[Control]:
    return [control for control in map(control_of, items) if control is not None]


def control_of(item: pytest.Item) -> Control | None:
    by_marker = load_catalogue().by_marker()
    for marker in item.iter_markers():
        if marker.name in by_marker:
            return by_marker[marker.name]
    return None


@dataclass
class ControlRecord:
    """What a scenario measured, filled in by its steps."""

    control: Control
    measured: list[str] = field(default_factory=list)
    reason: str = ""
    # A failed evaluation's one-line reason naming its failing findings (steps.outcome).
    failure: str = ""
    # A passed evaluation's warn findings (steps.outcome): the control's status is then warn.
    advisories: list[str] = field(default_factory=list)
    # A failed evaluation's failing finding keys (steps.outcome), which a waiver may name.
    failing_keys: list[str] = field(default_factory=list)
    # The scenario's Allure description, to which advisories are added.
    description: str = ""
    # The scenario's name and where it is written (features/<area>/<file>.feature:<line>).
    scenario: str = ""
    location: str = ""

    def measure(self, text: str) -> None:
        if text:
            self.measured.append(text)


@dataclass
class AuditRun:
    profile_path: Path
    profile: Profile
    redactor: Redactor
    run_dir: Path
    started: str
    # The portal a target provider started for this run (the profile's ``target:``), and what
    # summary.json says of it: the provider's name and facts.
    target: Target | None = None
    provider: dict[str, Any] | None = None
    slow_probes: SlowProbes | ProbeMailbox | None = None
    results: dict[str, ControlResult] = field(default_factory=dict)
    # Accounts shared between checks that disturb each other (portal.roles).
    warnings: list[str] = field(default_factory=list)
    waits_for: dict[str, set[str]] = field(default_factory=dict)
    # The selected scenarios and those that reached an outcome, so a stopped run can name the
    # unfinished ones (portal.run_stop).
    selection: list[Selected] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    # When a scenario last reached an outcome (time.monotonic()), for progress lines.
    last_outcome_at: float = field(default_factory=time.monotonic)
    stopper: RunStopper | None = None
    # A parallel run's workers (portal.parallel), stopped with the run.
    worker_pids: list[int] = field(default_factory=list)
    # --fail-on warn: a control passed with an advisory makes the run noncompliant.
    fail_on_warn: bool = False
    # --waivers FILE: accepted failures (portal.waivers), applied when the reports are written.
    waivers: list[Waiver] = field(default_factory=list)

    def threshold_for(self, control: Control) -> tuple[dict[str, Any], str]:
        # As the profile or the catalogue writes them (900, not 900.0), for the report.
        applied = {
            name: self.profile.policy.get(name, default)
            for name, default in control.threshold.items()
        }
        notes = []
        for name in applied:
            if not self.profile.is_default(name):
                notes.append(f"{name} set by the profile")
            elif name in control.project_default:
                notes.append(f"{name} is this project's default; no standard fixes it")
        if applied and not notes:
            notes.append("catalogue default")
        return applied, "; ".join(notes)

    def record(self, result: ControlResult) -> None:
        self.last_outcome_at = time.monotonic()
        existing = self.results.get(result.control_id)
        self.results[result.control_id] = existing.merge(result) if existing else result

    def work_dir(self, scenario: str) -> Path:
        """Where a scenario's evidence is gathered before it is attached (removed at the end)."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in scenario)[:120]
        return self.run_dir / "work" / safe

    def stop(self) -> None:
        if self.slow_probes is not None:
            self.slow_probes.stop()
        if self.target is not None:
            self.target.stop()
            self.target = None


def audit_of(config: pytest.Config) -> AuditRun | None:
    return config.stash.get(AUDIT_KEY, None)


def console(config: pytest.Config, prefix: str = "") -> Callable[[str], None]:
    """Writes a "portal-audit: " line on pytest's console (nothing when it has none)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def show(text: str) -> None:
        if reporter is not None:
            reporter.write_line(f"portal-audit: {prefix}{text}")

    return show


# -- what hooks without a config need ---------------------------------------------------------


@dataclass
class _Process:
    """What hooks without a config (pytest_internalerror) need to know of this run."""

    run_dir: Path = RUNS_DIR / "unnamed"
    usage_problem: str = ""
    crashed: bool = False
    redactor: Redactor | None = None
    # A parallel run's worker: its controller alone writes the run's status and reports.
    worker: bool = False

    def redact(self, text: str) -> str:
        return self.redactor.redact_text(text) if self.redactor is not None else text


PROCESS = _Process()


def run_dir_for(config: pytest.Config) -> Path:
    chosen = config.getoption("audit_dir")
    if chosen:
        return Path(chosen).resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return RUNS_DIR / f"{stamp}-{secrets.token_hex(2)}"


def configure_run(config: pytest.Config) -> None:
    """Where this run's reports go, and every control and area a marker (so ``-m`` scopes an
    audit under --strict-markers)."""
    handoff = handoff_of(config)
    PROCESS.worker = is_worker(config)
    PROCESS.run_dir = Path(handoff.run_dir) if handoff else run_dir_for(config)
    catalogue = load_catalogue()
    for control in catalogue.controls:
        config.addinivalue_line("markers", f"{control.marker}: {control.id}: {control.statement}")
    for area in catalogue.areas():
        config.addinivalue_line("markers", f"{area}: controls of the {area} area")
    config.addinivalue_line("markers", "destructive: changes or locks a dedicated test account")
    config.addinivalue_line("markers", "slow: needs real waiting (timeouts, lockout periods)")


def write_status(status: int | pytest.ExitCode) -> None:
    """The final status beside the reports, so the runner tells 3 and 4 from pytest's own."""
    if PROCESS.worker:
        return
    try:
        PROCESS.run_dir.mkdir(parents=True, exist_ok=True)
        (PROCESS.run_dir / "exit-status").write_text(f"{int(status)}\n", encoding="utf-8")
    except OSError:
        pass


def fail_usage(message: str) -> None:
    sys.stderr.write(f"portal-audit: {message}\n")
    PROCESS.usage_problem = message
    # Written now: an exit from pytest_sessionstart (a parallel run's controller) skips
    # pytest_sessionfinish, and pytest's own 3 would read as an internal error.
    write_status(EXIT_BAD_PROFILE)
    pytest.exit(message, returncode=EXIT_BAD_PROFILE)


def log_internal_error(text: str) -> str:
    """Write a traceback (redacted) beside the reports; returns where, for the message."""
    log = PROCESS.run_dir / "internal-error.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(PROCESS.redact(text), encoding="utf-8")
    except OSError as exc:
        return f"the traceback could not be written to {log}: {exc.strerror or exc}"
    return f"the traceback is in {log}"


def record_crash() -> str:
    """For the exception being handled, the audit's own crash (status 4): its traceback goes
    to a log beside the reports and the console gets one redacted line; returns the message."""
    PROCESS.crashed = True
    where = log_internal_error(traceback.format_exc())
    text = str(sys.exc_info()[1]).strip()
    name = type(sys.exc_info()[1]).__name__
    message = f"internal error ({name}: {PROCESS.redact(text.splitlines()[0] if text else name)})"
    sys.stderr.write(f"portal-audit: {message}; {where}\n")
    return message


def record_internal_error(text: str) -> None:
    """A crash inside pytest's machinery (status 4): the traceback also goes to a log file."""
    PROCESS.crashed = True
    sys.stderr.write(f"portal-audit: internal error; {log_internal_error(text)}\n")


# -- starting the run -------------------------------------------------------------------------


def start_audit(config: pytest.Config, handoff: Handoff | None = None) -> AuditRun:
    """The run's profile, redactor and target. A worker of a parallel run (``handoff``) loads
    the profile with the variables of the target its controller started."""
    profile_path = Path(config.getoption("profile"))
    waivers = _waivers(config)
    try:
        name = target_of(profile_path)
    except ProfileError as exc:
        fail_usage(f"bad profile: {exc}")
        raise
    target: Target | None = None
    if handoff is not None:
        variables, secrets = handoff.variables, handoff.secrets
    else:
        target = _started_target(config, name, profile_path)
        variables = dict(target.variables) if target else {}
        secrets = list(target.secrets) if target else []
    try:
        profile, redactor = _load_checked(profile_path, {**os.environ, **variables})
    except BaseException:
        if target is not None:
            target.stop()
        raise
    for secret in secrets:
        redactor.add(secret)
    if handoff is not None:
        started, provider = handoff.started, handoff.provider
    else:
        started = datetime.now(UTC).isoformat(timespec="seconds")
        provider = {"name": name, **target.facts} if target else None
    return AuditRun(
        profile_path=profile_path,
        profile=profile,
        redactor=redactor,
        run_dir=PROCESS.run_dir,
        started=started,
        target=target,
        provider=provider,
        fail_on_warn=config.getoption("fail_on", None) == "warn",
        waivers=waivers,
    )


def _waivers(config: pytest.Config) -> list[Waiver]:
    """The --waivers file's waivers, checked before anything starts; a bad one exits 3."""
    path = config.getoption("waivers", None)
    if not path:
        return []
    try:
        return load_waivers(path)
    except ProfileError as exc:
        fail_usage(f"bad waivers:\n{exc}")
        raise


def _started_target(config: pytest.Config, name: str | None, profile_path: Path) -> Target | None:
    """The profile's target, started by its provider; a bad name or provider exits 3."""
    try:
        return start_target(config, name)
    except NoProvider as exc:
        _, lines = read_raw(profile_path)
        where = ProfileError(
            str(profile_path), str(exc), field="target", line=lines.get(("target",))
        )
        fail_usage(f"bad profile: {where}")
        raise
    except pytest.UsageError as exc:
        fail_usage(str(exc))
        raise


def _load_checked(profile_path: Path, env: dict[str, str]) -> tuple[Profile, Redactor]:
    """The validated profile (its references filled from ``env``) and its redactor, with the
    driver it names loaded once."""
    try:
        profile = load_profile(profile_path, env)
    except ProfileError as exc:
        fail_usage(f"bad profile:\n{exc}")
        raise
    redactor = Redactor(profile.secrets())
    redactor.add_url_credentials(profile)
    PROCESS.redactor = redactor
    if profile.driver != DEFAULT_DRIVER:
        # A profile that names a driver runs that module's code: say which, before it runs.
        sys.stderr.write(f"portal-audit: loading the profile's driver {profile.driver}\n")
    try:
        load_driver(profile, redactor)
    except ProfileError as exc:
        fail_usage(f"bad profile: {profile_path}: {exc.field}: {exc.problem}")
        raise
    return profile, redactor


def begin_run(session: pytest.Session, stop: Callable[[str], int]) -> None:
    """Start the audit of the selected scenarios (nothing to do when none is a control):
    the run's deadline (``stop`` writes the reports of a run stopped early), account conflicts,
    the scenarios' order and the slow probes running in the background."""
    config = session.config
    if config.option.collectonly:
        return
    if not any(control_of(item) for item in session.items):
        return
    # Reports are private from their first byte, also when the plugin runs under plain pytest
    # rather than the runner (which sets the same umask before anything is written).
    os.umask(PRIVATE_UMASK)
    run = start_audit(config)
    config.stash[AUDIT_KEY] = run
    install_redacting_writer(config, run.redactor)
    run.selection = selection_of(run, session.items)
    arm_deadline(run, stop)
    wanted = plan_run(run, config)
    if run.waits_for:
        # A check sharing an account with a background probe runs after it has ended.
        session.items.sort(key=lambda item: max(run_order(item), _waits(run, item)))
    if wanted:
        run.slow_probes = start_probes(run, wanted)


def arm_deadline(run: AuditRun, stop: Callable[[str], int]) -> None:
    run.stopper = RunStopper(stop)
    run.stopper.arm(run_seconds(run.profile))


def selection_of(run: AuditRun, items: list[pytest.Item]) -> list[Selected]:
    """The selected scenarios of controls, whether each is skipped and wants a slow probe."""
    selection = []
    for item in items:
        control = control_of(item)
        if control is None:
            continue
        skipped = skip_reason(run, item, control)
        wanted = (
            control.id in registered_probes()
            and skipped is None
            and not_offered_failure(run, control) is None
        )
        selection.append(Selected(item.nodeid, item.name, control.id, skipped, wanted))
    return selection


def plan_run(run: AuditRun, config: pytest.Config) -> list[str]:
    """Account conflicts and waits of the selection, said on the console; the slow probes to
    start."""
    wanted = list(dict.fromkeys(s.control_id for s in run.selection if s.probe_wanted))
    selected = {s.control_id for s in run.selection}
    run.waits_for = account_waits(run.profile, set(wanted))
    run.warnings = [
        conflict.message
        for conflict in account_conflicts(run.profile)
        if conflict.first.controls & selected and conflict.second.controls & selected
    ] + ability_warnings(load_driver(run.profile, run.redactor), selected)
    show = console(config)
    if run.stopper is not None:
        show(f"this run stops at the latest after {run.stopper.seconds:g} s (timeouts.run_seconds)")
    for warning in run.warnings:
        show(f"warning: {warning}")
    return wanted


def start_probes(
    run: AuditRun, wanted: list[str], on_done: Callable[[str, Future[Any]], None] | None = None
) -> SlowProbes:
    probes = SlowProbes(
        run.profile,
        load_driver(run.profile, run.redactor),
        run.redactor,
        lambda runtime: launch_browser(runtime, run.profile),
        on_done=on_done,
    )
    probes.start(wanted)
    return probes


def start_parallel_audit(session: pytest.Session, stop: Callable[[str], int]) -> None:
    """A parallel run's controller starts the audit (target, deadline) before its workers
    exist; a worker loads the profile with what the controller handed it. Nothing to do in a
    run without workers (``begin_run`` starts it after collection)."""
    config = session.config
    if config.option.collectonly:
        return
    handoff = handoff_of(config)
    if handoff is None and not is_controller(config):
        return
    os.umask(PRIVATE_UMASK)
    run = start_audit(config, handoff)
    config.stash[AUDIT_KEY] = run
    if handoff is not None:
        install_redacting_writer(config, run.redactor)
    else:
        arm_deadline(run, stop)


def handoff_for(run: AuditRun) -> Handoff:
    target = run.target
    return Handoff(
        run_dir=str(run.run_dir),
        started=run.started,
        variables=dict(target.variables) if target is not None else {},
        secrets=run.redactor.secrets(),
        provider=run.provider,
    )


def begin_worker(session: pytest.Session) -> None:
    """A worker of a parallel run: its selection written for the controller, its order, and
    the controller's probes read from the mailbox."""
    run = audit_of(session.config)
    if run is None or session.config.option.collectonly:
        return
    groups = parallel_groups(run.profile, {control.id for control in controls_of(session.items)})
    run.selection = [
        replace(selected, group=groups[selected.control_id])
        for selected in selection_of(run, session.items)
    ]
    write_selection(run.run_dir, run.selection)
    wanted = {s.control_id for s in run.selection if s.probe_wanted}
    run.waits_for = account_waits(run.profile, wanted)
    if run.waits_for:
        session.items.sort(key=lambda item: max(run_order(item), _waits(run, item)))
    run.slow_probes = ProbeMailbox(run.run_dir)


def begin_controller(run: AuditRun, config: pytest.Config) -> None:
    """The controller of a parallel run, once the workers have collected: the selection they
    wrote, the warnings, and the slow probes, whose outcomes go to the mailbox."""
    run.selection = read_selection(run.run_dir)
    wanted = plan_run(run, config)
    post_started(run.run_dir, wanted)
    if wanted:
        run.slow_probes = start_probes(
            run, wanted, lambda control_id, future: post_outcome(run.run_dir, control_id, future)
        )
        run.slow_probes.say_while_quiet(console(config), lambda: run.last_outcome_at)


# -- order and scope --------------------------------------------------------------------------


def run_order(item: pytest.Item) -> int:
    """Slow scenarios only collect what their background probes measured, so they run late
    and the probes wait while everything else runs; scenarios that end the account's other
    sessions run after them, when no probe's session can be disturbed any more."""
    control = control_of(item)
    if control is not None and control.ends_other_sessions:
        return 2
    return 1 if item.get_closest_marker("slow") is not None else 0


def _waits(run: AuditRun, item: pytest.Item) -> int:
    control = control_of(item)
    return 2 if control is not None and control.id in run.waits_for else 0


def wait_for_shared_accounts(run: AuditRun, item: pytest.Item, control: Control) -> None:
    """A check sharing an account with background probes waits until they have ended."""
    waits = run.waits_for.get(control.id)
    if waits and run.slow_probes is not None:
        run.slow_probes.wait_for(
            sorted(waits), console(item.config, f"{control.id} shares an account; ")
        )


def not_offered_failure(run: AuditRun, control: Control) -> str | None:
    """The failure reason when the portal lacks a feature the control requires, or None."""
    reason = run.profile.not_offered.get(control.id)
    if reason is None:
        return None
    status, why = control.not_offered(reason)
    return why if status == "failed" else None


def skip_reason(run: AuditRun, item: pytest.Item, control: Control) -> str | None:
    """Why a scenario must not run against this portal, or None."""
    reason = run.profile.out_of_scope.get(control.id)
    if reason:
        return f"out of scope for this portal: {reason}"
    missing = run.profile.not_offered.get(control.id)
    if missing is not None:
        status, why = control.not_offered(missing)
        if status == "skipped":
            return why
    if item.get_closest_marker("destructive"):
        config = item.config
        if config.getoption("deny_destructive"):
            return "destructive checks denied for this run (--deny-destructive)"
        if not (config.getoption("allow_destructive") or run.profile.destructive_checks_allowed):
            return (
                "destructive checks not allowed "
                "(profile destructive_checks_allowed or --allow-destructive)"
            )
        if not run.profile.patient.dedicated_test_account:
            return "destructive check needs an account marked dedicated_test_account"
    return None


def unfinished_results(run: AuditRun, reason: str) -> dict[str, ControlResult]:
    """The outcomes so far, with every scenario that had not finished inconclusive (or skipped,
    when it would have been skipped anyway)."""
    results = dict(run.results)
    catalogue = load_catalogue()
    for selected in run.selection:
        if selected.nodeid in run.finished:
            continue
        control = catalogue.get(selected.control_id)
        skipped = selected.skipped
        threshold, note = run.threshold_for(control)
        result = ControlResult(
            control_id=control.id,
            status="skipped" if skipped else "inconclusive",
            reason=skipped or f"{reason} before this check finished",
            threshold=threshold,
            threshold_note=note,
            measured="",
            scenarios=[selected.name],
        )
        existing = results.get(control.id)
        results[control.id] = existing.merge(result) if existing else result
    return results
