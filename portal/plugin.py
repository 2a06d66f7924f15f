"""The pytest plugin that turns scenario runs into an audit: its hooks and fixtures only.

The run itself is portal.run (profile, target, order, skips), a scenario's outcome as its
control's status portal.outcome, the reports portal.report_writer, browser contexts
portal.contexts and the preflight portal.preflight. Installed, pytest loads this module through
the ``pytest11`` entry point ``portal.plugin``; in a checkout without install the root
conftest.py loads it under that same name, so it is never registered twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

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
from portal.preflight import Preflight, require_usable, run_preflight
from portal.profile import Profile
from portal.report_writer import finish_run, label_scenario, stop_run
from portal.run import (
    DEFAULT_PROFILE,
    EXIT_INTERNAL_ERROR,
    RECORD_KEY,
    AuditRun,
    ControlRecord,
    audit_of,
    begin_run,
    configure_run,
    console,
    control_of,
    not_offered_failure,
    record_crash,
    record_internal_error,
    run_order,
    skip_reason,
    wait_for_shared_accounts,
)
from portal.targets import TargetHooks


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
        "--audit-dir",
        default=None,
        help="run directory for summary.json, matrix and evidence (default reports/runs/<time>)",
    )


def pytest_configure(config: pytest.Config) -> None:
    configure_run(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=run_order)


def pytest_collection_finish(session: pytest.Session) -> None:
    try:
        begin_run(session, lambda reason: stop_run(session, reason))
    except (pytest.exit.Exception, KeyboardInterrupt):
        raise
    except Exception:  # noqa: BLE001 - the audit's own crash: status 4, traceback to a log
        pytest.exit(record_crash(), returncode=EXIT_INTERNAL_ERROR)


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
def pytest_bdd_before_scenario(request: pytest.FixtureRequest) -> None:
    """Label the scenario's Allure result; a required feature the portal lacks fails it."""
    control = control_of(request.node)
    run = audit_of(request.config)
    if control is None or run is None:
        return
    label_scenario(run, control)
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
    run.record(result)
    run.finished.add(item.nodeid)


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
def slow_probes(audit_run: AuditRun) -> SlowProbes:
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
