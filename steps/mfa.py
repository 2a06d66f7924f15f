"""Second-factor steps: enforcement, enrolment, one-time codes and recovery codes (MFA_*).

Accounts by role: ``mfa`` is already enrolled (its ``totp_secret`` is in the profile);
``mfa_enrol`` has no authenticator and gets one added, used and removed again by the
destructive checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page
from pydantic import SecretStr
from pytest_bdd import given, then, when

from portal.abilities import ConfirmationGone, SecondFactorAbility, second_factor_of
from portal.browser_errors import describe_browser_error
from portal.contexts import Contexts
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.preflight import Preflight
from portal.profile import Profile
from portal.profile_sections import Account
from portal.run import ControlRecord
from portal.second_factor import EnrolmentOffer, secret_of
from portal.session_checks import refusal_shown
from scanners.mfa import (
    DirectVisit,
    EnrolmentObservation,
    OtpObservation,
    RecoveryObservation,
    estimate_code_bits,
    evaluate_enforcement,
    evaluate_enrolment,
    evaluate_otp,
    evaluate_recovery,
    secret_bits,
)
from steps.outcome import conclude


def role_account(profile: Profile, role: str, *, destructive: bool = False) -> Account:
    """The profile's account for a role, or a skip that says what is missing."""
    if profile.mfa is None:
        pytest.skip("the profile has no mfa section (the second-factor form's selectors)")
    account = profile.accounts.get(role)
    if account is None:
        pytest.skip(f"the profile has no accounts.{role}")
    if destructive and not account.dedicated_test_account:
        pytest.skip(f"accounts.{role} is not marked dedicated_test_account")
    return account


@dataclass
class MfaVisit:
    page: Page
    account: Account
    state: str


# -- MFA_ENFORCE ------------------------------------------------------------------------------


@given("the enrolled patient has entered the right password only", target_fixture="mfa_visit")
def password_only(
    contexts: Contexts, driver: PortalDriver, profile: Profile, usable_portal: Preflight
) -> MfaVisit:
    account = role_account(profile, "mfa")
    page = contexts.new_page()
    return MfaVisit(page, account, second_factor_of(driver).first_factor(page, account))


def _visit(mfa_visit: MfaVisit, driver: PortalDriver, profile: Profile, url: str) -> DirectVisit:
    second = second_factor_of(driver)
    page = mfa_visit.page
    try:
        response = page.goto(profile.url(url), wait_until="load")
    except PlaywrightError as exc:
        raise Inconclusive(
            describe_browser_error(exc, doing=f"opening {url} after the password alone")
        ) from None
    signed_in = page.locator(profile.signed_in.indicator).first.is_visible()
    patient_data = second.shows_patient_data(page, mfa_visit.account)
    return DirectVisit(
        url=url,
        status=response.status if response else None,
        final_url=page.url,
        signed_in=signed_in,
        patient_data=patient_data,
        asks_second_factor=second.asks_second_factor(page),
        sign_in_form=page.locator(profile.sign_in.username).first.is_visible(),
        refusal="" if signed_in or patient_data else refusal_shown(page, profile, response),
    )


@dataclass(frozen=True)
class DirectVisits:
    before: list[DirectVisit]
    after_second_factor: list[DirectVisit]


@when("the protected pages are opened directly", target_fixture="direct_visits")
def open_directly(
    mfa_visit: MfaVisit, driver: PortalDriver, profile: Profile, evidence: Evidence
) -> DirectVisits:
    urls = [p.url for p in profile.protected_pages] + list(profile.headers.patient_data_urls)
    before = [_visit(mfa_visit, driver, profile, url) for url in urls]
    evidence.json("protected URLs after the password alone", [vars(v) for v in before])
    after: list[DirectVisit] = []
    if mfa_visit.state == "second_factor" and not any(v.answered for v in before):
        # Positive control: with the second factor given, the same URLs must answer.
        second = second_factor_of(driver)
        if second.finish_sign_in(mfa_visit.page, mfa_visit.account) == "signed_in":
            after = [_visit(mfa_visit, driver, profile, url) for url in urls]
        evidence.json("the same URLs after the second factor", [vars(v) for v in after])
    return DirectVisits(before, after)


