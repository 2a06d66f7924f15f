"""Changing a dedicated test account's password, and always putting the original back.

The password checks (steps/passwords.py) submit their candidates through ``PasswordKeeper``:
every password it sets is registered with the redactor before it is typed and kept in the run's
ledger (RESET_MAIL looks for them in e-mails), a throttled submission is waited out instead of
being read as a refusal, and the account's original password is put back when a scenario ends,
so repeated audits start from the same state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from playwright.sync_api import Page
from pydantic import SecretStr

from portal.abilities import password_flows_of
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.pacing import Pacer
from portal.password_flows import PasswordAnswer
from portal.profile import Profile
from portal.profile_credentials import Passwords
from portal.profile_sections import Account, RateLimits
from scanners.password_candidates import Candidate, CandidateContext
from scanners.passwords import Trial
from scanners.refusals import Refusal


def passwords_section(profile: Profile) -> Passwords:
    if profile.passwords is None:
        raise Inconclusive(
            "the profile has no 'passwords' section (add it, or list the control under "
            "out_of_scope with the reason)"
        )
    return profile.passwords


def candidate_context(profile: Profile, account: Account) -> CandidateContext:
    section = passwords_section(profile)
    thresholds = profile.thresholds
    return CandidateContext(
        username=account.username,
        display_name=account.display_name,
        context_words=tuple(section.context_words),
        min_length=thresholds.min_length_with_mfa
        if section.mfa_enforced
        else thresholds.min_length_without_mfa,
        min_score=thresholds.min_zxcvbn_score,
        year=dt.date.today().year,
    )


def with_password(account: Account, password: str) -> Account:
    return account.model_copy(update={"password": SecretStr(password)})


class PasswordKeeper:
    """Changes one account's password and always puts the original back.

    Submissions are paced as the profile asks (``rate_limits.pacing_seconds.password_change``);
    a throttled submission (HTTP 429, a "too many requests" page or message) is waited out and
    retried within the budget, and is never read as the portal refusing the password.
    """

    def __init__(
        self,
        driver: PortalDriver,
        account: Account,
        redactor: Redactor,
        ledger: set[str],
        new_page: Callable[[], Page],
        limits: RateLimits,
    ) -> None:
        self.driver = driver
        self.flows = password_flows_of(driver)
        self.account = account
        self.redactor = redactor
        self.ledger = ledger
        self.new_page = new_page
        self.limits = limits
        self.pacer = Pacer(limits.pacing("password_change"), limits.budget_seconds)
        self.original = account.password.get_secret_value()
        self.current = self.original

    def remember(self, password: str) -> None:
        """A password this check sets: masked in every artifact, looked for in every e-mail."""
        self.redactor.add(password)
        self.ledger.add(password)

    def sign_in(self, page: Page, password: str | None = None) -> bool:
        typed = password or self.current
        # Also a password never set, such as a truncated one: it is typed, so it is a secret.
        self.redactor.add(typed)
        outcome = self.driver.sign_in(page, with_password(self.account, typed))
        return outcome.signed_in

    def state(self) -> str:
        if self.current == self.original:
            return "the account keeps its original password"
        return "the account's password was changed by this check and is being put back"

    def _throttle(self, page: Page, message: str = "") -> Refusal | None:
        """A throttle shown by the last page the portal served, or by the form's message."""
        served = self.driver.pages.last(page)
        if served is not None and served.refusal() is not None:
            return served.refusal()
        return self.limits.classify(None, message)

    def _submit(self, page: Page, given: str | None, new: str, what: str) -> PasswordAnswer:
        while True:
            self.pacer.turn()
            try:
                answer = self.flows.change_password(page, given, new)
                refusal = self._throttle(page, answer.message)
            except Inconclusive:
                refusal = self._throttle(page)
                if refusal is None:
                    raise
            if refusal is None:
                return answer
            if not refusal.throttled or not self.pacer.back_off(refusal):
                raise Inconclusive(
                    f"{what}: {refusal.reason}; {self.pacer.describe() or 'not retried'}; "
                    f"{self.state()}"
                )

    def change(self, page: Page, new: str, current: str | None = "") -> PasswordAnswer:
        """Submit a change; ``current=""`` means the password the account has now."""
        self.remember(new)
        given = self.current if current == "" else current
        self.redactor.add(given)  # a wrong current password is typed too
        try:
            answer = self._submit(page, given, new, "changing the password")
        except Inconclusive:
            # Some portals sign the user out after a change: sign in again and retry once.
            if self.driver.is_signed_in(page) or not self.sign_in(page):
                raise
            answer = self._submit(page, given, new, "changing the password")
        if answer.verdict == "accepted":
            self.current = new
        return answer

    def submit(self, page: Page, candidate: Candidate) -> Trial:
        answer = self.change(page, candidate.value)
        return Trial(candidate, answer.verdict, answer.message)

    def restore(self) -> None:
        if self.current == self.original:
            return
        page = self.new_page()
        if not self.sign_in(page):
            raise Inconclusive(
                f"could not sign in to {self.account.username} to put its password back"
            )
        answer = self._submit(page, self.current, self.original, "putting the password back")
        if answer.verdict != "accepted":
            raise Inconclusive(
                f"the portal refused to put {self.account.username}'s original password back: "
                f"{answer.message[:200]}"
            )
        self.current = self.original
