"""Portal profiles: everything portal-specific, validated before any browser starts.

A profile is YAML. Any string may reference the environment as ``${NAME}`` (or
``${NAME:-default}``); credentials *must* be such references, so no secret is ever written into a
profile file. Errors name the file, the line, the field and the problem (``ProfileError``), and
the audit stops with status 3.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from portal.catalogue import load_catalogue
from portal.flows import Flow, RegexPattern, SelectorOrFlow, Steps, check_flow
from scanners.refusals import DEFAULT_BLOCK_PATTERNS, DEFAULT_THROTTLE_PATTERNS, Refusal, classify

ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
SECRET_FIELDS = {"password", "totp_secret"}
SECRET_EXAMPLE = "${PORTAL_PASSWORD}"
DEFAULT_DRIVER = "portal.driver:SelectorDriver"


class ProfileError(Exception):
    """A profile that cannot be used, with where and why."""

    def __init__(self, file: str, problem: str, *, field: str = "", line: int | None = None):
        self.file = file
        self.problem = problem
        self.field = field
        self.line = line
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {field + ': ' if field else ''}{problem}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignIn(_Model):
    url: str = Field(description="Path or URL of the sign-in page")
    username: str = Field(description="Selector of the username field")
    password: str = Field(description="Selector of the password field")
    submit: str = Field(description="Selector of the submit button")
    error: str | None = Field(default=None, description="Selector of the sign-in error message")
    next_button: str | None = Field(
        default=None, description="Selector of a 'Next' button between username and password"
    )


class SignedIn(_Model):
    url: str = Field(description="A protected page that shows the indicator when signed in")
    indicator: str = Field(description="Selector visible only to a signed-in user")
    signed_out_indicator: str | None = Field(
        default=None,
        description="Selector visible on that page when signed out (default: the username field)",
    )


class SignOut(_Model):
    control: SelectorOrFlow | None = Field(
        default=None,
        description="Selector to click to sign out, or the steps that sign out (a menu, a "
        "confirmation page; see portal/flows.py)",
    )
    url: str | None = Field(default=None, description="URL that signs out when opened")
    menu: str | None = Field(default=None, description="Selector opening a menu with the control")

    @model_validator(mode="after")
    def _one_way(self) -> SignOut:
        if not self.control and not self.url:
            raise ValueError("give either 'control' (a selector to click, or steps) or 'url'")
        if self.menu and not isinstance(self.control, str):
            raise ValueError("'menu' goes with a selector control; put the menu into the steps")
        return self


class ProtectedPage(_Model):
    name: str
    url: str
    patient_data: str = Field(description="Selector of the patient data on the page")


class SessionsPage(_Model):
    """Where a signed-in user sees their active sessions and ends the others (SESS_REVOKE)."""

    url: str = Field(description="Page listing the account's active sessions")
    end_others: SelectorOrFlow = Field(
        description="Selector of the control that ends all other sessions, or the steps that "
        "do (the first step's selector shows the page is the sessions page)"
    )
    confirm: str | None = Field(default=None, description="Selector confirming that action")

    @field_validator("end_others")
    @classmethod
    def _end_others_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value, starts_with_selector=True)
        return value

    @model_validator(mode="after")
    def _confirm_with_selector(self) -> SessionsPage:
        if self.confirm and not isinstance(self.end_others, str):
            raise ValueError("'confirm' goes with a selector end_others; put it into the steps")
        return self

    active_sessions: str | None = Field(
        default=None, description="Selector matching each listed active session"
    )
    recent_sign_ins: str | None = Field(
        default=None, description="Selector matching each listed recent sign-in"
    )


class Account(_Model):
    username: str
    password: SecretStr
    display_name: str = ""
    dedicated_test_account: bool = False
    totp_secret: SecretStr | None = None
    email: str | None = Field(
        default=None, description="The account's address in the test mailbox (RESET_*)"
    )


class TotpEnrolment(_Model):
    """The account page where a signed-in user adds or removes an authenticator app."""

    url: str = Field(description="Page with the authenticator (TOTP) settings")
    start: SelectorOrFlow = Field(
        description="Selector of the control that starts adding an authenticator, or the steps "
        "that do (the first step's selector must show only while none is active)"
    )
    reauth_password: str | None = Field(
        default=None,
        description="Selector of the current-password field the portal asks for before a "
        "factor changes (leave out if it asks for none: MFA_ENROLL then fails)",
    )
    reauthenticate: Steps | None = Field(
        default=None,
        description="Steps after 'start' when the portal re-authenticates on a page of its own "
        "(fill {password}, click its submit); make them optional if it may not ask",
    )
    qr_image: str | None = Field(default=None, description="Selector of the enrolment QR code")
    shown_key: SelectorOrFlow | None = Field(
        default=None,
        description="Selector of the key (an input's value, else the element's text), or steps "
        "reading it into 'key'",
    )
    confirm_code: str = Field(description="Selector of the field for the confirmation code")
    confirm_submit: str = Field(description="Selector of the confirmation submit button")
    error: str | None = Field(default=None, description="Selector of an enrolment error message")
    recovery_codes: SelectorOrFlow | None = Field(
        default=None,
        description="Selector matching each recovery code shown after enrolment; with "
        "recovery_code_pattern, the one element holding them all; or steps splitting them "
        "into 'recovery_codes'",
    )
    recovery_code_pattern: RegexPattern | None = Field(
        default=None,
        description="Regular expression matching each code in the recovery_codes element",
    )
    enrolled: str = Field(description="Selector visible once an authenticator is active")
    remove: SelectorOrFlow | None = Field(
        default=None,
        description="Selector of the control that removes the authenticator, or the steps that "
        "do (a link, a confirmation page; {password} and {code} for re-authentication)",
    )

    @field_validator("start")
    @classmethod
    def _start_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value, placeholders={"password"}, starts_with_selector=True)
        return value

    @field_validator("reauthenticate")
    @classmethod
    def _reauthenticate_flow(cls, value: Flow | None) -> Flow | None:
        check_flow(value, placeholders={"password"})
        return value

    @field_validator("shown_key")
    @classmethod
    def _key_flow(cls, value: str | Flow | None) -> str | Flow | None:
        check_flow(value, placeholders={"password"}, outputs=("key",))
        return value

    @field_validator("recovery_codes")
    @classmethod
    def _codes_flow(cls, value: str | Flow | None) -> str | Flow | None:
        check_flow(value, list_output="recovery_codes")
        return value

    @field_validator("remove")
    @classmethod
    def _remove_flow(cls, value: str | Flow | None) -> str | Flow | None:
        check_flow(value, placeholders={"password", "code"})
        return value

    @model_validator(mode="after")
    def _some_secret(self) -> TotpEnrolment:
        if not self.qr_image and not self.shown_key:
            raise ValueError("give 'qr_image' or 'shown_key' (or both): where the secret is read")
        if self.recovery_code_pattern and not isinstance(self.recovery_codes, str):
            raise ValueError(
                "'recovery_code_pattern' goes with a recovery_codes selector (the element "
                "holding the codes)"
            )
        return self


class SecondFactor(_Model):
    """The second-factor step of sign-in (MFA_*): selectors of the one-time code form."""

    code: str = Field(description="Selector of the one-time code field")
    submit: str = Field(description="Selector of the button that submits the code")
    error: str | None = Field(default=None, description="Selector of a refused-code message")
    recovery_link: str | None = Field(
        default=None, description="Selector to click to enter a recovery code instead"
    )
    recovery_code: str | None = Field(default=None, description="Selector of the recovery field")
    recovery_submit: str | None = Field(
        default=None, description="Selector of the button that submits a recovery code"
    )
    enrolment: TotpEnrolment | None = Field(
        default=None, description="Where an authenticator is added (MFA_ENROLL, MFA_RECOVERY)"
    )


class Lockout(_Model):
    """How AUTH_LOCKOUT treats the portal's lockout (the thresholds are under policy)."""

    period_seconds: float | None = Field(
        default=None,
        gt=0,
        le=7200,
        description="The portal's lockout period: the check then waits for the account to come "
        "back (leave out when an administrator unlocks accounts)",
    )
    pause_seconds: float = Field(
        default=1.0, ge=0, le=60, description="Pause between sign-in attempts"
    )
    captcha: str | None = Field(
        default=None,
        description="Selector of a CAPTCHA the portal shows after some failures: the check then "
        "reports 'CAPTCHA after N failures' instead of trying the right password past it",
    )


