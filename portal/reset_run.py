"""RESET_TOKEN's background probe: request reset links by e-mail, use one, reuse it, let a
second one expire, watch where the reset page's links send the Referer, and put the account's
password back. ``measure_reset_links`` records a ``ResetMeasurement``; the verdict is
``scanners.reset.evaluate_reset``'s. steps/passwords.py registers the probe and judges it.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, Page, Route
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.abilities import PasswordFlowAbility, password_flows_of
from portal.background import ProbeContext
from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.mailbox_access import mailbox_keys, open_mailbox, wait_for_mail
from portal.password_flows import PasswordAnswer
from portal.password_keeper import candidate_context, passwords_section, with_password
from portal.profile import Profile
from portal.profile_credentials import MailboxSettings, PasswordReset
from portal.profile_sections import Account
from scanners.http import origin
from scanners.mailbox import Mailbox, MailMessage, matches
from scanners.password_candidates import CandidateContext, new_password
from scanners.reset import (
    REUSE_WITHIN,
    LinkUse,
    RefererObservation,
    ResetMeasurement,
    estimated_bits,
    token_of,
)

# Waiting this much past the stated link lifetime absorbs clock and delivery jitter.
EXPIRY_MARGIN_SECONDS = 2.0
REFERER_PROBE_URL = "https://referer-probe.portal-audit.invalid/from-reset-page"
MAX_FOREIGN_LINKS = 3


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


class RefererWatch:
    """Fulfils every request to another origin locally and records the Referer it carried."""

    def __init__(self, context: BrowserContext, portal_origin: str) -> None:
        self.portal_origin = portal_origin
        self.seen: list[tuple[str, str]] = []
        context.route(lambda url: origin(url) != portal_origin, self._fulfil)

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
        if absolute.startswith("http") and origin(absolute) != watch.portal_origin:
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
        observations.append(RefererObservation(origin(url), via, referer, leaked))
    return observations


@dataclass
class ResetRun:
    probe: ProbeContext
    flows: PasswordFlowAbility
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

    def use(self, link: str, page: Page | None = None) -> tuple[LinkUse, PasswordAnswer | None]:
        page = page or self.probe.new_page()
        if not self.flows.open_reset_link(page, link):
            return "refused", None
        new = self.fresh_password()
        answer = self.flows.complete_reset(page, new)
        if answer.verdict == "accepted":
            self.current = new
        return answer.verdict, answer

    def reuse(self, link: str, requested: float) -> tuple[LinkUse, PasswordAnswer | None, float]:
        """Use a used link again; also returns the link's age then, counted from its request
        (it was sent no earlier, so this never understates its age)."""
        age = time.monotonic() - requested
        used, answer = self.use(link)
        return used, answer, age

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


def measure_reset_links(probe: ProbeContext) -> ResetMeasurement:
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
        flows=password_flows_of(probe.driver),
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
        watch = RefererWatch(watched, origin(profile.base_url))
        page = watched.new_page()
        if not run.flows.open_reset_link(page, link):
            return ResetMeasurement(first_use="refused", first_use_detail="invalid-link page")
        referers = observe_referers(watch, page, link, token, timeout_ms)
        first, answer = run.use(link, page)
        if first != "accepted":
            detail = answer.message[:200] if answer else ""
            return ResetMeasurement(first_use=first, first_use_detail=detail)
        signed_in = probe.driver.is_signed_in(page)
        lifetime = section.reset.link_lifetime_seconds or float(
            profile.thresholds.max_link_lifetime_seconds
        )
        second, second_answer, second_use_after = run.reuse(link, link_requested)
        issued = [token]
        if second == "refused" and second_use_after > REUSE_WITHIN * lifetime:
            # Too late to tell single use from expiry (a busy machine): once more with a fresh
            # link, used and reused at once, without the Referer checks in between.
            run.notes.append(
                f"the first link's second use came {second_use_after:.0f} s after its request; "
                "measured again with a fresh link"
            )
            requested = time.monotonic()
            link3, token3 = run.request_link()
            issued.append(token3)
            again, _ = run.use(link3)
            if again == "accepted":
                second, second_answer, second_use_after = run.reuse(link3, requested)
        run.restore()
        link2, token2 = run.request_link()
        # The link was issued no later than its e-mail arrived, so its age is counted from then
        # (never overstated); the margin also covers portals that keep whole-second times.
        arrived = time.monotonic()
        probe.wait_until(arrived + lifetime + EXPIRY_MARGIN_SECONDS, "the reset link to expire")
        after, after_answer = run.use(link2)
        tokens = [t for t in (*issued, token2) if t]
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
            waited_seconds=time.monotonic() - arrived,
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
