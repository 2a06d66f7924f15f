"""The profile's sections for signing in and out, the pages, accounts, lockout, account
enumeration and caregiver access, and the transport, header, rate-limit and timeout settings.

The sections for the flows that change an account's credentials (MFA, passwords, the mailbox)
are in ``portal.profile_credentials``; the whole profile is ``portal.profile.Profile``.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, StrictBool, field_validator, model_validator

from portal.catalogue import shown
from portal.flows import Flow, RegexPattern, check_flow
from portal.profile_fields import (
    CaFile,
    ClickOrSteps,
    Host,
    Integer,
    Number,
    ProfileModel,
    refusal,
)
from portal.selectors import Selector
from scanners.refusals import DEFAULT_BLOCK_PATTERNS, DEFAULT_THROTTLE_PATTERNS, Refusal, classify


class SignIn(ProfileModel):
    url: str = Field(description="Path or URL of the sign-in page")
    username: Selector = Field(description="Selector of the username field")
    password: Selector = Field(description="Selector of the password field")
    submit: Selector = Field(description="Selector of the submit button")
    error: Selector | None = Field(
        default=None, description="Selector of the sign-in error message"
    )
    next_button: Selector | None = Field(
        default=None, description="Selector of a 'Next' button between username and password"
    )


class SignedIn(ProfileModel):
    url: str = Field(description="A protected page that shows the indicator when signed in")
    indicator: Selector = Field(description="Selector visible only to a signed-in user")
    signed_out_indicator: Selector | None = Field(
        default=None,
        description="Selector visible on that page when signed out (default: the username field)",
    )


class SignOut(ProfileModel):
    control: ClickOrSteps | None = Field(
        default=None,
        description="Selector to click to sign out, or the steps that sign out (a menu, a "
        "confirmation page; see portal/flows.py)",
    )
    url: str | None = Field(default=None, description="URL that signs out when opened")
    menu: Selector | None = Field(
        default=None, description="Selector opening a menu with the control"
    )

    @model_validator(mode="after")
    def _one_way(self) -> SignOut:
        if not self.control and not self.url:
            raise ValueError("give either 'control' (a selector to click, or steps) or 'url'")
        if self.menu and not isinstance(self.control, str):
            message = "'menu' goes with a selector control; put the menu into the steps"
            raise refusal("sign_out", [(("menu",), message)])
        return self


class ProtectedPage(ProfileModel):
    name: str
    url: str
    patient_data: Selector = Field(description="Selector of the patient data on the page")


class SessionsPage(ProfileModel):
    """Where a signed-in user sees their active sessions and ends the others (SESS_REVOKE)."""

    url: str = Field(description="Page listing the account's active sessions")
    end_others: ClickOrSteps = Field(
        description="Selector of the control that ends all other sessions, or the steps that "
        "do (the first step's selector shows the page is the sessions page)"
    )
    confirm: Selector | None = Field(default=None, description="Selector confirming that action")

    @field_validator("end_others")
    @classmethod
    def _end_others_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value, starts_with_selector=True)
        return value

    @model_validator(mode="after")
    def _confirm_with_selector(self) -> SessionsPage:
        if self.confirm and not isinstance(self.end_others, str):
            message = "'confirm' goes with a selector end_others; put it into the steps"
            raise refusal("sessions_page", [(("confirm",), message)])
        return self

    active_sessions: Selector | None = Field(
        default=None, description="Selector matching each listed active session"
    )
    recent_sign_ins: Selector | None = Field(
        default=None, description="Selector matching each listed recent sign-in"
    )


class Account(ProfileModel):
    username: str
    password: SecretStr
    display_name: str = ""
    dedicated_test_account: StrictBool = False
    totp_secret: SecretStr | None = None
    email: str | None = Field(
        default=None, description="The account's address in the test mailbox (RESET_*)"
    )


class Lockout(ProfileModel):
    """How AUTH_LOCKOUT treats the portal's lockout (the thresholds are under policy)."""

    period_seconds: Number | None = Field(
        default=None,
        gt=0,
        le=7200,
        description="The portal's lockout period: the check then waits for the account to come "
        "back (leave out when an administrator unlocks accounts)",
    )
    pause_seconds: Number = Field(
        default=1.0, ge=0, le=60, description="Pause between sign-in attempts"
    )
    captcha: Selector | None = Field(
        default=None,
        description="Selector of a CAPTCHA the portal shows after some failures: the check then "
        "reports 'CAPTCHA after N failures' instead of trying the right password past it",
    )


