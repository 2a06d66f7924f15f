"""The pytest plugin that turns scenario runs into an audit.

It registers every control and area as a marker, loads and validates the profile before any
browser starts (exit status 3 on a bad profile), starts the bundled reference portal when the
profile asks for it, provides the browser/driver fixtures, maps each scenario's outcome onto its
control (passed / failed / inconclusive / skipped), redacts every artifact, and writes
summary.json and the compliance matrix. Exit status: 0 compliant, 1 noncompliant, 2 inconclusive
(or nothing evaluated), 3 bad profile or usage, 4 an internal error of the audit.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Response, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from portal.allure_writer import install_redacting_writer
from portal.background import SlowProbes
from portal.background import registered as registered_probes
from portal.browser import QUIET_ARGS, TrustError, find_chromium, verified_leaf_spki
from portal.browser_errors import PageWatch, describe_browser_error
from portal.catalogue import Control, load_catalogue
from portal.driver import PortalDriver, SignInOutcome, SignOutIneffective, load_driver
from portal.errors import Inconclusive
from portal.evidence import Evidence, Redactor
from portal.profile import (
    DEFAULT_DRIVER,
    Profile,
    ProfileError,
    load_profile,
    starts_reference_portal,
)
from portal.roles import conflicts as account_conflicts
from portal.roles import waits as account_waits
from portal.run_stop import RunStopper, run_seconds
from reports.summary import EXIT_STATUS, ControlResult, build_summary, verdict, write_reports

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PROFILE = ROOT / "profiles" / "reference.yaml"
RUNS_DIR = ROOT / "reports" / "runs"
AUDIT_KEY = pytest.StashKey["AuditRun"]()
OUTCOME_KEY = pytest.StashKey["ControlResult"]()
RECORD_KEY = pytest.StashKey["ControlRecord"]()
STEP_KEY = pytest.StashKey[str]()
PAGES_KEY = pytest.StashKey[PageWatch]()
EXIT_BAD_PROFILE = 3
# The audit's own failure (a bug, a crash in the plugin or a driver), never a verdict.
EXIT_INTERNAL_ERROR = 4
USAGE_KEY = pytest.StashKey[str]()


def reference_password_variables() -> tuple[str, ...]:
    """The reference portal's accounts read their passwords from these variables; a run
    generates fresh random ones so no password is ever stored anywhere."""
    from reference_portal.seed import password_variables

    return password_variables()


def reference_secret_variables() -> tuple[str, ...]:
    """The variables holding the TOTP secrets of the reference portal's pre-enrolled accounts;
    generated for each run like the passwords."""
    from reference_portal.seed import secret_variables

    return secret_variables()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("portal-audit", "patient portal audit")
    group.addoption("--profile", default=str(DEFAULT_PROFILE), help="portal profile (YAML)")
    group.addoption(
        "--weaken",
        default="",
        help="comma-separated weakness flags of the bundled reference portal to switch on",
    )
    group.addoption(
        "--allow-destructive",
        action="store_true",
        help="run destructive controls (only on accounts marked dedicated_test_account)",
    )
    group.addoption(
        "--deny-destructive",
        action="store_true",
        help="skip destructive controls even when the profile allows them",
    )
    group.addoption(
        "--audit-dir",
        default=None,
        help="run directory for summary.json, matrix and evidence (default reports/runs/<time>)",
    )


def pytest_configure(config: pytest.Config) -> None:
    _PROCESS.run_dir = _run_dir(config)
    catalogue = load_catalogue()
    for control in catalogue.controls:
        config.addinivalue_line("markers", f"{control.marker}: {control.id}: {control.statement}")
    for area in catalogue.areas():
        config.addinivalue_line("markers", f"{area}: controls of the {area} area")
    config.addinivalue_line("markers", "destructive: changes or locks a dedicated test account")
    config.addinivalue_line("markers", "slow: needs real waiting (timeouts, lockout periods)")


def control_of(item: pytest.Item) -> Control | None:
    by_marker = load_catalogue().by_marker()
    for marker in item.iter_markers():
        if marker.name in by_marker:
            return by_marker[marker.name]
    return None


# -- the run ---------------------------------------------------------------------------------


@dataclass
class ControlRecord:
    """What a scenario measured, filled in by its steps."""

    control: Control
    measured: list[str] = field(default_factory=list)
    reason: str = ""

    def measure(self, text: str) -> None:
        if text:
            self.measured.append(text)


@dataclass
class AuditRun:
    profile_path: Path
    profile: Profile
    redactor: Redactor
    run_dir: Path
    weaknesses: list[str]
    started: str
    portal: Any = None  # reference_portal.launcher.RunningPortal when the bundled portal runs
    slow_probes: SlowProbes | None = None
    results: dict[str, ControlResult] = field(default_factory=dict)
    # Accounts shared between checks that disturb each other (portal.roles).
    warnings: list[str] = field(default_factory=list)
    waits_for: dict[str, set[str]] = field(default_factory=dict)
    # The selected scenarios and those that reached an outcome, so a stopped run can name the
    # unfinished ones (portal.run_stop).
    items: list[pytest.Item] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    stopper: RunStopper | None = None

    def threshold_for(self, control: Control) -> tuple[dict[str, Any], str]:
        applied = {name: self.profile.threshold(name) for name in control.threshold}
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
        existing = self.results.get(result.control_id)
        self.results[result.control_id] = existing.merge(result) if existing else result

    def stop(self) -> None:
        if self.slow_probes is not None:
            self.slow_probes.stop()
        if self.portal is not None:
            self.portal.stop()
            self.portal = None


def _run_dir(config: pytest.Config) -> Path:
    chosen = config.getoption("audit_dir")
    if chosen:
        return Path(chosen).resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return RUNS_DIR / f"{stamp}-{secrets.token_hex(2)}"


@dataclass
class _Process:
    """What hooks without a config (pytest_internalerror) need to know of this run."""

    run_dir: Path = RUNS_DIR / "unnamed"
    usage_problem: str = ""
    crashed: bool = False
    redactor: Redactor | None = None

    def redact(self, text: str) -> str:
        return self.redactor.redact_text(text) if self.redactor is not None else text


_PROCESS = _Process()


def _write_status(status: int | pytest.ExitCode) -> None:
    """The final status beside the reports, so the runner tells 3 and 4 from pytest's own."""
    try:
        _PROCESS.run_dir.mkdir(parents=True, exist_ok=True)
        (_PROCESS.run_dir / "exit-status").write_text(f"{int(status)}\n", encoding="utf-8")
    except OSError:
        pass


