"""Session management steps: sign-out, cookies, timeouts, fixation, tokens, revoking, caching."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Cookie, Page
from pytest_bdd import given, then, when

from portal.background import ProbeContext, SlowProbes, slow_probe
from portal.driver import PortalDriver, SignInOutcome
from portal.errors import Inconclusive
from portal.evidence import Evidence, Redactor
from portal.plugin import AuditRun, Contexts, ControlRecord, Preflight
from portal.profile import Profile
from scanners.cookies import (
    CookieRecord,
    evaluate_session_cookies,
    session_cookie_names,
    with_declared_same_site,
)
from scanners.headers import evaluate_cache, load_header_policy
from scanners.http import HttpProbe, redact_set_cookie
from scanners.result import Evaluation
from scanners.timeouts import (
    BusyMeasurement,
    IdleMeasurement,
    SessionCheck,
    duration,
    evaluate_absolute,
    evaluate_idle,
)
from scanners.tokens import evaluate_token_exposure, evaluate_token_strength, find_tokens_in_har
from steps.common import SignedInVisit, session_cookies_of, signed_in_outcome
from steps.outcome import conclude

TOKEN_SAMPLES = 5


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
    control_record.reason = (
        "sign-out ended the session on the server, expired the cookie and Back shows no data"
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


# -- SESS_IDLE and SESS_ABS: measured by background probes (portal.background) --------------


def _signed_in_context(probe: ProbeContext) -> tuple[list[Cookie], float]:
    """Sign in on a fresh browser, keep its cookies, close it so nothing keeps it alive."""
    context = probe.new_context()
    signed_in_outcome(probe.driver, context.new_page(), probe.profile.patient)
    cookies = context.cookies()
    signed_in_at = time.monotonic()
    probe.discard(context)
    return cookies, signed_in_at


@slow_probe("SESS_IDLE")
def measure_idle_timeout(probe: ProbeContext) -> IdleMeasurement:
    threshold = float(probe.profile.threshold("idle_timeout_seconds"))
    grace = max(2.0, 0.1 * threshold)
    # Several sessions, each tried once: a replay is itself activity and would restart the
    # idle clock of the session it tries.
    idle_times = [0.25 * threshold, 0.5 * threshold, 0.9 * threshold, threshold + grace]
    sessions = [(idle, *_signed_in_context(probe)) for idle in idle_times]
    checks = []
    for idle, cookies, signed_in_at in sessions:
        probe.wait_until(signed_in_at + idle, f"a session idle for {duration(idle)}")
        tried_at = time.monotonic()
        page = probe.new_page(cookies)
        checks.append(SessionCheck(tried_at - signed_in_at, probe.driver.is_signed_in(page)))
        probe.discard(page.context)
    return IdleMeasurement(threshold, tuple(checks))


@slow_probe("SESS_ABS")
def measure_absolute_timeout(probe: ProbeContext) -> BusyMeasurement:
    threshold = float(probe.profile.threshold("absolute_timeout_seconds"))
    idle = float(probe.profile.threshold("idle_timeout_seconds"))
    grace = max(2.0, 0.05 * threshold)
    # Requests well inside the idle timeout, so only the absolute lifetime can end the session.
    interval = max(1.0, min(idle / 3, 60.0))
    context = probe.new_context()
    page = context.new_page()
    signed_in_outcome(probe.driver, page, probe.profile.patient)
    signed_in_at = time.monotonic()
    checks: list[SessionCheck] = []
    moment = signed_in_at
    while True:
        moment = min(moment + interval, signed_in_at + threshold + grace)
        probe.wait_until(moment, f"the busy session to reach {duration(threshold)}")
        alive = probe.driver.is_signed_in(page)
        checks.append(SessionCheck(time.monotonic() - signed_in_at, alive))
        if not alive or moment >= signed_in_at + threshold + grace:
            break
    return BusyMeasurement(threshold, interval, grace, tuple(checks))


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


# -- SESS_FIXATION ----------------------------------------------------------------------------


@when("the visitor signs in as the patient", target_fixture="fixation_sign_in")
def visitor_signs_in(
    page: Page, driver: PortalDriver, profile: Profile, usable_portal: Preflight
) -> SignInOutcome:
    outcome = signed_in_outcome(driver, page, profile.patient)
    return outcome


@then("the session cookies after sign-in are new")
def session_cookies_are_new(
    fixation_sign_in: SignInOutcome, profile: Profile, control_record: ControlRecord
) -> None:
    before = {(c.get("name"), c.get("value")) for c in fixation_sign_in.cookies_before}
    changed = session_cookie_names(
        list(fixation_sign_in.cookies_before), list(fixation_sign_in.cookies_after)
    )
    kept = [
        str(c.get("name"))
        for c in fixation_sign_in.cookies_after
        if c.get("name") in profile.session_cookies and (c.get("name"), c.get("value")) in before
    ]
    control_record.measure(f"cookies issued or changed at sign-in: {', '.join(changed) or 'none'}")
    assert changed, "sign-in issued no new session cookie: the pre-sign-in session ID was kept"
    assert not kept, f"sign-in kept the pre-sign-in value of {', '.join(kept)}"


@then("the cookies held before signing in, replayed in a fresh browser, are not signed in")
def pre_sign_in_cookies_stay_anonymous(
    fixation_sign_in: SignInOutcome,
    contexts: Contexts,
    driver: PortalDriver,
    control_record: ControlRecord,
) -> None:
    before = list(fixation_sign_in.cookies_before)
    if not before:
        control_record.measure("no cookie existed before sign-in, so none could be fixed")
        control_record.reason = "no pre-sign-in session ID exists to be fixed"
        return
    replay = contexts.new_page(cookies=before)
    accepted = driver.is_signed_in(replay)
    control_record.measure(
        f"pre-sign-in cookies replayed after sign-in: {'signed in' if accepted else 'anonymous'}"
    )
    assert not accepted, "the pre-sign-in session ID became an authenticated session"
    control_record.reason = "sign-in issued a new session ID and the old one stayed anonymous"


@given(
    "an attacker has planted session cookies of their choosing in the visitor's browser",
    target_fixture="planted_cookies",
)
def plant_cookies(
    page: Page,
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    redactor: Redactor,
    usable_portal: Preflight,
) -> list[Cookie]:
    # Learn the session cookie names from a sign-in in a throwaway browser.
    probe = contexts.new_page()
    outcome = signed_in_outcome(driver, probe, profile.patient)
    names = session_cookies_of(profile, outcome)
    driver.sign_out(probe)
    if not names:
        raise Inconclusive("no session cookie name is known to plant (set session_cookies)")
    planted: list[Cookie] = []
    for name in names:
        value = secrets.token_urlsafe(32)
        redactor.add(value)
        planted.append(
            {
                "name": name,
                "value": value,
                "url": profile.base_url,
                "secure": profile.base_url.startswith("https:"),
            }  # type: ignore[typeddict-item]
        )
    page.context.add_cookies(planted)  # type: ignore[arg-type]
    return planted


@then("the planted session cookies replayed in a fresh browser are not signed in")
def planted_cookies_anonymous(
    planted_cookies: list[Cookie],
    contexts: Contexts,
    driver: PortalDriver,
    control_record: ControlRecord,
) -> None:
    accepted = driver.is_signed_in(contexts.new_page(cookies=list(planted_cookies)))
    assert not accepted, "a planted session ID became an authenticated session"
    control_record.reason = "planted session IDs were replaced at sign-in and stay anonymous"


# -- SESS_TOKEN --------------------------------------------------------------------------------


@dataclass
class Recording:
    context: BrowserContext
    page: Page
    har: Path
    tokens: dict[str, str] = field(default_factory=dict, repr=False)


@given("the patient's visit is being recorded", target_fixture="recording")
def record_visit(contexts: Contexts, evidence: Evidence, usable_portal: Preflight) -> Recording:
    har = evidence.work_dir / "visit.har"
    context = contexts.new(har=har)
    return Recording(context, context.new_page(), har)


@when("the patient signs in, opens every protected page and signs out")
def recorded_visit(
    recording: Recording, driver: PortalDriver, profile: Profile, contexts: Contexts
) -> None:
    outcome = signed_in_outcome(driver, recording.page, profile.patient)
    names = session_cookies_of(profile, outcome)
    recording.tokens.update(
        {str(c["name"]): str(c["value"]) for c in outcome.cookies_after if c["name"] in names}
    )
    if not recording.tokens:
        raise Inconclusive("no session cookie was identified after sign-in")
    for protected in profile.protected_pages:
        driver.open_protected(recording.page, protected)
    driver.sign_out(recording.page)
    contexts.finish(recording.context)


@then("no recorded URL or Referer carries the session token")
def token_not_in_urls(
    recording: Recording, control_record: ControlRecord, evidence: Evidence
) -> None:
    har = json.loads(recording.har.read_text(encoding="utf-8"))
    findings = find_tokens_in_har(har, recording.tokens)
    if findings:
        evidence.file(recording.har, "recorded visit (HAR, secrets masked)", "har")
    requests = len(har.get("log", {}).get("entries", []))
    conclude(
        evaluate_token_exposure(findings, requests), control_record, evidence, "token exposure"
    )


@then("session tokens from several sign-ins are unique and carry enough randomness")
def tokens_are_strong(
    recording: Recording,
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    samples: dict[str, list[str]] = {name: [value] for name, value in recording.tokens.items()}
    for _ in range(TOKEN_SAMPLES - 1):
        page = contexts.new_page()
        outcome = signed_in_outcome(driver, page, profile.patient)
        for cookie in outcome.cookies_after:
            if cookie["name"] in samples:
                samples[str(cookie["name"])].append(str(cookie["value"]))
        driver.sign_out(page)
        contexts.finish(page.context)
    min_bits = int(profile.threshold("min_token_bits"))
    for name, values in samples.items():
        conclude(
            evaluate_token_strength(values, min_bits),
            control_record,
            evidence,
            f"token strength of {name}",
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
    return driver.open_sessions_page(two_browsers.first)


@then("both sessions and the recent sign-ins are listed")
def sessions_listed(
    session_listing: tuple[int | None, int | None], control_record: ControlRecord
) -> None:
    active, recent = session_listing
    shown = "not checked (no selector)" if active is None else str(active)
    listed = "not checked (no selector)" if recent is None else str(recent)
    control_record.measure(f"active sessions listed: {shown}; recent sign-ins listed: {listed}")
    assert active is None or active >= 2, f"only {active} active session(s) listed, 2 expected"
    assert recent is None or recent >= 1, "no recent sign-in is listed"


@when("the patient ends all other sessions from the first browser")
def end_other_sessions(two_browsers: TwoBrowsers, driver: PortalDriver) -> None:
    driver.end_other_sessions(two_browsers.first)


@then("the second browser is signed out")
def second_browser_signed_out(
    two_browsers: TwoBrowsers, driver: PortalDriver, control_record: ControlRecord
) -> None:
    still = driver.is_signed_in(two_browsers.second)
    first_kept = driver.is_signed_in(two_browsers.first)
    control_record.measure(
        f"other session after 'end other sessions': {'still signed in' if still else 'ended'}; "
        f"current session {'kept' if first_kept else 'also ended'}"
    )
    assert not still, "the other browser is still signed in after ending all other sessions"
    control_record.reason = "the patient sees active sessions and can end the others"


# -- HDR_CACHE -----------------------------------------------------------------------------------


@when("the signed-in pages and the patient data are opened", target_fixture="signed_in_probes")
def open_signed_in_responses(
    visit: SignedInVisit, profile: Profile, evidence: Evidence
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
