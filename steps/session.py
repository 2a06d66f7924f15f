"""Session management steps: sign-out, cookies."""

from __future__ import annotations

from playwright.sync_api import Cookie
from pytest_bdd import given, then, when

from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.plugin import Contexts, ControlRecord
from portal.profile import Profile
from scanners.cookies import CookieRecord, evaluate_session_cookies, with_declared_same_site
from scanners.result import Evaluation
from steps.common import SignedInVisit
from steps.outcome import conclude


@given("the patient's session cookies have been captured", target_fixture="captured_cookies")
def capture_session_cookies(visit: SignedInVisit, evidence: Evidence) -> list[Cookie]:
    if not visit.session_cookies:
        raise Inconclusive("no session cookie was identified after sign-in")
    evidence.text("session cookies captured (names only)", "\n".join(visit.session_cookie_names))
    return visit.session_cookies


@then("the captured session cookies no longer sign anyone in")
def replayed_cookies_refused(
    captured_cookies: list[Cookie],
    contexts: Contexts,
    driver: PortalDriver,
    control_record: ControlRecord,
) -> None:
    replay = contexts.new_page(cookies=list(captured_cookies))
    accepted = driver.is_signed_in(replay)
    control_record.measure(
        f"session cookies replayed in a fresh browser after sign-out: "
        f"{'still signed in' if accepted else 'refused'}"
    )
    assert not accepted, (
        "the server still accepts the session after sign-out: replaying the captured "
        "session cookies in a fresh browser shows the patient signed in"
    )


@then("the browser no longer holds the captured session cookies")
def browser_dropped_cookies(
    visit: SignedInVisit, captured_cookies: list[Cookie], control_record: ControlRecord
) -> None:
    held = {(c.get("name"), c.get("value")) for c in visit.page.context.cookies()}
    kept = sorted(
        str(c.get("name")) for c in captured_cookies if (c.get("name"), c.get("value")) in held
    )
    control_record.measure(f"session cookies left in the browser after sign-out: {len(kept)}")
    assert not kept, f"sign-out left these session cookies in the browser: {', '.join(kept)}"


@then("going back in the browser shows no patient data")
def back_shows_nothing(
    visit: SignedInVisit, driver: PortalDriver, profile: Profile, control_record: ControlRecord
) -> None:
    page = visit.page
    page.go_back(wait_until="load")
    shown = driver.shows_patient_data(page, profile.patient)
    control_record.measure(
        f"Back after sign-out: {'patient data shown' if shown else 'no patient data'}"
    )
    assert not shown, f"pressing Back after sign-out shows patient data ({page.url})"
    control_record.reason = (
        "sign-out ended the session on the server, expired the cookie and Back shows no data"
    )


@when("the cookies the portal set at sign-in are inspected", target_fixture="cookie_evaluation")
def inspect_cookies(visit: SignedInVisit, evidence: Evidence) -> Evaluation:
    records = with_declared_same_site(
        [CookieRecord.from_playwright(dict(c)) for c in visit.outcome.cookies_after],
        visit.outcome.set_cookie_headers,
    )
    evidence.text(
        "Set-Cookie headers at sign-in (values withheld)",
        "\n".join(visit.outcome.set_cookie_headers),
    )
    evidence.json(
        "cookie attributes (values withheld)",
        [{k: v for k, v in vars(r).items()} for r in records],
    )
    return evaluate_session_cookies(records, visit.session_cookie_names)


@then("every session cookie is Secure, HttpOnly and SameSite Lax or Strict")
def cookies_are_hardened(
    cookie_evaluation: Evaluation, control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(cookie_evaluation, control_record, evidence, "cookie findings")