def _fail_usage(message: str) -> None:
    sys.stderr.write(f"portal-audit: {message}\n")
    _PROCESS.usage_problem = message
    pytest.exit(message, returncode=EXIT_BAD_PROFILE)


def _start_audit(config: pytest.Config) -> AuditRun:
    profile_path = Path(config.getoption("profile"))
    weaknesses = [w.strip() for w in config.getoption("weaken").split(",") if w.strip()]
    try:
        wants_reference_portal = starts_reference_portal(profile_path)
    except ProfileError as exc:
        _fail_usage(f"bad profile: {exc}")
        raise
    portal = None
    if wants_reference_portal:
        portal = _start_reference_portal(weaknesses)
    elif weaknesses:
        _fail_usage(f"--weaken applies only to the bundled reference portal, not to {profile_path}")
    try:
        profile, redactor = _load_checked(profile_path)
    except BaseException:
        if portal is not None:
            portal.stop()
        raise
    if portal is not None:
        for variable in reference_password_variables():
            redactor.add(os.environ.get(variable))
        for variable in reference_secret_variables():
            redactor.add(os.environ.get(variable))
    return AuditRun(
        profile_path=profile_path,
        profile=profile,
        redactor=redactor,
        run_dir=_PROCESS.run_dir,
        weaknesses=weaknesses,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        portal=portal,
    )


def _load_checked(profile_path: Path) -> tuple[Profile, Redactor]:
    """The validated profile and its redactor, with the driver it names loaded once."""
    try:
        profile = load_profile(profile_path)
    except ProfileError as exc:
        _fail_usage(f"bad profile:\n{exc}")
        raise
    redactor = Redactor(profile.secrets())
    redactor.add_url_credentials(profile)
    _PROCESS.redactor = redactor
    if profile.driver != DEFAULT_DRIVER:
        # A profile that names a driver runs that module's code: say which, before it runs.
        sys.stderr.write(f"portal-audit: loading the profile's driver {profile.driver}\n")
    try:
        load_driver(profile, redactor)
    except ProfileError as exc:
        _fail_usage(f"bad profile: {profile_path}: {exc.field}: {exc.problem}")
        raise
    return profile, redactor


