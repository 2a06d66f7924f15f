"""Steps every area shares: reaching the portal, signing in and out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from playwright.sync_api import Cookie, Page, Response
from playwright.sync_api import Error as PlaywrightError
from pytest_bdd import given, then, when

from portal.driver import PortalDriver, SignInOutcome
from portal.errors import Inconclusive
from portal.plugin import ControlRecord, Preflight
from portal.profile import Account, Profile
from scanners.cookies import session_cookie_names
from scanners.http import HttpProbe, fetch, make_ssl_context


@dataclass(frozen=True)
class SignedInVisit:
    """A patient's signed-in browser page and the session cookies sign-in set."""

    page: Page
    outcome: SignInOutcome
    session_cookie_names: list[str]
    session_cookies: list[Cookie] = field(repr=False)


def signed_in_outcome(driver: PortalDriver, page: Page, account: Account) -> SignInOutcome:
    """Sign in for a check that needs it; a sign-in that fails leaves the check inconclusive."""
    outcome = driver.sign_in(page, account)
    if not outcome.signed_in:
        raise Inconclusive(f"the test account cannot sign in: {outcome.detail}")
    return outcome


def session_cookies_of(profile: Profile, outcome: SignInOutcome) -> list[str]:
    """The session cookie names in use after a sign-in.

    Named in the profile: those the browser holds. Otherwise: the cookies sign-in set or changed.
    """
    if profile.session_cookies:
        held = {c.get("name") for c in outcome.cookies_after}
        return [name for name in profile.session_cookies if name in held]
    return session_cookie_names(list(outcome.cookies_before), list(outcome.cookies_after))


BODY_TEXT_TIMEOUT_MS = 2000


# -- Replays and their positive controls (see docs/positive-controls.md) -----------------------


@dataclass(frozen=True)
class Replay:
    """Whether a page's cookies sign in; ``refusal`` names a throttle or block page met."""

    signed_in: bool
    refusal: str = ""


def refusal_shown(page: Page, profile: Profile, response: Response | None) -> str:
    """The throttle or block page ``page`` shows instead of the portal's answer, if any."""
    try:
        text = page.locator("body").inner_text(timeout=BODY_TEXT_TIMEOUT_MS)
    except PlaywrightError:
        text = ""
    refusal = profile.rate_limits.classify(
        response.status if response is not None else None,
        text,
        response.headers.get("retry-after") if response is not None else None,
    )
    return refusal.reason if refusal is not None else ""


@contextmanager
def navigation_answers(page: Page) -> Iterator[list[Response]]:
    """The portal's answers to the page's own navigations while the block runs."""
    answers: list[Response] = []

    def keep(response: Response) -> None:
        if response.frame == page.main_frame and response.request.is_navigation_request():
            answers.append(response)

    page.on("response", keep)
    try:
        yield answers
    finally:
        page.remove_listener("response", keep)


def check_session(driver: PortalDriver, page: Page, profile: Profile) -> Replay:
    """Open the signed-in page with ``page``'s cookies: signed in, or why not."""
    with navigation_answers(page) as answers:
        signed_in = driver.is_signed_in(page)
    if signed_in:
        return Replay(True)
    return Replay(False, refusal_shown(page, profile, answers[-1] if answers else None))


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
