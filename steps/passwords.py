"""Password steps: length, blocklist, strength, composition, change, sessions after a change,
reset links (a background probe) and the e-mails about passwords.

Every password the checks set is registered with the redactor before it is typed, and the
account's original password is put back when a scenario ends (``PasswordKeeper``), so repeated
audits start from the same state.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, Route
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from pydantic import SecretStr
from pytest_bdd import given, then, when

from portal.background import ProbeContext, SlowProbes, slow_probe
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Evidence, Redactor
from portal.pacing import Pacer
from portal.password_flows import FormAnswer, PasswordFlows
from portal.plugin import AuditRun, Contexts, ControlRecord
from portal.profile import (
    Account,
    MailboxSettings,
    PasswordReset,
    Passwords,
    Profile,
    RateLimits,
)
from scanners.mailbox import (
    ImapMailbox,
    Mailbox,
    MailboxError,
    MailCheck,
    MaildirMailbox,
    MailMessage,
    evaluate_mail_contents,
    matches,
    wait_for_new,
)
from scanners.passwords import (
    Candidate,
    CandidateContext,
    ChangeMeasurement,
    LengthMeasurement,
    Trial,
    blocklist_candidates,
    candidate_table,
    evaluate_blocklist,
    evaluate_change,
    evaluate_length,
    evaluate_nocomposition,
    evaluate_strength,
    length_candidates,
    load_common_passwords,
    lowercase_passphrase,
    new_password,
    score,
    strength_candidates,
    strong_passphrase,
)
from scanners.refusals import Refusal
from scanners.reset import (
    LinkUse,
    RefererObservation,
    ResetMeasurement,
    estimated_bits,
    evaluate_reset,
    token_of,
)
from scanners.timeouts import SessionEnding, evaluate_session_ended
from steps.common import Replay, check_session
from steps.outcome import conclude

# Waiting this much past the stated link lifetime absorbs clock and delivery jitter.
EXPIRY_MARGIN_SECONDS = 2.0
REFERER_PROBE_URL = "https://referer-probe.portal-audit.invalid/from-reset-page"
MAX_FOREIGN_LINKS = 3


# -- set-up --------------------------------------------------------------------------------


def flows_of(driver: PortalDriver) -> PasswordFlows:
    if not isinstance(driver, PasswordFlows):
        raise Inconclusive("the profile's driver has no password change and reset flows")
    return driver


def passwords_section(profile: Profile) -> Passwords:
    if profile.passwords is None:
        raise Inconclusive(
            "the profile has no 'passwords' section (add it, or list the control under "
            "out_of_scope with the reason)"
        )
    return profile.passwords


def dedicated(account: Account, key: str) -> Account:
    if not account.dedicated_test_account:
        pytest.skip(f"destructive check needs accounts.{key} marked dedicated_test_account")
    return account


def candidate_context(profile: Profile, account: Account) -> CandidateContext:
    section = passwords_section(profile)
    name = "min_length_with_mfa" if section.mfa_enforced else "min_length_without_mfa"
    return CandidateContext(
        username=account.username,
        display_name=account.display_name,
        context_words=tuple(section.context_words),
        min_length=int(profile.threshold(name)),
        min_score=int(profile.threshold("min_zxcvbn_score")),
        year=dt.date.today().year,
    )


def with_password(account: Account, password: str) -> Account:
    return account.model_copy(update={"password": SecretStr(password)})


def open_mailbox(settings: MailboxSettings | None, timeout: float) -> Mailbox:
    """The test mailbox; each IMAP operation is bounded by ``timeout`` seconds."""
    if settings is None:
        raise Inconclusive("the profile has no 'mailbox': the portal's e-mails cannot be read")
    if settings.maildir is not None:
        return MaildirMailbox(settings.maildir)
    assert settings.imap is not None
    imap = settings.imap
    return ImapMailbox(
        imap.host,
        imap.port,
        imap.username,
        imap.password.get_secret_value(),
        folder=imap.folder,
        tls=imap.tls,
        ca_file=imap.ca_file,
        timeout=timeout,
    )


def mailbox_keys(box: Mailbox) -> set[str]:
    try:
        return box.keys()
    except MailboxError as exc:
        raise Inconclusive(str(exc)) from None


def wait_for_mail(
    box: Mailbox, match: Callable[[MailMessage], bool], known: set[str], seconds: float, what: str
) -> MailMessage | None:
    try:
        return wait_for_new(box, match, known=known, timeout=seconds)
    except MailboxError as exc:
        raise Inconclusive(f"{what}: {exc}") from None


def reset_link_in(message: MailMessage, profile: Profile, flow: PasswordReset) -> str | None:
    if flow.link_pattern:
        found = re.search(flow.link_pattern, message.text)
        return found.group(0) if found else None
    host = urlsplit(profile.base_url).hostname
    for link in message.links():
        if urlsplit(link).hostname == host:
            return link
    return None


def remember_link(redactor: Redactor, link: str) -> str | None:
    redactor.add(link)
    token = token_of(link)
    redactor.add(token)
    return token


class PasswordKeeper:
    """Changes one account's password and always puts the original back.

    Submissions are paced as the profile asks (``rate_limits.pacing_seconds.password_change``);
    a throttled submission (HTTP 429, a "too many requests" page or message) is waited out and
    retried within the budget, and is never read as the portal refusing the password.
    """

    def __init__(
        self,
        driver: PortalDriver,
        account: Account,
        redactor: Redactor,
        ledger: set[str],
        new_page: Callable[[], Page],
        limits: RateLimits,
    ) -> None:
        self.driver = driver
        self.flows = flows_of(driver)
        self.account = account
        self.redactor = redactor
        self.ledger = ledger
        self.new_page = new_page
        self.limits = limits
        self.pacer = Pacer(limits.pacing("password_change"), limits.budget_seconds)
        self.original = account.password.get_secret_value()
        self.current = self.original

    def remember(self, password: str) -> None:
        """A password this check sets: masked in every artifact, looked for in every e-mail."""
        self.redactor.add(password)
        self.ledger.add(password)

    def sign_in(self, page: Page, password: str | None = None) -> bool:
        typed = password or self.current
        # Also a password never set, such as a truncated one: it is typed, so it is a secret.
        self.redactor.add(typed)
        outcome = self.driver.sign_in(page, with_password(self.account, typed))
        return outcome.signed_in

    def state(self) -> str:
        if self.current == self.original:
            return "the account keeps its original password"
        return "the account's password was changed by this check and is being put back"

    def _throttle(self, page: Page, message: str = "") -> Refusal | None:
        """A throttle shown by the last page the portal served, or by the form's message."""
        served = self.driver.pages.last(page)
        if served is not None and served.refusal() is not None:
            return served.refusal()
        return self.limits.classify(None, message)

    def _submit(self, page: Page, given: str | None, new: str, what: str) -> FormAnswer:
        while True:
            self.pacer.turn()
            try:
                answer = self.flows.change_password(page, given, new)
                refusal = self._throttle(page, answer.message)
            except Inconclusive:
                refusal = self._throttle(page)
                if refusal is None:
                    raise
            if refusal is None:
                return answer
            if not refusal.throttled or not self.pacer.back_off(refusal):
                raise Inconclusive(
                    f"{what}: {refusal.reason}; {self.pacer.describe() or 'not retried'}; "
                    f"{self.state()}"
                )

    def change(self, page: Page, new: str, current: str | None = "") -> FormAnswer:
        """Submit a change; ``current=""`` means the password the account has now."""
        self.remember(new)
        given = self.current if current == "" else current
        self.redactor.add(given)  # a wrong current password is typed too
        try:
            answer = self._submit(page, given, new, "changing the password")
        except Inconclusive:
            # Some portals sign the user out after a change: sign in again and retry once.
            if self.driver.is_signed_in(page) or not self.sign_in(page):
                raise
            answer = self._submit(page, given, new, "changing the password")
        if answer.verdict == "accepted":
            self.current = new
        return answer

    def submit(self, page: Page, candidate: Candidate) -> Trial:
        answer = self.change(page, candidate.value)
        return Trial(candidate, answer.verdict, answer.message)

    def restore(self) -> None:
        if self.current == self.original:
            return
        page = self.new_page()
        if not self.sign_in(page):
            raise Inconclusive(
                f"could not sign in to {self.account.username} to put its password back"
            )
        answer = self._submit(page, self.current, self.original, "putting the password back")
        if answer.verdict != "accepted":
            raise Inconclusive(
                f"the portal refused to put {self.account.username}'s original password back: "
                f"{answer.message[:200]}"
            )
        self.current = self.original


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
            guidance = flows_of(driver).password_guidance(password_visit.page)
    if not guidance:
        flows_of(driver).open_change_form(password_visit.page)
        guidance = flows_of(driver).password_guidance(password_visit.page)
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
    long_length = int(profile.threshold("max_length_at_least"))
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
    paste = flows_of(driver).paste_allowed(password_visit.page)
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
    allowed = bool(profile.threshold("composition_rules_allowed"))
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
    box = open_mailbox(profile.mailbox, profile.timeouts.reachability_seconds)
    mailbox_keys(box)
    assert profile.mailbox is not None
    return MailVisit(box, profile.mailbox)


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
    flows_of(driver).request_reset(page, identifier)
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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RefererWatch:
    """Fulfils every request to another origin locally and records the Referer it carried."""

    def __init__(self, context: BrowserContext, portal_origin: str) -> None:
        self.portal_origin = portal_origin
        self.seen: list[tuple[str, str]] = []
        context.route(lambda url: _origin(url) != portal_origin, self._fulfil)

    def _fulfil(self, route: Route) -> None:
        request = route.request
        self.seen.append((request.url, request.headers.get("referer", "")))
        route.fulfill(status=200, content_type="text/html", body="<title>elsewhere</title>")

    def follow(self, page: Page, how: str, href: str | None, timeout_ms: float) -> None:
        """Open a link from the page in a new window, as a click would."""
        before = len(self.seen)
        script = (
            "el => { el.target = '_blank'; el.click(); }"
            if href is None
            else "href => { const a = document.createElement('a'); a.href = href; "
            "a.target = '_blank'; document.body.appendChild(a); a.click(); a.remove(); }"
        )
        try:
            with page.context.expect_page(timeout=timeout_ms) as opened:
                if href is None:
                    page.locator(how).first.evaluate(script)
                else:
                    page.evaluate(script, href)
            popup = opened.value
            deadline = time.monotonic() + timeout_ms / 1000
            while len(self.seen) == before and time.monotonic() < deadline:
                popup.wait_for_timeout(50)
            popup.close()
        except (PlaywrightTimeout, PlaywrightError):
            return


