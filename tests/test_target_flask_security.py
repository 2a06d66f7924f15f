"""The suite on real third-party software: a Flask-Security patient portal (targets/flask_security)
in its careful and permissive deployments, audited with the profiles a hospital would write
(profiles/examples/flask-security*.yaml) and compared with the verdicts written down before the
first audit (targets/flask_security/expected.yaml, EXPECTED.md).

Slow (two whole audits of a few minutes each) and needing the target's own virtualenv
(targets/flask_security/setup.sh), so marked ``third_party``: ``make test-targets`` runs them,
``make test`` does not.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from targets.flask_security.audit_target import (
    CONFIGURATIONS,
    FlaskSecurityTarget,
    account_values,
    start,
    venv_python,
)
from tests.audits import ROOT, AuditResult, leaked_secrets

pytestmark = pytest.mark.third_party

EXPECTED_FILE = ROOT / "targets" / "flask_security" / "expected.yaml"
PROFILES = {
    "careful": ROOT / "profiles" / "examples" / "flask-security.yaml",
    "permissive": ROOT / "profiles" / "examples" / "flask-security-permissive.yaml",
}
PROVIDER = "targets.flask_security.audit_target"
MATCH_AT_LEAST = 0.95
# Statuses that count as passed (design: warn and waived are passed with a note).
PASSING = {"passed", "warn", "waived"}
AUDIT_TIMEOUT = 1800


def expected_statuses(configuration: str) -> dict[str, str]:
    data: dict[str, dict[str, str]] = yaml.safe_load(EXPECTED_FILE.read_text(encoding="utf-8"))
    return {control: statuses[configuration] for control, statuses in data.items()}


def _same(expected: str, actual: str) -> bool:
    return expected == actual or (expected in PASSING and actual in PASSING)


def _audit_env() -> dict[str, str]:
    """The environment of one audit: fresh account secrets the test knows (to scan for them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_SECURITY_")}
    env.update(account_values({}))
    return env


def run_target_audit(tmp_path: Path, configuration: str) -> AuditResult:
    run_dir = tmp_path / "run"
    env = _audit_env()
    command = [
        sys.executable,
        "-m",
        "portal.audit",
        "--profile",
        str(PROFILES[configuration]),
        "--run-dir",
        str(run_dir),
        "--no-latest",
        "--no-html",
        "--",
        "-p",
        PROVIDER,
    ]
    completed = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=AUDIT_TIMEOUT
    )
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    secrets = [v for k, v in env.items() if k.startswith("FLASK_SECURITY_")]
    return AuditResult(
        completed.returncode, run_dir, completed.stdout + completed.stderr, summary, secrets
    )


@pytest.fixture(scope="module")
def target_python() -> Path:
    try:
        return venv_python()
    except pytest.UsageError as exc:
        pytest.fail(str(exc))


def test_expected_verdicts_cover_the_catalogue() -> None:
    from portal.catalogue import load_catalogue

    data: dict[str, dict[str, str]] = yaml.safe_load(EXPECTED_FILE.read_text(encoding="utf-8"))
    assert set(data) == {control.id for control in load_catalogue().controls}
    allowed = {"passed", "warn", "failed", "inconclusive", "skipped"}
    for control, statuses in data.items():
        assert set(statuses) == set(CONFIGURATIONS.values()), control
        assert set(statuses.values()) <= allowed, control


@pytest.fixture
def careful_portal(target_python: Path) -> Iterator[FlaskSecurityTarget]:
    target = start("careful", target_python, {})
    try:
        yield target
    finally:
        target.stop()


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], str]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    handlers: list[urllib.request.BaseHandler] = [NoRedirect()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=20) as response:
            body = response.read().decode("utf-8", "replace")
            return int(response.status), dict(response.headers), body
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode("utf-8", "replace")


def test_provider_starts_and_stops_the_careful_portal(careful_portal: FlaskSecurityTarget) -> None:
    variables = careful_portal.variables
    context = ssl.create_default_context(cafile=variables["FLASK_SECURITY_CA"])
    status, headers, body = _get(variables["FLASK_SECURITY_URL"] + "/login", context)
    assert status == 200
    assert 'name="login_user_form"' in body  # Flask-Security's stock template
    assert headers["Strict-Transport-Security"].startswith("max-age=63072000")
    status, headers, _ = _get(variables["FLASK_SECURITY_HTTP_URL"] + "/login?next=%2Fresults")
    assert status == 301
    assert headers["Location"] == variables["FLASK_SECURITY_URL"] + "/login?next=%2Fresults"
    status, headers, _ = _get(variables["FLASK_SECURITY_URL"] + "/dashboard", context)
    assert status == 302 and "/login" in headers["Location"]
    assert Path(variables["FLASK_SECURITY_MAILDIR"], "new").is_dir()
    assert careful_portal.facts["versions"]["flask-security"] == "5.9.2"
    # Every generated password and TOTP secret is a secret the audit must redact.
    for name, value in variables.items():
        if name.endswith(("_PASSWORD", "_TOTP_SECRET")):
            assert value in careful_portal.secrets
    state = careful_portal.state_dir
    careful_portal.stop()
    assert not state.exists()
    assert careful_portal.servers == []


@pytest.fixture(scope="module")
def audits(tmp_path_factory: pytest.TempPathFactory, target_python: Path) -> dict[str, AuditResult]:
    """Both deployments audited one after the other, each as a user would (default workers).

    Side by side, even with one worker each, the two audits' first sign-ins (a browser page and
    a password hash each, a dozen at once on two cores) twice queued past the 15 s a click may
    take, and a run came out mostly inconclusive.
    """
    return {
        name: run_target_audit(tmp_path_factory.mktemp(name), name) for name in sorted(PROFILES)
    }


@pytest.mark.parametrize("configuration", sorted(PROFILES))
def test_audit_matches_expected_verdicts(
    configuration: str, audits: dict[str, AuditResult]
) -> None:
    run = audits[configuration]
    assert run.status in (0, 1, 2), run.output[-4000:]
    actual = run.statuses()
    expected = expected_statuses(configuration)
    assert set(actual) == set(expected), run.output[-2000:]

    def reason(control: str) -> str:
        return str(run.control(control).get("reason", ""))

    false_passes = [
        f"{c}: expected {expected[c]}, got {actual[c]} ({reason(c)})"
        for c in expected
        if actual[c] in PASSING and expected[c] not in PASSING
    ]
    mismatches = [
        f"{c}: expected {expected[c]}, got {actual[c]} ({reason(c)})"
        for c in expected
        if not _same(expected[c], actual[c])
    ]
    matched = 1 - len(mismatches) / len(expected)
    checked, leaks = leaked_secrets(run.run_dir, run.secrets)
    assert checked > 0
    assert not leaks, f"generated secrets found in {leaks}"
    assert not false_passes, "false pass:\n" + "\n".join(false_passes)
    assert matched >= MATCH_AT_LEAST, (
        f"{matched:.0%} of controls match the expected verdicts (at least "
        f"{MATCH_AT_LEAST:.0%} needed); mismatches:\n" + "\n".join(mismatches)
    )
