"""A scenario's pytest outcome as its control's status: passed, failed (an assertion of a
requirement), inconclusive (anything that kept the check from deciding) or skipped; and the
audit's exit status from pytest's: 0-2 a verdict, 3 bad profile or usage, 4 an internal error.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError

from portal.browser_errors import PageWatch, describe_browser_error
from portal.catalogue import Control
from portal.evidence import Redactor
from portal.run import EXIT_BAD_PROFILE, EXIT_INTERNAL_ERROR, PROCESS, RECORD_KEY, AuditRun
from portal.summary import EXIT_STATUS, ControlResult, verdict

OUTCOME_KEY = pytest.StashKey[ControlResult]()
STEP_KEY = pytest.StashKey[str]()
PAGES_KEY = pytest.StashKey[PageWatch]()


def redact_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """What pytest shows and keeps of a report (traceback, captured output), redacted."""
    if report.longrepr is not None and not isinstance(report.longrepr, tuple):
        report.longrepr = redactor.redact_text(str(report.longrepr))
    report.sections = [(k, redactor.redact_text(v)) for k, v in report.sections]


def is_decisive(report: pytest.TestReport) -> bool:
    """The report that decides a scenario: its call, or a setup that did not pass."""
    return report.when == "call" or (report.when == "setup" and not report.passed)


def status_of(
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
            record = item.stash.get(RECORD_KEY, None)
            return "failed", (record.failure if record else "") or message
    return "inconclusive", f"could not be evaluated: {message}"


def control_result(
    run: AuditRun,
    control: Control,
    item: pytest.Item,
    report: pytest.TestReport,
    call: pytest.CallInfo[None],
) -> ControlResult:
    """The control's result from this scenario's decisive report, redacted."""
    status, reason = status_of(item, report, call)
    record = item.stash.get(RECORD_KEY, None)
    advisories = list(record.advisories) if record and status == "passed" else []
    if status == "passed":
        reason = (record.reason if record else "") or "requirement met"
        if advisories:
            status = "warn"
            more = f" (and {len(advisories) - 1} more)" if len(advisories) > 1 else ""
            reason = f"{reason}; advisory: {advisories[0]}{more}"
    threshold, note = run.threshold_for(control)
    return ControlResult(
        control_id=control.id,
        status=status,  # type: ignore[arg-type]
        reason=run.redactor.redact_text(reason),
        threshold=threshold,
        threshold_note=note,
        measured=run.redactor.redact_text("; ".join(record.measured)) if record else "",
        scenarios=[item.name],
        advisories=[run.redactor.redact_text(advisory) for advisory in advisories],
        locations=[record.location] if record and record.location else [],
        findings=list(record.failing_keys) if record and status == "failed" else [],
    )


def final_status(exitstatus: int, run: AuditRun | None, decided: str | None = None) -> int:
    """The audit's exit status from pytest's: 0-2 a verdict (``decided``, the reports' verdict
    with waivers applied, when they were written), 3 bad profile or usage, 4 an internal error
    of the audit."""
    usage = (pytest.ExitCode.USAGE_ERROR, pytest.ExitCode.NO_TESTS_COLLECTED)
    if PROCESS.crashed:
        return EXIT_INTERNAL_ERROR
    if PROCESS.usage_problem or exitstatus in usage:
        return EXIT_BAD_PROFILE
    if exitstatus == pytest.ExitCode.INTERNAL_ERROR:
        return EXIT_INTERNAL_ERROR
    if decided is not None:
        return EXIT_STATUS[decided]
    if run is not None and run.results:
        return EXIT_STATUS[verdict(run.results, fail_on_warn=run.fail_on_warn)]
    return EXIT_STATUS["inconclusive"]
