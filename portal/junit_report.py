"""The audit's junit.xml for CI test views: one test case per scenario, named by its control.

pytest writes junit.xml with every case named after the collected test function
(``steps.test_audit``); the plugin leaves each case the control's ID, status, reason, scenario
name and location as properties, and this rewrites the file after the run:

- ``classname`` is the control's area (session, authentication, ...), ``name`` is
  "CONTROL_ID: scenario name";
- a failed control is a ``failure`` whose message is the audit's one-line reason, an
  inconclusive one an ``error`` (it was not judged), a skipped one stays skipped; warn passes,
  with its status among the properties; a failure a waiver accepts (summary.json says
  ``waived``) is skipped, its message the waiver;
- each test suite's counts follow.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from portal.catalogue import Catalogue
from portal.report_files import write_private


def rewrite_junit(
    path: Path, catalogue: Catalogue, reported: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    """``reported``: summary.json's controls, whose waived statuses the cases follow."""
    tree = ElementTree.parse(path)
    for suite in tree.iter("testsuite"):
        for case in suite.iter("testcase"):
            _rewrite_case(case, catalogue, reported or {})
        cases = list(suite.iter("testcase"))
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(case.find("failure") is not None for case in cases)))
        suite.set("errors", str(sum(case.find("error") is not None for case in cases)))
        suite.set("skipped", str(sum(case.find("skipped") is not None for case in cases)))
    write_private(
        path, ElementTree.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True)
    )


def _rewrite_case(
    case: ElementTree.Element, catalogue: Catalogue, reported: Mapping[str, Mapping[str, Any]]
) -> None:
    properties = {
        str(p.get("name")): str(p.get("value", "")) for p in case.iterfind("properties/property")
    }
    control_id = properties.get("control")
    if not control_id:
        return
    try:
        control = catalogue.get(control_id)
    except KeyError:
        return
    case.set("classname", control.area)
    case.set("name", f"{control_id}: {properties.get('scenario') or case.get('name', '')}")
    if properties.get("location"):
        file, _, line = properties["location"].rpartition(":")
        case.set("file", file)
        case.set("line", line)
    status, reason = properties.get("status", ""), properties.get("reason", "")
    waived = reported.get(control_id, {})
    if status == "failed" and waived.get("status") == "waived":
        status, reason = "waived", str(waived.get("reason", ""))
    outcome = {"failed": "failure", "inconclusive": "error", "waived": "skipped"}.get(status)
    if outcome is None:
        return
    details = "\n".join(
        child.text or "" for child in case if child.tag in ("failure", "error")
    ).strip()
    for child in [c for c in case if c.tag in ("failure", "error")]:
        case.remove(child)
    kind = {"failed": "noncompliant"}.get(status, status)
    element = ElementTree.SubElement(case, outcome, message=reason, type=kind)
    element.text = details or reason
