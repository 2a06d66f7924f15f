"""The driver's second-factor abilities: TOTP codes, the code form, enrolment, recovery codes.

``SelectorDriver`` inherits these; everything portal-specific comes from the profile's ``mfa``
section. Every secret seen here (TOTP secrets, otpauth URIs, codes, recovery codes) is
registered with the redactor before anything else happens with it.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qs, urlsplit

import pyotp
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page, Response
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.abilities import ConfirmationGone
from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.flow_runner import FlowSteps, split_items, value_or_text, where
from portal.flows import placeholders_in
from portal.profile import Profile
from portal.profile_credentials import SecondFactor, TotpEnrolment
from portal.profile_sections import Account

TOTP_PERIOD = 30
# Where a page ended up after the portal answered a form.
State = Literal["signed_in", "second_factor", "signed_out", "refused", "unknown"]

_used_steps: dict[str, int] = {}
_used_lock = threading.Lock()
_step_passed = threading.Event()  # never set: waits on it are bounded pauses, not sleeps


@dataclass(frozen=True)
class EnrolmentOffer:
    """What the enrolment page offered (secrets kept off reprs)."""

    reauthentication_asked: bool
    qr_uri: str | None = field(default=None, repr=False)
    shown_key: str | None = field(default=None, repr=False)
    qr_problem: str = ""


@dataclass(frozen=True)
class EnrolmentResult:
    confirmed: bool
    detail: str
    recovery_codes: list[str] = field(default_factory=list, repr=False)


class AnySecretTOTP(pyotp.TOTP):
    """pyotp's TOTP for a secret of any length.

    pyotp refuses secrets under 112 bits: ``OTP.__init__`` decodes the secret through
    ``byte_secret``, which raises ``ValueError`` below ``min_secret_length_bits``, as NIST SP
    800-63B asks of whoever issues secrets. The audit issues none: it answers the code form for
    whatever secret the portal issued, so a portal issuing short secrets can still be signed in
    to, and MFA_ENROLL reports the short secret as its finding. pyotp lets a subclass lower
    ``min_secret_length_bits`` for this.
    """

    min_secret_length_bits = 0


def base32_key(shown: str) -> str:
    """A base32 key as portals show it, without its grouping: spaces and dashes removed
    (``ABCD EFGH``, Flask-Security's ``ABCD-EFGH``; base32 has no ``-``), in upper case."""
    return "".join(shown.split()).replace("-", "").upper()


def totp_at(secret: str, step: int, digits: int = 6) -> str:
    """RFC 6238 TOTP (SHA-1) of a base32 secret for a time step; spaces, dashes and padding in
    the secret, as portals show it, are ignored, and letters may be of either case."""
    cleaned = base32_key(secret).rstrip("=")
    return AnySecretTOTP(cleaned, digits=digits, interval=TOTP_PERIOD).generate_otp(step)


def secret_of(offer: EnrolmentOffer) -> str | None:
    """The base32 secret the offer carries: the QR code's, else the shown key."""
    if offer.qr_uri:
        values = parse_qs(urlsplit(offer.qr_uri).query).get("secret")
        if values:
            return base32_key(values[0])
    if offer.shown_key:
        return base32_key(offer.shown_key)
    return None


def decode_qr(png: bytes) -> str | None:
    """The text of the first QR code in a PNG image, or None."""
    import zxingcpp
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        found = zxingcpp.read_barcodes(image.convert("RGB"))
    return found[0].text if found else None


class SecondFactorMixin(FlowSteps):
    profile: Profile
    redactor: Redactor
    timeout_ms: float

    if TYPE_CHECKING:

        def _goto(self, page: Page, url: str) -> Response | None: ...

        def _signed_out_marker(self) -> str: ...

    # -- codes ---------------------------------------------------------------------------
    def fresh_totp(self, secret: str) -> str:
        """A code this run has not used yet: the current step's, else the next one's, else
        the current step's once the clock moves on (a portal accepts each code once)."""
        self.redactor.add(secret)
        key = hashlib.sha256(secret.encode()).hexdigest()
        while True:
            now = time.time()
            current = int(now // TOTP_PERIOD)
            with _used_lock:
                last = _used_steps.get(key, -1)
                step = next((s for s in (current, current + 1) if s > last), None)
                if step is not None:
                    _used_steps[key] = step
                    code = totp_at(secret, step)
                    self.redactor.add(code)
                    return code
            _step_passed.wait((current + 1) * TOTP_PERIOD - now + 0.05)

    def stale_totp(self, secret: str, steps_back: int) -> str:
        self.redactor.add(secret)
        code = totp_at(secret, int(time.time() // TOTP_PERIOD) - steps_back)
        self.redactor.add(code)
        return code

    def wrong_totp(self, secret: str, attempt: int) -> str:
        """A well-formed code that is valid at no step near now."""
        self.redactor.add(secret)
        current = int(time.time() // TOTP_PERIOD)
        near = {totp_at(secret, current + k) for k in range(-3, 4)}
        candidate = attempt * 7919 % 1_000_000
        while f"{candidate:06d}" in near:
            candidate = (candidate + 1) % 1_000_000
        code = f"{candidate:06d}"
        self.redactor.add(code)
        return code

    # -- the second-factor form ------------------------------------------------------------
    def _mfa(self) -> SecondFactor:
        if self.profile.mfa is None:
            raise Inconclusive("the profile has no mfa section")
        return self.profile.mfa

    def _submit_and_settle(self, page: Page, button: Locator) -> None:
        """Click a submit button and wait for the page the portal answers with."""
        try:
            with page.expect_navigation(wait_until="load", timeout=self.timeout_ms):
                button.click(timeout=self.timeout_ms)
        except PlaywrightTimeout:
            # Single-page apps answer without navigating; the state is read from the DOM.
            pass

    def page_state(self, page: Page) -> State:
        """Where the page is now: signed in, asking for a code, or on the sign-in form."""
        indicator = page.locator(self.profile.signed_in.indicator).first
        signed_out = page.locator(self.profile.sign_in.username).first
        watched = indicator.or_(signed_out)
        code: Locator | None = None
        if self.profile.mfa is not None:
            code = page.locator(self.profile.mfa.code).first
            watched = watched.or_(code)
            if self.profile.mfa.recovery_code:
                watched = watched.or_(page.locator(self.profile.mfa.recovery_code).first)
        try:
            watched.first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            return "unknown"
        if indicator.is_visible():
            return "signed_in"
        if signed_out.is_visible():
            return "signed_out"
        return "second_factor"

    def first_factor(self, page: Page, account: Account) -> State:
        """Submit only the username and password; returns where that led."""
        form = self.profile.sign_in
        self._goto(page, form.url)
        try:
            page.locator(form.username).first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(f"sign-in form not found: no visible {form.username!r}") from None
        page.locator(form.username).first.fill(account.username)
        if form.next_button:
            page.locator(form.next_button).first.click(timeout=self.timeout_ms)
        page.locator(form.password).first.wait_for(state="visible", timeout=self.timeout_ms)
        page.locator(form.password).first.fill(account.password.get_secret_value())
        self._submit_and_settle(page, page.locator(form.submit).first)
        state = self.page_state(page)
        if state == "signed_out":
            return "refused"
        return state

    def submit_code(self, page: Page, code: str) -> State:
        mfa = self._mfa()
        self.redactor.add(code)
        field_ = page.locator(mfa.code).first
        if not field_.is_visible():
            return self.page_state(page)
        field_.fill(code)
        self._submit_and_settle(page, page.locator(mfa.submit).first)
        return self.page_state(page)

    def submit_recovery_code(self, page: Page, code: str) -> State:
        mfa = self._mfa()
        if not mfa.recovery_code or not mfa.recovery_submit:
            raise Inconclusive("the profile's mfa section gives no recovery_code/recovery_submit")
        self.redactor.add(code)
        entry = page.locator(mfa.recovery_code).first
        opener = mfa.recovery_link
        if opener is not None and not entry.is_visible():
            if isinstance(opener, str):
                link = page.locator(opener).first
                if link.is_visible():
                    self._submit_and_settle(page, link)
            else:
                # Steps (a rescue form: choose the recovery code, then submit): a step that
                # cannot run is inconclusive naming the flow, step and page.
                self.run_steps(page, opener, name="mfa.recovery_link")
        try:
            entry.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(f"no recovery-code field {mfa.recovery_code!r}") from None
        entry.fill(code)
        self._submit_and_settle(page, page.locator(mfa.recovery_submit).first)
        return self.page_state(page)

    def complete_second_factor(self, page: Page, account: Account) -> State:
        """Answer the code form with a fresh code from the account's TOTP secret."""
        if account.totp_secret is None:
            return "second_factor"
        return self.submit_code(page, self.fresh_totp(account.totp_secret.get_secret_value()))

    def asks_second_factor(self, page: Page) -> bool:
        mfa = self.profile.mfa
        return mfa is not None and page.locator(mfa.code).first.is_visible()

    def finish_sign_in(self, page: Page, account: Account) -> State:
        """Complete a sign-in left at the second factor, wherever the page has gone since: back
        on the code form, on a sign-in page that resumes the pending sign-in, or signed out."""
        if not self.asks_second_factor(page):
            self._goto(page, self.profile.sign_in.url)
            state = self.page_state(page)
            if state == "signed_out":
                state = self.first_factor(page, account)
            if state != "second_factor":
                return state
        return self.complete_second_factor(page, account)

    # -- enrolment -------------------------------------------------------------------------
    def _enrolment(self) -> TotpEnrolment:
        enrolment = self._mfa().enrolment
        if enrolment is None:
            raise Inconclusive("the profile's mfa section has no enrolment page")
        return enrolment

    def _visible(self, page: Page, selector: str | None) -> bool:
        return bool(selector) and page.locator(str(selector)).first.is_visible()

    def _reauthenticate(self, page: Page, account: Account) -> bool:
        enrolment = self._enrolment()
        if self._visible(page, enrolment.reauth_password):
            assert enrolment.reauth_password is not None
            page.locator(enrolment.reauth_password).first.fill(account.password.get_secret_value())
            return True
        return False

    def open_enrolment(self, page: Page) -> bool:
        """Open the authenticator settings; True when an authenticator is already active."""
        enrolment = self._enrolment()
        self._goto(page, enrolment.url)
        marker = self.page_marker(enrolment.start)
        start = page.locator(marker).first
        active = page.locator(enrolment.enrolled).first
        try:
            start.or_(active).first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise Inconclusive(
                f"the authenticator settings at {page.url} show neither {marker!r} "
                f"nor {enrolment.enrolled!r}"
            ) from None
        return active.is_visible() and not start.is_visible()

    def start_enrolment(self, page: Page, account: Account) -> EnrolmentOffer:
        """Start adding an authenticator (removing one left by an interrupted run first)."""
        enrolment = self._enrolment()
        if self.open_enrolment(page):
            if not self.remove_authenticator(page, account):
                raise Inconclusive("an authenticator left from an earlier run could not be removed")
            self.open_enrolment(page)
        password = {"password": account.password.get_secret_value()}
        asked = self._reauthenticate(page, account)
        if isinstance(enrolment.start, str):
            self._submit_and_settle(page, page.locator(enrolment.start).first)
        else:
            started = self.run_steps(
                page, enrolment.start, name="mfa.enrolment.start", values=password
            )
            asked = asked or "password" in started.filled
        if enrolment.reauthenticate:
            # Re-authentication on a page of its own: asked only if the password was typed.
            confirmed = self.run_steps(
                page, enrolment.reauthenticate, name="mfa.enrolment.reauthenticate", values=password
            )
            asked = asked or "password" in confirmed.filled
        key = None
        if enrolment.shown_key is not None and not isinstance(enrolment.shown_key, str):
            read = self.run_steps(
                page, enrolment.shown_key, name="mfa.enrolment.shown_key", values=password
            )
            key = read.text("key")
        key_selector = enrolment.shown_key if isinstance(enrolment.shown_key, str) else None
        wanted = [s for s in (enrolment.qr_image, key_selector) if s]
        if wanted and not key:
            target = page.locator(wanted[0]).first
            for selector in wanted[1:]:
                target = target.or_(page.locator(selector).first)
            try:
                target.first.wait_for(state="visible", timeout=self.timeout_ms)
            except PlaywrightTimeout:
                raise Inconclusive(f"no QR code or key appeared at {page.url}") from None
        if key_selector and self._visible(page, key_selector):
            # A key in an <input> (often disabled) is its value: its text is empty.
            key = value_or_text(page.locator(key_selector).first, self.timeout_ms)
        key = key.strip() if key else None
        if key:
            self.redactor.add(key)
            self.redactor.add("".join(key.split()))
            self.redactor.add(base32_key(key))  # as secret_of reads it (no dashes, upper case)
        else:
            key = None  # an element that showed nothing is no source of the secret
        uri, problem = None, ""
        if enrolment.qr_image and self._visible(page, enrolment.qr_image):
            try:
                uri = decode_qr(page.locator(enrolment.qr_image).first.screenshot())
            except (PlaywrightError, OSError, ValueError) as exc:
                problem = f"the QR code could not be read: {type(exc).__name__}"
            if uri:
                self.redactor.add(uri)
                # The secret as the QR code spells it (secret_of normalises it, below).
                for raw in parse_qs(urlsplit(uri).query).get("secret", []):
                    self.redactor.add(raw)
                if secret_of(EnrolmentOffer(False, uri)) is None:
                    problem = "the QR code holds no TOTP secret"
                    uri = None
            elif not problem:
                problem = "no QR code was found in the enrolment image"
        offer = EnrolmentOffer(asked, uri, key, problem)
        secret = secret_of(offer)
        self.redactor.add(secret)
        if secret:
            self._enrolment_secrets()[account.username] = secret
        return offer

    def _enrolment_secrets(self) -> dict[str, str]:
        """Secrets this driver enrolled, by username: a removal flow may ask for a {code}."""
        return self.__dict__.setdefault("_enrolled_secrets", {})

    def confirm_enrolment(self, page: Page, code: str) -> EnrolmentResult:
        """Submit a confirmation code and read the portal's answer. ``ConfirmationGone`` when
        the page has no confirmation field, e.g. after a refused code sent the user back to
        the start of the enrolment."""
        enrolment = self._enrolment()
        self.redactor.add(code)
        field_ = page.locator(enrolment.confirm_code).first
        try:
            field_.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            raise ConfirmationGone(
                f"no confirmation field {enrolment.confirm_code!r} at {where(page)}"
            ) from None
        field_.fill(code)
        self._submit_and_settle(page, page.locator(enrolment.confirm_submit).first)
        active = page.locator(enrolment.enrolled).first
        watched = active.or_(page.locator(enrolment.confirm_code).first)
        if enrolment.error:
            watched = watched.or_(page.locator(enrolment.error).first)
        try:
            watched.first.wait_for(state="visible", timeout=self.timeout_ms)
        except PlaywrightTimeout:
            return EnrolmentResult(False, "the portal showed no answer to the confirmation")
        if not active.is_visible():
            message = ""
            if self._visible(page, enrolment.error):
                assert enrolment.error is not None
                message = page.locator(enrolment.error).first.inner_text().strip()[:200]
            return EnrolmentResult(False, f"refused: {message}" if message else "refused")
        return EnrolmentResult(True, "authenticator active", self._recovery_codes(page))

    def _recovery_codes(self, page: Page) -> list[str]:
        """The codes shown after enrolment: one element each, one block split by a pattern,
        or what the profile's steps split out. Each is registered as a secret."""
        enrolment = self._enrolment()
        shown = enrolment.recovery_codes
        if shown is None:
            return []
        if not isinstance(shown, str):
            read = self.run_steps(page, shown, name="mfa.enrolment.recovery_codes")
            found = read.items("recovery_codes")
        elif enrolment.recovery_code_pattern:
            block = page.locator(shown).first
            text = value_or_text(block, self.timeout_ms) if block.is_visible() else ""
            self.redactor.add(text.strip())
            found = split_items(text, enrolment.recovery_code_pattern)
        else:
            found = [value_or_text(item, self.timeout_ms) for item in page.locator(shown).all()]
        codes = [code.strip() for code in found if code.strip()]
        for code in codes:
            self.redactor.add(code)
        return codes

    def remove_authenticator(self, page: Page, account: Account) -> bool:
        """Remove the account's authenticator; True when none is active afterwards."""
        enrolment = self._enrolment()
        if not enrolment.remove:
            raise Inconclusive("the profile's mfa enrolment gives no 'remove' control")
        if not self.open_enrolment(page):
            return True
        if isinstance(enrolment.remove, str):
            self._reauthenticate(page, account)
            self._submit_and_settle(page, page.locator(enrolment.remove).first)
        else:
            values: dict[str, str | None] = {"password": account.password.get_secret_value()}
            if "code" in placeholders_in(enrolment.remove):
                secret = (
                    account.totp_secret.get_secret_value()
                    if account.totp_secret is not None
                    else self._enrolment_secrets().get(account.username)
                )
                values["code"] = self.fresh_totp(secret) if secret else None
            self.run_steps(page, enrolment.remove, name="mfa.enrolment.remove", values=values)
        return not self.open_enrolment(page)
