"""Steps every area shares: reaching the portal, signing in and out."""

from __future__ import annotations

from dataclasses import dataclass, field

from playwright.sync_api import Cookie, Page
from pytest_bdd import given, then, when

from portal.abilities import SignInOutcome
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.preflight import Preflight
from portal.profile import Profile
from portal.run import ControlRecord
from portal.session_checks import signed_in_outcome
from scanners.cookies import session_cookie_names
from scanners.http import HttpProbe, fetch, make_ssl_context


@dataclass(frozen=True)
class SignedInVisit:
    """A patient's signed-in browser page and the session cookies sign-in set."""

    page: Page
    outcome: SignInOutcome
    session_cookie_names: list[str]
    session_cookies: list[Cookie] = field(repr=False)


def session_cookies_of(profile: Profile, outcome: SignInOutcome) -> list[str]:
    """The session cookie names in use after a sign-in.

    Named in the profile: those the browser holds. Otherwise: the cookies sign-in set or changed.
    """
    if profile.session_cookies:
        held = {c.get("name") for c in outcome.cookies_after}
        return [name for name in profile.session_cookies if name in held]
    return session_cookie_names(list(outcome.cookies_before), list(outcome.cookies_after))


@given("the portal answers over HTTPS", target_fixture="target_probe")
def portal_answers(profile: Profile) -> HttpProbe:
    probe = fetch(
        profile.url(profile.sign_in.url),
        ssl_context=make_ssl_context(profile.tls.ca_file),
        timeout=profile.timeouts.reachability_seconds,
        kind="page",
    )
    if probe.error:
        raise Inconclusive(f"the portal did not answer at {probe.url}: {probe.error}")
    return probe


# PREFLIGHT: a failure here means the audit cannot use the portal, so it is inconclusive.
@when("the patient signs in", target_fixture="sign_in_outcome")
def patient_signs_in(page: Page, driver: PortalDriver, profile: Profile) -> SignInOutcome:
    return driver.sign_in(page, profile.patient)


@then("the patient is signed in")
def patient_is_signed_in(sign_in_outcome: SignInOutcome, control_record: ControlRecord) -> None:
    if not sign_in_outcome.signed_in:
        raise Inconclusive(f"the test account cannot sign in: {sign_in_outcome.detail}")
    control_record.measure(sign_in_outcome.detail)


@when("the patient signs out")
def patient_signs_out(page: Page, driver: PortalDriver) -> None:
    driver.sign_out(page)


@then("the patient is signed out")
def patient_is_signed_out(page: Page, driver: PortalDriver, control_record: ControlRecord) -> None:
    if driver.is_signed_in(page):
        raise Inconclusive("the test account is still signed in after signing out")
    control_record.measure("signed out")
    control_record.reason = "the test account signs in and out with the profile as written"


@given("the patient has signed in", target_fixture="visit")
def patient_has_signed_in(
    page: Page, driver: PortalDriver, profile: Profile, usable_portal: Preflight
) -> SignedInVisit:
    outcome = signed_in_outcome(driver, page, profile.patient)
    names = session_cookies_of(profile, outcome)
    cookies = [c for c in outcome.cookies_after if c.get("name") in names]
    return SignedInVisit(page, outcome, names, cookies)
