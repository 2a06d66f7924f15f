"""Portal drivers: how the suite uses a portal, whatever its HTML looks like.

``PortalDriver`` is the small protocol steps rely on; the abilities it is made of, and the
second-factor and password abilities some controls need on top, are in ``portal.abilities``.
``SelectorDriver`` has them all, from the profile's selectors, and copes with server-rendered
forms and single-page apps alike: it waits on navigation, network and selectors with the
profile's bounded timeouts, never on fixed sleeps. A portal with an unusual flow names its own
driver in the profile (``driver: package.module:Class``), usually a subclass; a driver without
the sign-in ability is refused when it is loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Protocol

from playwright.sync_api import Cookie, Page, Response
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.abilities import (
    SIGN_IN,
    PageView,
    PasswordFlowAbility,
    SecondFactorAbility,
    SignInAbility,
    SignInOutcome,
    lacks,
)
from portal.browser_errors import PageWatch, describe_browser_error
from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.password_flows import PasswordFlows
from portal.profile import Profile
from portal.profile_file import ProfileError
from portal.profile_sections import Account, ProtectedPage
from portal.second_factor import SecondFactorMixin
from scanners.http import redact_set_cookie

# What a CAPTCHA looks like on a page: the widgets' own frames and containers (reCAPTCHA,
# hCaptcha, Cloudflare Turnstile) and any element whose attributes say captcha. Checked only
# where an expected page did not appear, so a word on an ordinary page cannot mislead.
CAPTCHA_SELECTORS = (
    "iframe[src*='recaptcha' i]",
    "iframe[src*='hcaptcha' i]",
    "iframe[src*='challenges.cloudflare.com' i]",
    "iframe[title*='captcha' i]",
    ".g-recaptcha",
    ".h-captcha",
    ".cf-turnstile",
    "[id*='captcha' i]",
    "[class*='captcha' i]",
    "[name*='captcha' i]",
    "[aria-label*='captcha' i]",
    "text=/captcha/i",
)
CAPTCHA_AFTER_SIGN_IN = (
    "the portal asked for a CAPTCHA after sign-in; an automated audit cannot pass it"
)


class SignOutIneffective(Inconclusive):  # noqa: N818 - an audit outcome, like Inconclusive
    """The sign-out control was used, yet the page still shows the patient signed in.

    Inconclusive for checks that need a signed-out browser; SESS_LOGOUT catches it and judges
    whether the session really survived (its replay), since that is the failure it exists for.
    """


class PortalDriver(SignInAbility, Protocol):
    """What ``load_driver`` returns: the sign-in ability, checked when the driver is loaded.
    The other abilities are reached through ``portal.abilities`` (``second_factor_of`` ...), so
    a driver without one makes only its controls inconclusive, with the reason."""


class SelectorDriver(SecondFactorMixin, PasswordFlows):
    """The generic driver: everything it needs comes from the profile."""

    pages: PageWatch

    def __init__(self, profile: Profile, redactor: Redactor):
        self.profile = profile
        self.redactor = redactor
        self.timeout_ms = profile.timeouts.navigation_seconds * 1000
        self.pages = PageWatch()
        self._watched: set[int] = set()

    # -- helpers ---------------------------------------------------------------------------
    def _goto(self, page: Page, url: str) -> Response | None:
        target = self.profile.url(url)
        self._watch(page)
        try:
            return page.goto(target, wait_until="load", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            seconds = self.timeout_ms / 1000
            raise Inconclusive(f"{target} did not load within {seconds:.0f} s") from None
        except PlaywrightError as exc:
            raise Inconclusive(describe_browser_error(exc, doing=f"opening {target}")) from None

    def _watch(self, page: Page) -> None:
        """Remember the last page the portal serves in this page's context (for errors)."""
        key = id(page.context)
        if key not in self._watched:
            self._watched.add(key)
            self.pages.watch(page.context)

    def _where(self, page: Page) -> str:
        """The page's address and the portal's last answer, for an error message."""
        served = self.pages.last(page)
        if served is None:
            return f"at {page.url}"
        refusal = served.refusal()
        return f"at {page.url}; {served.describe()}" + (f": {refusal.reason}" if refusal else "")

    def _click(self, page: Page, selector: str, doing: str) -> None:
        try:
            page.locator(selector).first.click(timeout=self.timeout_ms)
        except PlaywrightError as exc:
            raise Inconclusive(
                describe_browser_error(exc, doing=doing, url=page.url, served=self.pages.last(page))
            ) from None

    def _remember_cookie_values(self, page: Page) -> list[Cookie]:
        """Register every cookie value as a secret, so no artifact can carry it."""
        cookies = page.context.cookies()
        for cookie in cookies:
            self.redactor.add(cookie.get("value"))
        return cookies

    def _signed_out_marker(self) -> str:
        return self.profile.signed_in.signed_out_indicator or self.profile.sign_in.username

    def captcha_shown(self, page: Page) -> bool:
        """Whether the page shows a CAPTCHA (a widget, or the profile's lockout.captcha)."""
        selectors = list(CAPTCHA_SELECTORS)
        if self.profile.lockout.captcha:
            selectors.insert(0, self.profile.lockout.captcha)
        for selector in selectors:
            try:
                if page.locator(selector).first.is_visible():
                    return True
            except PlaywrightError:
                continue
        return False

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

    def _open_sign_in_form(self, page: Page) -> None:
        """Open the sign-in form; a page that is already signed in is signed out first."""
        form = self.profile.sign_in
        username = page.locator(form.username).first
        indicator = page.locator(self.profile.signed_in.indicator).first
        for attempt in (1, 2):
            self._goto(page, form.url)
            try:
                username.or_(indicator).first.wait_for(state="visible", timeout=self.timeout_ms)
            except PlaywrightTimeout:
                raise Inconclusive(
                    f"sign-in form not found: no visible {form.username!r} ({self._where(page)})"
                ) from None
            if username.is_visible():
                return
            if attempt == 1:
                # Already signed in: the portal sent the sign-in page on to a signed-in page.
                self.sign_out(page)
        raise Inconclusive(
            f"the sign-in page shows a signed-in page even after signing out ({self._where(page)})"
        )

    def _sign_in(self, page: Page, account: Account) -> SignInOutcome:
        form = self.profile.sign_in
        self._open_sign_in_form(page)
        page.locator(form.username).first.fill(account.username)
        if form.next_button:
            self._click(page, form.next_button, "going on from the username to the password")
        password = page.locator(form.password).first
        try:
            password.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(
                f"password field {form.password!r} not found ({self._where(page)})"
            ) from None
        password.fill(account.password.get_secret_value())
        before = page.context.cookies()
        self._click(page, form.submit, "submitting the sign-in form")

        indicator = page.locator(self.profile.signed_in.indicator).first
        outcome = indicator
        if form.error:
            outcome = indicator.or_(page.locator(form.error).first)
        if self.profile.mfa is not None:
            outcome = outcome.or_(page.locator(self.profile.mfa.code).first)
        try:
            outcome.first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            served = self.pages.last(page)
            refusal = served.refusal() if served else None
            if refusal:
                detail = f"{refusal.reason} after submitting the sign-in form"
            elif self.captcha_shown(page):
                detail = f"{CAPTCHA_AFTER_SIGN_IN} ({self._where(page)})"
            else:
                detail = (
                    "no signed-in indicator appeared after submitting the form "
                    f"({self._where(page)})"
                )
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
            if self.captcha_shown(page):
                raise Inconclusive(
                    f"{page.url} asked for a CAPTCHA instead of showing the signed-in page or the "
                    "sign-in form; an automated audit cannot pass it"
                ) from None
            raise Inconclusive(
                f"{page.url} showed neither the signed-in indicator nor the sign-in form"
            ) from None
        return indicator.is_visible()

    def sign_out(self, page: Page) -> None:
        out = self.profile.sign_out
        if out.url:
            self._goto(page, out.url)
        elif out.control is not None and not isinstance(out.control, str):
            # Steps (a menu, a confirmation page): run from a page showing the first one's
            # element, unless the steps open their own page first.
            first = out.control[0].selector
            if first is not None and not page.locator(first).first.is_visible():
                self._goto(page, self.profile.signed_in.url)
            self.run_steps(page, out.control, name="sign_out.control")
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
        indicator = page.locator(self.profile.signed_in.indicator).first
        try:
            # Hidden while the next page loads proves nothing: a sign-out that sends the patient
            # back to a signed-in page hides the indicator for a moment too. So: hidden, loaded,
            # and still hidden on the page it loaded.
            indicator.wait_for(state="hidden", timeout=self.timeout_ms)
            page.wait_for_load_state("load", timeout=self.timeout_ms)
            indicator.wait_for(state="hidden", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            if indicator.is_visible():
                raise SignOutIneffective(
                    "the portal's sign-out was used, but the signed-in indicator stayed visible "
                    f"after signing out ({self._where(page)})"
                ) from None
            raise Inconclusive(
                f"the page after signing out did not finish loading ({self._where(page)})"
            ) from None

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
        marker = self.page_marker(sessions.end_others)
        try:
            page.locator(marker).first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(f"no {marker!r} on {page.url}") from None
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
        if not page.locator(self.page_marker(sessions.end_others)).first.is_visible():
            self.open_sessions_page(page)
        if not isinstance(sessions.end_others, str):
            self.run_steps(page, sessions.end_others, name="sessions_page.end_others")
            return
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


# The default driver has every ability the steps use: mypy checks these assignments.
_SELECTOR_DRIVER_ABILITIES: tuple[
    type[PortalDriver], type[SecondFactorAbility], type[PasswordFlowAbility]
] = (SelectorDriver, SelectorDriver, SelectorDriver)


def load_driver(profile: Profile, redactor: Redactor) -> PortalDriver:
    """Build the driver the profile names (``module:Class``); one that cannot even sign in is
    a bad profile. Abilities only some controls need are looked at by ``portal.abilities``."""
    module_name, _, class_name = profile.driver.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ProfileError(
            "profile", f"cannot load driver {profile.driver!r}: {exc}", field="driver"
        ) from None
    driver: PortalDriver = cls(profile, redactor)
    problem = lacks(driver, SIGN_IN)
    if problem:
        raise ProfileError("profile", problem, field="driver")
    return driver
