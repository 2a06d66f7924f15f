"""AUTH_LOCKOUT's probe in the browser: the sign-ins ``LockoutSequence`` asks for, made
through the portal driver in a background probe's own page.

The order of attempts is portal/lockout_probe.py's and the verdict scanners/lockout.py's; this
module only signs in (and out after a success) and reports what the portal showed.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr

from portal.background import ProbeContext
from portal.errors import Inconclusive
from portal.lockout_probe import LockoutSequence, SignInAnswer
from portal.profile import Profile
from portal.profile_sections import Account
from scanners.enumeration import unknown_name_like
from scanners.lockout import LockoutMeasurement, Who


def _lockout_account(profile: Profile) -> tuple[Account | None, str]:
    account = profile.accounts.get("lockout")
    if account is None:
        return None, "the profile has no accounts.lockout (a dedicated account to lock out)"
    if not account.dedicated_test_account:
        return None, "accounts.lockout is not marked dedicated_test_account"
    return account, ""


class _BrowserSignIns:
    """The lockout probe's ``SignInTarget``: one browser signing in, and out after a success."""

    def __init__(self, probe: ProbeContext, account: Account) -> None:
        self.probe = probe
        wrong = SecretStr("Wrong-" + secrets.token_urlsafe(12))
        unknown = unknown_name_like(account.username, secrets.token_hex(6))
        self.accounts: dict[Who, Account] = {
            "right": account,
            "wrong": account.model_copy(update={"password": wrong}),
            "unknown": account.model_copy(update={"username": unknown, "password": wrong}),
        }
        self.wrong = wrong
        # Another real account's right password shows whether the lock is keyed on the client.
        self.other = probe.profile.accounts.get("patient")
        self.captcha = probe.profile.lockout.captcha
        self.page = probe.new_page()

    @property
    def has_other_account(self) -> bool:
        return self.other is not None

    def _account(self, who: Who) -> Account:
        if who == "other":
            if self.other is None:
                raise Inconclusive("the profile has no accounts.patient to try after the lock")
            return self.other
        if who == "fresh":
            fresh = unknown_name_like(self.accounts["right"].username, secrets.token_hex(6))
            return self.accounts["right"].model_copy(
                update={"username": fresh, "password": self.wrong}
            )
        return self.accounts[who]

    def _captcha_shown(self) -> bool:
        if not self.captcha:
            return False
        return self.page.locator(self.captcha).first.is_visible()

    def attempt(self, who: Who) -> SignInAnswer:
        try:
            outcome = self.probe.driver.sign_in(self.page, self._account(who))
        except Inconclusive:
            # A CAPTCHA in place of the form is an answer; any other missing form is not.
            if self._captcha_shown():
                return SignInAnswer(False, captcha=True)
            raise
        finally:
            self.probe.remember_cookies(self.page.context)
        if outcome.signed_in:
            self.probe.driver.sign_out(self.page)
            return SignInAnswer(True)
        return SignInAnswer(
            False, outcome.error_message, captcha=self._captcha_shown(), detail=outcome.detail
        )


def measure_lockout(probe: ProbeContext) -> LockoutMeasurement:
    profile = probe.profile
    ceiling = profile.thresholds.max_failures
    pause = profile.lockout.pause_seconds
    account, why_not = _lockout_account(profile)
    if account is None:
        return LockoutMeasurement(ceiling, pause, skipped=why_not)
    if not profile.sign_in.error:
        raise Inconclusive("AUTH_LOCKOUT needs sign_in.error, where a refused sign-in says so")

    def show(status: str) -> None:
        probe.status = status

    return LockoutSequence(
        _BrowserSignIns(probe, account),
        probe,
        ceiling=ceiling,
        minimum_seconds=profile.thresholds.lockout_seconds,
        period_seconds=profile.lockout.period_seconds,
        pause_seconds=pause,
        status=show,
    ).run()
