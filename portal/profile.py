"""Portal profiles: everything portal-specific, validated before any browser starts.

A profile is YAML. Any string may reference the environment as ``${NAME}`` (or
``${NAME:-default}``); credentials *must* be exactly ``${NAME}``, so no secret is ever written into
a profile file. Everything is checked when the profile loads: types (numbers are numbers,
booleans are unquoted true/false), ranges (the catalogue's for ``policy:``), selectors (as
Playwright parses them), host names, CA files, account roles. The file itself is bounded before
it is parsed: size, encoding, nesting, no YAML anchors or aliases, no duplicate keys. Errors name
the file, the line, the field and the problem (``ProfileError``), all at once, and the audit
stops with status 3.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import stat
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urljoin, urlsplit

import annotated_types
from cryptography import x509
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from portal.catalogue import load_catalogue, number_text, shown
from portal.flows import Flow, RegexPattern, SelectorOrFlow, Steps, check_flow
from portal.profile_file import ProfileError, ProfileErrors, read_raw
from portal.selectors import Selector, selector_problem, valid_selector
from scanners.refusals import DEFAULT_BLOCK_PATTERNS, DEFAULT_THROTTLE_PATTERNS, Refusal, classify

ENV_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
SECRET_FIELDS = {"password", "totp_secret"}
SECRET_EXAMPLE = "${PORTAL_PASSWORD}"
DEFAULT_DRIVER = "portal.driver:SelectorDriver"
MAX_CA_FILE_BYTES = 1024 * 1024
# Account keys the checks look up by name (portal/roles.py, steps/): the patient the audit signs
# in with, the lockout account AUTH_LOCKOUT locks, mfa (enrolled in TOTP: MFA_ENFORCE, MFA_OTP),
# mfa_enrol (MFA_ENROLL, MFA_RECOVERY) and proxy (a caregiver: PROXY_ACCESS). passwords.account
# and passwords.reset_account name further keys of the profile's choosing; any other is a typo.
ACCOUNT_ROLES = frozenset({"patient", "lockout", "mfa", "mfa_enrol", "proxy"})


def _refusal(title: str, problems: Sequence[tuple[tuple[str | int, ...], str]]) -> ValidationError:
    """Problems a validator found, each at its own path below the value it validates, so that
    every one is reported on its own line of the profile (a ValueError has only the
    validator's location)."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("profile", "{problem}", {"problem": problem}),
                loc=loc,
                input=None,
            )
            for loc, problem in problems
        ],
    )


def _not_a_boolean(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; a number written as true is a mistake.
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "a number, not true or false")
    return value


# A number in a profile: a YAML number (or number text from an environment reference), never a
# boolean. Its range is the field's ge/gt/le, always both ends.
Number = Annotated[float, BeforeValidator(_not_a_boolean)]
Integer = Annotated[int, BeforeValidator(_not_a_boolean)]


# -- hosts and CA files ------------------------------------------------------------------------

_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")


def host_problem(host: str) -> str | None:
    """Why ``host`` is no host name (DNS, IDNA) or IP address (IPv6 without brackets), or None."""
    if not host:
        return "no host name"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not a valid IPv6 address"
        return None
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is not a valid IPv4 address"
        return None
    odd = next((c for c in host if c.isspace() or c in "/\\?#@[]<>%\"'`{}|^,;=!$&()*+~"), None)
    if odd is not None:
        return f"host name {host!r} contains {odd!r}, which no host name may contain"
    name = host[:-1] if host.endswith(".") else host
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return f"host name {host!r} is not a valid (IDNA) domain name"
    if len(ascii_name) > 253 or not all(_HOST_LABEL.fullmatch(p) for p in ascii_name.split(".")):
        return (
            f"host name {host!r} is not a valid domain name (labels of 1 to 63 letters, digits, "
            "'-' and '_', not starting or ending with '-')"
        )
    return None


