"""Run-time settings of one portal instance; the only place weakness flags are consulted."""

from __future__ import annotations

from dataclasses import dataclass, field

from reference_portal.weaknesses import KNOWN_FLAGS, UnknownWeaknessError

DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_ABSOLUTE_TIMEOUT = 900.0

# Mozilla's recommended value (two years); HDR_HSTS requires at least one year.
HSTS_COMPLIANT = "max-age=63072000; includeSubDomains"
HSTS_SHORT = "max-age=86400; includeSubDomains"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

HARDENED_COOKIE_NAME = "__Host-portal_session"
WEAK_COOKIE_NAME = "portal_session"


@dataclass(frozen=True)
class PortalSettings:
    weaknesses: tuple[str, ...] = ()
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    absolute_timeout: float = DEFAULT_ABSOLUTE_TIMEOUT
    host: str = "127.0.0.1"
    https_port: int = 443
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
