"""What a portal driver can do, as protocols: the steps ask for an ability, never for a class.

A profile may name its own driver (``driver: package.module:Class``), which need not subclass
``portal.driver.SelectorDriver``. Each ability is the set of methods the steps and probes call
for it:

- ``SignInAbility``: signing in and out and looking at pages; every control needs it, so
  ``portal.driver.load_driver`` refuses a driver without it (a bad profile, exit status 3).
- ``SessionsPageAbility``: the page listing the account's sessions (SESS_REVOKE).
- ``SecondFactorAbility``: one-time codes, recovery codes and adding or removing an
  authenticator (the MFA_* controls).
- ``PasswordFlowAbility``: changing a password and resetting it by e-mail (the PWD_* controls,
  SESS_PWCHANGE and the RESET_* controls).

An ability is present when the driver has every method of its protocol, whatever its class.
At the start of a run the missing ones are named once among the run's warnings
(``ability_warnings``); a control that needs one is inconclusive with the same reason
(``second_factor_of`` and ``password_flows_of`` raise it where the steps ask for the ability).

``ConfirmationGone`` is part of the second-factor contract: ``confirm_enrolment`` raises it when
the page has no confirmation field (any driver may raise it; the steps catch it by this class).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from portal.errors import Inconclusive

if TYPE_CHECKING:
    from playwright.sync_api import Cookie, Page

    from portal.browser_errors import PageWatch
    from portal.password_flows import PasswordAnswer
    from portal.profile_sections import Account, ProtectedPage
    from portal.second_factor import EnrolmentOffer, EnrolmentResult, State


class ConfirmationGone(Inconclusive):  # noqa: N818 - an audit outcome, like Inconclusive
    """The enrolment page has no confirmation field (any more).

    Some portals answer a refused confirmation code by sending the user back to the start of
    the enrolment (Flask-Security shows its setup choice again): a new attempt needs a new
    secret. Inconclusive where nothing expects that; MFA_ENROLL catches it after its wrong code
    and starts the enrolment again.
    """


@dataclass(frozen=True)
class SignInOutcome:
    """Whether sign-in worked, plus the cookies before submitting and after (kept off reprs)."""

    signed_in: bool
    detail: str
    cookies_before: list[Cookie] = field(default_factory=list, repr=False)
    cookies_after: list[Cookie] = field(default_factory=list, repr=False)
    set_cookie_headers: list[str] = field(default_factory=list, repr=False)
    error_message: str = ""  # the portal's message when it refused the sign-in


@dataclass(frozen=True)
class PageView:
    """What a protected page showed: status, final URL, whether patient data was visible."""

    name: str
    status: int | None
    final_url: str
    signed_in: bool
    patient_data_visible: bool


@runtime_checkable
class SignInAbility(Protocol):
    """Signing in and out, and what a page shows; the base every control needs."""

    # The last page the portal served in each browser context, for throttle-aware messages.
    pages: PageWatch

    def sign_in(self, page: Page, account: Account) -> SignInOutcome: ...

    def is_signed_in(self, page: Page) -> bool: ...

    def sign_out(self, page: Page) -> None: ...

    def open_protected(self, page: Page, protected: ProtectedPage) -> PageView: ...

    def shows_patient_data(self, page: Page, account: Account) -> bool: ...


@runtime_checkable
class SessionsPageAbility(Protocol):
    """The page listing the account's sessions and ending the others."""

    def open_sessions_page(self, page: Page) -> tuple[int | None, int | None]: ...

    def end_other_sessions(self, page: Page) -> None: ...


@runtime_checkable
class SecondFactorAbility(SignInAbility, Protocol):
    """Signing in with a one-time or recovery code, and adding or removing an authenticator."""

    def first_factor(self, page: Page, account: Account) -> State: ...

    def asks_second_factor(self, page: Page) -> bool: ...

    def submit_code(self, page: Page, code: str) -> State: ...

    def submit_recovery_code(self, page: Page, code: str) -> State: ...

    def finish_sign_in(self, page: Page, account: Account) -> State: ...

    def fresh_totp(self, secret: str) -> str: ...

    def stale_totp(self, secret: str, steps_back: int) -> str: ...

    def wrong_totp(self, secret: str, attempt: int) -> str: ...

    def start_enrolment(self, page: Page, account: Account) -> EnrolmentOffer: ...

    def confirm_enrolment(self, page: Page, code: str) -> EnrolmentResult:
        """Submit the confirmation code; ``ConfirmationGone`` when the page has no field."""
        ...

    def remove_authenticator(self, page: Page, account: Account) -> bool: ...


@runtime_checkable
class PasswordFlowAbility(SignInAbility, Protocol):
    """Changing the password (with its form's guidance and paste rule) and resetting it."""

    def open_change_form(self, page: Page, current: str | None = None) -> bool: ...

    def change_password(self, page: Page, current: str | None, new: str) -> PasswordAnswer: ...

    def password_guidance(self, page: Page) -> str: ...

    def paste_allowed(self, page: Page) -> bool: ...

    def request_reset(self, page: Page, identifier: str) -> str: ...

    def open_reset_link(self, page: Page, link: str) -> bool: ...

    def complete_reset(self, page: Page, new: str) -> PasswordAnswer: ...