def _checked_url(value: str) -> str:
    """An absolute http(s) URL with a valid host and port."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}): {value!r}") from None
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        raise ValueError(f"must be an absolute http(s) URL, got {value!r}")
    problem = host_problem(parts.hostname or "")
    if problem:
        raise ValueError(f"{problem}, in {value!r}")
    if port == 0:
        raise ValueError(f"port 0 is not a port, in {value!r}")
    return value if value.endswith("/") else value + "/"


def _checked_host(value: str) -> str:
    """A host name or IP address; an IPv6 address without its URL brackets."""
    host = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    problem = host_problem(host)
    if problem:
        raise ValueError(problem)
    return host


Host = Annotated[str, AfterValidator(_checked_host)]


def _pem_problem(path: Path) -> str | None:
    """Why ``path`` holds no usable PEM certificate, or None. Never quotes the file."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return "no such file"
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if stat.S_ISDIR(status.st_mode):
        return "it is a directory"
    if not stat.S_ISREG(status.st_mode):
        return "not a regular file"
    if status.st_size > MAX_CA_FILE_BYTES:
        return "larger than 1 MiB"
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CA_FILE_BYTES + 1)
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    if len(data) > MAX_CA_FILE_BYTES:
        return "larger than 1 MiB"
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return "no PEM certificate in it"
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        return "a certificate in it does not parse"
    return None


def _checked_ca_file(value: str | None, info: ValidationInfo) -> str | None:
    """The CA file's path (a relative one is relative to the profile's directory), once it is
    known to hold at least one PEM certificate that parses."""
    if value is None:
        return None
    path = Path(value)
    base = (info.context or {}).get("profile_dir")
    if not path.is_absolute():
        path = Path(base or ".") / path
    problem = _pem_problem(path)
    if problem:
        raise ValueError(f"{os.path.normpath(path)} is not a readable PEM certificate ({problem})")
    return str(path)


CaFile = Annotated[str, AfterValidator(_checked_ca_file)]


# -- flows: their selectors and their booleans, checked like any other field -----------------


def _strict_optional(value: Any) -> Any:
    """``optional: "yes"`` in a step is a mistake, not true (read before the steps are built)."""
    if isinstance(value, list):
        problems = [
            ((index, "optional"), _boolean_problem(step["optional"]))
            for index, step in enumerate(value)
            if isinstance(step, dict)
            and "optional" in step
            and not isinstance(step["optional"], bool)
        ]
        if problems:
            raise _refusal("flow", problems)
    return value


def _flow_selectors(value: str | Flow) -> str | Flow:
    """The field's selector, or each step's, must parse (steps at their own line)."""
    if isinstance(value, str):
        return valid_selector(value)
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for index, step in enumerate(value):
        problem = selector_problem(step.selector) if step.selector is not None else None
        if problem:
            problems.append(((index, step.kind), problem))
    if problems:
        raise _refusal("flow", problems)
    return value


# A selector or steps (portal/flows.py), and steps only, with their selectors checked.
ClickOrSteps = Annotated[
    SelectorOrFlow, BeforeValidator(_strict_optional), AfterValidator(_flow_selectors)
]
StepList = Annotated[Steps, BeforeValidator(_strict_optional), AfterValidator(_flow_selectors)]


def _boolean_problem(value: Any) -> str:
    hint = ""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        hint = " (quoted, so text: write it without quotes)"
    elif isinstance(value, str) and value.strip().lower() in ("yes", "no", "on", "off", "y", "n"):
        hint = " (only true and false are booleans in a profile)"
    return f"must be true or false, got {shown(value)}{hint}"


# -- the profile ---------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignIn(_Model):
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


class SignedIn(_Model):
    url: str = Field(description="A protected page that shows the indicator when signed in")
    indicator: Selector = Field(description="Selector visible only to a signed-in user")
    signed_out_indicator: Selector | None = Field(
        default=None,
        description="Selector visible on that page when signed out (default: the username field)",
    )


