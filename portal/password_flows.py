"""Driver methods for changing and resetting passwords, from the profile's ``passwords`` section.

Mixed into ``portal.driver.SelectorDriver``. Client-side form validation is switched off before
submitting, because what counts is what the server accepts: an attacker posts the form without
the browser's help. Every wait is bounded by the profile's navigation timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.errors import Inconclusive

if TYPE_CHECKING:
    from playwright.sync_api import Response

    from portal.profile import PasswordChangeForm, PasswordReset, Profile

PortalVerdict = Literal["accepted", "refused"]

_NO_VALIDATION = "element => { if (element.form) element.form.noValidate = true; }"
_PASTE_PROBE = """element => {
    const data = new DataTransfer();
    data.setData('text/plain', 'x');
    const event = new ClipboardEvent('paste', {clipboardData: data, bubbles: true,
                                              cancelable: true});
    return element.dispatchEvent(event);
}"""


@dataclass(frozen=True)
class FormAnswer:
    """What the portal answered to a submitted password form. ``message`` is its visible text."""

    verdict: PortalVerdict
    message: str = ""
    asked_current: bool = True


class PasswordFlows:
    """Change-password and reset-link flows; needs ``profile``, ``timeout_ms`` and ``_goto``."""

    profile: Profile
    timeout_ms: float

    def _goto(self, page: Page, url: str) -> Response | None:  # pragma: no cover - see driver
        raise NotImplementedError

    def _change_form(self) -> PasswordChangeForm:
        if self.profile.passwords is None:
            raise Inconclusive("the profile has no 'passwords' section")
        return self.profile.passwords.change

    def _reset_flow(self) -> PasswordReset:
        if self.profile.passwords is None or self.profile.passwords.reset is None:
            raise Inconclusive("the profile has no 'passwords.reset' section")
        return self.profile.passwords.reset

    def _wait_visible(self, page: Page, selector: str, what: str) -> None:
        try:
            page.locator(selector).first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(f"{what}: no visible {selector!r} at {page.url}") from None

    def _answer(self, page: Page, success: str, refusals: list[str]) -> tuple[PortalVerdict, str]:
        accepted = page.locator(success).first
        outcome = accepted
        for selector in refusals:
            outcome = outcome.or_(page.locator(selector).first)
        try:
            outcome.first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(
                f"after submitting, neither {success!r} nor a refusal appeared at {page.url}"
            ) from None
        if accepted.is_visible():
            return "accepted", accepted.inner_text().strip()[:300]
        for selector in refusals:
            shown = page.locator(selector).first
            if shown.is_visible():
                return "refused", shown.inner_text().strip()[:300]
        return "refused", ""

    def open_change_form(self, page: Page) -> None:
        form = self._change_form()
        self._goto(page, form.url)
        self._wait_visible(page, form.new_password, "change-password form")

    def change_password(self, page: Page, current: str | None, new: str) -> FormAnswer:
        """Submit the change form; ``current=None`` leaves the current-password field empty."""
        form = self._change_form()
        self.open_change_form(page)
        current_field = page.locator(form.current_password).first
        asked = current_field.is_visible()
        if asked and current is not None:
            current_field.fill(current)
        new_field = page.locator(form.new_password).first
        new_field.fill(new)
        if form.confirm_password:
            page.locator(form.confirm_password).first.fill(new)
        new_field.evaluate(_NO_VALIDATION)
        page.locator(form.submit).first.click(timeout=self.timeout_ms)
        verdict, message = self._answer(page, form.success, [form.error])
        return FormAnswer(verdict, message, asked)

    def password_guidance(self, page: Page) -> str:
        """The guidance text the change form shows (call after a refused weak password)."""
        form = self._change_form()
        selector = form.guidance or form.error
        shown = page.locator(selector).first
        return shown.inner_text().strip() if shown.is_visible() else ""

    def paste_allowed(self, page: Page) -> bool:
        """Whether the new-password field lets a paste event through (opens the change form)."""
        form = self._change_form()
        self.open_change_form(page)
        return bool(page.locator(form.new_password).first.evaluate(_PASTE_PROBE))

    def request_reset(self, page: Page, identifier: str) -> str:
        flow = self._reset_flow()
        self._goto(page, flow.request_url)
        self._wait_visible(page, flow.identifier, "reset request form")
        page.locator(flow.identifier).first.fill(identifier)
        page.locator(flow.identifier).first.evaluate(_NO_VALIDATION)
        page.locator(flow.submit).first.click(timeout=self.timeout_ms)
        self._wait_visible(page, flow.requested, "reset request confirmation")
        return page.locator(flow.requested).first.inner_text().strip()

    def open_reset_link(self, page: Page, link: str) -> bool:
        """Open a reset link; True when it offers to set a new password."""
        flow = self._reset_flow()
        self._goto(page, link)
        form = page.locator(flow.new_password).first
        try:
            form.or_(page.locator(flow.invalid_link).first).first.wait_for(
                state="visible", timeout=self.timeout_ms
            )
        except PlaywrightTimeout:
            raise Inconclusive(
                "the reset link showed neither a new-password form nor an invalid-link message"
            ) from None
        return form.is_visible()

    def complete_reset(self, page: Page, new: str) -> FormAnswer:
        """Set a new password on the page an open reset link shows."""
        flow = self._reset_flow()
        field = page.locator(flow.new_password).first
        field.fill(new)
        if flow.confirm_password:
            page.locator(flow.confirm_password).first.fill(new)
        field.evaluate(_NO_VALIDATION)
        page.locator(flow.submit_new_password).first.click(timeout=self.timeout_ms)
        refusals = [flow.invalid_link] + ([flow.error] if flow.error else [])
        verdict, message = self._answer(page, flow.success, refusals)
        return FormAnswer(verdict, message)
