"""The output files of ``portal-audit scan``: JUnit XML, SARIF and the audit's run folder.

Each is written only when its option is given, so a scan without them never imports the
report writers (``portal.sarif``, ``portal.summary``).
"""

from __future__ import annotations

import datetime
import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from portal.catalogue import load_catalogue
from portal.resources import tool_version
from portal.sarif import Judged, sarif_log
from portal.scan import TargetVerdicts
from portal.summary import ControlResult, build_summary, write_reports
from scanners.tls_scan import TlsTarget


def junit_xml(results: Sequence[TargetVerdicts]) -> bytes:
    """JUnit XML: one test suite per target, one test case per control (classname: the
    target, name: the control ID); failed is a failure, inconclusive an error, skipped skipped."""
    suites = ElementTree.Element("testsuites", name="portal-audit scan")
    for result in results:
        evaluations = result.evaluations.values()
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=str(result.target),
            tests=str(len(result.evaluations)),
            failures=str(sum(e.status == "failed" for e in evaluations)),
            errors=str(sum(e.status == "inconclusive" for e in evaluations)),
            skipped=str(sum(e.status == "skipped" for e in evaluations)),
        )
        for control_id, evaluation in result.evaluations.items():
            case = ElementTree.SubElement(
                suite, "testcase", classname=str(result.target), name=control_id
            )
            outcome = {"failed": "failure", "inconclusive": "error", "skipped": "skipped"}
            if evaluation.status in outcome:
                element = ElementTree.SubElement(
                    case, outcome[evaluation.status], message=evaluation.one_line()
                )
                element.text = "\n".join(str(finding) for finding in evaluation.findings)
            # JUnit has no warn: the case passes and its output names the advisories.
            advisories = [f"warn: {finding}" for finding in evaluation.warnings]
            if evaluation.measured or advisories:
                output = "\n".join([evaluation.measured, *advisories]).strip()
                ElementTree.SubElement(case, "system-out").text = output
    return ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True)


def sarif_document(results: Sequence[TargetVerdicts]) -> dict[str, Any]:
    """The SARIF log: a result per failed, inconclusive or advisory control of each target,
    located at the target's URL."""
    verdicts = [
        Judged(
            control_id=control_id,
            status=evaluation.reported,
            reason=evaluation.one_line(),
            uri=result.url,
            advisories=tuple(str(finding) for finding in evaluation.warnings),
            measured=evaluation.measured,
        )
        for result in results
        for control_id, evaluation in result.evaluations.items()
    ]
    return sarif_log(verdicts, load_catalogue(), tool_version=tool_version())


def target_dir_name(target: TlsTarget) -> str:
    name = f"{target.name_to_verify}_{target.port}"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def write_run_dir(
    results: Sequence[TargetVerdicts],
    applied: Mapping[str, Any],
    overridden: set[str],
    run_dir: Path,
) -> None:
    """The audit's summary.json and compliance matrix (CSV, Markdown), one directory per target."""
    catalogue = load_catalogue()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    for result in results:
        controls: dict[str, ControlResult] = {}
        for control_id, evaluation in result.evaluations.items():
            control = catalogue.get(control_id)
            names = list(control.threshold)
            note = "; ".join(
                f"{name} set by --policy" if name in overridden else f"{name}: catalogue default"
                for name in names
            )
            controls[control_id] = ControlResult(
                control_id=control_id,
                status=evaluation.reported,
                reason=evaluation.one_line(),
                advisories=[str(finding) for finding in evaluation.warnings],
                threshold={name: applied[name] for name in names},
                threshold_note=note,
                measured=evaluation.measured,
            )
        summary = build_summary(
            controls,
            catalogue,
            profile=f"portal-audit scan of {result.target}",
            target=f"https://{result.target.host}:{result.target.port}/",
            extra={
                "started": started,
                "scan": {"status": result.scan.status, "reason": result.scan.reason},
            },
        )
        write_reports(summary, catalogue, run_dir / target_dir_name(result.target))