def _start_reference_portal(weaknesses: list[str]) -> Any:
    from reference_portal import launcher
    from reference_portal.passwords import generate_password
    from reference_portal.weaknesses import WEAKNESSES

    known = {w.flag for w in WEAKNESSES}
    unknown = [w for w in weaknesses if w not in known]
    if unknown:
        _fail_usage(f"unknown weakness flag(s) {unknown}; known: {sorted(known)}")
    for variable in reference_password_variables():
        # Valid under every password policy the portal can be weakened to, so the password
        # controls can always put an account's original password back.
        os.environ.setdefault(variable, generate_password())
    for variable in reference_secret_variables():
        os.environ.setdefault(variable, pyotp.random_base32(32))
    # A test may keep the portal's state (database, mailbox) to inspect it after the run.
    kept = os.environ.get("REFERENCE_PORTAL_STATE_DIR")
    try:
        portal = launcher.start(weaknesses, state_dir=Path(kept) if kept else None)
    except launcher.PortalStartError as exc:
        _fail_usage(f"the bundled reference portal did not start: {exc}")
        raise
    os.environ["REFERENCE_PORTAL_URL"] = portal.https_url
    os.environ["REFERENCE_PORTAL_HTTP_URL"] = portal.http_url
    os.environ["REFERENCE_PORTAL_CA"] = str(portal.ca_file)
    if portal.maildir is not None:
        os.environ["REFERENCE_PORTAL_MAILDIR"] = str(portal.maildir)
    return portal


def run_order(item: pytest.Item) -> int:
    """Slow scenarios only collect what their background probes measured, so they run late
    and the probes wait while everything else runs; scenarios that end the account's other
    sessions run after them, when no probe's session can be disturbed any more."""
    control = control_of(item)
    if control is not None and control.ends_other_sessions:
        return 2
    return 1 if item.get_closest_marker("slow") is not None else 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=run_order)


def pytest_collection_finish(session: pytest.Session) -> None:
    try:
        _begin(session)
    except (pytest.exit.Exception, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - the audit's own crash: status 4, traceback to a log
        _PROCESS.crashed = True
        where = _log_internal_error(traceback.format_exc())
        text = str(sys.exc_info()[1]).strip()
        name = type(sys.exc_info()[1]).__name__
        message = (
            f"internal error ({name}: {_PROCESS.redact(text.splitlines()[0] if text else name)})"
        )
        sys.stderr.write(f"portal-audit: {message}; {where}\n")
        pytest.exit(message, returncode=EXIT_INTERNAL_ERROR)


def _begin(session: pytest.Session) -> None:
    config = session.config
    if config.option.collectonly:
        return
    if not any(control_of(item) for item in session.items):
        return
    # Reports are private from their first byte, also when the plugin runs under plain pytest
    # rather than the runner (which sets the same umask before anything is written).
    os.umask(0o077)
    run = _start_audit(config)
    config.stash[AUDIT_KEY] = run
    install_redacting_writer(config, run.redactor)
    run.items = list(session.items)
    run.stopper = RunStopper(lambda reason: _stop_run(session, reason))
    run.stopper.arm(run_seconds(run.profile))
    wanted = []
    for item in session.items:
        control = control_of(item)
        if (
            control is not None
            and control.id in registered_probes()
            and skip_reason(run, item, control) is None
            and not_offered_failure(run, control) is None
        ):
            wanted.append(control.id)
    selected = {c.id for c in map(control_of, session.items) if c is not None}
    run.waits_for = account_waits(run.profile, set(wanted))
    run.warnings = [
        conflict.message
        for conflict in account_conflicts(run.profile)
        if conflict.first.controls & selected and conflict.second.controls & selected
    ]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"portal-audit: this run stops at the latest after {run.stopper.seconds:g} s "
            "(timeouts.run_seconds)"
        )
    for warning in run.warnings:
        if reporter is not None:
            reporter.write_line(f"portal-audit: warning: {warning}", yellow=True)
    if run.waits_for:
        # A check sharing an account with a background probe runs after it has ended.
        session.items.sort(key=lambda item: max(run_order(item), _waits(run, item)))
    if wanted:
        run.slow_probes = SlowProbes(
            run.profile,
            load_driver(run.profile, run.redactor),
            run.redactor,
            lambda runtime: launch_browser(runtime, run.profile),
        )
        run.slow_probes.start(wanted)


