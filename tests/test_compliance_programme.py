"""A compliance programme's second audit, end to end: warn rows, a waived failure, an expired
and a stale waiver, the changes since the first audit, Allure's history carried over, JUnit by
area, a valid SARIF log at the scenarios' lines, Allure severities and links, and an evidence
pack that proves the run unaltered. Two audits of the reference portal serve every check, so
the project's tests stay quick."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path
from typing import Any

import pytest

from portal.evidence_pack import MANIFEST, PACK_NAME
from portal.report_writer import SARIF_FILE
from tests.audits import AuditResult, audit_env, derived_profile, leaked_secrets, run_audit
from tests.sarif_schema import sarif_errors
from tests.test_warn_outcome import ADVISORY_POLICY

ROOT = Path(__file__).resolve().parent.parent
CONTROLS = "hdr_hsts or tls_cert or sess_logout or hdr_misc"
WAIVERS = """waivers:
  - control: HDR_HSTS
    finding: hsts.missing
    reason: HSTS comes with the new load balancer
    reference: RISK-7
    approver: Dana Whitfield, CISO
    expires: 2099-12-31
  - control: HDR_MISC
    reason: lapsed acceptance
    reference: RISK-3
    approver: Dana Whitfield, CISO
    expires: 2021-06-30
  - control: TLS_CERT
    reason: the old certificate problem
    reference: RISK-1
    approver: Dana Whitfield, CISO
    expires: 2099-12-31