class EnumerationReset(_Model):
    url: str = Field(description="Page with the password-reset request form")
    username_field: str = Field(description="Form field name of the username or e-mail")


class Enumeration(_Model):
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


class ProxyAccess(_Model):
    """PROXY_ACCESS: record URLs a caregiver (accounts.proxy) may and may not open."""

    granted_urls: list[str] = Field(
        min_length=1, description="Record URLs of a patient the proxy account was granted"
    )
    not_granted_urls: list[str] = Field(
        min_length=1, description="Record URLs of a patient the proxy account was NOT granted"
    )
    patient_data: str = Field(description="Selector of the patient data on those pages")


class PasswordChangeForm(_Model):
    """The signed-in page where a user changes their password (PWD_*, SESS_PWCHANGE)."""

    url: str = Field(description="Page with the change-password form")
    before_form: Steps | None = Field(
        default=None,
        description="Steps between opening 'url' and the form: revealing it, or re-authenticating "
        "on a page of its own ({current_password}; that counts as asking for it)",
    )
    current_password: str = Field(description="Selector of the current-password field")
    new_password: str = Field(description="Selector of the new-password field")
    confirm_password: str | None = Field(
        default=None, description="Selector of the field repeating the new password"
    )
    submit: SelectorOrFlow = Field(
        description="Selector of the button that submits the change, or the steps that do "
        "(e.g. a confirmation dialog)"
    )

    @field_validator("before_form")
    @classmethod
    def _before_form_flow(cls, value: Flow | None) -> Flow | None:
        check_flow(value, placeholders={"current_password"})
        return value

    @field_validator("submit")
    @classmethod
    def _submit_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value, placeholders={"current_password", "new_password"})
        return value

    success: str = Field(description="Selector visible once the password was changed")
    error: str = Field(description="Selector of the message shown when the change is refused")
    guidance: str | None = Field(
        default=None,
        description="Selector of the password guidance shown with the form (PWD_STRENGTH); "
        "default: the refusal message",
    )


