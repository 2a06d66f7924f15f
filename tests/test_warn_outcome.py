"""warn: a control that passed with an advisory the policy names, in every report; exit status 0
unless --fail-on warn."""

from __future__ import annotations

import json
from pathlib import Path

from portal.summary import ControlResult, reported_status, verdict
from scanners.result import Evaluation, Finding
from tests.audits import derived_profile, run_audit

# The reference portal sends HSTS for two years and a 90-day certificate: a three-year HSTS
# recommendation and a 365-day expiry warning make both advisories.
ADVISORY_POLICY = {
    "policy.recommended_max_age_seconds": 94608000,
    "policy.expiry_warning_days": 365,
}


def result(status: str, advisories: tuple[str, ...] = ()) -> ControlResult:
    return ControlResult("X", status, "", advisories=list(advisories))  # type: ignore[arg-type]


def test_warn_is_passed_with_an_advisory_and_counts_as_compliant() -> None:
    advisory = Finding("hsts.max_age_below_recommended", "below two years", severity="warn")
    assert reported_status(Evaluation("passed", "ok", findings=(advisory,))) == "warn"
    assert reported_status(Evaluation("passed", "ok")) == "passed"
    failing = Finding("hsts.missing", "no header")
    assert reported_status(Evaluation("failed", "x", findings=(failing, advisory))) == "failed"
    assert verdict({"A": result("warn"), "B": result("passed")}) == "compliant"
    assert verdict({"A": result("warn")}, fail_on_warn=True) == "noncompliant"
    assert verdict({"A": result("warn"), "B": result("inconclusive")}) == "inconclusive"
    merged = result("passed").merge(result("warn", ("a",)))
    assert merged.status == "warn" and merged.advisories == ["a"]
    assert result("warn").merge(result("failed")).status == "failed"


def test_an_audit_reports_warn_rows_and_fails_on_warn_only_when_asked(tmp_path: Path) -> None:
    profile = derived_profile(tmp_path, ADVISORY_POLICY)
    for name in ("default", "strict"):
        (tmp_path / name).mkdir()
    run = run_audit(tmp_path / "default", profile=profile, markexpr="hdr_hsts or tls_cert")
    assert run.status == 0, run.output[-3000:]
    assert run.summary is not None
    assert run.summary["verdict"] == "compliant"
    assert {c: s for c, s in run.statuses().items() if s != "skipped"} == {
        "HDR_HSTS": "warn",
        "TLS_CERT": "warn",
    }
    assert run.summary["counts"]["warn"] == 2
    hsts = run.control("HDR_HSTS")
    assert {a.split(":")[0] for a in hsts["advisories"]} == {"hsts.max_age_below_recommended"}
    assert "advisory: hsts.max_age_below_recommended" in hsts["reason"]
    matrix = (run.run_dir / "compliance-matrix.md").read_text()
    assert "| HDR_HSTS | WARN |" in matrix and "| TLS_CERT | WARN |" in matrix
    results = [
        json.loads(path.read_text())
        for path in (run.run_dir / "allure-results").glob("*-result.json")
    ]
    warned = [r for r in results if {"name": "tag", "value": "warning"} in r["labels"]]
    assert len(warned) == 2 and all(r["status"] == "passed" for r in warned)
    assert all("**Warn (advisory)**" in r["description"] for r in warned)

    strict = run_audit(
        tmp_path / "strict",
        profile=profile,
        markexpr="hdr_hsts",
        extra_args=("--fail-on", "warn"),
    )
    assert strict.status == 1, strict.output[-3000:]
    assert strict.summary is not None and strict.summary["verdict"] == "noncompliant"
