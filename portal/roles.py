"""Which checks use which account, and which of them would disturb each other.

Some checks change an account (lock it, change its password, enrol or remove an authenticator,
give it wrong passwords) while others need the same account to sign in normally. When a
profile gives one account two such roles, the run warns at its start and orders the checks: a
scenario that shares an account with a background probe (``portal.background``) waits until
that probe has ended. Two background probes on one account cannot be kept apart: the warning
then says to give each its own account.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from portal.profile import Profile

# Controls measured by background probes (portal.background), by the account key they use.
BACKGROUND = frozenset({"SESS_IDLE", "SESS_ABS", "AUTH_LOCKOUT", "RESET_TOKEN"})


@dataclass(frozen=True)
class Role:
    """One use of an account: ``effect`` is what the checks do to it."""

    account: str  # the key under accounts, or "auth_enum.known_username"
    username: str
    controls: frozenset[str]
    effect: str  # "signs in", "locks", "changes the password", "changes MFA", "wrong passwords"

    @property
    def disturbs(self) -> bool:
        return self.effect != "signs in"


@dataclass(frozen=True)
class Conflict:
    username: str
    first: Role
    second: Role

    @property
    def message(self) -> str:
        return (
            f"account {self.username!r} is used as {self.first.account} "
            f"({', '.join(sorted(self.first.controls))}: {self.first.effect}) and as "
            f"{self.second.account} ({', '.join(sorted(self.second.controls))}: "
            f"{self.second.effect}); {self.remedy}"
        )

    @property
    def remedy(self) -> str:
        first_bg = self.first.controls & BACKGROUND
        second_bg = self.second.controls & BACKGROUND
        if first_bg and second_bg:
            return "both run in the background at once: give each its own account"
        if first_bg or second_bg:
            return "the other checks wait until the background check has ended"
        return "the checks run one after the other, but the first may leave the account changed"


def roles(profile: Profile) -> list[Role]:
    accounts = profile.accounts
    found: list[Role] = []

    def add(key: str, controls: set[str], effect: str) -> None:
        if key in accounts:
            found.append(Role(key, accounts[key].username, frozenset(controls), effect))

    add("patient", {"SESS_IDLE", "SESS_ABS"}, "signs in")
    add(
        "patient",
        {"PREFLIGHT", "SESS_LOGOUT", "SESS_FIXATION", "SESS_TOKEN", "SESS_COOKIE"}
        | {"SESS_REVOKE", "HDR_CACHE", "AUTH_ENUM"},
        "signs in",
    )
    add("lockout", {"AUTH_LOCKOUT"}, "locks")
    add("mfa", {"MFA_ENFORCE", "MFA_OTP"}, "wrong passwords")
    add("mfa_enrol", {"MFA_ENROLL", "MFA_RECOVERY"}, "changes MFA")
    add("proxy", {"PROXY_ACCESS"}, "signs in")
    if profile.passwords is not None:
        add(
            profile.passwords.account,
            {"PWD_LENGTH", "PWD_BLOCKLIST", "PWD_STRENGTH", "PWD_NOCOMPOSITION", "PWD_CHANGE"}
            | {"SESS_PWCHANGE", "RESET_MAIL"},
            "changes the password",
        )
        if profile.passwords.reset_account:
            add(profile.passwords.reset_account, {"RESET_TOKEN"}, "changes the password")
    if profile.auth_enum is not None:
        username = profile.auth_enum.known_username
        found.append(
            Role("auth_enum.known_username", username, frozenset({"AUTH_ENUM"}), "wrong passwords")
        )
    return found


def conflicts(profile: Profile) -> list[Conflict]:
    """Pairs of roles on one account where at least one changes what the other relies on."""
    by_user: dict[str, list[Role]] = defaultdict(list)
    for role in roles(profile):
        by_user[role.username.casefold()].append(role)
    found = []
    for shared in by_user.values():
        for index, first in enumerate(shared):
            for second in shared[index + 1 :]:
                if first.account != second.account and (first.disturbs or second.disturbs):
                    found.append(Conflict(first.username, first, second))
    return found


def waits(profile: Profile, running: set[str]) -> dict[str, set[str]]:
    """Control -> the background probes (among those ``running``) it must wait for."""
    result: dict[str, set[str]] = defaultdict(set)
    for conflict in conflicts(profile):
        for mine, theirs in ((conflict.first, conflict.second), (conflict.second, conflict.first)):
            probes = theirs.controls & BACKGROUND & running
            if not probes or mine.controls & BACKGROUND:
                continue
            for control in mine.controls:
                result[control] |= probes
    return dict(result)
