"""The two deployments of the Flask-Security portal: ``careful`` and ``permissive``.

Both switch on the same Flask-Security features (sign-in, change password, reset by e-mail,
two-factor with an authenticator app, recovery codes), so every page the audit uses exists in
both. ``permissive`` leaves every security-relevant setting at Flask's and Flask-Security's
defaults; ``careful`` sets what the Flask-Security documentation ("Configuration", "Security
Considerations") and Flask's ("Security Considerations") tell a deployment to set. EXPECTED.md
gives the verdict each setting should produce.

Times are short on purpose so an audit finishes in minutes (the audit profile's policy holds the
portal to matching thresholds): the careful session idles out after 45 s and a reset link lives
45 s; a real deployment would use minutes, not seconds.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

CONFIGURATIONS = ("careful", "permissive")

PORTAL_NAME = "Harbor View Clinic"
MAIL_SENDER = "Harbor View Clinic patient portal <no-reply@harborview-clinic.example>"

# careful: the session cookie is refreshed on every request and refused by the server once it
# is older than this (Flask checks the signed timestamp), so it is an idle timeout.
CAREFUL_IDLE_LIFETIME = timedelta(seconds=45)
# careful: a reset link is refused once older than this.
CAREFUL_RESET_WITHIN = timedelta(seconds=45)

# Security headers a careful deployment adds itself (Flask and Flask-Security send none; only
# Flask-Security's own views get "Cache-Control: private, no-store", SECURITY_CACHE_CONTROL).
# The stock templates carry an inline <style> and the two-factor QR code is a data: image.
CAREFUL_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not no-referrer: Flask-WTF's CSRF check (WTF_CSRF_SSL_STRICT) needs a same-origin Referer.
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def configuration(name: str, secrets: dict[str, Any], state_dir: Path) -> dict[str, Any]:
    """Flask configuration of one deployment; ``secrets`` are the per-run keys."""
    if name not in CONFIGURATIONS:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(CONFIGURATIONS)}")
    config: dict[str, Any] = {
        "SECRET_KEY": secrets["secret_key"],
        "SECURITY_PASSWORD_SALT": secrets["password_salt"],
        "SECURITY_TOTP_SECRETS": {"1": secrets["totp_key"]},
        "SECURITY_TOTP_ISSUER": PORTAL_NAME,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{state_dir / 'portal.db'}",
        # Several gunicorn workers share the SQLite file: wait for a lock rather than fail.
        "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"timeout": 30}},
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": int(secrets["smtp_port"]),
        "MAIL_USE_TLS": False,
        "MAIL_USE_SSL": False,
        "MAIL_DEFAULT_SENDER": MAIL_SENDER,
        "SECURITY_EMAIL_SENDER": MAIL_SENDER,
        # The patients' addresses are synthetic (.example, no MX record) and this machine has
        # no DNS: email_validator's deliverability lookup would call every address invalid.
        "SECURITY_EMAIL_VALIDATOR_ARGS": {"check_deliverability": False},
        # The features both deployments offer.
        "SECURITY_CHANGEABLE": True,
        "SECURITY_RECOVERABLE": True,
        "SECURITY_TWO_FACTOR": True,
        "SECURITY_MULTI_FACTOR_RECOVERY_CODES": True,
        "SECURITY_POST_LOGIN_VIEW": "/dashboard",
        "SECURITY_POST_LOGOUT_VIEW": "/login",
    }
    if name == "careful":
        config.update(_careful(secrets))
    return config


def _careful(secrets: dict[str, Any]) -> dict[str, Any]:
    return {
        # Flask: session cookie flags, a server-checked lifetime refreshed on every request
        # (the app marks every session permanent), the __Host- prefix.
        "SESSION_COOKIE_NAME": "__Host-session",
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": CAREFUL_IDLE_LIFETIME,
        "SESSION_REFRESH_EACH_REQUEST": True,
        "REMEMBER_COOKIE_SECURE": True,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_DURATION": CAREFUL_IDLE_LIFETIME,
        # CSRF: Flask-Security's forms always check Flask-WTF tokens; this adds sign-out.
        # (Flask-WTF's global CSRFProtect would refuse the stock menu's sign-out button, which
        # carries no token, with a bare 400; Flask-Security's own check asks to confirm.)
        "SECURITY_LOGOUT_CSRF": True,
        # Passwords: NIST SP 800-63B-4 length, zxcvbn strength (Flask-Security's checker).
        # SECURITY_PASSWORD_CHECK_BREACHED would ask haveibeenpwned.com, which this machine
        # cannot reach; a real careful deployment turns it on.
        "SECURITY_PASSWORD_LENGTH_MIN": 15,
        "SECURITY_PASSWORD_COMPLEXITY_CHECKER": "zxcvbn",
        "SECURITY_ZXCVBN_MINIMUM_SCORE": 3,
        # The same answer for known and unknown accounts (sign-in and reset).
        "SECURITY_RETURN_GENERIC_RESPONSES": True,
        # Reset links expire quickly.
        "SECURITY_RESET_PASSWORD_WITHIN": CAREFUL_RESET_WITHIN,
        # Sensitive changes (two-factor setup, recovery codes, password change) need a sign-in
        # at most 5 minutes old, else /verify asks for the password again.
        "SECURITY_FRESHNESS": timedelta(minutes=5),
        "SECURITY_FRESHNESS_GRACE_PERIOD": timedelta(minutes=2),
        # Only the authenticator app (no codes by e-mail or SMS), codes of the current step
        # plus or minus one (passlib's window, in seconds).
        "SECURITY_TWO_FACTOR_ENABLED_METHODS": ["authenticator"],
        "SECURITY_TWO_FACTOR_AUTHENTICATOR_VALIDITY": 30,
        # Recovery codes encrypted at rest.
        "SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS": [secrets["recovery_codes_key"]],
    }
