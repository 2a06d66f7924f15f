"""A compliance programme's second audit: warn rows, a waived failure, an expired waiver, the
changes since the first audit, Allure's history carried over, valid SARIF, JUnit by area."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from portal.report_writer import SARIF_FILE
from tests.audits import AuditResult, audit_env, derived_profile, run_audit
from tests.sarif_schema import sarif_errors
from tests.test_warn_outcome import ADVISORY_POLICY

CONTROLS = "hdr_hsts or tls_cert or sess_logout or hdr_misc"
WAIVERS = """waivers:
  - control: HDR_HSTS
    reason: HSTS comes with the new load balancer
    reference: RISK-7
    approver: Dana Whitfield, CISO
    expires: 2099-12-31
  - control: HDR_MISC
    reason: lapsed acceptance
    reference: RISK-3
    approver: Dana Whitfield, CISO
    expires: 2021-06-30
"""


def audit(
    base: Path, name: str, profile: Path, *args: str, weaken: tuple[str, ...] = ()
) -> AuditResult:
    folder = base / "work" / name
    folder.mkdir(parents=True)
    return run_audit(
        folder,
        profile=profile,
        markexpr=CONTROLS,
        weaken=weaken,
        html=True,
        env=audit_env(folder),
        extra_args=("--run-dir", str(base / "runs" / name), *args),
    )


def test_a_second_audit_reports_what_changed_and_what_is_accepted(tmp_path: Path) -> None:
    profile = derived_profile(tmp_path, ADVISORY_POLICY)
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(WAIVERS, encoding="utf-8")
    first = audit(tmp_path, "first", profile)
    assert first.status == 0, first.output[-3000:]
    second = audit(
        tmp_path,
        "second",
        profile,
        "--waivers",
        str(waivers),
        weaken=("logout_keeps_session", "hsts_missing"),
    )
    assert second.status == 1, second.output[-3000:]
    run_dir = tmp_path / "runs" / "second"
    summary = json.loads((run_dir / "summary.json").read_text())
    statuses = {c: r["status"] for c, r in summary["controls"].items() if r["status"] != "skipped"}
    assert statuses == {
        "SESS_LOGOUT": "failed",
        "HDR_HSTS": "waived",
        "HDR_MISC": "passed",
        "TLS_CERT": "warn",
    }
    matrix = (run_dir / "compliance-matrix.md").read_text()
    assert "| TLS_CERT | WARN |" in matrix and "| HDR_HSTS | WAIVED |" in matrix
    notes = {note["control"]: note["state"] for note in summary["waivers"]}
    assert notes == {"HDR_HSTS": "applied", "HDR_MISC": "expired"}
    assert "| HDR_MISC | any | EXPIRED |" in matrix

    changes = summary["changes"]
    assert changes["since"] == str(tmp_path / "runs" / "first")
    assert [c["control"] for c in changes["newly_failed"]] == ["SESS_LOGOUT"]
    assert changes["fixed"] == [] and changes["newly_inconclusive"] == []
    assert "## Changes since" in matrix and "newly failed: SESS_LOGOUT" in matrix
    assert "since the previous run: newly failed: SESS_LOGOUT" in second.output

    history = tmp_path / "runs" / "allure-history"
    (lines,) = [p.read_text().splitlines() for p in history.glob("*.jsonl")]
    assert len(lines) == 2
    first_run = json.loads(lines[0])
    report = (run_dir / "allure-report" / "index.html").read_text()
    assert first_run["uuid"] in report

    log = json.loads((run_dir / SARIF_FILE).read_text())
    assert sarif_errors(log) == []
    levels = {r["ruleId"]: r["level"] for r in log["runs"][0]["results"]}
    assert levels == {"SESS_LOGOUT": "error", "HDR_HSTS": "error", "TLS_CERT": "warning"}

    classnames = {
        str(case.get("name")).split(":")[0]: case.get("classname")
        for case in ElementTree.parse(run_dir / "junit.xml").iter("testcase")
    }
    assert classnames["SESS_LOGOUT"] == "session" and classnames["HDR_HSTS"] == "transport"