"""


class Run:
    def __init__(self, base: Path, name: str, result: AuditResult) -> None:
        self.result = result
        self.work = base / "work" / name
        self.dir = base / "runs" / name
        self.summary: dict[str, Any] = json.loads((self.dir / "summary.json").read_text())
        self.output = result.output

    def status(self, control: str) -> str:
        return str(self.summary["controls"][control]["status"])

    def reason(self, control: str) -> str:
        return str(self.summary["controls"][control]["reason"])


def audit(base: Path, name: str, profile: Path, *args: str, weaken: tuple[str, ...] = ()) -> Run:
    folder = base / "work" / name
    folder.mkdir(parents=True)
    result = run_audit(
        folder,
        profile=profile,
        markexpr=CONTROLS,
        weaken=weaken,
        html=True,
        env=audit_env(folder),
        extra_args=("--run-dir", str(base / "runs" / name), *args),
    )
    return Run(base, name, result)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Run, Run]:
    base = tmp_path_factory.mktemp("programme")
    profile = derived_profile(base, ADVISORY_POLICY)
    waivers = base / "waivers.yaml"
    waivers.write_text(WAIVERS, encoding="utf-8")
    first = audit(base, "first", profile)
    second = audit(
        base,
        "second",
        profile,
        "--waivers",
        str(waivers),
        "--evidence-pack",
        weaken=("logout_keeps_session", "hsts_missing"),
    )
    return first, second


def test_warn_waived_and_expired_rows(runs: tuple[Run, Run]) -> None:
    first, second = runs
    assert first.result.status == 0, first.output[-3000:]
    assert first.status("TLS_CERT") == "warn" and first.status("HDR_HSTS") == "warn"
    assert second.result.status == 1, second.output[-3000:]
    statuses = {c: r["status"] for c, r in second.summary["controls"].items()}
    assert {c: s for c, s in statuses.items() if s != "skipped"} == {
        "SESS_LOGOUT": "failed",
        "HDR_HSTS": "waived",
        "HDR_MISC": "passed",
        "TLS_CERT": "warn",
    }
    assert "RISK-7" in second.reason("HDR_HSTS")
    assert second.summary["counts"]["waived"] == 1 and second.summary["counts"]["warn"] == 1
    matrix = (second.dir / "compliance-matrix.md").read_text()
    assert "| TLS_CERT | WARN |" in matrix and "| HDR_HSTS | WAIVED |" in matrix
    notes = {note["control"]: note["state"] for note in second.summary["waivers"]}
    assert notes == {"HDR_HSTS": "applied", "HDR_MISC": "expired", "TLS_CERT": "stale"}
    assert "| HDR_MISC | any | EXPIRED |" in matrix and "| TLS_CERT | any | STALE |" in matrix
    assert "waiver of HDR_MISC expired" in second.output
    assert "waiver of TLS_CERT stale" in second.output


def test_the_changes_since_the_first_audit_and_allure_s_history(runs: tuple[Run, Run]) -> None:
    first, second = runs
    changes = second.summary["changes"]
    assert changes["since"] == str(first.dir)
    assert [c["control"] for c in changes["newly_failed"]] == ["SESS_LOGOUT"]
    assert changes["fixed"] == [] and changes["newly_inconclusive"] == []
    matrix = (second.dir / "compliance-matrix.md").read_text()
    assert "## Changes since" in matrix and "newly failed: SESS_LOGOUT" in matrix
    assert "since the previous run: newly failed: SESS_LOGOUT" in second.output
    (lines,) = [
        p.read_text().splitlines() for p in (second.dir.parent / "allure-history").glob("*")
    ]
    assert len(lines) == 2
    report = (second.dir / "allure-report" / "index.html").read_text()
    assert json.loads(lines[0])["uuid"] in report


def test_junit_sarif_and_allure_name_each_control(runs: tuple[Run, Run]) -> None:
    _, second = runs
    cases = {
        str(case.get("name")).split(":")[0]: case
        for case in ElementTree.parse(second.dir / "junit.xml").iter("testcase")
    }
    logout, hsts = cases["SESS_LOGOUT"], cases["HDR_HSTS"]
    assert logout.get("classname") == "session" and hsts.get("classname") == "transport"
    failure = logout.find("failure")
    assert failure is not None and failure.get("message") == second.reason("SESS_LOGOUT")
    skipped = hsts.find("skipped")
    assert skipped is not None and "RISK-7" in str(skipped.get("message"))
    suite = ElementTree.parse(second.dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("failures"), suite.get("errors")) == ("1", "0")

    log = json.loads((second.dir / SARIF_FILE).read_text())
    assert sarif_errors(log) == []
    results = {r["ruleId"]: r for r in log["runs"][0]["results"]}
    assert {rule: r["level"] for rule, r in results.items()} == {
        "SESS_LOGOUT": "error",
        "HDR_HSTS": "error",
        "TLS_CERT": "warning",
    }
    assert results["HDR_HSTS"]["suppressions"][0]["status"] == "accepted"
    assert "suppressions" not in results["SESS_LOGOUT"]
    assert results["SESS_LOGOUT"]["message"]["text"] == second.reason("SESS_LOGOUT")
    location = results["SESS_LOGOUT"]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == logout.get("file")
    assert location["region"]["startLine"] == int(str(logout.get("line")))
    feature = (ROOT / str(logout.get("file"))).read_text().splitlines()
    assert "Scenario" in feature[location["region"]["startLine"] - 1]

    allure = {
        next(label["value"] for label in r["labels"] if label["name"] == "story"): r
        for r in (
            json.loads(path.read_text())
            for path in (second.dir / "allure-results").glob("*-result.json")
        )
    }
    assert {"name": "severity", "value": "critical"} in allure["SESS_LOGOUT"]["labels"]
    links = {link["url"]: link["name"] for link in allure["SESS_LOGOUT"]["links"]}
    assert links["https://github.com/OWASP/ASVS/tree/v4.0.3/4.0/en"].startswith("A4 V3.3.1 ")
    certificate = allure["TLS_CERT"]
    assert certificate["status"] == "passed"
    assert {"name": "tag", "value": "warning"} in certificate["labels"]
    assert "**Warn (advisory)**" in certificate["description"]
    # The suite's steps state no arguments, and their fixtures (profile, driver, evidence) are
    # not step parameters: no object dump in any step of the report.
    assert [p for r in allure.values() for p in _step_parameters(r.get("steps", []))] == []


def _step_parameters(steps: list[dict[str, Any]]) -> list[Any]:
    found: list[Any] = []
    for step in steps:
        found += step.get("parameters", [])
        found += _step_parameters(step.get("steps", []))
    return found


def verify(pack: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", "verify-pack", str(pack)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_evidence_pack_holds_the_run_and_proves_it_unaltered(
    runs: tuple[Run, Run], tmp_path: Path
) -> None:
    _, second = runs
    pack = second.dir / PACK_NAME
    with zipfile.ZipFile(pack) as archive:
        manifest_bytes = archive.read(MANIFEST)
        manifest = json.loads(manifest_bytes)
        names = set(archive.namelist())
        for entry in manifest["files"]:
            assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]
            on_disk = (second.dir / entry["path"]).read_bytes()
            assert hashlib.sha256(on_disk).hexdigest() == entry["sha256"], entry["path"]
        contents = {name: archive.read(name) for name in names}
    assert {"summary.json", "compliance-matrix.md", "junit.xml", SARIF_FILE} <= names
    assert {"exit-status", "allure-report/index.html"} <= names
    assert manifest["profile"] == "Bundled reference patient portal"
    assert manifest["catalogue_version"] == 1 and manifest["verdict"] == "noncompliant"
    assert f"manifest SHA-256 {hashlib.sha256(manifest_bytes).hexdigest()}" in second.output
    issued = (second.work / "issued-tokens.txt").read_text().splitlines()
    checked, leaks = leaked_secrets(second.dir, second.result.secrets + [s for s in issued if s])
    assert checked > 0 and not leaks, leaks

    intact = verify(pack)
    assert intact.returncode == 0 and "unaltered" in intact.stdout, intact.stdout
    summary = json.loads(contents["summary.json"])
    summary["verdict"] = "compliant"
    contents["summary.json"] = json.dumps(summary).encode()
    del contents["junit.xml"]
    contents["extra.txt"] = b"added later"
    changed = tmp_path / "changed.zip"
    with zipfile.ZipFile(changed, "w") as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    altered = verify(changed)
    assert altered.returncode == 1, altered.stdout
    assert "summary.json: changed" in altered.stdout
    assert "junit.xml: missing" in altered.stdout and "extra.txt: added" in altered.stdout
    not_a_pack = tmp_path / "plain.zip"
    with zipfile.ZipFile(not_a_pack, "w") as archive:
        archive.writestr("x.txt", b"x")
    assert verify(not_a_pack).returncode == 3
    assert verify(tmp_path / "missing.zip").returncode == 3
