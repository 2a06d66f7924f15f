"""Session management steps: sign-out, cookies, timeouts, revoking, caching (the session ID's
own controls, fixation and tokens, are in ``steps.session_tokens``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from playwright.sync_api import Cookie, Page
from pytest_bdd import given, then, when

from portal.abilities import sessions_page_of
from portal.background import SlowProbes, slow_probe
from portal.contexts import Contexts
from portal.driver import PortalDriver, SignOutIneffective
from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.preflight import Preflight
from portal.profile import Profile
from portal.run import AuditRun, ControlRecord
from portal.session_checks import (
    check_session,
    navigation_answers,
    refusal_shown,
    signed_in_outcome,
)
from portal.session_probes import measure_absolute_timeout, measure_idle_timeout
from scanners.cookies import (
    CookieRecord,
    evaluate_cookies_dropped,
    evaluate_session_cookies,
    with_declared_same_site,
)
from scanners.header_policy import load_header_policy
from scanners.headers import evaluate_cache
from scanners.http import HttpProbe, redact_set_cookie
from scanners.result import Evaluation
from scanners.timeouts import (
    BackCheck,
    BusyMeasurement,
    IdleMeasurement,
    SessionEnding,
    evaluate_absolute,
    evaluate_back_after_sign_out,
    evaluate_idle,
    evaluate_session_ended,
    evaluate_session_listing,
)
from steps.common import SignedInVisit, session_cookies_of
from steps.outcome import conclude


@dataclass
class SessionControls:
    """Positive controls taken before the event a session scenario tests."""

    replay_before: bool | None = None
    back_url: str = ""
    back_data: bool | None = None
    # Set when the sign-out control was used but the page went on showing the patient signed
    # in: SESS_LOGOUT then judges by the replay whether the session really survived.
    sign_out_kept_page: str = ""


@pytest.fixture
def session_controls() -> SessionControls:
    return SessionControls()


def _remember_back_target(
    page: Page, driver: PortalDriver, profile: Profile, controls: SessionControls
) -> None:
    """Show the signed-in page sign-out starts from, and whether it shows patient data now."""
    if page.url.split("#")[0] != profile.url(profile.signed_in.url):
        page.goto(profile.url(profile.signed_in.url), wait_until="load")
    controls.back_url = page.url
    controls.back_data = driver.shows_patient_data(page, profile.patient)


def _fresh_session_signed_in(contexts: Contexts, driver: PortalDriver, profile: Profile) -> bool:
    """A new sign-in, checked the same way as a replay: does the check answer "signed in"?"""
    page = contexts.new_page()
    signed_in_outcome(driver, page, profile.patient)
    alive = check_session(driver, page, profile).signed_in
    contexts.finish(page.context)
    return alive


def _anonymous_signed_in(contexts: Contexts, driver: PortalDriver, profile: Profile) -> bool:
    """Negative control: a fresh browser without any cookie, checked the same way."""
    page = contexts.new_page()
    alive = driver.is_signed_in(page)
    contexts.finish(page.context)
    return alive


@given("the patient has signed in on a shared computer", target_fixture="visit")
def patient_signed_in_to_sign_out(
    page: Page, driver: PortalDriver, profile: Profile
) -> SignedInVisit:
    """Signed in for SESS_LOGOUT, which does not rest on the preflight's sign-out.

    The preflight signs out once and makes every other check inconclusive when that leaves the
    patient signed in; for SESS_LOGOUT a sign-out that does not end the session is the very
    failure it looks for, so it signs in by itself and judges the sign-out by the replay.
    """
    outcome = signed_in_outcome(driver, page, profile.patient)
    names = session_cookies_of(profile, outcome)
    cookies = [c for c in outcome.cookies_after if c.get("name") in names]
    return SignedInVisit(page, outcome, names, cookies)


@when("the patient signs out on the shared computer")
def patient_signs_out_on_shared_computer(
    page: Page, driver: PortalDriver, session_controls: SessionControls
) -> None:
    try:
        driver.sign_out(page)
    except SignOutIneffective as exc:
        # The control was found and used; whether the session survived is what the replay
        # after sign-out decides (and a control that could not be used stays inconclusive).
        session_controls.sign_out_kept_page = str(exc)


@given("the patient's session cookies have been captured", target_fixture="captured_cookies")
def capture_session_cookies(
    visit: SignedInVisit,
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    session_controls: SessionControls,
    evidence: Evidence,
) -> list[Cookie]:
    if not visit.session_cookies:
        raise Inconclusive("no session cookie was identified after sign-in")
    evidence.text("session cookies captured (names only)", "\n".join(visit.session_cookie_names))
    # Positive control: the captured cookies, replayed in a fresh browser before sign-out, are
    # signed in; otherwise a refusal after sign-out could mean they were never replayable.
    before = contexts.new_page(cookies=list(visit.session_cookies))
    session_controls.replay_before = check_session(driver, before, profile).signed_in
    contexts.finish(before.context)
    _remember_back_target(visit.page, driver, profile, session_controls)
    return visit.session_cookies


@then("the captured session cookies no longer sign anyone in")
def replayed_cookies_refused(
    captured_cookies: list[Cookie],
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    session_controls: SessionControls,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    after = check_session(driver, contexts.new_page(cookies=list(captured_cookies)), profile)
    control_after = None if after.signed_in else _fresh_session_signed_in(contexts, driver, profile)
    # A replay that looks signed in is a failure only if a browser without the session does
    # not look signed in too (an indicator every visitor sees would make every replay "alive").
    anonymous = _anonymous_signed_in(contexts, driver, profile) if after.signed_in else None
    if session_controls.sign_out_kept_page:
        control_record.measure(session_controls.sign_out_kept_page)
    ending = SessionEnding(
        "sign-out",
        after=after.signed_in,
        positive=session_controls.replay_before,
        positive_name="the same cookies replayed in a fresh browser just before sign-out",
        control_after=control_after,
        refusal=after.refusal,
        anonymous=anonymous,
    )
    evaluation = evaluate_session_ended(
        ending, control="SESS_LOGOUT", finding_key="session.logout_replay_accepted"
    )
    conclude(evaluation, control_record, evidence, "session replay after sign-out")
    control_record.reason = (
        "sign-out ended the session on the server, expired the cookie and Back shows no data"
    )


@then("the browser no longer holds the captured session cookies")
def browser_dropped_cookies(
    visit: SignedInVisit,
    captured_cookies: list[Cookie],
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_cookies_dropped(captured_cookies, visit.page.context.cookies())
    reason = control_record.reason
    conclude(evaluation, control_record, evidence, "session cookies left in the browser")
    control_record.reason = reason or control_record.reason


@then("going back in the browser shows no patient data")
def back_shows_nothing(
    visit: SignedInVisit,
    driver: PortalDriver,
    profile: Profile,
    session_controls: SessionControls,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    if session_controls.back_data is None:
        raise Inconclusive("the page Back returns to was not recorded before sign-out")
    page = visit.page
    with navigation_answers(page) as answers:
        page.go_back(wait_until="load")
    shown = driver.shows_patient_data(page, profile.patient)
    check = BackCheck(
        url_before=session_controls.back_url,
        data_before=session_controls.back_data,
        url_after=page.url,
        data_after=shown,
        refusal="" if shown else refusal_shown(page, profile, answers[-1] if answers else None),
    )
    reason = control_record.reason
    conclude(evaluate_back_after_sign_out(check), control_record, evidence, "Back after sign-out")
    control_record.reason = reason or control_record.reason


@when("the cookies the portal set at sign-in are inspected", target_fixture="cookie_evaluation")
def inspect_cookies(visit: SignedInVisit, profile: Profile, evidence: Evidence) -> Evaluation:
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
    return evaluate_session_cookies(
        records, visit.session_cookie_names, profile.thresholds.same_site
    )


@then("every session cookie is Secure, HttpOnly and SameSite Lax or Strict")
def cookies_are_hardened(
    cookie_evaluation: Evaluation, control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(cookie_evaluation, control_record, evidence, "cookie findings")


# -- SESS_IDLE and SESS_ABS: measured by background probes (portal.session_probes) ----------

# Registered here, next to the scenarios that read them; they run from the start of the run.
slow_probe("SESS_IDLE")(measure_idle_timeout)
slow_probe("SESS_ABS")(measure_absolute_timeout)


@given(
    "the patient signed in on several browsers, left them untouched, and tried each again later",
    target_fixture="idle_measurement",
)
def idle_sessions(slow_probes: SlowProbes, progress: Callable[[str], None]) -> IdleMeasurement:
    measurement: IdleMeasurement = slow_probes.result("SESS_IDLE", progress)
    return measurement


@then("the sessions idle for the timeout or longer are signed out and earlier ones are not")
def idle_sessions_expired(
    idle_measurement: IdleMeasurement, control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(evaluate_idle(idle_measurement), control_record, evidence, "idle timeout probes")


@given(
    "the patient signed in and kept the session busy past the absolute timeout",
    target_fixture="busy_measurement",
)
def busy_session(slow_probes: SlowProbes, progress: Callable[[str], None]) -> BusyMeasurement:
    measurement: BusyMeasurement = slow_probes.result("SESS_ABS", progress)
    return measurement


@then("the session was signed out within the absolute timeout of signing in")
def busy_session_ended(
    busy_measurement: BusyMeasurement, control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(
        evaluate_absolute(busy_measurement), control_record, evidence, "absolute timeout probes"
    )


# -- SESS_REVOKE -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TwoBrowsers:
    first: Page
    second: Page


@given("the patient has signed in on two browsers", target_fixture="two_browsers")
def signed_in_twice(
    page: Page,
    audit_run: AuditRun,
    progress: Callable[[str], None],
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    usable_portal: Preflight,
) -> TwoBrowsers:
    if profile.sessions_page is None:
        raise Inconclusive(
            "the profile has no sessions_page; configure it, or put SESS_REVOKE out of scope "
            "with a reason"
        )
    sessions_page_of(driver)  # a driver without the sessions page: inconclusive, with why
    if audit_run.slow_probes is not None:
        # Ending other sessions would end the sessions the slow probes are timing.
        audit_run.slow_probes.wait_all(progress)
    second = contexts.new_page()
    for browser_page in (page, second):
        signed_in_outcome(driver, browser_page, profile.patient)
    return TwoBrowsers(page, second)


@when(
    "the patient opens the list of active sessions on the first browser",
    target_fixture="session_listing",
)
def open_session_list(
    two_browsers: TwoBrowsers, driver: PortalDriver
) -> tuple[int | None, int | None]:
    return sessions_page_of(driver).open_sessions_page(two_browsers.first)


@then("both sessions and the recent sign-ins are listed")
def sessions_listed(
    session_listing: tuple[int | None, int | None],
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    active, recent = session_listing
    conclude(evaluate_session_listing(active, recent), control_record, evidence, "sessions listed")


@when("the patient ends all other sessions from the first browser")
def end_other_sessions(
    two_browsers: TwoBrowsers,
    driver: PortalDriver,
    profile: Profile,
    session_controls: SessionControls,
) -> None:
    # Positive control: the second browser is signed in just before, so its refusal after can
    # only come from ending the other sessions.
    session_controls.replay_before = check_session(driver, two_browsers.second, profile).signed_in
    sessions_page_of(driver).end_other_sessions(two_browsers.first)


@then("the second browser is signed out")
def second_browser_signed_out(
    two_browsers: TwoBrowsers,
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    session_controls: SessionControls,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    after = check_session(driver, two_browsers.second, profile)
    first_kept = check_session(driver, two_browsers.first, profile).signed_in
    control_record.measure(
        "other session after 'end other sessions': "
        f"{'still signed in' if after.signed_in else 'ended'}; "
        f"current session {'kept' if first_kept else 'also ended'}"
    )
    control_after, control_name = first_kept, "the first browser, whose session must stay"
    if not after.signed_in and not first_kept:
        control_after = _fresh_session_signed_in(contexts, driver, profile)
        control_name = "a fresh sign-in (the first browser was signed out too)"
    ending = SessionEnding(
        "ending the other sessions",
        after=after.signed_in,
        positive=session_controls.replay_before,
        positive_name="the second browser, checked just before",
        control_after=control_after,
        control_name=control_name,
        refusal=after.refusal,
    )
    evaluation = evaluate_session_ended(
        ending, control="SESS_REVOKE", finding_key="session.revoke_ineffective"
    )
    conclude(evaluation, control_record, evidence, "other session after revoking")
    control_record.reason = "the patient sees active sessions and can end the others"


# -- HDR_CACHE -----------------------------------------------------------------------------------


@when("the signed-in pages and the patient data are opened", target_fixture="signed_in_probes")
def open_signed_in_responses(
    visit: SignedInVisit,
    profile: Profile,
    driver: PortalDriver,
    session_controls: SessionControls,
    evidence: Evidence,
) -> list[HttpProbe]:
    probes = []
    urls = [(p.url, "signed-in page") for p in profile.protected_pages]
    urls += [(url, "patient data") for url in profile.headers.patient_data_urls]
    for url, kind in urls:
        target = profile.url(url)
        response = visit.page.goto(target, wait_until="load")
        if response is None:
            raise Inconclusive(f"{target} gave no response")
        headers = tuple(
            (
                h["name"],
                redact_set_cookie(h["value"]) if h["name"].lower() == "set-cookie" else h["value"],
            )
            for h in response.headers_array()
        )
        probes.append(HttpProbe(url=target, kind=kind, status=response.status, headers=headers))
    # Positive control for "Back after sign-out": the page sign-out starts from, and so the one
    # Back returns to, shows patient data now.
    _remember_back_target(visit.page, driver, profile, session_controls)
    evidence.text(
        "Cache-Control of signed-in responses",
        "\n".join(f"{p.kind:15} {p.status} {p.url}  {p.get('cache-control')}" for p in probes),
    )
    return probes


@then("every one of those responses forbids storing it")
def responses_not_stored(
    signed_in_probes: list[HttpProbe], control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(
        evaluate_cache(signed_in_probes, load_header_policy()),
        control_record,
        evidence,
        "Cache-Control findings",
    )