class PasswordReset(_Model):
    """The forgotten-password flow: request a link, read it from the mailbox, use it."""

    request_url: str = Field(description="Page with the reset request form")
    identifier: str = Field(description="Selector of the username or e-mail field")
    identify_by: Literal["username", "email"] = Field(
        default="username", description="What the request form is given"
    )
    submit: SelectorOrFlow = Field(
        description="Selector of the button that requests the link, or the steps that do"
    )
    requested: str = Field(description="Selector of the confirmation shown after a request")
    new_password: str = Field(description="Selector of the new-password field behind the link")
    confirm_password: str | None = Field(
        default=None, description="Selector of the field repeating the new password"
    )
    submit_new_password: SelectorOrFlow = Field(
        description="Selector of the button setting the password, or the steps that do"
    )

    @field_validator("submit")
    @classmethod
    def _request_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value)
        return value

    @field_validator("submit_new_password")
    @classmethod
    def _set_password_flow(cls, value: str | Flow) -> str | Flow:
        check_flow(value, placeholders={"new_password"})
        return value

    success: str = Field(description="Selector visible once the password was reset")
    error: str | None = Field(default=None, description="Selector of a refused new password")
    invalid_link: str = Field(description="Selector shown for a used, expired or unknown link")
    mail_subject: str | None = Field(
        default=None, description="Text in the reset e-mail's subject (default: any new mail)"
    )
    link_pattern: RegexPattern | None = Field(
        default=None,
        description="Regular expression matching the reset link in the mail (default: the "
        "first link to the portal's host)",
    )
    link_lifetime_seconds: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="How long the portal says a link stays valid; RESET_TOKEN waits this long "
        "(default: policy max_link_lifetime_seconds)",
    )


