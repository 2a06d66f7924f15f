"""Writing a run's reports: summary.json and the compliance matrix, then every artifact of the
run redacted; at the normal end of the run, or from the run stopper's watchdog when the deadline
or a signal ends it early (portal.run_stop)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from portal.catalogue import Catalogue, Control, load_catalogue
from portal.outcome import final_status
from portal.parallel import SECRETS_KEY, is_worker, workers_of
from portal.report_files import write_private
from portal.resources import tool_version
from portal.run import (
    PROCESS,
    AuditRun,
    ControlRecord,
    audit_of,
    unfinished_results,
    write_status,
)
from portal.sarif import audit_verdicts, sarif_log
from portal.summary import EXIT_STATUS, ControlResult, build_summary, write_reports
from portal.waivers import apply_waivers

# The run's SARIF 2.1.0 log, beside summary.json.
SARIF_FILE = "portal-audit.sarif"


def write_run_reports(
    session: pytest.Session,
    run: AuditRun,
    results: dict[str, ControlResult],
    extra: dict[str, Any],
) -> dict[str, Any]:
    """summary.json and the matrix (the waivers applied), then every artifact of the run
    redacted."""
    catalogue = load_catalogue()
    waived = apply_waivers(results, run.waivers, date.today())
    results = waived.results
    summary = build_summary(
        results,
        catalogue,
        fail_on_warn=run.fail_on_warn,
        profile=run.profile.name,
        target=run.profile.base_url,
        extra={
            "profile_file": str(run.profile_path),
            "started": run.started,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "target_provider": run.provider,
            # Processes the checks ran in at the same time (portal.parallel); 1: one by one.
            "workers": workers_of(session.config),
            "warnings": run.warnings,
            "waivers": waived.notes,
            **extra,
        },
    )
    write_reports(summary, catalogue, run.run_dir)
    write_sarif(results, catalogue, summary["target"], run.run_dir / SARIF_FILE)
    shutil.rmtree(run.run_dir / "work", ignore_errors=True)
    run.redactor.redact_tree(run.run_dir)
    alluredir = session.config.getoption("allure_report_dir", None)
    if alluredir and not Path(alluredir).resolve().is_relative_to(run.run_dir):
        run.redactor.redact_tree(Path(alluredir))
    return summary


def write_sarif(
    results: dict[str, ControlResult], catalogue: Catalogue, target: str, path: Path
) -> None:
    """The run's SARIF log: failed, warn and inconclusive controls at their scenarios."""
    ordered = [results[c.id] for c in catalogue.controls if c.id in results]
    log = sarif_log(audit_verdicts(ordered, target), catalogue, tool_version=tool_version())
    write_private(path, (json.dumps(log, indent=2) + "\n").encode("utf-8"))


def label_scenario(run: AuditRun, control: Control) -> str:
    """Label the scenario's Allure result with its control, area, threshold and standards;
    returns its description."""
    import allure

    threshold, note = run.threshold_for(control)
    allure.dynamic.epic(control.area)
    allure.dynamic.story(control.id)
    allure.dynamic.severity(allure.severity_level(control.criticality))
    allure.dynamic.label("control", control.id)
    catalogue = load_catalogue()
    links: dict[str, str] = {}
    for source in control.sources:
        allure.dynamic.label("standard", source)
        links.setdefault(catalogue.standard_of(source).url, source)
    # One link per standard cited, named by the first source that cites it.
    for url, source in links.items():
        allure.dynamic.link(url, name=f"{source} ({catalogue.standard_of(source).name})")
    applied = ", ".join(f"{k} = {v}" for k, v in threshold.items()) or "none"
    description = (
        f"**{control.id}**: {control.statement}\n\n"
        f"Threshold applied: {applied}{f' ({note})' if note else ''}\n\n"
        f"Sources: {'; '.join(control.sources) or 'none'}"
    )
    allure.dynamic.description(description)
    return description


def mark_warning(record: ControlRecord) -> None:
    """A passed scenario with advisories: Allure shows it passed, tagged ``warning``, with the
    advisories in its description (the report's status for the control is warn)."""
    import allure

    allure.dynamic.tag("warning")
    advisories = "\n".join(f"- {advisory}" for advisory in record.advisories)
    allure.dynamic.description(f"{record.description}\n\n**Warn (advisory)**:\n{advisories}")


def finish_run(session: pytest.Session, exitstatus: int) -> None:
    """At the end of the session: stop the run, write its reports and set the exit status."""
    run = audit_of(session.config)
    if is_worker(session.config):
        # A parallel run's worker: the controller writes the reports; it needs the secrets
        # this worker learned (the cookies it saw) to redact them.
        if run is not None:
            run.stop()
            output = session.config.workeroutput  # type: ignore[attr-defined]
            output[SECRETS_KEY] = run.redactor.secrets()
        return
    if run is None:
        if PROCESS.crashed or PROCESS.usage_problem or exitstatus == pytest.ExitCode.INTERNAL_ERROR:
            session.exitstatus = final_status(exitstatus, None)
            write_status(session.exitstatus)
        return
    if run.stopper is not None and not run.stopper.disarm():
        # The run deadline or a signal came first: its watchdog writes the reports and ends
        # the process; nothing may write after it.
        threading.Event().wait()
    run.stop()
    summary = write_run_reports(session, run, run.results, {})
    session.exitstatus = final_status(exitstatus, run, summary["verdict"])
    write_status(session.exitstatus)
    tr = session.config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        for note in summary["waivers"]:
            if note["state"] != "applied":
                tr.write_line(
                    f"portal-audit: waiver of {note['control']} {note['state']}: "
                    f"{note['detail']} ({note['reference']})"
                )
        tr.write_line(f"portal-audit: {summary['verdict']}; summary in {run.run_dir}")


def stop_run(session: pytest.Session, reason: str) -> int:
    """Called by the run stopper's thread: write the reports of a run stopped early."""
    run = audit_of(session.config)
    assert run is not None
    results = unfinished_results(run, reason)
    summary: dict[str, Any] = {}
    try:
        stop_workers(run.worker_pids)
        run.stop()
    finally:
        summary = write_run_reports(session, run, results, {"stopped": reason})
    status = EXIT_STATUS[summary["verdict"]]
    write_status(status)
    unfinished = sum(1 for r in results.values() if r.reason.startswith(reason))
    sys.stderr.write(
        f"portal-audit: {reason}; {unfinished} unfinished control(s) inconclusive; "
        f"summary in {run.run_dir}\n"
    )
    return status


def stop_workers(pids: list[int]) -> None:
    """A parallel run stopped early: its workers (and their browsers) end with it."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