def observe_referers(
    watch: RefererWatch, page: Page, link: str, token: str | None, timeout_ms: float
) -> list[RefererObservation]:
    """Follow the reset page's links to other origins and one injected link; who got what."""
    foreign: list[str] = []
    for anchor in page.locator("a[href]").all():
        href = anchor.get_attribute("href") or ""
        absolute = page.evaluate("h => new URL(h, document.baseURI).href", href)
        if absolute.startswith("http") and _origin(absolute) != watch.portal_origin:
            foreign.append(absolute)
    seen_before = len(watch.seen)
    for href in foreign[:MAX_FOREIGN_LINKS]:
        selector = f'a[href="{href}"]'
        if page.locator(selector).count():
            watch.follow(page, selector, None, timeout_ms)
        else:
            watch.follow(page, "", href, timeout_ms)
    watch.follow(page, "", REFERER_PROBE_URL, timeout_ms)
    path = urlsplit(link).path
    observations: list[RefererObservation] = []
    for index, (url, referer) in enumerate(watch.seen):
        via = "page load" if index < seen_before else "link to another origin"
        if url.startswith(REFERER_PROBE_URL):
            via = "injected link to another origin"
        leaked = bool(referer) and (
            (token is not None and token in referer) or (len(path) > 1 and path in referer)
        )
        observations.append(RefererObservation(_origin(url), via, referer, leaked))
    return observations


