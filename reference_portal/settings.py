"""Run-time settings of one portal instance; the only place weakness flags are consulted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from reference_portal.weaknesses import KNOWN_FLAGS, UnknownWeaknessError

# Short so an audit of the reference portal is quick; profiles/reference.yaml sets the same
# values as its policy thresholds.
DEFAULT_IDLE_TIMEOUT = 20.0
DEFAULT_ABSOLUTE_TIMEOUT = 40.0
# How much longer than configured the weakened timeouts are (far beyond any audit's wait).
WEAK_TIMEOUT_FACTOR = 100

# Mozilla's recommended value (two years); HDR_HSTS requires at least one year.
HSTS_COMPLIANT = "max-age=63072000; includeSubDomains"
HSTS_SHORT = "max-age=86400; includeSubDomains"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

HARDENED_COOKIE_NAME = "__Host-portal_session"
WEAK_COOKIE_NAME = "portal_session"

# Account lockout: short so AUTH_LOCKOUT's wait for the account to come back stays brief;
# profiles/reference.yaml states the same period and holds the portal to these numbers.
LOCKOUT_THRESHOLD = 5
DEFAULT_LOCKOUT_SECONDS = 15.0
# TOTP secrets of 160 bits (RFC 4226's recommendation, ASVS V2.8.1); the weak ones are 80 bits.
TOTP_SECRET_BYTES = 20
WEAK_TOTP_SECRET_BYTES = 10
# Wrong codes one second-factor challenge may take before the sign-in has to start again.
OTP_WRONG_CODE_LIMIT = 5

# Password policy (NIST SP 800-63B-4 3.1.1.2 without MFA) and reset links. The link lifetime is
# short so RESET_TOKEN's expiry wait stays brief; profiles/reference.yaml states the same value.
PASSWORD_MIN_LENGTH = 15
WEAK_PASSWORD_MIN_LENGTH = 8
PASSWORD_MIN_ZXCVBN_SCORE = 3
TRUNCATED_PASSWORD_LENGTH = 32
DEFAULT_RESET_LINK_LIFETIME = 24.0


# SSO mode's client credentials at the provider: from the environment, never the command line.
SSO_CLIENT_ID_VARIABLE = "REFERENCE_SSO_CLIENT_ID"
SSO_CLIENT_SECRET_VARIABLE = "REFERENCE_SSO_CLIENT_SECRET"


@dataclass(frozen=True)
class SsoConfig:
    """SSO mode (``reference_portal.sso``): the OpenID Connect provider patients sign in with."""

    issuer: str
    ca_file: Path
    client_id: str
    client_secret: str = field(repr=False)
    provider_name: str = "Riverside ID"

    @property
    def origin(self) -> str:
        parts = urlsplit(self.issuer)
        return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class PortalSettings:
    weaknesses: tuple[str, ...] = ()
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    absolute_timeout: float = DEFAULT_ABSOLUTE_TIMEOUT
    host: str = "127.0.0.1"
    https_port: int = 443
    reset_link_lifetime: float = DEFAULT_RESET_LINK_LIFETIME
    lockout_seconds: float = DEFAULT_LOCKOUT_SECONDS
    # Sign-in through an OpenID Connect provider instead of the portal's password form.
    sso: SsoConfig | None = None
    _flags: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        unknown = [flag for flag in self.weaknesses if flag not in KNOWN_FLAGS]
        if unknown:
            raise UnknownWeaknessError(unknown)
        if self.idle_timeout <= 0 or self.absolute_timeout <= 0:
            raise ValueError("session timeouts must be positive")
        object.__setattr__(self, "_flags", frozenset(self.weaknesses))

    def weakened(self, flag: str) -> bool:
        # Reject typos loudly instead of silently treating them as "not weakened".
        if flag not in KNOWN_FLAGS:
            raise UnknownWeaknessError([flag])
        return flag in self._flags

    @property
    def session_cookie_name(self) -> str:
        return WEAK_COOKIE_NAME if self.weakened("cookie_flags_missing") else HARDENED_COOKIE_NAME

    @property
    def session_cookie_hardened(self) -> bool:
        return not self.weakened("cookie_flags_missing")

    @property
    def hsts_header(self) -> str | None:
        if self.weakened("hsts_missing"):
            return None
        if self.weakened("hsts_short"):
            return HSTS_SHORT
        return HSTS_COMPLIANT

    @property
    def logout_ends_server_session(self) -> bool:
        return not self.weakened("logout_keeps_session")

    # -- session management (SESS_IDLE, SESS_ABS, SESS_FIXATION, SESS_TOKEN, SESS_REVOKE,
    #    HDR_CACHE) ------------------------------------------------------------------------
    @property
    def effective_idle_timeout(self) -> float:
        if self.weakened("idle_timeout_too_long"):
            return self.idle_timeout * WEAK_TIMEOUT_FACTOR
        return self.idle_timeout

    @property
    def effective_absolute_timeout(self) -> float:
        if self.weakened("no_absolute_timeout"):
            return self.absolute_timeout * WEAK_TIMEOUT_FACTOR
        return self.absolute_timeout

    @property
    def rotates_session_at_sign_in(self) -> bool:
        return not self.weakened("session_fixation")

    @property
    def session_token_bytes(self) -> int:
        return 8 if self.weakened("short_session_token") else 32

    @property
    def token_in_url(self) -> bool:
        return self.weakened("token_in_url")

    @property
    def ends_other_sessions(self) -> bool:
        return not self.weakened("revoke_does_nothing")

    # -- transport (TLS_*, HDR_CSP, HDR_MISC, AUTH_HTTPS) -----------------------------------
    @property
    def tls_allows_legacy_protocols(self) -> bool:
        return self.weakened("legacy_tls")

    @property
    def tls_extra_ciphers(self) -> str:
        # A TLS 1.2 suite without AEAD: outside Mozilla intermediate.
        return "ECDHE-ECDSA-AES128-SHA256" if self.weakened("weak_tls_ciphers") else ""

    @property
    def leaf_lifetime_days(self) -> int:
        return 500 if self.weakened("cert_long_lifespan") else 90

    @property
    def certificate_names_ocsp_responder(self) -> bool:
        return self.weakened("ocsp_not_stapled")

    @property
    def content_security_policy(self) -> str:
        if self.weakened("csp_weak"):
            return "default-src 'self'"
        if self.sso is not None:
            # Sign-out's form redirects to the provider, and Chromium applies form-action to
            # the redirects of a form submission.
            own = "form-action 'self'"
            return CONTENT_SECURITY_POLICY.replace(own, f"{own} {self.sso.origin}")
        return CONTENT_SECURITY_POLICY

    @property
    def sends_nosniff(self) -> bool:
        return not self.weakened("nosniff_missing")

    @property
    def plain_http_redirects(self) -> bool:
        return not self.weakened("http_no_redirect")

    @property
    def patient_data_cache_control(self) -> str:
        if self.weakened("patient_data_cacheable"):
            return "private, max-age=600"
        return "no-store"

    # -- authentication, MFA and caregiver access (AUTH_LOCKOUT, AUTH_ENUM, MFA_*,
    #    PROXY_ACCESS) -----------------------------------------------------------------------
    @property
    def lockout_threshold(self) -> int | None:
        """Consecutive wrong passwords that lock an account; None = never locked."""
        return None if self.weakened("no_lockout") else LOCKOUT_THRESHOLD

    @property
    def enumerating_sign_in_errors(self) -> bool:
        return self.weakened("enumerating_sign_in_errors")

    @property
    def mfa_enforced_on_every_path(self) -> bool:
        return not self.weakened("mfa_bypass_direct_url")

    @property
    def totp_secret_bytes(self) -> int:
        return WEAK_TOTP_SECRET_BYTES if self.weakened("short_totp_secret") else TOTP_SECRET_BYTES

    @property
    def totp_enrolment_needs_confirmation(self) -> bool:
        return not self.weakened("totp_enrolment_unconfirmed")

    @property
    def otp_rejects_replay(self) -> bool:
        return not self.weakened("otp_replay_accepted")

    @property
    def otp_wrong_code_limit(self) -> int | None:
        return None if self.weakened("otp_not_throttled") else OTP_WRONG_CODE_LIMIT

    @property
    def recovery_codes_single_use(self) -> bool:
        return not self.weakened("recovery_codes_reusable")

    @property
    def proxy_checks_grants(self) -> bool:
        return not self.weakened("proxy_sees_all_patients")

    # -- passwords and recovery (PWD_*, SESS_PWCHANGE, RESET_TOKEN, RESET_MAIL) -------------
    @property
    def password_min_length(self) -> int:
        if self.weakened("short_min_length"):
            return WEAK_PASSWORD_MIN_LENGTH
        return PASSWORD_MIN_LENGTH

    @property
    def password_kept_characters(self) -> int | None:
        """How many characters of a password count; None = all of them."""
        return TRUNCATED_PASSWORD_LENGTH if self.weakened("password_truncated") else None

    @property
    def password_blocklist_checked(self) -> bool:
        return not self.weakened("no_blocklist")

    @property
    def password_min_zxcvbn_score(self) -> int | None:
        return None if self.weakened("no_strength_check") else PASSWORD_MIN_ZXCVBN_SCORE

    @property
    def password_composition_rules(self) -> bool:
        return self.weakened("composition_rules")

    @property
    def password_change_needs_current(self) -> bool:
        return not self.weakened("change_without_current")

    @property
    def password_change_ends_other_sessions(self) -> bool:
        return not self.weakened("sessions_survive_password_change")

    @property
    def reset_link_single_use(self) -> bool:
        return not self.weakened("reset_link_reusable")

    @property
    def effective_reset_link_lifetime(self) -> float | None:
        """Seconds a reset link stays valid; None = forever."""
        return None if self.weakened("reset_link_never_expires") else self.reset_link_lifetime

    @property
    def reset_page_referrer_policy(self) -> str | None:
        """A <meta name=referrer> for the reset page, overriding the header's no-referrer."""
        return "unsafe-url" if self.weakened("reset_token_in_referer") else None

    @property
    def mail_quotes_new_password(self) -> bool:
        return self.weakened("password_in_mail")

    @property
    def mail_names_patient(self) -> bool:
        return self.weakened("patient_data_in_mail")
