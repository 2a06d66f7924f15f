"""Password steps: length, blocklist, strength, composition, change, sessions after a change,
reset links (a background probe, ``portal.reset_run``) and the e-mails about passwords.

Every password the checks set is registered with the redactor before it is typed, and the
account's original password is put back when a scenario ends (``portal.password_keeper``), so
repeated audits start from the same state.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import pytest
from playwright.sync_api import Page
from pytest_bdd import given, then, when

from portal.abilities import password_flows_of
from portal.background import ProbeContext, SlowProbes, slow_probe
from portal.contexts import Contexts
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Evidence, Redactor
from portal.mailbox_access import mailbox_keys, open_mailbox, wait_for_mail
from portal.password_keeper import PasswordKeeper, candidate_context, passwords_section
from portal.profile import Profile
from portal.profile_credentials import MailboxSettings
from portal.profile_sections import Account
from portal.reset_run import measure_reset_links, remember_link, reset_link_in
from portal.run import AuditRun, ControlRecord
from portal.session_checks import Replay, check_session
from scanners.mailbox import (
    Mailbox,
    MailboxError,
    MailCheck,
    MailMessage,
    evaluate_mail_contents,
    matches,
)
from scanners.password_candidates import (
    Candidate,
    CandidateContext,
    blocklist_candidates,
    length_candidates,
    load_common_passwords,
    lowercase_passphrase,
    new_password,
    score,
    strength_candidates,
    strong_passphrase,
)
from scanners.passwords import (
    ChangeMeasurement,
    LengthMeasurement,
    Trial,
    candidate_table,
    evaluate_blocklist,
    evaluate_change,
    evaluate_length,
    evaluate_nocomposition,
    evaluate_strength,
)
from scanners.reset import ResetMeasurement, evaluate_reset
from scanners.timeouts import SessionEnding, evaluate_session_ended
from steps.outcome import conclude

# -- set-up --------------------------------------------------------------------------------


def dedicated(account: Account, key: str) -> Account:
    if not account.dedicated_test_account:
        pytest.skip(f"destructive check needs accounts.{key} marked dedicated_test_account")
    return account


@dataclass
class PasswordVisit:
    page: Page
    keeper: PasswordKeeper
    context: CandidateContext
    rng: random.Random = field(default_factory=lambda: random.Random(secrets.randbits(64)))


@pytest.fixture(scope="session")
def password_ledger() -> set[str]:
    """Every password the password checks set in this run (RESET_MAIL looks for them)."""
    return set()


@pytest.fixture
def password_keeper(
    profile: Profile,
    driver: PortalDriver,
    redactor: Redactor,
    contexts: Contexts,
    password_ledger: set[str],
) -> Iterator[PasswordKeeper]:
    section = passwords_section(profile)
    account = dedicated(profile.accounts[section.account], section.account)
    keeper = PasswordKeeper(
        driver, account, redactor, password_ledger, contexts.new_page, profile.rate_limits
    )
    yield keeper
    keeper.restore()


@given("the password test account has signed in", target_fixture="password_visit")
def password_account_signed_in(
    page: Page, profile: Profile, password_keeper: PasswordKeeper
) -> PasswordVisit:
    account = password_keeper.account
    outcome = password_keeper.driver.sign_in(page, account)
    if not outcome.signed_in:
        # Checked before anything changes: say why, so nobody hunts for a wrong selector.
        raise Inconclusive(
            f"the password test account {account.username} cannot sign in with the password "
            f"the profile gives ({outcome.detail}); if an interrupted run left it changed, "
            "set it back by hand before the next run"
        )
    context = candidate_context(profile, password_keeper.account)
    return PasswordVisit(page, password_keeper, context)


def _submit_all(visit: PasswordVisit, candidates: list[Candidate]) -> list[Trial]:
    return [visit.keeper.submit(visit.page, candidate) for candidate in candidates]


# -- PWD_BLOCKLIST ---------------------------------------------------------------------------


@when(
    "common, breached and context-derived passwords are submitted as new passwords",
    target_fixture="password_trials",
)
def submit_blocklist(password_visit: PasswordVisit, evidence: Evidence) -> list[Trial]:
    context = password_visit.context
    candidates = blocklist_candidates(context, load_common_passwords())
    # Positive control, last: a strong password the same form must accept, so the refusals
    # above are the blocklist's and not a broken form, CSRF, a throttle or a signed-out session.
    control = strong_passphrase(context, context.min_length + 6, password_visit.rng)
    candidates.append(
        Candidate(
            control,
            "control",
            "strong passphrase (positive control)",
            score(control, context.user_inputs()),
            "accept",
            "a strong password the same form must accept",
        )
    )
    for candidate in candidates:
        password_visit.keeper.remember(candidate.value)
    trials = _submit_all(password_visit, candidates)
    evidence.text("password candidates", candidate_table(trials))
    return trials


@then("every one of them is refused")
def blocklist_refused(
    password_trials: list[Trial], control_record: ControlRecord, evidence: Evidence
) -> None:
    evaluation = evaluate_blocklist(password_trials, require_control=True)
    conclude(evaluation, control_record, evidence, "blocklist findings")


# -- PWD_STRENGTH ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StrengthTrials:
    trials: list[Trial]
    guidance: str


@when(
    "passwords across the strength scale are submitted as new passwords",
    target_fixture="strength_trials",
)
def submit_strength(
    password_visit: PasswordVisit, driver: PortalDriver, evidence: Evidence
) -> StrengthTrials:
    candidates = strength_candidates(password_visit.context, password_visit.rng)
    for candidate in candidates:
        password_visit.keeper.remember(candidate.value)
    # Weakest first, so the guidance shown after a refusal can be read before a change lands.
    candidates.sort(key=lambda c: c.score)
    trials: list[Trial] = []
    guidance = ""
    for candidate in candidates:
        trial = password_visit.keeper.submit(password_visit.page, candidate)
        trials.append(trial)
        if not guidance and trial.verdict == "refused":
            guidance = password_flows_of(driver).password_guidance(password_visit.page)
    if not guidance:
        password_flows_of(driver).open_change_form(password_visit.page)
        guidance = password_flows_of(driver).password_guidance(password_visit.page)
    evidence.text("password candidates", candidate_table(trials))
    evidence.text("strength guidance shown", guidance or "(none)")
    return StrengthTrials(trials, guidance)


@then("no accepted password scores below the policy strength and guidance is shown")
def strength_enforced(
    strength_trials: StrengthTrials,
    password_visit: PasswordVisit,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_strength(
        strength_trials.trials, password_visit.context.min_score, strength_trials.guidance
    )
    conclude(evaluation, control_record, evidence, "strength findings")


# -- PWD_LENGTH ------------------------------------------------------------------------------


@when(
    "passwords around the minimum length, long passphrases and Unicode are submitted",
    target_fixture="length_measurement",
)
def submit_lengths(
    password_visit: PasswordVisit,
    profile: Profile,
    driver: PortalDriver,
    contexts: Contexts,
    evidence: Evidence,
) -> LengthMeasurement:
    keeper = password_visit.keeper
    long_length = profile.thresholds.max_length_at_least
    candidates = length_candidates(password_visit.context, long_length, password_visit.rng)
    for candidate in candidates.values():
        keeper.remember(candidate.value)
    trials: dict[str, Trial] = {}
    truncated: bool | None = None
    full: bool | None = None
    truncation_length: int | None = None
    for name in ("too_short", "minimum", "long", "very_long"):
        trials[name] = keeper.submit(password_visit.page, candidates[name])
    longest = next(
        (trials[n] for n in ("very_long", "long") if trials[n].verdict == "accepted"), None
    )
    if longest is not None:
        value = longest.candidate.value
        # Put the longest accepted password back in place: later trials changed it.
        if keeper.current != value:
            keeper.change(password_visit.page, value)
        if keeper.current == value:
            truncation_length = len(value)
            truncated = keeper.sign_in(contexts.new_page(), value[:-1])
            full = keeper.sign_in(contexts.new_page(), value)
    trials["unicode"] = keeper.submit(password_visit.page, candidates["unicode"])
    unicode_sign_in = None
    if trials["unicode"].verdict == "accepted":
        unicode_sign_in = keeper.sign_in(contexts.new_page(), candidates["unicode"].value)
    paste = password_flows_of(driver).paste_allowed(password_visit.page)
    evidence.text("password candidates", candidate_table(trials.values()))
    return LengthMeasurement(
        min_length=password_visit.context.min_length,
        long_length=long_length,
        trials=trials,
        truncated_sign_in=truncated,
        truncation_length=truncation_length,
        full_sign_in=full,
        unicode_sign_in=unicode_sign_in,
        paste_allowed=paste,
    )


@then("only the password below the minimum is refused and none is truncated")
def length_enforced(
    length_measurement: LengthMeasurement, control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(evaluate_length(length_measurement), control_record, evidence, "length findings")


# -- PWD_NOCOMPOSITION -----------------------------------------------------------------------


@when(
    "a long passphrase of lower-case words is submitted as the new password",
    target_fixture="lowercase_trial",
)
def submit_lowercase(password_visit: PasswordVisit, evidence: Evidence) -> Trial:
    candidate = lowercase_passphrase(password_visit.context, password_visit.rng)
    password_visit.keeper.remember(candidate.value)
    trial = password_visit.keeper.submit(password_visit.page, candidate)
    evidence.text("password candidates", candidate_table([trial]))
    return trial


@then("it is accepted without character-class rules")
def no_composition_rules(
    lowercase_trial: Trial, profile: Profile, control_record: ControlRecord, evidence: Evidence
) -> None:
    allowed = profile.thresholds.composition_rules_allowed
    conclude(evaluate_nocomposition(lowercase_trial, allowed), control_record, evidence, "findings")


# -- PWD_CHANGE ------------------------------------------------------------------------------


@when(
    "the password is changed without the current password, with a wrong one and with the right one",
    target_fixture="change_measurement",
)
def change_three_ways(password_visit: PasswordVisit) -> ChangeMeasurement:
    keeper = password_visit.keeper
    page = password_visit.page
    without = keeper.change(page, new_password(password_visit.context), current=None)
    wrong = keeper.change(
        page, new_password(password_visit.context), current=new_password(password_visit.context)
    )
    right = keeper.change(page, new_password(password_visit.context))
    return ChangeMeasurement(
        asks_current=without.asked_current,
        without_current=without.verdict,
        wrong_current=wrong.verdict,
        with_current=right.verdict,
        without_message=without.message,
        wrong_message=wrong.message,
    )


@then("only the change with the right current password takes effect")
def change_needs_current(
    change_measurement: ChangeMeasurement, control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(evaluate_change(change_measurement), control_record, evidence, "change findings")


# -- SESS_PWCHANGE ---------------------------------------------------------------------------


@given("the password test account has also signed in on a second browser", target_fixture="second")
def second_browser(password_visit: PasswordVisit, contexts: Contexts) -> Page:
    second = contexts.new_page()
    if not password_visit.keeper.sign_in(second):
        raise Inconclusive("the password test account could not sign in on a second browser")
    return second


@when("the password is changed on the first browser", target_fixture="second_before_change")
def change_on_first(
    password_visit: PasswordVisit, second: Page, driver: PortalDriver, profile: Profile
) -> Replay:
    # Positive control: the second browser's session signs in just before the change, so a
    # refusal afterwards is the change's doing, not an expired or unreplayable session.
    before = check_session(driver, second, profile)
    answer = password_visit.keeper.change(password_visit.page, new_password(password_visit.context))
    if answer.verdict != "accepted":
        raise Inconclusive(f"the password change was refused: {answer.message[:200]}")
    return before


@then("the second browser is signed out by the password change")
def second_signed_out(
    second: Page,
    second_before_change: Replay,
    password_visit: PasswordVisit,
    driver: PortalDriver,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    after = check_session(driver, second, profile)
    # Checked the same way right after: the changing browser, else a fresh sign-in with the new
    # password, must be signed in, or throttling or an outage explain the refusal as well.
    control = check_session(driver, password_visit.page, profile).signed_in
    name = "the browser that changed the password"
    if not control:
        name = "a fresh sign-in with the new password"
        control = password_visit.keeper.sign_in(password_visit.keeper.new_page())
    ending = SessionEnding(
        event="a password change",
        after=after.signed_in,
        positive=second_before_change.signed_in,
        positive_name="the second browser just before the change",
        control_after=control,
        control_name=name,
        refusal=after.refusal or second_before_change.refusal,
    )
    evaluation = evaluate_session_ended(
        ending, control="SESS_PWCHANGE", finding_key="session.survives_password_change"
    )
    conclude(evaluation, control_record, evidence, "session after password change")


# -- RESET_MAIL ------------------------------------------------------------------------------


@dataclass
class MailVisit:
    box: Mailbox
    settings: MailboxSettings
    messages: list[MailMessage] = field(default_factory=list)
    notification_expected: bool = False
    notification: MailMessage | None = None
    passwords: set[str] = field(default_factory=set)


@given("the test mailbox can be read", target_fixture="mail_visit")
def mailbox_readable(profile: Profile) -> MailVisit:
    settings = profile.mailbox
    if settings is None:
        raise Inconclusive("the profile has no 'mailbox': the portal's e-mails cannot be read")
    box = open_mailbox(settings, profile.timeouts.reachability_seconds)
    mailbox_keys(box)
    return MailVisit(box, settings)


@when("a password reset is requested for the password test account")
def request_reset_mail(
    mail_visit: MailVisit,
    profile: Profile,
    driver: PortalDriver,
    page: Page,
    redactor: Redactor,
) -> None:
    section = passwords_section(profile)
    if section.reset is None:
        raise Inconclusive("the profile has no 'passwords.reset' section")
    account = profile.accounts[section.account]
    identifier = account.email if section.reset.identify_by == "email" else account.username
    if not identifier:
        raise Inconclusive(f"accounts.{section.account} has no email to request a reset with")
    known = mailbox_keys(mail_visit.box)
    password_flows_of(driver).request_reset(page, identifier)
    match = matches(recipient=account.email, subject=section.reset.mail_subject)
    seconds = mail_visit.settings.wait_seconds
    mail = wait_for_mail(mail_visit.box, match, known, seconds, "reading the reset e-mail")
    if mail is None:
        raise Inconclusive(
            f"no reset e-mail arrived in {mail_visit.box.describe()} within {seconds:g} s"
        )
    link = reset_link_in(mail, profile, section.reset)
    if link:
        remember_link(redactor, link)
    mail_visit.messages.append(mail)


@when("the password is changed and changed back")
def change_and_back(mail_visit: MailVisit, password_visit: PasswordVisit, profile: Profile) -> None:
    keeper = password_visit.keeper
    known = mailbox_keys(mail_visit.box)
    new = new_password(password_visit.context)
    answer = keeper.change(password_visit.page, new)
    if answer.verdict != "accepted":
        raise Inconclusive(f"the password change was refused: {answer.message[:200]}")
    keeper.restore()
    mail_visit.passwords |= {new, keeper.original}
    mail_visit.notification_expected = True
    section = passwords_section(profile)
    match = matches(recipient=keeper.account.email, subject=section.notification_subject)
    mail = wait_for_mail(
        mail_visit.box, match, known, mail_visit.settings.wait_seconds, "reading notifications"
    )
    mail_visit.notification = mail
    if mail is not None:
        mail_visit.messages.append(mail)


def _run_start(audit_run: AuditRun) -> float:
    # A little before the run began, so no mail it caused is missed.
    return dt.datetime.fromisoformat(audit_run.started).timestamp() - 5


def _judge_mail(
    mail_visit: MailVisit,
    messages: list[MailMessage],
    profile: Profile,
    ledger: set[str],
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    for message in messages:
        evidence.text(
            f"e-mail: {message.subject}",
            f"To: {', '.join(message.recipients)}\nSubject: {message.subject}\n\n{message.text}",
        )
    passwords = set(mail_visit.passwords) | set(ledger)
    passwords |= {a.password.get_secret_value() for a in profile.accounts.values()}
    check = MailCheck(tuple(messages), mail_visit.notification_expected, mail_visit.notification)
    evaluation = evaluate_mail_contents(check, passwords, mail_visit.settings.patient_data_markers)
    conclude(evaluation, control_record, evidence, "e-mail findings")


@then("the reset e-mail and every other e-mail of the run carry no password or patient data")
def run_mails_clean(
    mail_visit: MailVisit,
    profile: Profile,
    audit_run: AuditRun,
    password_ledger: set[str],
    redactor: Redactor,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    addresses = {a.email.lower() for a in profile.accounts.values() if a.email}
    try:
        run_mails = mail_visit.box.messages(since=_run_start(audit_run))
    except MailboxError as exc:
        raise Inconclusive(str(exc)) from None
    keys = {m.key for m in mail_visit.messages}
    for message in run_mails:
        if message.key in keys or (addresses and not set(message.recipients) & addresses):
            continue
        for link in message.links():
            remember_link(redactor, link)
        mail_visit.messages.append(message)
        keys.add(message.key)
    _judge_mail(mail_visit, mail_visit.messages, profile, password_ledger, control_record, evidence)


@then("the account holder is notified by e-mails carrying no password or patient data")
def notified_cleanly(
    mail_visit: MailVisit,
    profile: Profile,
    password_ledger: set[str],
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    _judge_mail(mail_visit, mail_visit.messages, profile, password_ledger, control_record, evidence)


# -- RESET_TOKEN (slow: runs in the background from the start of the run) --------------------


@slow_probe("RESET_TOKEN")
def reset_link_probe(probe: ProbeContext) -> ResetMeasurement:
    """Use a reset link, reuse it, and let a second one expire (portal.reset_run)."""
    return measure_reset_links(probe)


@given("the reset test account's e-mailed reset links were followed", target_fixture="reset")
def reset_followed(slow_probes: SlowProbes, progress: Callable[[str], None]) -> ResetMeasurement:
    measurement: ResetMeasurement = slow_probes.result("RESET_TOKEN", progress)
    return measurement


@when("each link was used, used again and tried after its lifetime")
def reset_steps_done(reset: ResetMeasurement, evidence: Evidence) -> None:
    evidence.json("reset link measurements (no link or token)", asdict(reset))


@then("each link worked once, expired in time and never left the portal in a Referer")
def reset_links_safe(
    reset: ResetMeasurement, profile: Profile, control_record: ControlRecord, evidence: Evidence
) -> None:
    evaluation = evaluate_reset(
        reset,
        profile.thresholds.max_link_lifetime_seconds,
        profile.thresholds.min_reset_token_bits,
    )
    conclude(evaluation, control_record, evidence, "reset link findings")