def _waits(run: AuditRun, item: pytest.Item) -> int:
    control = control_of(item)
    return 2 if control is not None and control.id in run.waits_for else 0


def _audit(config: pytest.Config) -> AuditRun | None:
    return config.stash.get(AUDIT_KEY, None)


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


def pytest_runtest_setup(item: pytest.Item) -> None:
    run = _audit(item.config)
    control = control_of(item)
    if run is None or control is None:
        return
    item.stash[RECORD_KEY] = ControlRecord(control)
    reason = skip_reason(run, item, control)
    if reason:
        pytest.skip(reason)
    waits = run.waits_for.get(control.id)
    if waits and run.slow_probes is not None:
        reporter = item.config.pluginmanager.get_plugin("terminalreporter")

        def show(text: str) -> None:
            if reporter is not None:
                reporter.write_line(f"portal-audit: {control.id} shares an account; {text}")

        run.slow_probes.wait_for(sorted(waits), show)


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest) -> None:
    """Label the scenario's Allure result with its control, area and standards."""
    import allure

    control = control_of(request.node)
    run = _audit(request.config)
    if control is None or run is None:
        return
    threshold, note = run.threshold_for(control)
    allure.dynamic.epic(control.area)
    allure.dynamic.story(control.id)
    allure.dynamic.label("control", control.id)
    for source in control.sources:
        allure.dynamic.label("standard", source)
    applied = ", ".join(f"{k} = {v}" for k, v in threshold.items()) or "none"
    allure.dynamic.description(
        f"**{control.id}**: {control.statement}\n\n"
        f"Threshold applied: {applied}{f' ({note})' if note else ''}\n\n"
        f"Sources: {'; '.join(control.sources) or 'none'}"
    )
    missing = not_offered_failure(run, control)
    if missing is not None:
        # A required behaviour the portal does not offer is a failure, decided before any step.
        record = request.node.stash.get(RECORD_KEY, None)
        if record is not None:
            record.measure("feature not offered (profile not_offered)")
        raise AssertionError(missing)


def pytest_bdd_before_step(request: pytest.FixtureRequest, step: Any) -> None:
    """Remember the step being run, so a failure can say what was being done."""
    request.node.stash[STEP_KEY] = f"{step.keyword} {step.name}".strip()


def _status_of(
    item: pytest.Item, report: pytest.TestReport, call: pytest.CallInfo[None]
) -> tuple[str, str]:
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        return "skipped", reason.removeprefix("Skipped: ")
    if report.passed:
        return "passed", ""
    excinfo = call.excinfo
    message = ""
    if excinfo is not None:
        if isinstance(excinfo.value, PlaywrightError):
            # Never the raw Playwright text: what was being done, where, what the portal said.
            pages = item.stash.get(PAGES_KEY, None)
            step = item.stash.get(STEP_KEY, "setting up the scenario")
            return "inconclusive", describe_browser_error(
                excinfo.value,
                doing=f"while '{step}'",
                served=pages.latest() if pages is not None else None,
            )
        text = str(excinfo.value).strip()
        message = text.splitlines()[0] if text else excinfo.typename
        if isinstance(excinfo.value, AssertionError):
            return "failed", with_findings(message, text)
    return "inconclusive", f"could not be evaluated: {message}"


