"""Profiles: a bad profile names file, line, field and problem, and stops the run with status 3."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from portal.profile import ProfileError, load_profile

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PORTAL_PATIENT_PASSWORD": "correct horse battery staple"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portal.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


GOOD = """
    name: Test portal
    base_url: https://portal.test.invalid/
    sign_in: {url: /login, username: "#u", password: "#p", submit: "#s"}
    signed_in: {url: /home, indicator: "#me"}
    sign_out: {control: "#out"}
    protected_pages:
      - {name: home, url: /home, patient_data: "#data"}
    accounts:
      patient:
        username: audit.patient
        password: ${PORTAL_PATIENT_PASSWORD}
"""


def test_template_profile_is_valid() -> None:
    profile = load_profile(ROOT / "profiles" / "template.yaml", env=ENV)
    assert profile.patient.dedicated_test_account
    assert profile.threshold("min_max_age_seconds") == 31536000


def test_good_profile_applies_catalogue_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD), env=ENV)
    assert profile.threshold("idle_timeout_seconds") == 900
    assert profile.is_default("idle_timeout_seconds")
    assert profile.patient.password.get_secret_value() == ENV["PORTAL_PATIENT_PASSWORD"]
    assert ENV["PORTAL_PATIENT_PASSWORD"] not in repr(profile)
    assert profile.tls_host == "portal.test.invalid" and profile.tls_port == 443


def test_missing_variable_names_file_line_field_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ProfileError) as caught:
        load_profile(path, env={})
    message = str(caught.value)
    assert f"{path}:11:" in message
    assert "accounts.patient.password" in message
    assert "PORTAL_PATIENT_PASSWORD is not set" in message


def test_literal_password_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("${PORTAL_PATIENT_PASSWORD}", "hunter2hunter2"))
    with pytest.raises(ProfileError, match="must be an environment reference"):
        load_profile(path, env=ENV)


def test_unknown_setting_and_bad_types_are_all_reported(tmp_path: Path) -> None:
    text = GOOD + "    sign_in_page: /oops\n    timeouts: {navigation_seconds: -1}\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, text), env=ENV)
    message = str(caught.value)
    assert ":12: sign_in_page: unknown setting" in message
    assert "timeouts.navigation_seconds" in message and "greater than 0" in message


def test_unknown_policy_setting_and_control(tmp_path: Path) -> None:
    text = GOOD + "    policy: {idle_timeout: 60}\n    out_of_scope: {SESS_NOPE: because}\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, text), env=ENV)
    message = str(caught.value)
    assert "unknown policy setting(s) ['idle_timeout']" in message
    assert "unknown control 'SESS_NOPE'" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbase_url: [unclosed\n")
    with pytest.raises(ProfileError, match=r"portal.yaml:\d+: not valid YAML"):
        load_profile(path, env=ENV)


def test_bad_profile_stops_the_audit_with_status_3_before_any_browser(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "portal.audit",
            "--profile",
            str(path),
            "--no-html",
            "--no-latest",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 3, output
    assert "PORTAL_PATIENT_PASSWORD is not set" in output
    assert "Traceback" not in output
    assert not (tmp_path / "run" / "summary.json").exists()


def test_weaken_is_refused_for_another_portal(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "portal.audit",
            "--profile",
            str(path),
            "--weaken",
            "hsts_missing",
            "--no-html",
            "--no-latest",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 3
    assert (
        "--weaken applies only to the bundled reference portal"
        in completed.stdout + completed.stderr
    )
