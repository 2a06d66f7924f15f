"""Portal profiles: everything portal-specific, validated before any browser starts.

This module holds the whole profile (``Profile``: its sections, the checks across them and the
values derived from them) and loads it (``load_profile``, ``target_of``).

A profile is YAML. Any string may reference the environment as ``${NAME}`` (or
``${NAME:-default}``); credentials *must* be exactly ``${NAME}``, so no secret is ever written into
a profile file (``portal.profile_env``). Everything is checked when the profile loads: types
(numbers are numbers, booleans are unquoted true/false), ranges (the catalogue's for
``policy:``), selectors (as Playwright parses them), host names, CA files, account roles
(``portal.profile_fields``, ``portal.profile_sections``, ``portal.profile_credentials``). The
file itself is bounded before it is parsed: size, encoding, nesting, no YAML anchors or aliases,
no duplicate keys (``portal.profile_file``). Errors name the file, the line, the field and the
problem (``ProfileError``), all at once (``portal.profile_report``), and the audit stops with
status 3.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from pydantic import (
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from portal.catalogue import Thresholds, load_catalogue, shown
from portal.profile_credentials import MailboxSettings, Passwords, SecondFactor
from portal.profile_env import interpolate
from portal.profile_fields import ProfileModel, checked_url, refusal
from portal.profile_file import ProfileError, ProfileErrors, read_raw
from portal.profile_report import Reporter, validation_errors
from portal.profile_sections import (
    Account,
    Enumeration,
    Headers,
    Lockout,
    ProtectedPage,
    ProxyAccess,
    RateLimits,
    SessionsPage,
    SignedIn,
    SignIn,
    SignOut,
    Timeouts,
    Tls,
)

DEFAULT_DRIVER = "portal.driver:SelectorDriver"
TARGET_NAME = r"^[a-z][a-z0-9_-]{0,39}$"
# Account keys the checks look up by name (portal/roles.py, steps/): the patient the audit signs
# in with, the lockout account AUTH_LOCKOUT locks, mfa (enrolled in TOTP: MFA_ENFORCE, MFA_OTP),
# mfa_enrol (MFA_ENROLL, MFA_RECOVERY) and proxy (a caregiver: PROXY_ACCESS). passwords.account
# and passwords.reset_account name further keys of the profile's choosing; any other is a typo.
ACCOUNT_ROLES = frozenset({"patient", "lockout", "mfa", "mfa_enrol", "proxy"})


class Profile(ProfileModel):
    name: str
    base_url: str
    target: str | None = Field(
        default=None,
        pattern=TARGET_NAME,
        description="A target provider that starts the portal for this run (`reference`: the "
        "bundled reference portal); its variables fill the profile's ${...} references",
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
        return None if value is None else checked_url(value)

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
            raise refusal("accounts", problems)
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
            raise refusal("policy", problems)
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
            raise refusal("controls", problems)
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
            raise refusal("Profile", problems)
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
            raise refusal("Profile", problems)
        return self

    # -- derived values -------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        return urljoin(self.base_url, path_or_url)

    @property
    def patient(self) -> Account:
        return self.accounts["patient"]

    @property
    def thresholds(self) -> Thresholds:
        """The applied, typed policy values: the profile's, else the catalogue defaults."""
        return load_catalogue().thresholds(self.policy)

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


# -- loading -------------------------------------------------------------------------------------


def load_profile(path: str | Path, env: Mapping[str, str] | None = None) -> Profile:
    path = Path(path)
    env = os.environ if env is None else env
    data, lines = read_raw(path)
    reporter = Reporter(str(path), lines)
    # A section whose settings are all commented out reads as null: treat it as left out.
    resolved = {k: v for k, v in interpolate(data, (), env, reporter).items() if v is not None}
    try:
        profile = Profile.model_validate(
            resolved, context={"profile_dir": str(path.resolve().parent)}
        )
    except ValidationError as exc:
        raise validation_errors(exc, reporter, Profile) from None
    if reporter.errors:
        raise ProfileErrors(reporter.errors)
    return profile


def target_of(path: str | Path) -> str | None:
    """The target provider the profile names, if any (read before interpolation, because the
    provider supplies variables the profile references)."""
    data, lines = read_raw(Path(path))
    if "reference_portal" in data:
        raise ProfileError(
            str(path),
            "replaced by `target: reference` (the bundled reference portal is a target provider)",
            field="reference_portal",
            line=lines.get(("reference_portal",)),
        )
    name = data.get("target")
    if name is None:
        return None
    if not isinstance(name, str) or not re.fullmatch(TARGET_NAME, name):
        raise ProfileError(
            str(path),
            f"must be a target provider's name (lower-case letters, digits, - and _), "
            f"got {shown(name)}",
            field="target",
            line=lines.get(("target",)),
        )
    return name
