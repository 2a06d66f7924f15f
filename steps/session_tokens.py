"""Session ID steps: sign-in issues a new session ID that no one could fix beforehand
(SESS_FIXATION), and the session token stays out of URLs and Referers and carries enough
randomness (SESS_TOKEN)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import BrowserContext, Cookie, Page
from pytest_bdd import given, then, when

from portal.abilities import SignInOutcome
from portal.contexts import Contexts
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Evidence, Redactor
from portal.preflight import Preflight
from portal.profile import Profile
from portal.run import ControlRecord
from portal.session_checks import Replay, check_session, signed_in_outcome
from scanners.cookies import evaluate_session_id_renewed
from scanners.result import Evaluation
from scanners.timeouts import SessionEnding, evaluate_session_ended
from scanners.tokens import evaluate_token_exposure, evaluate_token_strength, find_tokens_in_har
from steps.common import session_cookies_of
from steps.outcome import conclude

TOKEN_SAMPLES = 5


# -- SESS_FIXATION ----------------------------------------------------------------------------


@when("the visitor signs in as the patient", target_fixture="fixation_sign_in")
def visitor_signs_in(
    page: Page, driver: PortalDriver, profile: Profile, usable_portal: Preflight
) -> SignInOutcome:
    outcome = signed_in_outcome(driver, page, profile.patient)
    return outcome


@then("the session cookies after sign-in are new")
def session_cookies_are_new(
    fixation_sign_in: SignInOutcome,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_session_id_renewed(
        fixation_sign_in.cookies_before, fixation_sign_in.cookies_after, profile.session_cookies
    )
    conclude(evaluation, control_record, evidence, "session cookies at sign-in")


@then("the cookies held before signing in, replayed in a fresh browser, are not signed in")
def pre_sign_in_cookies_stay_anonymous(
    fixation_sign_in: SignInOutcome,
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    before = list(fixation_sign_in.cookies_before)
    if not before:
        control_record.measure("no cookie existed before sign-in, so none could be fixed")
        control_record.reason = "no pre-sign-in session ID exists to be fixed"
        return
    after = check_session(driver, contexts.new_page(cookies=before), profile)
    control_record.measure(
        "pre-sign-in cookies replayed after sign-in: "
        f"{'signed in' if after.signed_in else 'anonymous'}"
    )
    conclude(
        _fixation_evaluation(after, fixation_sign_in, contexts, driver, profile, "held"),
        control_record,
        evidence,
        "pre-sign-in cookies replayed",
    )
    control_record.reason = "sign-in issued a new session ID and the old one stayed anonymous"


def _fixation_evaluation(
    after: Replay,
    sign_in: SignInOutcome,
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    how: str,
) -> Evaluation:
    """The pre-sign-in cookies' replay, backed by the cookies sign-in issued replayed alike."""
    positive = None
    if not after.signed_in:
        issued = contexts.new_page(cookies=list(sign_in.cookies_after))
        positive = check_session(driver, issued, profile).signed_in
    ending = SessionEnding(
        f"sign-in (the session ID {how} before it)",
        after=after.signed_in,
        positive=positive,
        positive_name="the cookies issued at sign-in, replayed the same way right after",
        refusal=after.refusal,
    )
    return evaluate_session_ended(ending, control="SESS_FIXATION", finding_key="session.fixation")


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
    fixation_sign_in: SignInOutcome,
    contexts: Contexts,
    driver: PortalDriver,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    after = check_session(driver, contexts.new_page(cookies=list(planted_cookies)), profile)
    conclude(
        _fixation_evaluation(after, fixation_sign_in, contexts, driver, profile, "planted"),
        control_record,
        evidence,
        "planted cookies replayed",
    )
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
    min_bits = profile.thresholds.min_token_bits
    for name, values in samples.items():
        conclude(
            evaluate_token_strength(values, min_bits),
            control_record,
            evidence,
            f"token strength of {name}",
        )