class EnumerationReset(ProfileModel):
    url: str = Field(description="Page with the password-reset request form")
    username_field: str = Field(description="Form field name of the username or e-mail")


class Enumeration(ProfileModel):
    """AUTH_ENUM: the forms whose answers for a known and an unknown account are compared."""

    known_username: str = Field(
        description="An existing account's username; its sign-in is refused repeatedly "
        "(use a dedicated account: the portal may lock it)"
    )
    username_field: str = Field(default="username", description="Sign-in form field name")
    password_field: str = Field(default="password", description="Sign-in form field name")
    reset: EnumerationReset | None = Field(
        default=None, description="The password-reset request form, when there is one"
    )


class ProxyAccess(ProfileModel):
    """PROXY_ACCESS: record URLs a caregiver (accounts.proxy) may and may not open."""

    granted_urls: list[str] = Field(
        min_length=1, description="Record URLs of a patient the proxy account was granted"
    )
    not_granted_urls: list[str] = Field(
        min_length=1, description="Record URLs of a patient the proxy account was NOT granted"
    )
    patient_data: Selector = Field(description="Selector of the patient data on those pages")


class Tls(ProfileModel):
    host: Host | None = None
    port: Integer | None = Field(default=None, ge=1, le=65535)
    server_name: Host | None = None
    ca_file: CaFile | None = Field(
        default=None,
        description="Extra CA to trust (private CA; PEM; relative to the profile's directory)",
    )


class Headers(ProfileModel):
    error_page: str = "/portal-audit-missing-page"
    static_files: list[str] = []
    extra_pages: list[str] = []
    patient_data_urls: list[str] = Field(
        default=[], description="Signed-in data URLs (APIs, downloads) besides protected_pages"
    )


PACED_FLOWS = ("sign_in", "password_change", "reset_request", "enumeration")


class RateLimits(ProfileModel):
    """How the portal throttles clients, so that a throttle is never read as a policy refusal."""

    throttle_patterns: list[RegexPattern] = Field(
        default=[],
        description="Regular expressions of the portal's own 'too many requests' pages, besides "
        "HTTP 429 / 503 with Retry-After and the common wordings",
    )
    block_patterns: list[RegexPattern] = Field(
        default=[],
        description="Regular expressions of CSRF, WAF or block pages that answer before the "
        "portal's logic",
    )
    budget_seconds: Number = Field(
        default=60,
        ge=0,
        le=900,
        description="How long one control may wait in all for the portal's Retry-After before "
        "it ends inconclusive (throttled)",
    )
    pacing_seconds: dict[str, Number] = Field(
        default={},
        description=f"Least seconds between two submissions of a flow: {', '.join(PACED_FLOWS)}",
    )

    @field_validator("pacing_seconds")
    @classmethod
    def _known_flows(cls, value: dict[str, float]) -> dict[str, float]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for flow, seconds in value.items():
            if flow not in PACED_FLOWS:
                problems.append(((flow,), f"unknown flow; known: {', '.join(PACED_FLOWS)}"))
            elif not 0 <= seconds <= 600:
                problems.append(((flow,), f"must be a number from 0 to 600, got {shown(seconds)}"))
        if problems:
            raise refusal("pacing_seconds", problems)
        return value

    def pacing(self, flow: str) -> float:
        return self.pacing_seconds.get(flow, 0.0)

    @property
    def all_throttle_patterns(self) -> tuple[str, ...]:
        return (*DEFAULT_THROTTLE_PATTERNS, *self.throttle_patterns)

    @property
    def all_block_patterns(self) -> tuple[str, ...]:
        return (*DEFAULT_BLOCK_PATTERNS, *self.block_patterns)

    def classify(
        self, status: int | None, text: str = "", retry_after: str | None = None
    ) -> Refusal | None:
        """A throttle or block page by the common signs and this portal's own patterns."""
        return classify(
            status,
            text,
            retry_after,
            throttle_patterns=self.all_throttle_patterns,
            block_patterns=self.all_block_patterns,
        )


class Timeouts(ProfileModel):
    reachability_seconds: Number = Field(default=10, gt=0, le=120)
    navigation_seconds: Number = Field(default=20, gt=0, le=300)
    run_seconds: Number | None = Field(
        default=None,
        ge=30,
        le=604800,
        description="Longest a whole run may take; at the deadline unfinished controls are "
        "inconclusive (default: derived from the policy's waits)",
    )
