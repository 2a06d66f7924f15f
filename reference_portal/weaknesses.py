"""Registry of the weakness flags that make the reference portal break one control each.

Adding a weakness is one entry in :data:`WEAKNESSES` plus the code path that consults
``PortalSettings.weakened(flag)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Weakness:
    flag: str
    control: str
    description: str
    # Controls that necessarily fail too, with the reason in the description (rare).
    also_breaks: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        listed: dict[str, object] = {
            "flag": self.flag,
            "control": self.control,
            "description": self.description,
        }
        if self.also_breaks:
            listed["also_breaks"] = list(self.also_breaks)
        return listed


WEAKNESSES: tuple[Weakness, ...] = (
    Weakness(
        flag="logout_keeps_session",
        control="SESS_LOGOUT",
        description=(
            "Sign-out expires the browser cookie and redirects as usual, but the server-side "
            "session stays valid: replaying the old cookie still shows patient data."
        ),
    ),
    Weakness(
        flag="cookie_flags_missing",
        control="SESS_COOKIE",
        description=(
            "The session cookie is issued as 'portal_session' (no __Host- prefix) without the "
            "Secure, HttpOnly and SameSite attributes."
        ),
    ),
    Weakness(
        flag="hsts_missing",
        control="HDR_HSTS",
        description="No Strict-Transport-Security header on any response.",
    ),
    Weakness(
        flag="hsts_short",
        control="HDR_HSTS",
        description="Strict-Transport-Security max-age is one day (86400 s) on every response.",
    ),
    Weakness(
        flag="idle_timeout_too_long",
        control="SESS_IDLE",
        description="Idle sessions live 100 times longer than the configured idle timeout.",
    ),
    Weakness(
        flag="no_absolute_timeout",
        control="SESS_ABS",
        description="A session kept busy lives 100 times longer than the absolute timeout.",
    ),
    Weakness(
        flag="session_fixation",
        control="SESS_FIXATION",
        description="Sign-in promotes the pre-sign-in session ID instead of issuing a new one.",
    ),
    Weakness(
        flag="token_in_url",
        control="SESS_TOKEN",
        description="After sign-in the portal redirects to a URL carrying the session token.",
    ),
    Weakness(
        flag="short_session_token",
        control="SESS_TOKEN",
        description="Session tokens carry 64 random bits instead of 256.",
    ),
    Weakness(
        flag="revoke_does_nothing",
        control="SESS_REVOKE",
        description="'Sign out all other sessions' reports success but ends no session.",
    ),
    Weakness(
        flag="legacy_tls",
        control="TLS_PROTOCOLS",
        description=(
            "TLS 1.0 and 1.1 are accepted. No TLS 1.0 suite is in Mozilla intermediate and "
            "OpenSSL offers the same suites over TLS 1.2, so TLS_CIPHERS fails with it."
        ),
        also_breaks=("TLS_CIPHERS",),
    ),
    Weakness(
        flag="weak_tls_ciphers",
        control="TLS_CIPHERS",
        description="TLS 1.2 also accepts ECDHE-ECDSA-AES128-SHA256 (CBC, no AEAD).",
    ),
    Weakness(
        flag="cert_long_lifespan",
        control="TLS_CERT",
        description="The server certificate is valid for 500 days (more than 398).",
    ),
    Weakness(
        flag="ocsp_not_stapled",
        control="TLS_OCSP",
        description="The certificate names an OCSP responder but no OCSP response is stapled.",
    ),
    Weakness(
        flag="csp_weak",
        control="HDR_CSP",
        description="CSP is only default-src 'self': no object-src, base-uri or frame-ancestors.",
    ),
    Weakness(
        flag="nosniff_missing",
        control="HDR_MISC",
        description="No X-Content-Type-Options header.",
    ),
    Weakness(
        flag="http_no_redirect",
        control="AUTH_HTTPS",
        description="Plain HTTP serves the portal, sign-in form included, instead of redirecting.",
    ),
    Weakness(
        flag="patient_data_cacheable",
        control="HDR_CACHE",
        description=(
            "Patient data API responses say Cache-Control: private, max-age=600 instead of "
            "no-store (HTML pages stay no-store)."
        ),
    ),
    # -- authentication, MFA and caregiver access -------------------------------------------
    Weakness(
        flag="no_lockout",
        control="AUTH_LOCKOUT",
        description="Wrong passwords are never counted: no number of failures locks an account.",
    ),
    Weakness(
        flag="enumerating_sign_in_errors",
        control="AUTH_ENUM",
        description=(
            "A refused sign-in says whether the username exists ('We could not find an account' "
            "versus 'The password is incorrect')."
        ),
    ),
    Weakness(
        flag="mfa_bypass_direct_url",
        control="MFA_ENFORCE",
        description=(
            "The password alone creates a signed-in session: the second-factor page is shown, "
            "but protected pages opened directly answer without it."
        ),
    ),
    Weakness(
        flag="short_totp_secret",
        control="MFA_ENROLL",
        description="TOTP enrolment issues 80-bit secrets instead of 160-bit ones.",
    ),
    Weakness(
        flag="totp_enrolment_unconfirmed",
        control="MFA_ENROLL",
        description=(
            "A new authenticator is active as soon as it is shown, and any confirmation code "
            "completes the enrolment."
        ),
    ),
    Weakness(
        flag="otp_replay_accepted",
        control="MFA_OTP",
        description="A TOTP code can be used again as long as it is inside the drift window.",
    ),
    Weakness(
        flag="otp_not_throttled",
        control="MFA_OTP",
        description="Any number of wrong codes may be tried on one sign-in.",
    ),
    Weakness(
        flag="recovery_codes_reusable",
        control="MFA_RECOVERY",
        description="Recovery codes are not marked as used: each one works any number of times.",
    ),
    Weakness(
        flag="proxy_sees_all_patients",
        control="PROXY_ACCESS",
        description="A caregiver account may open any patient's records, not only granted ones.",
    ),
    # -- passwords and recovery ------------------------------------------------------------
    Weakness(
        flag="short_min_length",
        control="PWD_LENGTH",
        description="New passwords need only 8 characters instead of 15.",
    ),
    Weakness(
        flag="password_truncated",
        control="PWD_LENGTH",
        description="Only the first 32 characters of a password are stored and checked.",
    ),
    Weakness(
        flag="no_blocklist",
        control="PWD_BLOCKLIST",
        description=(
            "New passwords are not checked against breached/common passwords or the "
            "account's and portal's names (length and zxcvbn strength still are)."
        ),
    ),
    Weakness(
        flag="no_strength_check",
        control="PWD_STRENGTH",
        description="New passwords are not scored with zxcvbn (length and blocklist still apply).",
    ),
    Weakness(
        flag="composition_rules",
        control="PWD_NOCOMPOSITION",
        description=(
            "New passwords must contain an upper-case letter, a lower-case letter, a digit "
            "and a symbol."
        ),
    ),
    Weakness(
        flag="change_without_current",
        control="PWD_CHANGE",
        description="The change-password form neither asks for nor checks the current password.",
    ),
    Weakness(
        flag="sessions_survive_password_change",
        control="SESS_PWCHANGE",
        description="Changing or resetting a password leaves the account's other sessions valid.",
    ),
    Weakness(
        flag="reset_link_reusable",
        control="RESET_TOKEN",
        description="A password-reset link keeps working after it has been used.",
    ),
    Weakness(
        flag="reset_link_never_expires",
        control="RESET_TOKEN",
        description="Password-reset links never expire.",
    ),
    Weakness(
        flag="reset_token_in_referer",
        control="RESET_TOKEN",
        description=(
            "The reset page declares <meta name=referrer content=unsafe-url>, so following its "
            "help link sends the full reset URL, token included, to another origin."
        ),
    ),
    Weakness(
        flag="password_in_mail",
        control="RESET_MAIL",
        description="The password-changed notification e-mail quotes the new password.",
    ),
    Weakness(
        flag="patient_data_in_mail",
        control="RESET_MAIL",
        description=(
            "Password-reset e-mails name the patient with date of birth and medical record number."
        ),
    ),
)

KNOWN_FLAGS: frozenset[str] = frozenset(weakness.flag for weakness in WEAKNESSES)


class UnknownWeaknessError(ValueError):
    def __init__(self, unknown: Iterable[str]) -> None:
        self.unknown = tuple(unknown)
        known = ", ".join(weakness.flag for weakness in WEAKNESSES)
        names = ", ".join(repr(flag) for flag in self.unknown)
        plural = "s" if len(self.unknown) > 1 else ""
        super().__init__(f"unknown weakness flag{plural} {names}; known flags: {known}")


def by_flag(flag: str) -> Weakness:
    for weakness in WEAKNESSES:
        if weakness.flag == flag:
            return weakness
    raise UnknownWeaknessError([flag])


def parse_flags(values: Iterable[str]) -> tuple[str, ...]:
    """Split comma-separated flag lists, drop blanks and duplicates, and validate every flag."""
    flags: list[str] = []
    for value in values:
        for part in value.split(","):
            flag = part.strip()
            if flag and flag not in flags:
                flags.append(flag)
    unknown = [flag for flag in flags if flag not in KNOWN_FLAGS]
    if unknown:
        raise UnknownWeaknessError(unknown)
    return tuple(flags)