def with_findings(first_line: str, text: str, most: int = 3) -> str:
    """A failure's one-line reason naming what failed: the findings listed under the first
    line of an evaluation's description ("- key: message"), the first few of them."""
    findings = [line[2:] for line in text.splitlines()[1:] if line.startswith("- ")]
    if not findings:
        return first_line
    more = f"; and {len(findings) - most} more" if len(findings) > most else ""
    return f"{first_line}: {'; '.join(findings[:most])}{more}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    run = _audit(item.config)
    if run is None:
        return
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        report.longrepr = run.redactor.redact_text(str(report.longrepr))
    report.sections = [(k, run.redactor.redact_text(v)) for k, v in report.sections]
    control = control_of(item)
    if control is None:
        return
    decisive = report.when == "call" or (report.when == "setup" and not report.passed)
    if not decisive:
        return
    status, reason = _status_of(item, report, call)
    record = item.stash.get(RECORD_KEY, None)
    if status == "passed":
        reason = (record.reason if record else "") or "requirement met"
    threshold, note = run.threshold_for(control)
    result = ControlResult(
        control_id=control.id,
        status=status,  # type: ignore[arg-type]
        reason=run.redactor.redact_text(reason),
        threshold=threshold,
        threshold_note=note,
        measured=run.redactor.redact_text("; ".join(record.measured)) if record else "",
        scenarios=[item.name],
    )
    item.stash[OUTCOME_KEY] = result
    run.record(result)
    run.finished.add(item.nodeid)


def _log_internal_error(text: str) -> str:
    """Write a traceback (redacted) beside the reports; returns where, for the message."""
    log = _PROCESS.run_dir / "internal-error.log"
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(_PROCESS.redact(text), encoding="utf-8")
    except OSError as exc:
        return f"the traceback could not be written to {log}: {exc.strerror or exc}"
    return f"the traceback is in {log}"


