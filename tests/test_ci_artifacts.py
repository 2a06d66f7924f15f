"""What an audit leaves for CI: junit.xml with one case per scenario (classname the control's
area, name the control ID and scenario, a failure's message the audit's reason, inconclusive an
error) and a SARIF 2.1.0 log with a result per failed control at its scenario's line."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from portal.catalogue import load_catalogue
from portal.junit_report import rewrite_junit
from portal.report_writer import SARIF_FILE
from tests.audits import run_audit
from tests.sarif_schema import sarif_errors


def cases(path: Path) -> dict[str, ElementTree.Element]:
    return {str(case.get("name")): case for case in ElementTree.parse(path).iter("testcase")}


def test_an_audit_s_junit_and_sarif_name_each_control(tmp_path: Path) -> None:
    run = run_audit(tmp_path, weaken=("hsts_missing",), markexpr="hdr_hsts or sess_logout")
    assert run.status == 1, run.output[-3000:]
    found = cases(run.run_dir / "junit.xml")
    hsts = next(case for name, case in found.items() if name.startswith("HDR_HSTS: "))
    logout = next(case for name, case in found.items() if name.startswith("SESS_LOGOUT: "))
    assert hsts.get("classname") == "transport" and logout.get("classname") == "session"
    failure = hsts.find("failure")
    assert failure is not None and failure.get("message") == run.control("HDR_HSTS")["reason"]
    assert logout.find("failure") is None and logout.find("error") is None
    assert str(hsts.get("file")).startswith("features/transport/")
    suite = ElementTree.parse(run.run_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1" and suite.get("errors") == "0"

    log = json.loads((run.run_dir / SARIF_FILE).read_text())
    assert sarif_errors(log) == []
    sarif_run = log["runs"][0]
    rules = [rule["id"] for rule in sarif_run["tool"]["driver"]["rules"]]
    assert {"HDR_HSTS", "SESS_LOGOUT"} <= set(rules)
    (result,) = sarif_run["results"]
    assert (result["ruleId"], result["level"], result["kind"]) == ("HDR_HSTS", "error", "fail")
    assert result["message"]["text"] == run.control("HDR_HSTS")["reason"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == hsts.get("file")
    assert location["region"]["startLine"] == int(str(hsts.get("line")))
    allure = [
        json.loads(path.read_text())
        for path in (run.run_dir / "allure-results").glob("*-result.json")
    ]
    hsts_result = next(r for r in allure if {"name": "story", "value": "HDR_HSTS"} in r["labels"])
    assert {"name": "severity", "value": "normal"} in hsts_result["labels"]
    links = {link["url"]: link["name"] for link in hsts_result["links"]}
    assert links["https://github.com/OWASP/ASVS/tree/v4.0.3/4.0/en"] == (
        "A4 V14.4.5 (OWASP ASVS 4.0.3)"
    )
    assert "https://wiki.mozilla.org/Security/Server_Side_TLS" in links
    feature = (Path(__file__).resolve().parent.parent / str(hsts.get("file"))).read_text()
    scenario_line = feature.splitlines()[location["region"]["startLine"] - 1]
    assert "Scenario" in scenario_line


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