class Passwords(_Model):
    """Password policy, change and reset (PWD_*, SESS_PWCHANGE, RESET_TOKEN, RESET_MAIL)."""

    account: str = Field(
        description="Key under accounts whose password the password checks change and restore "
        "(a dedicated test account, never the main patient)"
    )
    reset_account: str | None = Field(
        default=None,
        description="Key under accounts that RESET_TOKEN resets (its own account: the check "
        "runs alongside the others)",
    )
    mfa_enforced: bool = Field(
        default=False,
        description="Every account must use MFA (then policy min_length_with_mfa applies)",
    )
    context_words: list[str] = Field(
        default=[],
        description="Portal, hospital and brand names that weak passwords are built from",
    )
    change: PasswordChangeForm
    reset: PasswordReset | None = None
    notification_subject: str | None = Field(
        default=None,
        description="Text in the subject of the 'your password was changed' e-mail (RESET_MAIL)",
    )


class Imap(_Model):
    host: str
    port: int = Field(default=993, ge=1, le=65535)
    username: str
    password: SecretStr = Field(description="An environment reference such as ${IMAP_PASSWORD}")
    folder: str = "INBOX"
    tls: bool = Field(default=True, description="IMAP over TLS (port 993); false = plain IMAP")
    ca_file: str | None = Field(default=None, description="Extra CA to trust for the server")


class MailboxSettings(_Model):
    """The test mailbox the portal's e-mails arrive in: a Maildir or an IMAP account."""

    maildir: str | None = Field(default=None, description="Path of a Maildir")
    imap: Imap | None = None
    wait_seconds: float = Field(
        default=60, gt=0, le=900, description="How long to wait for an expected e-mail"
    )
    patient_data_markers: list[str] = Field(
        default=[],
        description="Text that must never appear in an e-mail: record numbers, dates of birth, "
        "diagnoses of the test patients",
    )

    @model_validator(mode="after")
    def _one_source(self) -> MailboxSettings:
        if (self.maildir is None) == (self.imap is None):
            raise ValueError("give exactly one of 'maildir' or 'imap'")
        return self


class Tls(_Model):
    host: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    server_name: str | None = None
    ca_file: str | None = Field(default=None, description="Extra CA to trust (private CA)")


class Headers(_Model):
    error_page: str = "/portal-audit-missing-page"
    static_files: list[str] = []
    extra_pages: list[str] = []
    patient_data_urls: list[str] = Field(
        default=[], description="Signed-in data URLs (APIs, downloads) besides protected_pages"
    )


PACED_FLOWS = ("sign_in", "password_change", "reset_request", "enumeration")


class RateLimits(_Model):
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
    budget_seconds: float = Field(
        default=60,
        ge=0,
        le=900,
        description="How long one control may wait in all for the portal's Retry-After before "
        "it ends inconclusive (throttled)",
    )
    pacing_seconds: dict[str, float] = Field(
        default={},
        description=f"Least seconds between two submissions of a flow: {', '.join(PACED_FLOWS)}",
    )

    @field_validator("pacing_seconds")
    @classmethod
    def _known_flows(cls, value: dict[str, float]) -> dict[str, float]:
        for flow, seconds in value.items():
            if flow not in PACED_FLOWS:
                raise ValueError(f"unknown flow {flow!r}; known: {list(PACED_FLOWS)}")
            if not 0 <= seconds <= 600:
                raise ValueError(f"{flow}: give seconds between 0 and 600, got {seconds}")
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


class Timeouts(_Model):
    reachability_seconds: float = Field(default=10, gt=0, le=120)
    navigation_seconds: float = Field(default=20, gt=0, le=300)