@dataclass
class ResetRun:
    probe: ProbeContext
    flows: PasswordFlows
    profile: Profile
    flow: PasswordReset
    account: Account
    box: Mailbox
    mailbox: MailboxSettings
    context: CandidateContext
    current: str = field(repr=False, default="")
    notes: list[str] = field(default_factory=list)

    def fresh_password(self) -> str:
        value = new_password(self.context)
        self.probe.redactor.add(value)
        return value

    def request_link(self) -> tuple[str, str | None]:
        identifier = (
            self.account.email if self.flow.identify_by == "email" else self.account.username
        )
        if not identifier:
            raise Inconclusive("the reset account has no e-mail address to request a link with")
        known = mailbox_keys(self.box)
        self.flows.request_reset(self.probe.new_page(), identifier)
        match = matches(recipient=self.account.email, subject=self.flow.mail_subject)
        seconds = self.mailbox.wait_seconds
        mail = wait_for_mail(self.box, match, known, seconds, "reading the reset e-mail")
        if mail is None:
            raise Inconclusive(f"no reset e-mail arrived within {seconds:g} s")
        link = reset_link_in(mail, self.profile, self.flow)
        if link is None:
            raise Inconclusive(f"the reset e-mail '{mail.subject}' holds no link to the portal")
        return link, remember_link(self.probe.redactor, link)

    def use(self, link: str, page: Page | None = None) -> tuple[LinkUse, FormAnswer | None]:
        page = page or self.probe.new_page()
        if not self.flows.open_reset_link(page, link):
            return "refused", None
        new = self.fresh_password()
        answer = self.flows.complete_reset(page, new)
        if answer.verdict == "accepted":
            self.current = new
        return answer.verdict, answer

    def restore(self) -> None:
        original = self.account.password.get_secret_value()
        if self.current == original:
            return
        page = self.probe.new_page()
        outcome = self.probe.driver.sign_in(page, with_password(self.account, self.current))
        if not outcome.signed_in:
            raise Inconclusive("could not sign in to the reset account to put its password back")
        answer = self.flows.change_password(page, self.current, original)
        if answer.verdict != "accepted":
            raise Inconclusive("the portal refused to put the reset account's password back")
        self.current = original


