"""warn: a control that passed with an advisory the policy names, in every report; exit status 0
unless --fail-on warn."""

from __future__ import annotations

from pathlib import Path

from portal.summary import ControlResult, verdict
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
    assert Evaluation("passed", "ok", findings=(advisory,)).reported == "warn"
    assert Evaluation("passed", "ok").reported == "passed"
    failing = Finding("hsts.missing", "no header")
    assert Evaluation("failed", "x", findings=(failing, advisory)).reported == "failed"
    assert verdict({"A": result("warn"), "B": result("passed")}) == "compliant"
    assert verdict({"A": result("warn")}, fail_on_warn=True) == "noncompliant"
    assert verdict({"A": result("warn"), "B": result("inconclusive")}) == "inconclusive"
    merged = result("passed").merge(result("warn", ("a",)))
    assert merged.status == "warn" and merged.advisories == ["a"]
    assert result("warn").merge(result("failed")).status == "failed"


def test_fail_on_warn_makes_an_advisory_fail_the_run(tmp_path: Path) -> None:
    """The warn rows of an ordinary run are checked in tests/test_compliance_programme.py."""
    profile = derived_profile(tmp_path, ADVISORY_POLICY)
    strict = run_audit(
        tmp_path, profile=profile, markexpr="hdr_hsts", extra_args=("--fail-on", "warn")
    )
    assert strict.status == 1, strict.output[-3000:]
    assert strict.summary is not None and strict.summary["verdict"] == "noncompliant"
    assert strict.statuses()["HDR_HSTS"] == "warn"