class Profile(_Model):
    name: str
    base_url: str
    reference_portal: bool = Field(
        default=False, description="Start the bundled reference portal for this run"
    )
    driver: str = DEFAULT_DRIVER
    sign_in: SignIn
    signed_in: SignedIn
    sign_out: SignOut
    protected_pages: list[ProtectedPage] = Field(min_length=1)
    sessions_page: SessionsPage | None = None
    plain_http_url: str | None = Field(
        default=None,
        description="The portal's plain-HTTP address (default: base_url with http on port 80)",
    )
    mfa: SecondFactor | None = Field(
        default=None, description="The second-factor step and authenticator settings"
    )
    lockout: Lockout = Lockout()
    auth_enum: Enumeration | None = None
    proxy_access: ProxyAccess | None = None
    passwords: Passwords | None = Field(
        default=None, description="Password change and reset (PWD_*, SESS_PWCHANGE, RESET_*)"
    )
    mailbox: MailboxSettings | None = Field(
        default=None, description="The test mailbox the portal's e-mails arrive in (RESET_*)"
    )
    accounts: dict[str, Account]
    destructive_checks_allowed: bool = False
    session_cookies: list[str] = Field(
        default=[], description="Session cookie names; empty = cookies set or changed at sign-in"
    )
    tls: Tls = Tls()
    headers: Headers = Headers()
    timeouts: Timeouts = Timeouts()
    rate_limits: RateLimits = RateLimits()
    policy: dict[str, Any] = {}
    out_of_scope: dict[str, str] = Field(default={}, description="Control ID -> reason")
    not_offered: dict[str, str] = Field(
        default={},
        description="Control ID -> reason: the portal lacks the feature the control checks "
        "(failed where the catalogue requires the feature, skipped where it does not apply)",
    )

    @field_validator("base_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
        return value if value.endswith("/") else value + "/"

    @field_validator("accounts")
    @classmethod
    def _has_patient(cls, value: dict[str, Account]) -> dict[str, Account]:
        if "patient" not in value:
            raise ValueError("needs a 'patient' account (the account the audit signs in with)")
        return value

    @field_validator("policy")
    @classmethod
    def _known_thresholds(cls, value: dict[str, Any]) -> dict[str, Any]:
        known = load_catalogue().threshold_defaults()
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown policy setting(s) {unknown}; known: {sorted(known)}")
        return value

    @field_validator("out_of_scope", "not_offered")
    @classmethod
    def _known_controls(cls, value: dict[str, str]) -> dict[str, str]:
        ids = {control.id for control in load_catalogue().controls}
        for control_id, reason in value.items():
            if control_id.upper() not in ids:
                raise ValueError(f"unknown control {control_id!r}")
            if not isinstance(reason, str) or not reason.strip():
                raise ValueError(f"{control_id}: give the reason")
        return {k.upper(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _scope_or_missing(self) -> Profile:
        both = sorted(set(self.out_of_scope) & set(self.not_offered))
        if both:
            raise ValueError(
                f"{both} listed under both out_of_scope and not_offered: a control is either "
                "outside the audit or a feature the portal lacks"
            )
        catalogue = load_catalogue()
        featureless = sorted(c for c in self.not_offered if not catalogue.get(c).feature)
        if featureless:
            raise ValueError(f"not_offered: {featureless} check no optional feature of a portal")
        return self

    @model_validator(mode="after")
    def _password_accounts_exist(self) -> Profile:
        if self.passwords is None:
            return self
        for name in ("account", "reset_account"):
            key = getattr(self.passwords, name)
            if key is None:
                continue
            if key not in self.accounts:
                raise ValueError(
                    f"passwords.{name}: no account {key!r} under accounts "
                    f"(known: {sorted(self.accounts)})"
                )
            if key == "patient":
                raise ValueError(
                    f"passwords.{name}: use a dedicated account, not 'patient' (every other "
                    "check signs in with it, so its password must never change)"
                )
        return self

    # -- derived values -------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        return urljoin(self.base_url, path_or_url)

    @property
    def patient(self) -> Account:
        return self.accounts["patient"]

    def threshold(self, name: str) -> Any:
        """The applied value of a policy setting: the profile's, else the catalogue default."""
        if name in self.policy:
            return self.policy[name]
        return load_catalogue().threshold_defaults()[name]

    def is_default(self, name: str) -> bool:
        return name not in self.policy

    @property
    def http_url(self) -> str:
        """Where plain HTTP would reach the portal (AUTH_HTTPS)."""
        if self.plain_http_url:
            return (
                self.plain_http_url
                if self.plain_http_url.endswith("/")
                else self.plain_http_url + "/"
            )
        parts = urlsplit(self.base_url)
        return f"http://{parts.hostname}{parts.path or '/'}"

    @property
    def tls_host(self) -> str:
        return self.tls.host or urlsplit(self.base_url).hostname or ""

    @property
    def tls_port(self) -> int:
        return self.tls.port or urlsplit(self.base_url).port or 443

    def secrets(self) -> list[str]:
        """Every secret value in the profile, for redaction."""
        found: list[str] = []
        for account in self.accounts.values():
            found.append(account.password.get_secret_value())
            if account.totp_secret is not None:
                found.append(account.totp_secret.get_secret_value())
        if self.mailbox is not None and self.mailbox.imap is not None:
            found.append(self.mailbox.imap.password.get_secret_value())
        return [s for s in found if s]


# -- loading ---------------------------------------------------------------------------------


def _line_map(node: yaml.Node, path: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _line_map(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), lines)


def _interpolate(
    value: Any, path: tuple[str | int, ...], env: Mapping[str, str], report: _Reporter
) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env, report) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env, report) for i, v in enumerate(value)]
    is_secret = (
        len(path) == 3 and path[0] == "accounts" and path[-1] in SECRET_FIELDS and value is not None
    ) or (path == ("mailbox", "imap", "password") and value is not None)
    if is_secret and not (isinstance(value, str) and ENV_REFERENCE.fullmatch(value.strip())):
        report.fail(path, f"a secret must be an environment reference such as {SECRET_EXAMPLE}")
        return "" if isinstance(value, str) else value
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        report.fail(path, f"environment variable {name} is not set")
        return ""

    return ENV_REFERENCE.sub(substitute, value)


