"""Registry of the weakness flags that make the reference portal break one control each.

Adding a weakness is one entry in :data:`WEAKNESSES` plus the code path that consults
``PortalSettings.weakened(flag)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Weakness:
    flag: str
    control: str
    description: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)


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
