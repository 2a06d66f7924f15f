"""Checking a profile without auditing (``portal-audit check-profile``).

The profile is read and validated as the audit reads it, its ``${...}`` references filled from
the environment. A profile that names a ``target:`` gets some of those values from the target
when the audit starts it: a reference to a variable that is not set is then left to the target
and listed, not reported as a problem. Everything else is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portal.profile import DEFAULT_DRIVER, Profile, load_profile, target_of
from portal.profile_env import ENV_REFERENCE
from portal.profile_file import ProfileError, ProfileErrors, read_raw


@dataclass(frozen=True)
class ProfileCheck:
    path: Path
    target: str | None = None
    profile: Profile | None = None
    problems: list[ProfileError] = field(default_factory=list)
    # Fields whose values the target fills in when the audit starts (not checked here).
    left_to_target: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.problems:
            return "\n".join(str(problem) for problem in self.problems)
        lines = [f"{self.path}: a valid profile" + self._what()]
        if self.left_to_target:
            lines.append(
                f"left to target '{self.target}', filled in when the audit starts it: "
                + ", ".join(self.left_to_target)
            )
        if self.profile is not None and self.profile.driver != DEFAULT_DRIVER:
            lines.append(f"its driver {self.profile.driver} is loaded when the audit starts")
        return "\n".join(lines)

    def _what(self) -> str:
        if self.profile is None:
            return f" (target '{self.target}')" if self.target else ""
        parts = [f"{len(self.profile.accounts)} account(s)"]
        if self.target:
            parts.insert(0, f"target '{self.target}'")
        if self.profile.out_of_scope:
            parts.append(f"{len(self.profile.out_of_scope)} control(s) out of scope")
        return f" ({', '.join(parts)})"


def _references(value: Any, path: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], set[str]]]:
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _references(v, (*path, k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _references(v, (*path, i))]
    if isinstance(value, str):
        names = {match.group("name") for match in ENV_REFERENCE.finditer(value)}
        return [(path, names)] if names else []
    return []


def check_profile(path: Path, env: Mapping[str, str]) -> ProfileCheck:
    try:
        target = target_of(path)
        data, _ = read_raw(path)
    except ProfileError as exc:
        return ProfileCheck(path, problems=_problems(exc))
    left: list[str] = []
    if target is not None:
        left = [
            ".".join(str(part) for part in where)
            for where, names in _references(data, ())
            if any(name not in env for name in names)
        ]
    try:
        profile = load_profile(path, env)
    except ProfileError as exc:
        problems = [problem for problem in _problems(exc) if problem.field not in left]
        return ProfileCheck(path, target, None, problems, left)
    return ProfileCheck(path, target, profile, [], left)


def _problems(error: ProfileError) -> list[ProfileError]:
    return list(error.errors) if isinstance(error, ProfileErrors) else [error]