class _Reporter:
    def __init__(self, file: str, lines: dict[tuple[Any, ...], int]):
        self.file = file
        self.lines = lines
        self.errors: list[ProfileError] = []

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def fail(self, path: tuple[Any, ...], problem: str) -> None:
        field = ".".join(str(p) for p in path)
        self.errors.append(ProfileError(self.file, problem, field=field, line=self.line_of(path)))


class ProfileErrors(ProfileError):
    """Several problems in one profile, all reported at once."""

    def __init__(self, errors: list[ProfileError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.file, first.problem, field=first.field, line=first.line)

    def __str__(self) -> str:
        return "\n".join(str(ProfileError.__str__(e)) for e in self.errors)


def read_raw(path: Path) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]]:
    """The profile's YAML as data plus a map of field path -> line, before interpolation."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(file, f"cannot read the profile: {exc.strerror or exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(
            file, f"not valid YAML: {problem}", line=mark.line + 1 if mark else None
        ) from None
    if not isinstance(data, dict) or node is None:
        raise ProfileError(file, "must be a YAML mapping of settings")
    lines: dict[tuple[Any, ...], int] = {}
    _line_map(node, (), lines)
    return data, lines


def load_profile(path: str | Path, env: Mapping[str, str] | None = None) -> Profile:
    path = Path(path)
    env = os.environ if env is None else env
    data, lines = read_raw(path)
    reporter = _Reporter(str(path), lines)
    # A section whose settings are all commented out reads as null: treat it as left out.
    resolved = {k: v for k, v in _interpolate(data, (), env, reporter).items() if v is not None}
    if reporter.errors:
        raise ProfileErrors(reporter.errors)
    try:
        profile = Profile.model_validate(resolved)
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown setting (check the spelling against profiles/template.yaml)"
            elif error["type"] == "missing":
                message = "required setting is missing"
            reporter.fail(loc, message)
        raise ProfileErrors(reporter.errors) from None
    if profile.tls.ca_file and not Path(profile.tls.ca_file).is_file():
        reporter.fail(("tls", "ca_file"), f"CA file {profile.tls.ca_file} does not exist")
        raise ProfileErrors(reporter.errors)
    return profile


def starts_reference_portal(path: str | Path) -> bool:
    """Whether the profile asks for the bundled reference portal (read before interpolation,
    because the portal provides the variables the profile references)."""
    data, _ = read_raw(Path(path))
    return bool(data.get("reference_portal", False))