@then("each one sends the patient back to the second factor")
def sent_back(
    mfa_visit: MfaVisit,
    direct_visits: DirectVisits,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_enforcement(
        mfa_visit.state == "second_factor",
        direct_visits.before,
        direct_visits.after_second_factor,
    )
    conclude(evaluation, control_record, evidence, "second-factor enforcement")


# -- MFA_OTP ----------------------------------------------------------------------------------


@dataclass
class OtpRun:
    observation: OtpObservation
    notes: list[str] = field(default_factory=list)


@when(
    "the enrolled patient signs in with a fresh code, then tries the same code, a stale code "
    "and a burst of wrong codes on new sign-ins",
    target_fixture="otp_run",
)
def try_codes(
    contexts: Contexts, driver: PortalDriver, profile: Profile, usable_portal: Preflight
) -> OtpRun:
    account = role_account(profile, "mfa", destructive=True)
    if account.totp_secret is None:
        pytest.skip("accounts.mfa has no totp_secret")
    secret = account.totp_secret.get_secret_value()
    second = second_factor_of(driver)
    max_wrong = profile.thresholds.max_wrong_codes
    stale_steps = profile.thresholds.max_drift_steps + 2

    def challenge() -> Page:
        page = contexts.new_page()
        state = second.first_factor(page, account)
        if state != "second_factor":
            raise Inconclusive(f"the enrolled account was not asked for a code ({state})")
        return page

    page = challenge()
    code = second.fresh_totp(secret)
    fresh_ok = second.submit_code(page, code) == "signed_in"
    if fresh_ok:
        second.sign_out(page)
    replay_state = second.submit_code(challenge(), code)
    stale_state = second.submit_code(challenge(), second.stale_totp(secret, stale_steps))
    replayed, stale = replay_state == "signed_in", stale_state == "signed_in"
    page = challenge()
    ended_after = None
    sent = 0
    for attempt in range(1, max_wrong + 1):
        state = second.submit_code(page, second.wrong_totp(secret, attempt))
        sent = attempt
        if state == "signed_in":
            raise Inconclusive("a wrong code signed the account in")
        if state != "second_factor":
            ended_after = attempt
            break
    valid_after = None
    if ended_after is None:
        valid_after = second.submit_code(page, second.fresh_totp(secret)) == "signed_in"
    return OtpRun(
        OtpObservation(
            fresh_ok,
            replayed,
            stale_steps,
            stale,
            sent,
            ended_after,
            valid_after,
            refusal_states=(replay_state, stale_state),
        )
    )


@then("a used code, a stale code and a valid code after the burst are all refused")
def codes_refused(
    otp_run: OtpRun, profile: Profile, control_record: ControlRecord, evidence: Evidence
) -> None:
    evidence.json("one-time code attempts", vars(otp_run.observation))
    evaluation = evaluate_otp(
        otp_run.observation,
        max_drift_steps=profile.thresholds.max_drift_steps,
        max_wrong_codes=profile.thresholds.max_wrong_codes,
    )
    conclude(evaluation, control_record, evidence, "one-time code findings")


# -- MFA_ENROLL and MFA_RECOVERY --------------------------------------------------------------


@dataclass
class Enrolled:
    """The enrolment account, signed in, with its freshly added authenticator (if any)."""

    page: Page
    account: Account
    offer: EnrolmentOffer | None = None


@given("the enrolment patient has signed in", target_fixture="enrolment")
def enrolment_patient(
    contexts: Contexts, driver: PortalDriver, profile: Profile, usable_portal: Preflight
) -> Enrolled:
    account = role_account(profile, "mfa_enrol", destructive=True)
    if profile.mfa is None or profile.mfa.enrolment is None:
        pytest.skip("the profile's mfa section has no enrolment page")
    second_factor_of(driver)  # before signing in: the When step needs the ability
    page = contexts.new_page()
    outcome = driver.sign_in(page, account)
    if not outcome.signed_in:
        raise Inconclusive(f"the enrolment account cannot sign in: {outcome.detail}")
    return Enrolled(page, account)


def _with_secret(account: Account, secret: str) -> Account:
    return account.model_copy(update={"totp_secret": SecretStr(secret)})


def _remove(
    enrolled: Enrolled, second: SecondFactorAbility, secret: str | None, page: Page
) -> bool:
    """Sign in again if needed and remove the authenticator added by the check."""
    if not second.is_signed_in(page):
        account = _with_secret(enrolled.account, secret) if secret else enrolled.account
        if not second.sign_in(page, account).signed_in:
            return False
    return second.remove_authenticator(page, enrolled.account)


def _restart_enrolment(enrolled: Enrolled, second: SecondFactorAbility) -> str:
    """Start adding the authenticator again; the new offer's secret."""
    again = second.start_enrolment(enrolled.page, enrolled.account)
    secret = secret_of(again)
    if secret is None:
        problem = again.qr_problem or "no TOTP secret was shown"
        raise Inconclusive(
            f"after the wrong code the portal went back to the start of the enrolment, and "
            f"starting again showed no usable secret: {problem}"
        )
    return secret


@when(
    "the patient adds an authenticator app, confirming it first with a wrong code and then "
    "with a valid one",
    target_fixture="enrolment_observation",
)
def add_authenticator(
    enrolment: Enrolled, driver: PortalDriver, contexts: Contexts, evidence: Evidence
) -> EnrolmentObservation:
    second = second_factor_of(driver)
    offer = second.start_enrolment(enrolment.page, enrolment.account)
    secret = secret_of(offer)
    bits = secret_bits(secret) if secret else None
    agree = None
    if offer.qr_uri and offer.shown_key:
        key_only = EnrolmentOffer(offer.reauthentication_asked, None, offer.shown_key)
        agree = secret == secret_of(key_only)
    confirmed = asked_after = restarted = False
    removed = True
    wrong_refused = True
    enrolled_secret = secret  # the secret of the offer confirmed: a restart enrols a new one
    if secret is not None and bits is not None:
        try:
            wrong = second.confirm_enrolment(enrolment.page, second.wrong_totp(secret, 1))
            wrong_refused = not wrong.confirmed
            if wrong_refused:
                try:
                    confirmed = second.confirm_enrolment(
                        enrolment.page, second.fresh_totp(secret)
                    ).confirmed
                except ConfirmationGone:
                    # The refusal sent the patient back to the start (Flask-Security shows its
                    # setup choice again): that secret is spent, a new offer is confirmed.
                    restarted = True
                    enrolled_secret = _restart_enrolment(enrolment, second)
                    confirmed = second.confirm_enrolment(
                        enrolment.page, second.fresh_totp(enrolled_secret)
                    ).confirmed
            else:
                confirmed = True
            if confirmed:
                second.sign_out(enrolment.page)
                check = contexts.new_page()
                asked_after = second.first_factor(check, enrolment.account) == "second_factor"
        finally:
            removed = _remove(enrolment, second, enrolled_secret, enrolment.page)
    observation = EnrolmentObservation(
        reauthentication_asked=offer.reauthentication_asked,
        secret_bits=bits,
        qr_read=offer.qr_uri is not None,
        key_shown=offer.shown_key is not None,
        qr_and_key_agree=agree,
        wrong_code_refused=wrong_refused,
        confirmed=confirmed,
        second_factor_asked_after=asked_after if confirmed else None,
        removed=removed,
        qr_problem=offer.qr_problem,
        restarted_after_wrong_code=restarted,
    )
    evidence.json("enrolment (no secret values)", vars(observation))
    return observation


@then(
    "the secret is long enough and only a valid code, after re-authentication, completed the "
    "enrolment"
)
def enrolment_sound(
    enrolment_observation: EnrolmentObservation,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_enrolment(
        enrolment_observation, min_secret_bits=profile.thresholds.min_secret_bits
    )
    conclude(evaluation, control_record, evidence, "enrolment findings")


@when(
    "the patient adds an authenticator app and signs in twice with the same recovery code",
    target_fixture="recovery_observation",
)
def reuse_recovery_code(
    enrolment: Enrolled, driver: PortalDriver, contexts: Contexts, evidence: Evidence
) -> RecoveryObservation:
    second = second_factor_of(driver)
    offer = second.start_enrolment(enrolment.page, enrolment.account)
    secret = secret_of(offer)
    if secret is None:
        raise Inconclusive(offer.qr_problem or "no TOTP secret was shown at enrolment")
    codes: list[str] = []
    first_ok = second_ok = False
    second_state = ""
    try:
        result = second.confirm_enrolment(enrolment.page, second.fresh_totp(secret))
        if not result.confirmed:
            raise Inconclusive(f"the enrolment was not completed: {result.detail}")
        codes = result.recovery_codes
        if codes:
            second.sign_out(enrolment.page)
            states = []
            for _ in range(2):
                page = contexts.new_page()
                if second.first_factor(page, enrolment.account) != "second_factor":
                    raise Inconclusive("after enrolling, sign-in did not ask for a second factor")
                state = second.submit_recovery_code(page, codes[0])
                states.append(state)
                if state == "signed_in":
                    second.sign_out(page)
            first_ok, second_ok = states[0] == "signed_in", states[1] == "signed_in"
            second_state = states[1]
    finally:
        _remove(enrolment, second, secret, enrolment.page)
    observation = RecoveryObservation(
        len(codes), estimate_code_bits(codes), first_ok, second_ok, second_state
    )
    evidence.json("recovery code uses (no code values)", vars(observation))
    return observation


@then("the recovery code worked once only and the codes carry enough randomness")
def recovery_single_use(
    recovery_observation: RecoveryObservation,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_recovery(
        recovery_observation, min_bits=profile.thresholds.min_recovery_bits
    )
    conclude(evaluation, control_record, evidence, "recovery code findings")
