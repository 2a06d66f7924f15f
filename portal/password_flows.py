"""Driver methods for changing and resetting passwords, from the profile's ``passwords`` section.

Mixed into ``portal.driver.SelectorDriver``. Client-side form validation is switched off before
submitting, because what counts is what the server accepts: an attacker posts the form without
the browser's help. Every wait is bounded by the profile's navigation timeout. Every password
typed here is registered with the redactor before it is typed, whoever called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.errors import Inconclusive
from portal.flow_runner import FlowSteps

if TYPE_CHECKING:
    from playwright.sync_api import Response

    from portal.flows import Flow
    from portal.profile import Profile
    from portal.profile_credentials import PasswordChangeForm, PasswordReset

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
class PasswordAnswer:
    """What the portal answered to a submitted password form. ``message`` is its visible text."""

    verdict: PortalVerdict
    message: str = ""
    asked_current: bool = True


class PasswordFlows(FlowSteps):
    """Change-password and reset-link flows; needs ``profile``, ``timeout_ms`` and ``_goto``.

    The profile's ``submit`` buttons may be flows (see portal/flows.py), and
    ``passwords.change.before_form`` steps lead from the change page's URL to its form."""

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

    def _account_password(self) -> str | None:
        section = self.profile.passwords
        account = self.profile.accounts.get(section.account) if section else None
        return account.password.get_secret_value() if account else None

    def open_change_form(self, page: Page, current: str | None = None) -> bool:
        """Open the change form; True when ``before_form`` steps typed the current password.

        Those steps are given ``current`` (default: the account's password in the profile)."""
        form = self._change_form()
        self._goto(page, form.url)
        typed = False
        if form.before_form:
            given = self._account_password() if current is None else current
            done = self.run_steps(
                page,
                form.before_form,
                name="passwords.change.before_form",
                values={"current_password": given},
            )
            typed = "current_password" in done.filled
        self._wait_visible(page, form.new_password, "change-password form")
        return typed

    def _click_or_run(
        self, page: Page, control: str | Flow, name: str, values: Mapping[str, str | None]
    ) -> None:
        if isinstance(control, str):
            page.locator(control).first.click(timeout=self.timeout_ms)
        else:
            self.run_steps(page, control, name=name, values=values)

    def change_password(self, page: Page, current: str | None, new: str) -> PasswordAnswer:
        """Submit the change form; ``current=None`` leaves the current-password field empty
        (and types nothing where ``before_form`` re-authenticates)."""
        # Registered before anything is typed: a trace or step parameter never shows them.
        self.redactor.add(new)
        self.redactor.add(current)
        form = self._change_form()
        reauthenticated = self.open_change_form(page, "" if current is None else current)
        current_field = page.locator(form.current_password).first
        asked = reauthenticated or current_field.is_visible()
        if current_field.is_visible() and current is not None:
            current_field.fill(current)
        new_field = page.locator(form.new_password).first
        new_field.fill(new)
        if form.confirm_password:
            page.locator(form.confirm_password).first.fill(new)
        new_field.evaluate(_NO_VALIDATION)
        values = {"current_password": current or "", "new_password": new}
        self._click_or_run(page, form.submit, "passwords.change.submit", values)
        verdict, message = self._answer(page, form.success, [form.error])
        return PasswordAnswer(verdict, message, asked)

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
        self._click_or_run(page, flow.submit, "passwords.reset.submit", {})
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

    def complete_reset(self, page: Page, new: str) -> PasswordAnswer:
        """Set a new password on the page an open reset link shows."""
        self.redactor.add(new)
        flow = self._reset_flow()
        field = page.locator(flow.new_password).first
        field.fill(new)
        if flow.confirm_password:
            page.locator(flow.confirm_password).first.fill(new)
        field.evaluate(_NO_VALIDATION)
        values: dict[str, str | None] = {"new_password": new}
        self._click_or_run(
            page, flow.submit_new_password, "passwords.reset.submit_new_password", values
        )
        refusals = [flow.invalid_link] + ([flow.error] if flow.error else [])
        verdict, message = self._answer(page, flow.success, refusals)
        return PasswordAnswer(verdict, message)