@dataclass(frozen=True)
class Ability:
    """One ability: its name in messages, its protocol and the controls that need it."""

    name: str
    protocol: type
    controls: frozenset[str]


SIGN_IN = Ability("sign-in", SignInAbility, frozenset())  # every control: checked at load
SESSIONS_PAGE = Ability("sessions-page", SessionsPageAbility, frozenset({"SESS_REVOKE"}))
SECOND_FACTOR = Ability(
    "second-factor",
    SecondFactorAbility,
    frozenset({"MFA_ENFORCE", "MFA_OTP", "MFA_ENROLL", "MFA_RECOVERY"}),
)
PASSWORD_FLOWS = Ability(
    "password-flow",
    PasswordFlowAbility,
    frozenset(
        {
            "PWD_LENGTH",
            "PWD_BLOCKLIST",
            "PWD_STRENGTH",
            "PWD_NOCOMPOSITION",
            "PWD_CHANGE",
            "SESS_PWCHANGE",
            "RESET_TOKEN",
            "RESET_MAIL",
        }
    ),
)
ABILITIES = (SIGN_IN, SESSIONS_PAGE, SECOND_FACTOR, PASSWORD_FLOWS)


def members(ability: Ability) -> list[str]:
    """The methods and attributes the ability's own protocol declares (not its bases')."""
    declared = vars(ability.protocol)
    names = [n for n in declared if not n.startswith("_")]
    names += [n for n in declared.get("__annotations__", {}) if n not in names]
    return names


def _has(driver: object, name: str) -> bool:
    if hasattr(driver, name):
        return True
    # A class sets its data attributes in __init__: there they count when the class declares them.
    return isinstance(driver, type) and any(
        name in vars(klass).get("__annotations__", {}) for klass in driver.__mro__
    )


def missing_abilities(driver: object) -> dict[str, list[str]]:
    """Each ability the driver (or driver class) lacks, with the members it is missing."""
    missing = {}
    for ability in ABILITIES:
        absent = [name for name in members(ability) if not _has(driver, name)]
        if absent:
            missing[ability.name] = absent
    return missing


def driver_name(driver: object) -> str:
    """The driver as a profile names it (``module:Class``)."""
    cls = driver if isinstance(driver, type) else type(driver)
    return f"{cls.__module__}:{cls.__qualname__}"


def lacks(driver: object, ability: Ability) -> str | None:
    """Why the driver cannot serve the ability (the members it lacks), or None when it can."""
    absent = missing_abilities(driver).get(ability.name)
    if not absent:
        return None
    return (
        f"the profile's driver {driver_name(driver)} lacks the {ability.name} ability "
        f"(missing: {', '.join(absent)})"
    )


def ability_reason(control_id: str, driver: object) -> str | None:
    """Why the control cannot be evaluated with this driver, or None when the driver can.

    Sign-in is not looked at: a driver without it is refused when it is loaded."""
    for ability in ABILITIES:
        if control_id in ability.controls:
            reason = lacks(driver, ability)
            if reason:
                return reason
    return None


def ability_warnings(driver: object, control_ids: Iterable[str]) -> list[str]:
    """One line per ability the driver lacks that a selected control needs, for the run's
    warnings: the dependent controls' reasons then name it without repeating the list."""
    selected = set(control_ids)
    warnings = []
    for ability in ABILITIES:
        dependent = sorted(ability.controls & selected)
        reason = lacks(driver, ability)
        if dependent and reason:
            warnings.append(f"{reason}: {', '.join(dependent)} cannot be evaluated")
    return warnings


def _inconclusive(driver: object, ability: Ability) -> Inconclusive:
    reason = lacks(driver, ability) or lacks(driver, SIGN_IN)
    return Inconclusive(reason or f"the profile's driver lacks the {ability.name} ability")


def second_factor_of(driver: object) -> SecondFactorAbility:
    """The driver as far as the MFA_* controls use it, or inconclusive naming what it lacks."""
    if isinstance(driver, SecondFactorAbility):
        return driver
    raise _inconclusive(driver, SECOND_FACTOR)


def password_flows_of(driver: object) -> PasswordFlowAbility:
    """The driver's password change and reset, or inconclusive naming what it lacks."""
    if isinstance(driver, PasswordFlowAbility):
        return driver
    raise _inconclusive(driver, PASSWORD_FLOWS)


def sessions_page_of(driver: object) -> SessionsPageAbility:
    """The driver's sessions page (SESS_REVOKE), or inconclusive naming what it lacks."""
    if isinstance(driver, SessionsPageAbility):
        return driver
    raise _inconclusive(driver, SESSIONS_PAGE)
