"""A portal driver that crashes when it is built: the audit must report an internal error."""

from __future__ import annotations

from portal.evidence import Redactor
from portal.profile import Profile


class CrashingDriver:
    def __init__(self, profile: Profile, redactor: Redactor) -> None:
        raise RuntimeError(f"this driver cannot drive {profile.name}")
