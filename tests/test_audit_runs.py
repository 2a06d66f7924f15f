"""Whole audits of the reference portal, as `make audit` runs them."""

from __future__ import annotations

import socket
from pathlib import Path

from playwright.sync_api import sync_playwright

from portal.browser import find_chromium
from tests.audits import (
    AuditResult,
    audit_env,
    derived_profile,
    implemented_controls,
    issued_secrets,
    leaked_secrets,
    run_audit,
)


def test_compliant_reference_portal_passes_every_control(compliant_run: AuditResult) -> None:
    assert compliant_run.status == 0, compliant_run.output
    statuses = compliant_run.statuses()
    assert set(statuses) == implemented_controls()
    assert statuses.pop("TLS_OCSP") == "skipped"  # the certificate names no OCSP responder
    assert set(statuses.values()) == {"passed"}, statuses
    assert compliant_run.summary is not None
    assert compliant_run.summary["verdict"] == "compliant"
    hsts = compliant_run.control("HDR_HSTS")
    assert hsts["threshold"] == {
        "min_max_age_seconds": 31536000,
        "recommended_max_age_seconds": 63072000,
    }
    assert "max-age" in hsts["measured"]
    for name in ("junit.xml", "compliance-matrix.md", "compliance-matrix.csv"):
        assert (compliant_run.run_dir / name).is_file(), name


def test_allure_report_renders_in_chromium(compliant_run: AuditResult) -> None:
    index = compliant_run.run_dir / "allure-report" / "index.html"
    assert index.is_file(), compliant_run.output
    with sync_playwright() as runtime:
        browser = runtime.chromium.launch(executable_path=find_chromium())
        try:
            page = browser.new_page()
            page.goto(index.as_uri())
            page.get_by_text("portal-audit: Bundled reference patient portal").first.wait_for(
                timeout=30_000
            )
            page.get_by_placeholder("Search tests").fill("signed-out session")
            # The result tree opens group by group: folder, area, then feature.
            for group in ("features", "session", "Signing out ends the session"):
                page.get_by_text(group, exact=True).first.click(timeout=30_000)
            page.get_by_text("A signed-out session cannot be replayed").first.wait_for(
                timeout=30_000
            )
        finally:
            browser.close()


def test_logout_weakness_fails_only_sess_logout(logout_weakness_run: AuditResult) -> None:
    result = logout_weakness_run
    assert result.status == 1, result.output
    statuses = result.statuses()
    assert statuses.pop("SESS_LOGOUT") == "failed"
    assert statuses.pop("TLS_OCSP") == "skipped"
    assert set(statuses.values()) == {"passed"}, statuses
    assert "refused" not in result.control("SESS_LOGOUT")["measured"]
    attachments = {p.suffix for p in (result.run_dir / "allure-results").iterdir()}
    assert ".png" in attachments and ".zip" in attachments, "failed scenarios keep evidence"


def test_no_password_or_session_cookie_in_any_artifact(
    compliant_run: AuditResult, logout_weakness_run: AuditResult
) -> None:
    for run in (compliant_run, logout_weakness_run):
        needles = run.secrets + issued_secrets(run)
        assert len(needles) >= 4
        checked, leaks = leaked_secrets(run.run_dir, needles)
        assert not leaks, f"a secret reached {leaks}"
        assert checked > 20


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_target_is_inconclusive(tmp_path: Path) -> None:
    closed = _closed_port()
    profile = derived_profile(
        tmp_path,
        {
            "target": None,
            "base_url": f"https://127.0.0.1:{closed}/",
            "plain_http_url": f"http://127.0.0.1:{closed}/",
            "tls": {},
            "mailbox.maildir": str(tmp_path / "maildir"),
            "timeouts": {"reachability_seconds": 3, "navigation_seconds": 5},
        },
    )
    (tmp_path / "maildir").mkdir()
    result = run_audit(tmp_path, profile=profile)
    assert result.status == 2, result.output
    statuses = result.statuses()
    assert set(statuses.values()) == {"inconclusive"}, statuses
    assert set(statuses) == implemented_controls()
    assert "did not answer" in result.control("PREFLIGHT")["reason"]


def test_wrong_password_makes_the_run_inconclusive(tmp_path: Path) -> None:
    profile = derived_profile(
        tmp_path, {"accounts.patient.password": "${AUDIT_TEST_WRONG_PASSWORD}"}
    )
    env = audit_env(tmp_path, {"AUDIT_TEST_WRONG_PASSWORD": "not-the-password-1234"})
    # The quick session checks are enough to show the broken preflight's effect.
    result = run_audit(
        tmp_path, profile=profile, env=env, markexpr="preflight or (session and not slow)"
    )
    assert result.status == 2, result.output
    assert result.control("PREFLIGHT")["status"] == "inconclusive"
    assert "cannot sign in" in result.control("PREFLIGHT")["reason"]
    assert "failed" not in result.statuses().values()


def test_single_page_app_sign_in_works(tmp_path: Path) -> None:
    profile = derived_profile(
        tmp_path,
        {
            "sign_in": {
                "url": "/app/login",
                "username": "#spa-username",
                "password": "#spa-password",
                "submit": "#spa-sign-in",
                "error": "#spa-error",
            },
            # Signed out, the portal's protected pages send visitors to its classic form.
            "signed_in": {
                "url": "/dashboard",
                "indicator": "#signed-in-user",
                "signed_out_indicator": "#sign-in-form",
            },
        },
    )
    result = run_audit(tmp_path, profile=profile, markexpr="preflight or sess_logout")
    assert result.status == 0, result.output
    assert result.statuses() == {"PREFLIGHT": "passed", "SESS_LOGOUT": "passed"}
