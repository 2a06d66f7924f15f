"""Exit statuses that mean what they say: 3 only for a bad profile or usage, 4 for the audit's own
crash, and never a "compliant" summary when nothing was evaluated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from portal.catalogue import load_catalogue
from portal.summary import ControlResult, build_summary, verdict
from tests.test_profile import ENV, GOOD, ROOT, write


def _audit(tmp_path: Path, profile_text: str) -> tuple[int, str, Path]:
    run_dir = tmp_path / "run"
    completed = subprocess.run(
        [sys.executable, "-m", "portal.audit", "--profile", str(write(tmp_path, profile_text)),
         "--no-html", "--no-latest", "--run-dir", str(run_dir)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    return completed.returncode, completed.stdout + completed.stderr, run_dir


def test_a_driver_that_cannot_be_imported_is_a_bad_profile(tmp_path: Path) -> None:
    status, output, run_dir = _audit(tmp_path, GOOD + "    driver: no_such_package.drivers:X\n")
    assert status == 3, output
    assert "driver" in output and "no_such_package" in output
    assert "Traceback" not in output
    assert not (run_dir / "summary.json").exists()


def test_a_crash_of_the_audit_is_status_4_with_the_traceback_in_a_log(tmp_path: Path) -> None:
    status, output, run_dir = _audit(
        tmp_path, GOOD + "    driver: tests.crashing_driver:CrashingDriver\n"
    )
    assert status == 4, output
    assert "loading the profile's driver tests.crashing_driver:CrashingDriver" in output
    assert "internal error (RuntimeError: this driver cannot drive Test portal)" in output
    assert "Traceback" not in output
    log = (run_dir / "internal-error.log").read_text(encoding="utf-8")
    assert "RuntimeError" in log and ENV["PORTAL_PATIENT_PASSWORD"] not in log
    summary = run_dir / "summary.json"
    if summary.exists():
        assert json.loads(summary.read_text())["verdict"] != "compliant"


def test_nothing_evaluated_is_never_compliant() -> None:
    assert verdict({}) == "inconclusive"
    skipped = {"TLS_OCSP": ControlResult("TLS_OCSP", "skipped", "no responder")}
    assert verdict(skipped) == "inconclusive"
    passed = {"HDR_HSTS": ControlResult("HDR_HSTS", "passed", "ok")} | skipped
    assert verdict(passed) == "compliant"
    summary = build_summary({}, load_catalogue(), profile="p", target="t", extra={})
    assert summary["verdict"] == "inconclusive"


def test_a_failure_reason_names_its_failing_findings() -> None:
    from scanners.result import Finding, verdict

    evaluation = verdict(
        [
            Finding("cert.expired", "expired 2 d ago"),
            Finding("cert.expiring", "renew soon", severity="warn"),
            Finding("cert.key", "RSA 1024 bits"),
        ],
        measured="",
        threshold="",
        passed_reason="ok",
        failed_reason="the certificate does not meet Mozilla",
    )
    assert evaluation.one_line() == (
        "the certificate does not meet Mozilla: cert.expired: expired 2 d ago; "
        "cert.key: RSA 1024 bits"
    )
    assert evaluation.one_line(most=1).endswith("expired 2 d ago; and 1 more")