class SignOut(_Model):
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
            raise _refusal("sign_out", [(("menu",), message)])
        return self


class ProtectedPage(_Model):
    name: str
    url: str
    patient_data: Selector = Field(description="Selector of the patient data on the page")


class SessionsPage(_Model):
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
            raise _refusal("sessions_page", [(("confirm",), message)])
        return self

    active_sessions: Selector | None = Field(
        default=None, description="Selector matching each listed active session"
    )
    recent_sign_ins: Selector | None = Field(
        default=None, description="Selector matching each listed recent sign-in"
    )


class Account(_Model):
    username: str
    password: SecretStr
    display_name: str = ""
    dedicated_test_account: StrictBool = False
    totp_secret: SecretStr | None = None
    email: str | None = Field(
        default=None, description="The account's address in the test mailbox (RESET_*)"
    )


class TotpEnrolment(_Model):
    """The account page where a signed-in user adds or removes an authenticator app."""

    url: str = Field(description="Page with the authenticator (TOTP) settings")
    start: ClickOrSteps = Field(
        description="Selector of the control that starts adding an authenticator, or the steps "
        "that do (the first step's selector must show only while none is active)"
    )
    reauth_password: Selector | None = Field(
        default=None,
        description="Selector of the current-password field the portal asks for before a "
        "factor changes (leave out if it asks for none: MFA_ENROLL then fails)",
    )
    reauthenticate: StepList | None = Field(
        default=None,
        description="Steps after 'start' when the portal re-authenticates on a page of its own "
        "(fill {password}, click its submit); make them optional if it may not ask",
    )
    qr_image: Selector | None = Field(default=None, description="Selector of the enrolment QR code")
    shown_key: ClickOrSteps | None = Field(
        default=None,
        description="Selector of the key (an input's value, else the element's text), or steps "
        "reading it into 'key'",
    )
    confirm_code: Selector = Field(description="Selector of the field for the confirmation code")
    confirm_submit: Selector = Field(description="Selector of the confirmation submit button")
    error: Selector | None = Field(
        default=None, description="Selector of an enrolment error message"
    )
    recovery_codes: ClickOrSteps | None = Field(
        default=None,
        description="Selector matching each recovery code shown after enrolment; with "
        "recovery_code_pattern, the one element holding them all; or steps splitting them "
        "into 'recovery_codes'",
    )
    recovery_code_pattern: RegexPattern | None = Field(
        default=None,
        description="Regular expression matching each code in the recovery_codes element",
    )
    enrolled: Selector = Field(description="Selector visible once an authenticator is active")
    remove: ClickOrSteps | None = Field(
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
            message = (
                "'recovery_code_pattern' goes with a recovery_codes selector (the element "
                "holding the codes)"
            )
            raise _refusal("enrolment", [(("recovery_code_pattern",), message)])
        return self


class SecondFactor(_Model):
    """The second-factor step of sign-in (MFA_*): selectors of the one-time code form."""

    code: Selector = Field(description="Selector of the one-time code field")
    submit: Selector = Field(description="Selector of the button that submits the code")
    error: Selector | None = Field(default=None, description="Selector of a refused-code message")
    recovery_link: Selector | None = Field(
        default=None, description="Selector to click to enter a recovery code instead"
    )
    recovery_code: Selector | None = Field(
        default=None, description="Selector of the recovery field"
    )
    recovery_submit: Selector | None = Field(
        default=None, description="Selector of the button that submits a recovery code"
    )
    enrolment: TotpEnrolment | None = Field(
        default=None, description="Where an authenticator is added (MFA_ENROLL, MFA_RECOVERY)"
    )


class Lockout(_Model):
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
    patient_data: Selector = Field(description="Selector of the patient data on those pages")


class PasswordChangeForm(_Model):
    """The signed-in page where a user changes their password (PWD_*, SESS_PWCHANGE)."""

    url: str = Field(description="Page with the change-password form")
    before_form: StepList | None = Field(
        default=None,
        description="Steps between opening 'url' and the form: revealing it, or re-authenticating "
        "on a page of its own ({current_password}; that counts as asking for it)",
    )
    current_password: Selector = Field(description="Selector of the current-password field")
    new_password: Selector = Field(description="Selector of the new-password field")
    confirm_password: Selector | None = Field(
        default=None, description="Selector of the field repeating the new password"
    )
    submit: ClickOrSteps = Field(
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

    success: Selector = Field(description="Selector visible once the password was changed")
    error: Selector = Field(description="Selector of the message shown when the change is refused")
    guidance: Selector | None = Field(
        default=None,
        description="Selector of the password guidance shown with the form (PWD_STRENGTH); "
        "default: the refusal message",
    )


class PasswordReset(_Model):
    """The forgotten-password flow: request a link, read it from the mailbox, use it."""

    request_url: str = Field(description="Page with the reset request form")
    identifier: Selector = Field(description="Selector of the username or e-mail field")
    identify_by: Literal["username", "email"] = Field(
        default="username", description="What the request form is given"
    )
    submit: ClickOrSteps = Field(
        description="Selector of the button that requests the link, or the steps that do"
    )
    requested: Selector = Field(description="Selector of the confirmation shown after a request")
    new_password: Selector = Field(description="Selector of the new-password field behind the link")
    confirm_password: Selector | None = Field(
        default=None, description="Selector of the field repeating the new password"
    )
    submit_new_password: ClickOrSteps = Field(
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

    success: Selector = Field(description="Selector visible once the password was reset")
    error: Selector | None = Field(default=None, description="Selector of a refused new password")
    invalid_link: Selector = Field(description="Selector shown for a used, expired or unknown link")
    mail_subject: str | None = Field(
        default=None, description="Text in the reset e-mail's subject (default: any new mail)"
    )
    link_pattern: RegexPattern | None = Field(
        default=None,
        description="Regular expression matching the reset link in the mail (default: the "
        "first link to the portal's host)",
    )
    link_lifetime_seconds: Number | None = Field(
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
    mfa_enforced: StrictBool = Field(
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
    host: Host
    port: Integer = Field(default=993, ge=1, le=65535)
    username: str
    password: SecretStr = Field(description="An environment reference such as ${IMAP_PASSWORD}")
    folder: str = "INBOX"
    tls: StrictBool = Field(
        default=True, description="IMAP over TLS (port 993); false = plain IMAP"
    )
    ca_file: CaFile | None = Field(
        default=None,
        description="Extra CA to trust for the server (PEM; relative to the profile's directory)",
    )


class MailboxSettings(_Model):
    """The test mailbox the portal's e-mails arrive in: a Maildir or an IMAP account."""

    maildir: str | None = Field(default=None, description="Path of a Maildir")
    imap: Imap | None = None
    wait_seconds: Number = Field(
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
    host: Host | None = None
    port: Integer | None = Field(default=None, ge=1, le=65535)
    server_name: Host | None = None
    ca_file: CaFile | None = Field(
        default=None,
        description="Extra CA to trust (private CA; PEM; relative to the profile's directory)",
    )


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
            raise _refusal("pacing_seconds", problems)
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
    reachability_seconds: Number = Field(default=10, gt=0, le=120)
    navigation_seconds: Number = Field(default=20, gt=0, le=300)
    run_seconds: Number | None = Field(
        default=None,
        ge=30,
        le=604800,
        description="Longest a whole run may take; at the deadline unfinished controls are "
        "inconclusive (default: derived from the policy's waits)",
    )


class Profile(_Model):
    name: str
    base_url: str
    reference_portal: StrictBool = Field(
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
    # After passwords: the account keys it names are known when accounts are checked.
    accounts: dict[str, Account]
    destructive_checks_allowed: StrictBool = False
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

    @field_validator("base_url", "plain_http_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else _checked_url(value)

    @field_validator("accounts")
    @classmethod
    def _known_roles(cls, value: dict[str, Account], info: ValidationInfo) -> dict[str, Account]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if "patient" not in value:
            message = "needs a 'patient' account (the account the audit signs in with)"
            problems.append(((), message))
        named: dict[str, str] = {}
        passwords = info.data.get("passwords")
        if isinstance(passwords, Passwords):
            named = {passwords.account: "passwords.account"}
            if passwords.reset_account:
                named.setdefault(passwords.reset_account, "passwords.reset_account")
        # A passwords section that did not validate names keys this check cannot know.
        checkable = "passwords" in info.data
        for key in value:
            if key in ACCOUNT_ROLES or key in named or not checkable:
                continue
            known = sorted(ACCOUNT_ROLES) + [f"{k} ({where})" for k, where in named.items()]
            close = difflib.get_close_matches(key, [*ACCOUNT_ROLES, *named], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(
                (
                    (key,),
                    f"unknown account role{hint}; known: {', '.join(known)}; a further "
                    "account must be named by passwords.account or passwords.reset_account",
                )
            )
        if problems:
            raise _refusal("accounts", problems)
        return value

    @field_validator("policy")
    @classmethod
    def _thresholds_within_limits(cls, value: dict[str, Any]) -> dict[str, Any]:
        limits = load_catalogue().limits()
        problems: list[tuple[tuple[str | int, ...], str]] = []
        applied: dict[str, Any] = {}
        for name, given in value.items():
            limit = limits.get(name)
            if limit is None:
                close = difflib.get_close_matches(name, list(limits), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(sorted(limits))
                problems.append(((name,), f"unknown policy setting{hint}; known: {known}"))
                continue
            try:
                applied[name] = limit.apply(given)
            except ValueError as exc:
                problems.append(((name,), str(exc)))
        if problems:
            raise _refusal("policy", problems)
        return applied

    @field_validator("out_of_scope", "not_offered")
    @classmethod
    def _known_controls(cls, value: dict[str, str]) -> dict[str, str]:
        ids = {control.id for control in load_catalogue().controls}
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for control_id, reason in value.items():
            if control_id.upper() not in ids:
                problems.append(((control_id,), f"unknown control {control_id!r}"))
            elif not reason.strip():
                problems.append(((control_id,), "give the reason"))
        if problems:
            raise _refusal("controls", problems)
        return {k.upper(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _scope_or_missing(self) -> Profile:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for control_id in sorted(set(self.out_of_scope) & set(self.not_offered)):
            problems.append(
                (
                    ("not_offered", control_id),
                    f"{control_id} listed under both out_of_scope and not_offered: a control is "
                    "either outside the audit or a feature the portal lacks",
                )
            )
        catalogue = load_catalogue()
        for control_id in sorted(c for c in self.not_offered if not catalogue.get(c).feature):
            problems.append(
                (
                    ("not_offered", control_id),
                    f"{control_id} checks no optional feature of a portal",
                )
            )
        if problems:
            raise _refusal("Profile", problems)
        return self

    @model_validator(mode="after")
    def _password_accounts_exist(self) -> Profile:
        if self.passwords is None:
            return self
        problems: list[tuple[tuple[str | int, ...], str]] = []
        for name in ("account", "reset_account"):
            key = getattr(self.passwords, name)
            if key is None:
                continue
            if key not in self.accounts:
                problems.append(
                    (
                        ("passwords", name),
                        f"no account {key!r} under accounts (known: {sorted(self.accounts)})",
                    )
                )
            elif key == "patient":
                problems.append(
                    (
                        ("passwords", name),
                        "use a dedicated account, not 'patient' (every other check signs in "
                        "with it, so its password must never change)",
                    )
                )
        if problems:
            raise _refusal("Profile", problems)
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
            return self.plain_http_url
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        return f"http://{f'[{host}]' if ':' in host else host}{parts.path or '/'}"

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


# -- environment references ------------------------------------------------------------------


def _is_secret(path: tuple[Any, ...]) -> bool:
    return (len(path) == 3 and path[0] == "accounts" and path[-1] in SECRET_FIELDS) or (
        path == ("mailbox", "imap", "password")
    )


def _interpolate(
    value: Any, path: tuple[str | int, ...], env: Mapping[str, str], report: _Reporter
) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env, report) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env, report) for i, v in enumerate(value)]
    if value is not None and _is_secret(path):
        return _secret(value, path, env, report)
    if not isinstance(value, str):
        return value
    return _substitute(value, path, env, report)


def _secret(
    value: Any, path: tuple[str | int, ...], env: Mapping[str, str], report: _Reporter
) -> str:
    """A secret is exactly ${NAME}, a variable that is set and not empty."""
    text = value.strip() if isinstance(value, str) else ""
    reference = ENV_REFERENCE.fullmatch(text)
    if reference is None:
        report.fail(path, f"a secret must be an environment reference such as {SECRET_EXAMPLE}")
        return ""
    name = reference.group("name")
    if reference.group("default") is not None:
        report.fail(
            path,
            f"a secret must be exactly ${{{name}}}, without a default: a default would write "
            "the secret into the profile",
        )
        return ""
    if name not in env:
        report.fail(path, f"environment variable {name} is not set")
        return ""
    if env[name] == "":
        report.fail(path, f"environment variable {name} is set but empty")
        return ""
    return env[name]


def _substitute(
    text: str, path: tuple[str | int, ...], env: Mapping[str, str], report: _Reporter
) -> str:
    """``${NAME}`` and ``${NAME:-default}`` (the default when NAME is unset or empty)."""
    result: list[str] = []
    index = 0
    while (start := text.find("${", index)) != -1:
        result.append(text[index:start])
        reference = ENV_REFERENCE.match(text, start)
        if reference is None:
            report.fail(
                path,
                "'${' starts no environment reference: write ${NAME} or ${NAME:-default} "
                "(NAME of letters, digits and _)",
            )
            return ""
        name, default = reference.group("name"), reference.group("default")
        if default is not None and "${" in default:
            report.fail(path, "nested ${...} in a default is not supported: give a plain default")
            return ""
        value = env.get(name)
        if value:
            result.append(value)
        elif default is not None:
            result.append(default)
        elif value is None:
            report.fail(path, f"environment variable {name} is not set")
        else:
            report.fail(path, f"environment variable {name} is set but empty")
        index = reference.end()
    result.append(text[index:])
    return "".join(result)


# -- reporting -----------------------------------------------------------------------------------


class _Reporter:
    def __init__(self, file: str, lines: dict[tuple[Any, ...], int]):
        self.file = file
        self.lines = lines
        self.errors: list[ProfileError] = []
        self.failed: list[tuple[Any, ...]] = []

    def line_of(self, path: tuple[Any, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())

    def fail(self, path: tuple[Any, ...], problem: str) -> None:
        field = ".".join(str(p) for p in path)
        self.errors.append(ProfileError(self.file, problem, field=field, line=self.line_of(path)))
        self.failed.append(path)

    def failed_already(self, path: tuple[Any, ...]) -> bool:
        """Whether a problem was reported at or above ``path`` (its value stood in as "")."""
        return any(path[: len(done)] == done for done in self.failed)


_NUMBER_ERRORS = frozenset(
    {
        "float_parsing",
        "float_type",
        "int_parsing",
        "int_type",
        "int_from_float",
        "finite_number",
        "number_type",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
    }
)


def _message(error: Any) -> str:
    """A pydantic error in the profile's terms: what the setting must be, and what it got."""
    kind = error["type"]
    value = error.get("input")
    if kind == "extra_forbidden":
        return "unknown setting (check the spelling against profiles/template.yaml)"
    if kind == "missing":
        return "required setting is missing"
    if kind in ("bool_type", "bool_parsing"):
        return _boolean_problem(value)
    if kind in _NUMBER_ERRORS:
        return f"must be {_range_of(tuple(error['loc']))}, got {shown(value)}"
    if kind == "string_type":
        return f"must be text, got {shown(value)}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping of settings, got {shown(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"must be a list, got {shown(value)}"
    if kind == "too_short":
        least, actual = error["ctx"]["min_length"], error["ctx"]["actual_length"]
        return f"must list at least {least} item{'s' * (least != 1)}, got {actual}"
    if kind == "literal_error":
        return f"must be {error['ctx']['expected']}, got {shown(value)}"
    return str(error["msg"]).removeprefix("Value error, ")


def _range_of(loc: tuple[Any, ...]) -> str:
    """'an integer from 1 to 65535' for the numeric field at ``loc``, from its constraints."""
    field = _field_at(loc)
    if field is None:
        return "a number"
    kind = "an integer" if int in _flat_types(field.annotation) else "a number"
    low = high = ""
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            low = f"from {number_text(typing.cast(float, bound.ge))}"
        elif isinstance(bound, annotated_types.Gt):
            low = f"above {number_text(typing.cast(float, bound.gt))}"
        elif isinstance(bound, annotated_types.Le):
            high = f"to {number_text(typing.cast(float, bound.le))}"
        elif isinstance(bound, annotated_types.Lt):
            high = f"below {number_text(typing.cast(float, bound.lt))}"
    if low.startswith("above") and high.startswith("to"):
        high = "and at most" + high.removeprefix("to")
    return " ".join(part for part in (kind, low, high) if part)


def _flat_types(annotation: Any) -> set[Any]:
    """The plain types inside an annotation (through Optional, Annotated, list, dict...)."""
    found: set[Any] = set()
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is Annotated:
        arguments = arguments[:1]
    if not arguments:
        return {annotation}
    for argument in arguments:
        found |= _flat_types(argument)
    return found


def _field_at(loc: tuple[Any, ...]) -> FieldInfo | None:
    """The model field a pydantic error location ends in (list indexes and dict keys skipped)."""
    model: type[BaseModel] | None = Profile
    found: FieldInfo | None = None
    for part in loc:
        if model is None or isinstance(part, int):
            continue
        found = model.model_fields.get(part)
        if found is None:
            return None
        models = [
            t
            for t in _flat_types(found.annotation)
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        model = models[0] if models else None
    return found


# -- loading -------------------------------------------------------------------------------------


def load_profile(path: str | Path, env: Mapping[str, str] | None = None) -> Profile:
    path = Path(path)
    env = os.environ if env is None else env
    data, lines = read_raw(path)
    reporter = _Reporter(str(path), lines)
    # A section whose settings are all commented out reads as null: treat it as left out.
    resolved = {k: v for k, v in _interpolate(data, (), env, reporter).items() if v is not None}
    try:
        profile = Profile.model_validate(
            resolved, context={"profile_dir": str(path.resolve().parent)}
        )
    except ValidationError as exc:
        for error in exc.errors():
            loc = tuple(error["loc"])
            if not reporter.failed_already(loc):
                reporter.fail(loc, _message(error))
        raise ProfileErrors(reporter.errors) from None
    if reporter.errors:
        raise ProfileErrors(reporter.errors)
    return profile


def starts_reference_portal(path: str | Path) -> bool:
    """Whether the profile asks for the bundled reference portal (read before interpolation,
    because the portal provides the variables the profile references)."""
    data, lines = read_raw(Path(path))
    wanted = data.get("reference_portal")
    if wanted is None:
        return False
    if not isinstance(wanted, bool):
        raise ProfileError(
            str(path),
            _boolean_problem(wanted),
            field="reference_portal",
            line=lines.get(("reference_portal",)),
        )
    return wanted
