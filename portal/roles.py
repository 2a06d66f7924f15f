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
from collections.abc import Iterable
from dataclasses import dataclass

from portal.catalogue import load_catalogue
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


def account_username(profile: Profile, reference: str) -> str | None:
    """The username a catalogue account reference (``uses``) names in this profile, if any."""
    if reference == "auth_enum.known_username":
        return profile.auth_enum.known_username if profile.auth_enum is not None else None
    if reference == "passwords.account":
        reference = profile.passwords.account if profile.passwords is not None else ""
    elif reference == "passwords.reset_account":
        passwords = profile.passwords
        reference = (passwords.reset_account or "") if passwords is not None else ""
    account = profile.accounts.get(reference)
    return account.username if account is not None else None


def roles(profile: Profile) -> list[Role]:
    """Every use of an account by the catalogue's controls (``uses``), one role per account
    reference and effect."""
    controls: dict[tuple[str, str], set[str]] = defaultdict(set)
    for control in load_catalogue().controls:
        for reference, effect in control.uses.items():
            controls[(reference, effect)].add(control.id)
    found = []
    for (account, use), ids in controls.items():
        username = account_username(profile, account)
        if username is not None:
            found.append(Role(account, username, frozenset(ids), use))
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
            # Two background probes on one account cannot wait for each other (the warning
            # says to give each its own account); every other check of the role waits.
            for control in mine.controls - BACKGROUND if probes else ():
                result[control] |= probes
    # A check that ends the account's other sessions waits for the probes timing sessions of
    # the same account.
    for role in roles(profile):
        probes = role.controls & BACKGROUND & running
        for control in role.controls - BACKGROUND if probes else ():
            if load_catalogue().get(control).ends_other_sessions:
                result[control] |= probes
    return dict(result)


def parallel_groups(profile: Profile, control_ids: Iterable[str]) -> dict[str, str]:
    """Control -> the group it runs in when checks run at the same time.

    Checks of one group run one after another; groups run beside each other. Controls that use
    one account (by username, whatever the role) share a group, and so do accounts a control
    uses together. Controls that use no account run by area (the TLS controls share one scan).
    A control whose account is used only by its background probe (its scenario collects what
    the probe measured) has a group of its own.
    """
    catalogue = load_catalogue()
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    users: dict[str, list[str]] = {}
    for control_id in control_ids:
        control = catalogue.get(control_id)
        if control.id in BACKGROUND:
            continue
        names = [account_username(profile, reference) for reference in control.uses]
        users[control.id] = [name.casefold() for name in names if name is not None]
        for name in users[control.id][1:]:
            parent[find(name)] = find(users[control.id][0])
    groups = {}
    for control_id in control_ids:
        named = users.get(control_id)
        if named:
            groups[control_id] = f"account:{find(named[0])}"
        elif control_id in BACKGROUND:
            groups[control_id] = f"probe:{control_id}"
        else:
            groups[control_id] = f"area:{catalogue.get(control_id).area}"
    return groups
