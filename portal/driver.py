"""Portal drivers: how the suite uses a portal, whatever its HTML looks like.

``PortalDriver`` is the small protocol steps rely on. ``SelectorDriver`` implements it from the
profile's selectors and copes with server-rendered forms and single-page apps alike: it waits on
navigation, network and selectors with the profile's bounded timeouts, never on fixed sleeps. A
portal with an unusual flow names its own subclass in the profile
(``driver: package.module:Class``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from typing import Protocol

from playwright.sync_api import Cookie, Page, Response
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.password_flows import PasswordFlows
from portal.profile import Account, Profile, ProfileError, ProtectedPage
from portal.second_factor import SecondFactorMixin
from scanners.http import redact_set_cookie


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


class PortalDriver(Protocol):
    def sign_in(self, page: Page, account: Account) -> SignInOutcome: ...

    def is_signed_in(self, page: Page) -> bool: ...

    def sign_out(self, page: Page) -> None: ...

    def open_protected(self, page: Page, protected: ProtectedPage) -> PageView: ...

    def shows_patient_data(self, page: Page, account: Account) -> bool: ...

    def open_sessions_page(self, page: Page) -> tuple[int | None, int | None]: ...

    def end_other_sessions(self, page: Page) -> None: ...


class SelectorDriver(SecondFactorMixin, PasswordFlows):
    """The generic driver: everything it needs comes from the profile."""

    def __init__(self, profile: Profile, redactor: Redactor):
        self.profile = profile
        self.redactor = redactor
        self.timeout_ms = profile.timeouts.navigation_seconds * 1000

    # -- helpers ---------------------------------------------------------------------------
    def _goto(self, page: Page, url: str) -> Response | None:
        target = self.profile.url(url)
        try:
            return page.goto(target, wait_until="load", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            seconds = self.timeout_ms / 1000
            raise Inconclusive(f"{target} did not load within {seconds:.0f} s") from None
        except PlaywrightError as exc:
            raise Inconclusive(f"{target} could not be opened: {_first_line(exc)}") from None

    def _remember_cookie_values(self, page: Page) -> list[Cookie]:
        """Register every cookie value as a secret, so no artifact can carry it."""
        cookies = page.context.cookies()
        for cookie in cookies:
            self.redactor.add(cookie.get("value"))
        return cookies

    def _signed_out_marker(self) -> str:
        return self.profile.signed_in.signed_out_indicator or self.profile.sign_in.username

    # -- protocol ----------------------------------------------------------------------------
    def sign_in(self, page: Page, account: Account) -> SignInOutcome:
        set_cookies: list[str] = []

        def collect(response: Response) -> None:
            for header in response.headers_array():
                if header["name"].lower() == "set-cookie":
                    set_cookies.extend(redact_set_cookie(v) for v in header["value"].split("\n"))

        page.on("response", collect)
        try:
            outcome = self._sign_in(page, account)
        finally:
            page.remove_listener("response", collect)
        return replace(outcome, set_cookie_headers=set_cookies)

    def _sign_in(self, page: Page, account: Account) -> SignInOutcome:
        form = self.profile.sign_in
        self._goto(page, form.url)
        username = page.locator(form.username).first
        try:
            username.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(
                f"sign-in form not found: no visible {form.username!r} at {page.url}"
            ) from None
        username.fill(account.username)
        if form.next_button:
            page.locator(form.next_button).first.click(timeout=self.timeout_ms)
        password = page.locator(form.password).first
        try:
            password.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(
                f"password field {form.password!r} not found at {page.url}"
            ) from None
        password.fill(account.password.get_secret_value())
        before = page.context.cookies()
        page.locator(form.submit).first.click(timeout=self.timeout_ms)

        indicator = page.locator(self.profile.signed_in.indicator).first
        outcome = indicator
        if form.error:
            outcome = indicator.or_(page.locator(form.error).first)
        if self.profile.mfa is not None:
            outcome = outcome.or_(page.locator(self.profile.mfa.code).first)
        try:
            outcome.first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            detail = "no signed-in indicator appeared after submitting the form"
            return SignInOutcome(False, detail, before, self._remember_cookie_values(page))
        if self.asks_second_factor(page):
            if account.totp_secret is None:
                detail = "the portal asks for a second factor; the profile gives no totp_secret"
                return SignInOutcome(False, detail, before, self._remember_cookie_values(page))
            if self.complete_second_factor(page, account) != "signed_in":
                detail = "the portal refused the second factor (a fresh one-time code)"
                return SignInOutcome(False, detail, before, self._remember_cookie_values(page))
        after = self._remember_cookie_values(page)
        if indicator.is_visible():
            return SignInOutcome(True, f"signed in as {account.username}", before, after)
        message = page.locator(form.error).first.inner_text() if form.error else ""
        detail = f"the portal refused the sign-in: {message.strip()[:200]}"
        return SignInOutcome(False, detail, before, after, error_message=message.strip())

    def is_signed_in(self, page: Page) -> bool:
        response = self._goto(page, self.profile.signed_in.url)
        self._remember_cookie_values(page)
        if response is not None and response.status in (401, 403):
            return False
        indicator = page.locator(self.profile.signed_in.indicator).first
        signed_out = page.locator(self._signed_out_marker()).first
        try:
            indicator.or_(signed_out).first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(
                f"{page.url} showed neither the signed-in indicator nor the sign-in form"
            ) from None
        return indicator.is_visible()

    def sign_out(self, page: Page) -> None:
        out = self.profile.sign_out
        if out.url:
            self._goto(page, out.url)
        else:
            assert out.control is not None
            if not page.locator(out.control).first.is_visible():
                self._goto(page, self.profile.signed_in.url)
            if out.menu:
                page.locator(out.menu).first.click(timeout=self.timeout_ms)
            control = page.locator(out.control).first
            try:
                control.click(timeout=self.timeout_ms)
            except PlaywrightTimeout:
                raise Inconclusive(f"sign-out control {out.control!r} not found") from None
        try:
            page.locator(self.profile.signed_in.indicator).first.wait_for(
                state="hidden", timeout=self.timeout_ms
            )
            page.wait_for_load_state("load", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive("the signed-in indicator stayed visible after signing out") from None

    def open_protected(self, page: Page, protected: ProtectedPage) -> PageView:
        response = self._goto(page, protected.url)
        signed_in = page.locator(self.profile.signed_in.indicator).first.is_visible()
        data_visible = page.locator(protected.patient_data).first.is_visible()
        return PageView(
            name=protected.name,
            status=response.status if response else None,
            final_url=page.url,
            signed_in=signed_in,
            patient_data_visible=data_visible,
        )

    def open_sessions_page(self, page: Page) -> tuple[int | None, int | None]:
        """Open the active-sessions page; returns (active sessions, recent sign-ins) listed."""
        sessions = self.profile.sessions_page
        if sessions is None:
            raise Inconclusive("the profile has no sessions_page")
        self._goto(page, sessions.url)
        try:
            page.locator(sessions.end_others).first.wait_for(
                state="visible", timeout=self.timeout_ms
            )
        except PlaywrightTimeout:
            raise Inconclusive(f"no {sessions.end_others!r} on {page.url}") from None
        active = (
            page.locator(sessions.active_sessions).count() if sessions.active_sessions else None
        )
        recent = (
            page.locator(sessions.recent_sign_ins).count() if sessions.recent_sign_ins else None
        )
        return active, recent

    def end_other_sessions(self, page: Page) -> None:
        sessions = self.profile.sessions_page
        if sessions is None:
            raise Inconclusive("the profile has no sessions_page")
        if not page.locator(sessions.end_others).first.is_visible():
            self.open_sessions_page(page)
        with page.expect_navigation(wait_until="load", timeout=self.timeout_ms):
            page.locator(sessions.end_others).first.click(timeout=self.timeout_ms)
            if sessions.confirm:
                page.locator(sessions.confirm).first.click(timeout=self.timeout_ms)

    def shows_patient_data(self, page: Page, account: Account) -> bool:
        """Whether the page currently shown holds any patient data or the patient's name."""
        for protected in self.profile.protected_pages:
            if page.locator(protected.patient_data).first.is_visible():
                return True
        if account.display_name:
            try:
                body = page.locator("body").inner_text(timeout=self.timeout_ms)
            except PlaywrightError:
                return False
            return account.display_name in body
        return False


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def load_driver(profile: Profile, redactor: Redactor) -> PortalDriver:
    """Build the driver the profile names (``module:Class``)."""
    module_name, _, class_name = profile.driver.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ProfileError(
            "profile", f"cannot load driver {profile.driver!r}: {exc}", field="driver"
        ) from None
    driver: PortalDriver = cls(profile, redactor)
    return driver
