"""junit.xml's rewrite: one case per scenario (classname the control's area, name the control ID
and scenario, a failure's message the audit's reason, inconclusive an error). A real audit's
junit.xml and SARIF log are checked in tests/test_compliance_programme.py."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from pathlib import Path

from portal.catalogue import load_catalogue
from portal.junit_report import rewrite_junit


def cases(path: Path) -> dict[str, ElementTree.Element]:
    return {str(case.get("name")): case for case in ElementTree.parse(path).iter("testcase")}


def test_inconclusive_is_an_error_and_cases_without_a_control_are_left_alone(
    tmp_path: Path,
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" '
        'errors="0" failures="2" skipped="0" tests="3">'
        '<testcase classname="steps.test_audit" name="test_a" time="1">'
        '<properties><property name="control" value="SESS_IDLE"/>'
        '<property name="status" value="inconclusive"/>'
        '<property name="reason" value="could not click #sign-in within 20 s"/>'
        '<property name="scenario" value="An idle session ends"/>'
        '<property name="location" value="features/session/idle.feature:7"/></properties>'
        '<failure message="Inconclusive: ...">traceback</failure></testcase>'
        '<testcase classname="steps.test_audit" name="test_b" time="1">'
        '<properties><property name="control" value="SESS_COOKIE"/>'
        '<property name="status" value="warn"/><property name="reason" value="ok"/>'
        "</properties></testcase>"
        '<testcase classname="tests.other" name="test_c" time="1">'
        '<failure message="boom">x</failure></testcase>'
        "</testsuite></testsuites>",
        encoding="utf-8",
    )
    rewrite_junit(junit, load_catalogue())
    found = cases(junit)
    idle = found["SESS_IDLE: An idle session ends"]
    assert idle.get("classname") == "session" and idle.get("line") == "7"
    assert idle.find("failure") is None
    error = idle.find("error")
    assert error is not None and error.get("message") == "could not click #sign-in within 20 s"
    assert error.text == "traceback"
    assert found["SESS_COOKIE: test_b"].find("failure") is None
    assert found["test_c"].get("classname") == "tests.other"
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("failures"), suite.get("errors"), suite.get("tests")) == ("1", "1", "3")
