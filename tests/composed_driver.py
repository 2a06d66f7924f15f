"""Profile drivers that do not subclass ``SelectorDriver``, as a portal's own driver might not.

``NoSecondFactorDriver`` signs in, lists sessions and changes passwords through a
``SelectorDriver`` it holds, and has no second factor: the MFA controls must be inconclusive
with the reason, every other control unaffected. ``NoSignOutDriver`` cannot even sign out: a
bad profile.
"""

from __future__ import annotations

from playwright.sync_api import Page

from portal.abilities import PageView, PasswordFlowAbility, SignInOutcome
from portal.driver import PortalDriver, SelectorDriver
from portal.evidence import Redactor
from portal.password_flows import PasswordAnswer
from portal.profile import Profile
from portal.profile_sections import Account, ProtectedPage


class NoSecondFactorDriver:
    def __init__(self, profile: Profile, redactor: Redactor) -> None:
        self._inner = SelectorDriver(profile, redactor)
        self.pages = self._inner.pages

    # -- sign-in ----------------------------------------------------------------------------
    def sign_in(self, page: Page, account: Account) -> SignInOutcome:
        return self._inner.sign_in(page, account)

    def is_signed_in(self, page: Page) -> bool:
        return self._inner.is_signed_in(page)

    def sign_out(self, page: Page) -> None:
        self._inner.sign_out(page)

    def open_protected(self, page: Page, protected: ProtectedPage) -> PageView:
        return self._inner.open_protected(page, protected)

    def shows_patient_data(self, page: Page, account: Account) -> bool:
        return self._inner.shows_patient_data(page, account)

    # -- sessions page ----------------------------------------------------------------------
    def open_sessions_page(self, page: Page) -> tuple[int | None, int | None]:
        return self._inner.open_sessions_page(page)

    def end_other_sessions(self, page: Page) -> None:
        self._inner.end_other_sessions(page)

    # -- password flows ---------------------------------------------------------------------
    def open_change_form(self, page: Page, current: str | None = None) -> bool:
        return self._inner.open_change_form(page, current)

    def change_password(self, page: Page, current: str | None, new: str) -> PasswordAnswer:
        return self._inner.change_password(page, current, new)

    def password_guidance(self, page: Page) -> str:
        return self._inner.password_guidance(page)

    def paste_allowed(self, page: Page) -> bool:
        return self._inner.paste_allowed(page)

    def request_reset(self, page: Page, identifier: str) -> str:
        return self._inner.request_reset(page, identifier)

    def open_reset_link(self, page: Page, link: str) -> bool:
        return self._inner.open_reset_link(page, link)

    def complete_reset(self, page: Page, new: str) -> PasswordAnswer:
        return self._inner.complete_reset(page, new)


# mypy checks that the composed driver has these abilities without subclassing anything.
_COMPOSED_DRIVER_ABILITIES: tuple[type[PortalDriver], type[PasswordFlowAbility]] = (
    NoSecondFactorDriver,
    NoSecondFactorDriver,
)


class NoSignOutDriver:
    def __init__(self, profile: Profile, redactor: Redactor) -> None:
        self._inner = SelectorDriver(profile, redactor)
        self.pages = self._inner.pages

    def sign_in(self, page: Page, account: Account) -> SignInOutcome:
        return self._inner.sign_in(page, account)

    def is_signed_in(self, page: Page) -> bool:
        return self._inner.is_signed_in(page)
