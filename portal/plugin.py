"""The pytest plugin that turns scenario runs into an audit: its hooks and fixtures only.

The run itself is portal.run (profile, target, order, skips), a scenario's outcome as its
control's status portal.outcome, the reports portal.report_writer, browser contexts
portal.contexts and the preflight portal.preflight. Installed, pytest loads this module through
the ``pytest11`` entry point ``portal.plugin``; in a checkout without install the root
conftest.py loads it under that same name, so it is never registered twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from portal.allure_writer import note_step_fixtures
from portal.background import SlowProbes
from portal.contexts import Contexts, launch_browser
from portal.driver import PortalDriver, load_driver
from portal.errors import Inconclusive
from portal.evidence import Evidence, Redactor
from portal.outcome import (
    OUTCOME_KEY,
    PAGES_KEY,
    STEP_KEY,
    control_result,
    is_decisive,
    redact_report,
)
from portal.parallel import (
    SECRETS_KEY,
    account_scheduler,
    attach_result,
    is_worker,
    result_of,
    send_handoff,
)
from portal.preflight import Preflight, require_usable, run_preflight
from portal.probe_mailbox import ProbeMailbox
from portal.profile import Profile
from portal.report_writer import finish_run, label_scenario, stop_run
from portal.resources import suite_root
from portal.run import (
    DEFAULT_PROFILE,
    EXIT_INTERNAL_ERROR,
    RECORD_KEY,
    AuditRun,
    ControlRecord,
    audit_of,
    begin_controller,
    begin_run,
    begin_worker,
    configure_run,
    console,
    control_of,
    handoff_for,
    not_offered_failure,
    record_crash,
    record_internal_error,
    run_order,
    skip_reason,
    start_parallel_audit,
    wait_for_shared_accounts,
    write_status,
)
from portal.targets import TargetHooks

# The step definitions come with the plugin, so an installed portal-audit audits with plain
# ``pytest --profile P`` and no conftest of its own.
pytest_plugins = [
    "steps.common",
    "steps.session",
    "steps.session_tokens",
    "steps.transport",
    "steps.authentication",
    "steps.mfa",
    "steps.access",
    "steps.passwords",
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(TargetHooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("portal-audit", "patient portal audit")
    group.addoption("--profile", default=str(DEFAULT_PROFILE), help="portal profile (YAML)")
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
        "--fail-on",
        choices=["warn"],
        default=None,
        help="warn: a control passed with an advisory counts as failed (exit status 1)",
    )
    group.addoption(
        "--waivers",
        default=None,
        help="a waiver file: failures accepted until a date (portal.waivers)",
    )
    group.addoption(
        "--audit-dir",
        default=None,
        help="run directory for summary.json, matrix and evidence (default reports/runs/<time>)",
    )


def pytest_configure(config: pytest.Config) -> None:
    configure_run(config)
    config.pluginmanager.register(ResultCollector(config), "portal-audit-results")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """In a parallel run (portal.parallel): the controller starts the audit before its
    workers start; a worker loads what the controller handed it."""
    with crash_is_status_4():
        start_parallel_audit(session, lambda reason: stop_run(session, reason))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=run_order)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    # tryfirst: an xdist worker sends its collection (the order it runs in) after this.
    with crash_is_status_4():
        if is_worker(session.config):
            begin_worker(session)
        else:
            begin_run(session, lambda reason: stop_run(session, reason))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist, in the controller: what each worker needs to audit the same portal."""
    run = audit_of(node.config)
    if run is not None:
        send_handoff(node, handoff_for(run))


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist, in the controller: scenarios scheduled in groups per account, whichever load
    distribution was asked for (plain ``-n 2`` too: checks of one account must not overlap)."""
    run = audit_of(config)
    if run is None or config.getvalue("dist") == "each":
        return None
    return account_scheduler(config, log, run.run_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodeready(node: Any) -> None:
    run = audit_of(node.config)
    pid = node.workerinfo.get("pid") if isinstance(node.workerinfo, dict) else None
    if run is not None and isinstance(pid, int):
        run.worker_pids.append(pid)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """xdist, in the controller: the first worker has collected; the probes start."""
    run = audit_of(node.config)
    if run is not None and run.slow_probes is None and not run.selection:
        with crash_is_status_4():
            begin_controller(run, node.config)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist, in the controller: the secrets a worker learned (cookie values) are redacted too."""
    run = audit_of(node.config)
    output = getattr(node, "workeroutput", None) or {}
    if run is not None:
        for secret in output.get(SECRETS_KEY, []):
            run.redactor.add(secret)