def pytest_internalerror(excrepr: object, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """A crash of the audit inside pytest's machinery: the traceback also goes to a log file."""
    _PROCESS.crashed = True
    sys.stderr.write(f"portal-audit: internal error; {_log_internal_error(str(excrepr))}\n")


def final_status(exitstatus: int, run: AuditRun | None) -> int:
    """The audit's exit status from pytest's: 0-2 a verdict, 3 bad profile or usage, 4 an
    internal error of the audit."""
    usage = (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED)
    if _PROCESS.crashed:
        return EXIT_INTERNAL_ERROR
    if _PROCESS.usage_problem or exitstatus in usage:
        return EXIT_BAD_PROFILE
    if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        return EXIT_INTERNAL_ERROR
    if run is not None and run.results:
        return EXIT_STATUS[verdict(run.results)]
    return EXIT_STATUS["inconclusive"]


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    run = _audit(session.config)
    if run is None:
        if (
            _PROCESS.crashed
            or _PROCESS.usage_problem
            or exitstatus == pytest.ExitCode.INTERNAL_ERROR
        ):
            session.exitstatus = final_status(exitstatus, None)
            _write_status(session.exitstatus)
        return
    if run.stopper is not None and not run.stopper.disarm():
        # The run deadline or a signal came first: its watchdog writes the reports and ends
        # the process; nothing may write after it.
        threading.Event().wait()
    run.stop()
    summary = _write_reports(session, run, run.results, {})
    session.exitstatus = final_status(exitstatus, run)
    _write_status(session.exitstatus)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        tr.write_line(f"portal-audit: {summary['verdict']}; summary in {run.run_dir}")


def _write_reports(
    session: pytest.Session,
    run: AuditRun,
    results: dict[str, ControlResult],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """summary.json and the matrix, then every artifact of the run redacted."""
    catalogue = load_catalogue()
    summary = build_summary(
        results,
        catalogue,
        profile=run.profile.name,
        target=run.profile.base_url,
        extra={
            "profile_file": str(run.profile_path),
            "started": run.started,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "weaknesses": run.weaknesses,
            "warnings": run.warnings,
            **extra,
        },
    )
    write_reports(summary, catalogue, run.run_dir)
    shutil.rmtree(run.run_dir / "work", ignore_errors=True)
    run.redactor.redact_tree(run.run_dir)
    alluredir = session.config.getoption("allure_report_dir", None)
    if alluredir and not Path(alluredir).resolve().is_relative_to(run.run_dir):
        run.redactor.redact_tree(Path(alluredir))
    return summary


def unfinished_results(run: AuditRun, reason: str) -> dict[str, ControlResult]:
    """The outcomes so far, with every scenario that had not finished inconclusive (or skipped,
    when it would have been skipped anyway)."""
    results = dict(run.results)
    for item in run.items:
        control = control_of(item)
        if control is None or item.nodeid in run.finished:
            continue
        skipped = skip_reason(run, item, control)
        threshold, note = run.threshold_for(control)
        result = ControlResult(
            control_id=control.id,
            status="skipped" if skipped else "inconclusive",
            reason=skipped or f"{reason} before this check finished",
            threshold=threshold,
            threshold_note=note,
            measured="",
            scenarios=[item.name],
        )
        existing = results.get(control.id)
        results[control.id] = existing.merge(result) if existing else result
    return results


def _stop_run(session: pytest.Session, reason: str) -> int:
    """Called by the run stopper's thread: write the reports of a run stopped early."""
    run = _audit(session.config)
    assert run is not None
    results = unfinished_results(run, reason)
    try:
        run.stop()
    finally:
        _write_reports(session, run, results, {"stopped": reason})
    status = EXIT_STATUS[verdict(results)]
    _write_status(status)
    unfinished = sum(1 for r in results.values() if r.reason.startswith(reason))
    sys.stderr.write(
        f"portal-audit: {reason}; {unfinished} unfinished control(s) inconclusive; "
        f"summary in {run.run_dir}\n"
    )
    return status


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def audit_run(request: pytest.FixtureRequest) -> AuditRun:
    run = _audit(request.config)
    if run is None:
        raise RuntimeError("portal-audit fixtures are only available to audit scenarios")
    return run


@pytest.fixture(scope="session")
def profile(audit_run: AuditRun) -> Profile:
    return audit_run.profile


@pytest.fixture(scope="session")
def redactor(audit_run: AuditRun) -> Redactor:
    return audit_run.redactor


@pytest.fixture(scope="session")
def driver(audit_run: AuditRun) -> PortalDriver:
    return load_driver(audit_run.profile, audit_run.redactor)


@pytest.fixture
def control_record(request: pytest.FixtureRequest) -> ControlRecord:
    record = request.node.stash.get(RECORD_KEY, None)
    if record is None:
        raise RuntimeError(f"{request.node.nodeid} is not tagged with a control ID")
    return record


@pytest.fixture
def evidence(audit_run: AuditRun, request: pytest.FixtureRequest) -> Evidence:
    return Evidence(audit_run.redactor, audit_run.run_dir / "work" / _safe_name(request.node.name))


@pytest.fixture(scope="session")
def playwright_runtime() -> Iterator[Playwright]:
    runtime = sync_playwright().start()
    yield runtime
    runtime.stop()


@pytest.fixture(scope="session")
def browser(playwright_runtime: Playwright, audit_run: AuditRun) -> Iterator[Browser]:
    """One browser for the whole run; each scenario gets fresh contexts."""
    launched = launch_browser(playwright_runtime, audit_run.profile)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def slow_probes(audit_run: AuditRun) -> SlowProbes:
    if audit_run.slow_probes is None:
        raise Inconclusive("no slow probe was started in this run")
    return audit_run.slow_probes


@pytest.fixture
def progress(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print a progress line on the console (for long waits)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")

    def show(text: str) -> None:
        if reporter is not None:
            reporter.write_line(f"portal-audit: {text}")

    return show


def launch_browser(runtime: Playwright, profile: Profile) -> Browser:
    """Chromium with the portal's private CA honoured (see portal.browser.verified_leaf_spki)."""
    args = list(QUIET_ARGS)
    if profile.tls.ca_file and profile.base_url.startswith("https:"):
        try:
            pin = verified_leaf_spki(
                profile.tls_host,
                profile.tls_port,
                server_name=profile.tls.server_name,
                ca_file=profile.tls.ca_file,
                timeout=profile.timeouts.reachability_seconds,
            )
        except TrustError as exc:
            raise Inconclusive(f"cannot trust the portal's certificate: {exc}") from None
        args.append(f"--ignore-certificate-errors-spki-list={pin}")
    return runtime.chromium.launch(executable_path=find_chromium(), args=args)


class Contexts:
    """Fresh browser contexts for one scenario, with traces kept when the scenario fails."""

    def __init__(self, browser: Browser, profile: Profile, redactor: Redactor, work_dir: Path):
        self.browser = browser
        self.profile = profile
        self.redactor = redactor
        self.work_dir = work_dir
        self.opened: list[BrowserContext] = []
        self.pages = PageWatch()

    def new(self, cookies: list[Any] | None = None, har: Path | None = None) -> BrowserContext:
        """A fresh context; ``har`` records every request (without bodies) to that file."""
        if har is not None:
            har.parent.mkdir(parents=True, exist_ok=True)
            context = self.browser.new_context(record_har_path=har, record_har_content="omit")
        else:
            context = self.browser.new_context()
        # Every cookie value any response sets is a secret, including ones replaced or deleted
        # before the scenario ends, so they are registered as they arrive.
        context.on("response", self._register_set_cookies)
        self.pages.watch(context)
        context.set_default_timeout(self.profile.timeouts.navigation_seconds * 1000)
        context.tracing.start(screenshots=True, snapshots=True)
        if cookies:
            context.add_cookies(cookies)
        self.opened.append(context)
        return context

    def _register_set_cookies(self, response: Response) -> None:
        try:
            headers = response.headers_array()
        except PlaywrightError:
            return
        for header in headers:
            if header["name"].lower() == "set-cookie":
                for line in header["value"].split("\n"):
                    self.redactor.add(line.partition(";")[0].partition("=")[2].strip())

    def new_page(self, cookies: list[Any] | None = None) -> Page:
        return self.new(cookies).new_page()

    def finish(self, context: BrowserContext) -> None:
        """Close one context now (its HAR is written on close); no trace is kept for it."""
        for cookie in context.cookies():
            self.redactor.add(cookie.get("value"))
        context.tracing.stop()
        context.close()
        self.opened.remove(context)

    def close(self, keep_evidence: Evidence | None) -> None:
        for index, context in enumerate(self.opened, start=1):
            for cookie in context.cookies():
                self.redactor.add(cookie.get("value"))
            if keep_evidence is not None:
                self._keep(context, index, keep_evidence)
            else:
                context.tracing.stop()
            context.close()
        self.opened.clear()

    def _keep(self, context: BrowserContext, index: int, evidence: Evidence) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for number, page in enumerate(context.pages, start=1):
            shot = self.work_dir / f"context{index}-page{number}.png"
            try:
                page.screenshot(path=str(shot), mask=[page.locator("input[type=password]")])
            except Exception:  # noqa: BLE001 - a page that cannot be captured leaves no screenshot
                continue
            evidence.file(shot, f"screenshot (browser {index}, page {number})", "png")
        trace = self.work_dir / f"context{index}-trace.zip"
        context.tracing.stop(path=str(trace))
        evidence.file(trace, f"Playwright trace (browser {index})", "trace")


@pytest.fixture
def contexts(
    browser: Browser, audit_run: AuditRun, evidence: Evidence, request: pytest.FixtureRequest
) -> Iterator[Contexts]:
    opened = Contexts(browser, audit_run.profile, audit_run.redactor, evidence.work_dir)
    request.node.stash[PAGES_KEY] = opened.pages
    yield opened
    result = request.node.stash.get(OUTCOME_KEY, None)
    failed = result is None or result.status in ("failed", "inconclusive")
    opened.close(evidence if failed else None)


@pytest.fixture
def page(contexts: Contexts) -> Page:
    return contexts.new_page()


@dataclass(frozen=True)
class Preflight:
    outcome: SignInOutcome
    signed_out: bool
    sign_out_problem: str = ""


@pytest.fixture(scope="session")
def preflight(browser: Browser, audit_run: AuditRun, driver: PortalDriver) -> Preflight:
    """Sign in and out once; every browser scenario relies on this having worked."""
    context = browser.new_context()
    context.set_default_timeout(audit_run.profile.timeouts.navigation_seconds * 1000)
    try:
        page = context.new_page()
        outcome = driver.sign_in(page, audit_run.profile.patient)
        signed_out = False
        if outcome.signed_in:
            try:
                driver.sign_out(page)
            except SignOutIneffective as exc:
                return Preflight(outcome, False, str(exc))
            signed_out = not driver.is_signed_in(page)
        return Preflight(outcome, signed_out)
    finally:
        context.close()


@pytest.fixture
def usable_portal(preflight: Preflight) -> Preflight:
    if not preflight.outcome.signed_in:
        raise Inconclusive(
            f"preflight failed, the test account cannot sign in: {preflight.outcome.detail}"
        )
    if not preflight.signed_out:
        why = f": {preflight.sign_out_problem}" if preflight.sign_out_problem else ""
        raise Inconclusive(f"preflight failed: the test account could not sign out{why}")
    return preflight


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)[:120]
