"""The preflight: the test account signs in and out once before any browser scenario relies on
it; a portal where that does not work leaves every browser scenario inconclusive."""

from __future__ import annotations

from dataclasses import dataclass

from playwright.sync_api import Browser

from portal.abilities import SignInOutcome
from portal.driver import PortalDriver, SignOutIneffective
from portal.errors import Inconclusive
from portal.profile import Profile


@dataclass(frozen=True)
class Preflight:
    outcome: SignInOutcome
    signed_out: bool
    sign_out_problem: str = ""


def run_preflight(browser: Browser, profile: Profile, driver: PortalDriver) -> Preflight:
    """Sign the patient account in and out once, in a context of its own."""
    context = browser.new_context()
    context.set_default_timeout(profile.timeouts.navigation_seconds * 1000)
    try:
        page = context.new_page()
        outcome = driver.sign_in(page, profile.patient)
        signed_out = False
        if outcome.signed_in:
            try:
                driver.sign_out(page)
            except SignOutIneffective as exc:
                return Preflight(outcome, False, str(exc))
            signed_out = not driver.is_signed_in(page)
        return Preflight(outcome, signed_out)
    finally:
        context.close()


def require_usable(preflight: Preflight) -> Preflight:
    """The preflight, when it worked; else Inconclusive saying what did not."""
    if not preflight.outcome.signed_in:
        raise Inconclusive(
            f"preflight failed, the test account cannot sign in: {preflight.outcome.detail}"
        )
    if not preflight.signed_out:
        why = f": {preflight.sign_out_problem}" if preflight.sign_out_problem else ""
        raise Inconclusive(f"preflight failed: the test account could not sign out{why}")
    return preflight
