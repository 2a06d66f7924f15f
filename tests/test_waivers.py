"""Waivers: a failure accepted until a date is reported as waived (compliant), an expired
waiver is ignored and said so, a waiver of a passing control is stale, a bad file exits 3.
A real audit with waivers is checked in tests/test_compliance_programme.py."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from portal.profile_file import ProfileError
from portal.summary import ControlResult, verdict
from portal.waivers import Waiver, apply_waivers, load_waivers
from tests.audits import run_audit

TODAY = datetime.date(2026, 12, 1)


def waiver(control: str, finding: str | None = None, expires: str = "2027-01-31") -> Waiver:
    return Waiver(
        control=control,
        finding=finding,
        reason="vendor fix in release 4.2",
        reference="SEC-1234",
        approver="J. Smith, CISO",
        expires=datetime.date.fromisoformat(expires),
    )


def failed(control: str, *keys: str) -> ControlResult:
    return ControlResult(control, "failed", "it failed", findings=list(keys))


def test_a_waiver_accepts_a_failure_until_it_expires() -> None:
    results = {"HDR_CSP": failed("HDR_CSP", "csp.missing"), "HDR_MISC": failed("HDR_MISC", "x")}
    waived = apply_waivers(
        results, [waiver("HDR_CSP"), waiver("HDR_MISC", expires="2026-11-30")], TODAY
    )
    assert waived.results["HDR_CSP"].status == "waived"
    assert "SEC-1234" in waived.results["HDR_CSP"].reason
    assert "failure: it failed" in waived.results["HDR_CSP"].reason
    assert waived.results["HDR_MISC"].status == "failed"
    states = {note["control"]: note["state"] for note in waived.notes}
    assert states == {"HDR_CSP": "applied", "HDR_MISC": "expired"}
    assert verdict(waived.results) == "noncompliant"
    assert verdict({"HDR_CSP": waived.results["HDR_CSP"]}) == "compliant"
    # The expiry date itself still counts.
    last_day = apply_waivers(results, [waiver("HDR_CSP", expires="2026-12-01")], TODAY)
    assert last_day.results["HDR_CSP"].status == "waived"


def test_a_finding_waiver_covers_only_that_finding_and_passing_controls_make_it_stale() -> None:
    results = {
        "HDR_CSP": failed("HDR_CSP", "csp.missing", "csp.unsafe_inline"),
        "HDR_HSTS": ControlResult("HDR_HSTS", "passed", "ok"),
    }
    partial = apply_waivers(results, [waiver("HDR_CSP", "csp.missing"), waiver("HDR_HSTS")], TODAY)
    assert partial.results["HDR_CSP"].status == "failed"
    notes = {note["control"]: note for note in partial.notes}
    assert notes["HDR_CSP"]["state"] == "unused"
    assert "csp.unsafe_inline" in notes["HDR_CSP"]["detail"]
    assert notes["HDR_HSTS"]["state"] == "stale"
    both = apply_waivers(
        results,
        [waiver("HDR_CSP", "csp.missing"), waiver("HDR_CSP", "csp.unsafe_inline")],
        TODAY,
    )
    assert both.results["HDR_CSP"].status == "waived"


def test_a_bad_waiver_file_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        "  - control: HDR_NOPE\n"
        "    reason: r\n"
        "    reference: SEC-1\n"
        "    approver: a\n"
        "    expires: 2027-01-01\n"
        "  - control: HDR_CSP\n"
        "    reason: r\n"
        "    reference: SEC-2\n"
        "    expires: someday\n"
        "    colour: blue\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError) as caught:
        load_waivers(path)
    text = str(caught.value)
    assert f"{path}:2: waivers.0.control: not a control of the catalogue" in text
    assert f"{path}:7: waivers.1.approver" in text
    assert f"{path}:10: waivers.1.expires" in text
    assert f"{path}:11: waivers.1.colour" in text


def test_a_bad_waiver_file_stops_the_audit_with_status_3(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text("waivers:\n  - control: HDR_HSTS\n", encoding="utf-8")
    run = run_audit(tmp_path, markexpr="hdr_hsts", extra_args=("--waivers", str(waivers)))
    assert run.status == 3, run.output[-3000:]
    assert f"{waivers}:2: waivers.0.reason" in run.output


def test_the_waiver_template_is_a_valid_waiver_file() -> None:
    template = Path(__file__).resolve().parent.parent / "profiles" / "waivers-template.yaml"
    (only,) = load_waivers(template)
    assert (only.control, only.finding) == ("HDR_CSP", "csp.missing")


def test_check_profile_validates_a_waiver_file_too(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    bad = tmp_path / "w.yaml"
    bad.write_text("waivers:\n  - control: HDR_CSP\n    reason: r\n", encoding="utf-8")

    def check(waivers: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "portal.cli",
                "check-profile",
                str(root / "profiles" / "reference.yaml"),
                "--waivers",
                str(waivers),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = check(root / "profiles" / "waivers-template.yaml")
    assert good.returncode == 0 and "1 valid waiver(s)" in good.stdout
    refused = check(bad)
    assert refused.returncode == 3
    assert f"{bad}:2: waivers.0.approver: required setting is missing" in refused.stderr