class ResultCollector:
    """Each scenario's control result, from its report: in a parallel run the controller gets
    the reports its workers send."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        run = audit_of(self.config)
        result = result_of(report)
        if run is not None and result is not None:
            run.record(result)
            run.finished.add(report.nodeid)


@contextmanager
def crash_is_status_4() -> Iterator[None]:
    try:
        yield
    except (pytest.exit.Exception, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - the audit's own crash: status 4, traceback to a log
        message = record_crash()
        write_status(EXIT_INTERNAL_ERROR)
        pytest.exit(message, returncode=EXIT_INTERNAL_ERROR)


def pytest_runtest_setup(item: pytest.Item) -> None:
    run = audit_of(item.config)
    control = control_of(item)
    if run is None or control is None:
        return
    item.stash[RECORD_KEY] = ControlRecord(control)
    reason = skip_reason(run, item, control)
    if reason:
        pytest.skip(reason)
    wait_for_shared_accounts(run, item, control)


@pytest.hookimpl(trylast=True)
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    """Label the scenario's Allure result; a required feature the portal lacks fails it."""
    control = control_of(request.node)
    run = audit_of(request.config)
    if control is None or run is None:
        return
    description = label_scenario(run, control)
    record = request.node.stash.get(RECORD_KEY, None)
    if record is not None:
        record.description = description
        record.scenario = scenario.name
        record.location = f"{feature_file(feature)}:{scenario.line_number}"
    missing = not_offered_failure(run, control)
    if missing is not None:
        # A required behaviour the portal does not offer is a failure, decided before any step.
        if record is not None:
            record.measure("feature not offered (profile not_offered)")
        raise AssertionError(missing)


def feature_file(feature: Any) -> str:
    """The feature file as the suite lays it out: features/<area>/<name>.feature."""
    path = Path(feature.filename).resolve()
    root = suite_root()
    return str(path.relative_to(root)) if path.is_relative_to(root) else feature.rel_filename


def pytest_bdd_before_step(request: pytest.FixtureRequest, step: Any) -> None:
    """Remember the step being run, so a failure can say what was being done."""
    request.node.stash[STEP_KEY] = f"{step.keyword} {step.name}".strip()


def pytest_bdd_before_step_call(
    request: pytest.FixtureRequest, step_func_args: dict[str, object]
) -> None:
    """The step function's fixtures are the suite's own objects: the Allure writer leaves them
    out of the step's parameters (portal.allure_writer)."""
    active = set(request.fixturenames)
    note_step_fixtures(request.config, (name for name in step_func_args if name in active))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    run = audit_of(item.config)
    if run is None:
        return
    redact_report(report, run.redactor)
    control = control_of(item)
    if control is None or not is_decisive(report):
        return
    result = control_result(run, control, item, report, call)
    item.stash[OUTCOME_KEY] = result
    record = item.stash.get(RECORD_KEY, None)
    # For the JUnit report (portal.junit_report), which reads them from the teardown report.
    item.user_properties += [
        ("control", control.id),
        ("status", result.status),
        ("reason", result.reason),
        ("scenario", record.scenario if record else ""),
        ("location", record.location if record else ""),
    ]
    # Recorded from the report (ResultCollector), where a parallel run's controller sees it.
    attach_result(report, result)


def pytest_internalerror(excrepr: object, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """A crash of the audit inside pytest's machinery: the traceback also goes to a log file."""
    record_internal_error(str(excrepr))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    finish_run(session, exitstatus)


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def audit_run(request: pytest.FixtureRequest) -> AuditRun:
    run = audit_of(request.config)
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
    return Evidence(audit_run.redactor, audit_run.work_dir(request.node.name))


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
def slow_probes(audit_run: AuditRun) -> SlowProbes | ProbeMailbox:
    if audit_run.slow_probes is None:
        raise Inconclusive("no slow probe was started in this run")
    return audit_run.slow_probes


@pytest.fixture
def progress(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Print a progress line on the console (for long waits)."""
    return console(request.config)


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


@pytest.fixture(scope="session")
def preflight(browser: Browser, audit_run: AuditRun, driver: PortalDriver) -> Preflight:
    """Sign in and out once; every browser scenario relies on this having worked."""
    return run_preflight(browser, audit_run.profile, driver)


@pytest.fixture
def usable_portal(preflight: Preflight) -> Preflight:
    return require_usable(preflight)
