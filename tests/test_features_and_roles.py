"""Required features, account roles, and no side effects without the destructive opt-in.

A feature the portal lacks (``not_offered``) fails the control when the catalogue says the
control requires it, and is skipped where the feature may legitimately be absent. One account in
two roles whose checks disturb each other is warned about, and the checks are ordered.
"""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from portal.catalogue import load_catalogue
from portal.profile import load_profile
from portal.profile_file import ProfileError
from portal.roles import conflicts, waits
from tests.audits import audit_env, derived_profile, run_audit
from tests.test_profile import ENV as PROFILE_ENV
from tests.test_profile import GOOD

ENV = {**PROFILE_ENV, "L": "another long passphrase here"}
# The minimal profile plus a password tester and a lockout account (LOCKED_USER is replaced).
BASE = (
    GOOD
    + """      tester: {username: audit.tester, password: "${PORTAL_PATIENT_PASSWORD}",
               dedicated_test_account: true}
      lockout: {username: LOCKED_USER, password: "${L}", dedicated_test_account: true}
    passwords:
      account: tester
      change: {url: /pw, current_password: "#c", new_password: "#n", submit: "#s",
               success: "#ok", error: "#err"}
"""
)


def _profile(tmp_path: Path, lockout_user: str, extra: str = "") -> Path:
    path = tmp_path / "portal.yaml"
    text = textwrap.dedent(BASE).replace("LOCKED_USER", lockout_user) + textwrap.dedent(extra)
    path.write_text(text.lstrip(), encoding="utf-8")
    return path


def test_every_control_says_whether_its_feature_is_required() -> None:
    catalogue = load_catalogue()
    optional = {c.id for c in catalogue.controls if c.feature and not c.feature_required}
    assert optional == {"PROXY_ACCESS", "TLS_OCSP"}
    assert catalogue.get("SESS_REVOKE").not_offered("no sessions page")[0] == "failed"
    assert catalogue.get("PROXY_ACCESS").not_offered("no caregivers")[0] == "skipped"
    assert not catalogue.get("PREFLIGHT").feature


def test_not_offered_is_validated_with_file_line_and_field(tmp_path: Path) -> None:
    bad = _profile(tmp_path, "audit.locked", "not_offered: {SESS_NOPE: x, PREFLIGHT: y}\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(bad, env=ENV)
    assert "not_offered" in str(caught.value) and "SESS_NOPE" in str(caught.value)
    both = _profile(
        tmp_path,
        "audit.locked",
        "not_offered: {SESS_REVOKE: none}\nout_of_scope: {SESS_REVOKE: none}\n",
    )
    with pytest.raises(ProfileError, match="both out_of_scope and not_offered"):
        load_profile(both, env=ENV)


def test_separate_accounts_do_not_conflict(tmp_path: Path) -> None:
    profile = load_profile(_profile(tmp_path, "audit.locked"), env=ENV)
    assert conflicts(profile) == []


def test_an_account_locked_out_and_used_for_passwords_is_warned_about_and_ordered(
    tmp_path: Path,
) -> None:
    profile = load_profile(_profile(tmp_path, "audit.tester"), env=ENV)
    found = conflicts(profile)
    assert len(found) == 1
    message = found[0].message
    assert "'audit.tester'" in message and "AUTH_LOCKOUT" in message and "PWD_CHANGE" in message
    assert "wait until the background check has ended" in message
    order = waits(profile, {"AUTH_LOCKOUT", "SESS_IDLE"})
    assert order["PWD_CHANGE"] == {"AUTH_LOCKOUT"}
    assert "AUTH_LOCKOUT" not in order


def test_the_patient_locked_out_by_the_lockout_check_is_two_background_probes(
    tmp_path: Path,
) -> None:
    profile = load_profile(_profile(tmp_path, "audit.patient"), env=ENV)
    messages = [c.message for c in conflicts(profile)]
    assert any("give each its own account" in m for m in messages)  # SESS_IDLE vs AUTH_LOCKOUT
    assert waits(profile, {"AUTH_LOCKOUT"})["SESS_REVOKE"] == {"AUTH_LOCKOUT"}


def test_a_required_feature_not_offered_fails_and_an_optional_one_is_skipped(
    tmp_path: Path,
) -> None:
    profile = derived_profile(
        tmp_path,
        {
            "not_offered": {
                "SESS_REVOKE": "the portal has no page listing sessions",
                "PROXY_ACCESS": "the portal has no caregiver accounts",
            }
        },
    )
    result = run_audit(tmp_path, profile=profile, markexpr="sess_revoke or proxy_access")
    assert result.status == 1, result.output
    revoke = result.control("SESS_REVOKE")
    assert revoke["status"] == "failed"
    assert revoke["reason"].startswith("required feature not offered (a page listing")
    assert "no page listing sessions" in revoke["reason"]
    proxy = result.control("PROXY_ACCESS")
    assert proxy["status"] == "skipped"
    assert "not applicable" in proxy["reason"]


def test_with_destructive_checks_denied_no_account_is_changed_or_mailed(tmp_path: Path) -> None:
    state = tmp_path / "portal-state"
    env = audit_env(tmp_path, {"REFERENCE_PORTAL_STATE_DIR": str(state)})
    result = run_audit(tmp_path, env=env, deny_destructive=True)
    assert result.status == 0, result.output
    statuses = result.statuses()
    destructive = {c.id for c in load_catalogue().controls if c.destructive}
    assert {"AUTH_ENUM", "AUTH_LOCKOUT", "RESET_MAIL", "PWD_CHANGE"} <= destructive
    assert {statuses[c] for c in destructive if c in statuses} == {"skipped"}
    with sqlite3.connect(state / "portal.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM sign_in_failures").fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM password_resets").fetchone() == (0,)
        changed = db.execute(
            "SELECT username FROM accounts WHERE password_changed_at != created_at"
        ).fetchall()
        assert changed == []
    mails = [p for p in (state / "maildir").rglob("*") if p.is_file()]
    assert mails == [], "the portal sent e-mail during a run without destructive checks"
