"""Driver abilities: a profile's own driver is judged by what it can do, not by its class.

A driver without the second factor makes the MFA controls inconclusive with one stated reason
(named once among the run's warnings) and leaves every other control alone; a driver that cannot
even sign in is a bad profile; the steps never ask for a concrete driver class.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from portal.abilities import (
    ABILITIES,
    PASSWORD_FLOWS,
    SECOND_FACTOR,
    SESSIONS_PAGE,
    SIGN_IN,
    ability_reason,
    ability_warnings,
    members,
    missing_abilities,
    password_flows_of,
    second_factor_of,
    sessions_page_of,
)
from portal.catalogue import load_catalogue
from portal.driver import SelectorDriver, load_driver
from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.profile import Profile, load_profile
from portal.profile_file import ProfileError
from tests.audits import derived_profile, run_audit
from tests.composed_driver import NoSecondFactorDriver, NoSignOutDriver
from tests.test_profile import ENV, GOOD, write

ROOT = Path(__file__).resolve().parent.parent
COMPOSED = "tests.composed_driver:NoSecondFactorDriver"
SECOND_FACTOR_METHODS = [
    "first_factor",
    "asks_second_factor",
    "submit_code",
    "submit_recovery_code",
    "finish_sign_in",
    "fresh_totp",
    "stale_totp",
    "wrong_totp",
    "start_enrolment",
    "confirm_enrolment",
    "remove_authenticator",
]
REASON = (
    f"the profile's driver {COMPOSED} lacks the second-factor ability "
    f"(missing: {', '.join(SECOND_FACTOR_METHODS)})"
)


def _profile(tmp_path: Path, driver: str | None = None) -> Profile:
    text = GOOD + (f"    driver: {driver}\n" if driver else "")
    return load_profile(write(tmp_path, text), env=ENV)


@pytest.fixture
def composed(tmp_path: Path) -> NoSecondFactorDriver:
    return NoSecondFactorDriver(_profile(tmp_path), Redactor())


def test_the_default_driver_has_every_ability(tmp_path: Path) -> None:
    assert missing_abilities(SelectorDriver) == {}
    assert missing_abilities(load_driver(_profile(tmp_path), Redactor())) == {}


def test_a_driver_without_the_second_factor_lacks_that_ability_only(
    composed: NoSecondFactorDriver,
) -> None:
    assert missing_abilities(composed) == {"second-factor": SECOND_FACTOR_METHODS}
    # The class alone answers the same (its data attribute ``pages`` is set in __init__).
    assert set(missing_abilities(NoSecondFactorDriver)) == {"second-factor", "sign-in"}
    assert missing_abilities(NoSecondFactorDriver)["sign-in"] == ["pages"]


def test_the_controls_needing_the_missing_ability_get_its_reason_and_no_other_does(
    composed: NoSecondFactorDriver,
) -> None:
    for control in load_catalogue().controls:
        expected = REASON if control.id.startswith("MFA_") else None
        assert ability_reason(control.id, composed) == expected, control.id
    with pytest.raises(Inconclusive) as caught:
        second_factor_of(composed)
    assert str(caught.value) == REASON
    assert password_flows_of(composed) is composed
    assert sessions_page_of(composed) is composed


def test_the_missing_ability_is_stated_once_for_the_selected_controls(
    composed: NoSecondFactorDriver,
) -> None:
    selected = {"PREFLIGHT", "SESS_LOGOUT", "MFA_ENFORCE", "MFA_OTP", "PWD_CHANGE"}
    assert ability_warnings(composed, selected) == [
        f"{REASON}: MFA_ENFORCE, MFA_OTP cannot be evaluated"
    ]
    assert ability_warnings(composed, {"SESS_LOGOUT", "PWD_CHANGE"}) == []


def test_a_driver_that_cannot_sign_out_is_a_bad_profile(tmp_path: Path) -> None:
    profile = _profile(tmp_path, "tests.composed_driver:NoSignOutDriver")
    with pytest.raises(ProfileError) as caught:
        load_driver(profile, Redactor())
    assert caught.value.field == "driver"
    assert caught.value.problem == (
        "the profile's driver tests.composed_driver:NoSignOutDriver lacks the sign-in ability "
        "(missing: sign_out, open_protected, shows_patient_data)"
    )
    bare = NoSignOutDriver(profile, Redactor())
    with pytest.raises(Inconclusive, match="lacks the password-flow ability"):
        password_flows_of(bare)


def test_every_ability_names_catalogued_controls_and_the_areas_map_as_the_steps_use_them() -> None:
    ids = {control.id for control in load_catalogue().controls}
    for ability in ABILITIES:
        assert ability.controls <= ids, ability.name
        assert members(ability), ability.name
    assert SIGN_IN.controls == frozenset()  # every control: checked when the driver is loaded
    assert SECOND_FACTOR.controls == {i for i in ids if i.startswith("MFA_")}
    assert PASSWORD_FLOWS.controls == {i for i in ids if i.startswith(("PWD_", "RESET_"))} | {
        "SESS_PWCHANGE"
    }
    assert SESSIONS_PAGE.controls == {"SESS_REVOKE"}


CONCRETE_DRIVERS = {"SelectorDriver", "SecondFactorMixin", "PasswordFlows"}


@pytest.mark.parametrize("module", sorted((ROOT / "steps").glob("*.py")), ids=lambda p: p.name)
def test_steps_ask_for_abilities_not_driver_classes(module: Path) -> None:
    found = []
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found += [
                f"{node.lineno}: import {a.name}" for a in node.names if a.name in CONCRETE_DRIVERS
            ]
        elif isinstance(node, ast.Name) and node.id in CONCRETE_DRIVERS:
            found.append(f"{node.lineno}: {node.id}")
    assert not found, f"steps/{module.name} names a concrete driver class: {found}"


def test_an_audit_with_a_driver_without_the_second_factor(tmp_path: Path) -> None:
    """On the compliant reference portal: MFA_ENFORCE inconclusive with the stated reason,
    the controls the driver can serve (a password change included) pass."""
    profile = derived_profile(tmp_path, {"driver": COMPOSED})
    result = run_audit(
        tmp_path, profile=profile, markexpr="preflight or sess_logout or mfa_enforce or pwd_change"
    )
    assert result.status == 2, result.output
    assert result.statuses() == {
        "PREFLIGHT": "passed",
        "SESS_LOGOUT": "passed",
        "PWD_CHANGE": "passed",
        "MFA_ENFORCE": "inconclusive",
    }, result.output
    assert result.control("MFA_ENFORCE")["reason"] == f"could not be evaluated: {REASON}"
    assert result.summary is not None
    warnings = [w for w in result.summary["warnings"] if "ability" in w]
    assert warnings == [f"{REASON}: MFA_ENFORCE cannot be evaluated"]
    assert result.output.count(f"warning: {REASON}") == 1