@slow_probe("RESET_TOKEN")
def reset_link_probe(probe: ProbeContext) -> ResetMeasurement:
    """Use a reset link, reuse it, and let a second one expire; restore the password."""
    profile = probe.profile
    section = passwords_section(profile)
    if section.reset is None or section.reset_account is None:
        raise Inconclusive("the profile has no 'passwords.reset' and 'passwords.reset_account'")
    account = profile.accounts[section.reset_account]
    if not account.dedicated_test_account:
        return ResetMeasurement(
            skipped=f"destructive check needs accounts.{section.reset_account} marked "
            "dedicated_test_account"
        )
    if profile.mailbox is None:
        raise Inconclusive("the profile has no 'mailbox': reset e-mails cannot be read")
    run = ResetRun(
        probe=probe,
        flows=flows_of(probe.driver),
        profile=profile,
        flow=section.reset,
        account=account,
        box=open_mailbox(profile.mailbox, profile.timeouts.reachability_seconds),
        mailbox=profile.mailbox,
        context=candidate_context(profile, account),
        current=account.password.get_secret_value(),
    )
    timeout_ms = profile.timeouts.navigation_seconds * 1000
    try:
        link_requested = time.monotonic()
        link, token = run.request_link()
        watched = probe.new_context()
        watch = RefererWatch(watched, _origin(profile.base_url))
        page = watched.new_page()
        if not run.flows.open_reset_link(page, link):
            return ResetMeasurement(first_use="refused", first_use_detail="invalid-link page")
        referers = observe_referers(watch, page, link, token, timeout_ms)
        first, answer = run.use(link, page)
        if first != "accepted":
            detail = answer.message[:200] if answer else ""
            return ResetMeasurement(first_use=first, first_use_detail=detail)
        signed_in = probe.driver.is_signed_in(page)
        # The link was sent no earlier than it was requested, so this never understates its age.
        second_use_after = time.monotonic() - link_requested
        second, second_answer = run.use(link)
        run.restore()
        lifetime = section.reset.link_lifetime_seconds or float(
            profile.threshold("max_link_lifetime_seconds")
        )
        requested = time.monotonic()
        link2, token2 = run.request_link()
        probe.wait_until(requested + lifetime + EXPIRY_MARGIN_SECONDS, "the reset link to expire")
        after, after_answer = run.use(link2)
        tokens = [t for t in (token, token2) if t]
        # A refusal on the new-password form that is a throttle or block page says nothing
        # about the link.
        others = []
        for answer in (second_answer, after_answer):
            if answer is not None and answer.verdict == "refused":
                refusal = profile.rate_limits.classify(None, answer.message)
                if refusal is not None:
                    others.append(refusal.reason)
        return ResetMeasurement(
            first_use="accepted",
            second_use=second,
            signed_in_after_reset=signed_in,
            account_has_mfa=account.totp_secret is not None,
            stated_lifetime_seconds=section.reset.link_lifetime_seconds,
            waited_seconds=time.monotonic() - requested,
            after_expiry=after,
            second_use_after_seconds=second_use_after,
            other_refusal=others[0] if others else "",
            token_lengths=tuple(len(t) for t in tokens),
            token_bits=(estimated_bits(tokens),) if tokens else (),
            tokens_distinct=len(set(tokens)) == len(tokens) if len(tokens) > 1 else None,
            referers=tuple(referers),
            notes=tuple(run.notes),
        )
    finally:
        run.restore()


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
        float(profile.threshold("max_link_lifetime_seconds")),
        float(profile.threshold("min_reset_token_bits")),
    )
    conclude(evaluation, control_record, evidence, "reset link findings")
