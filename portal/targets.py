"""Target providers: plugins that start the portal under audit for a run.

A profile's ``target: NAME`` asks a provider to start the portal before the profile is read.
Providers are pytest plugins (registered like any other, e.g. through a ``pytest11`` entry
point) that implement the hook below. The bundled reference portal is one
(``reference_portal/audit_target.py``); the product knows nothing else about it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

import pluggy
import pytest

hookspec = pluggy.HookspecMarker("pytest")


class Target(Protocol):
    """What a provider started for this run."""

    @property
    def variables(self) -> Mapping[str, str]:
        """Values for the profile's ``${NAME}`` references (address, CA file, passwords);
        they take precedence over the environment."""
        ...

    @property
    def secrets(self) -> Collection[str]:
        """Values that must never reach a report (generated passwords, TOTP secrets)."""
        ...

    @property
    def facts(self) -> Mapping[str, Any]:
        """What the provider wants recorded in summary.json (e.g. the weaknesses switched on)."""
        ...

    def stop(self) -> None:
        """Stop the target; called once at the end of the run."""
        ...


class TargetHooks:
    """The hook a target provider implements."""

    @hookspec
    def pytest_portal_audit_target(self, config: pytest.Config, name: str | None) -> Target | None:
        """Start the target ``name`` (the profile's ``target:``) and return it, or return None
        when ``name`` is not this provider's. Called once per audit with every provider, also
        when the profile names no target (``name`` is None), so a provider can refuse its own
        options given for a portal it does not start. Raise ``pytest.UsageError`` for a problem
        the user must fix (exit status 3); any other exception is the audit's own error (4)."""
        raise NotImplementedError


class NoProvider(Exception):
    """No installed provider answers to the profile's target name."""


def start_target(config: pytest.Config, name: str | None) -> Target | None:
    """The target the profile names, started by its provider; None when it names none.

    Raises NoProvider when no provider answers to the name, ``pytest.UsageError`` when more
    than one does (or a provider refuses).
    """
    started = [t for t in config.hook.pytest_portal_audit_target(config=config, name=name) if t]
    if name is None:
        for target in started:
            target.stop()
        return None
    if len(started) == 1:
        return started[0]
    for target in started:
        target.stop()
    if not started:
        raise NoProvider(
            f"no installed target provider is named {name!r} (`reference` is the bundled "
            "reference portal; a provider is a pytest plugin implementing "
            "pytest_portal_audit_target)"
        )
    raise pytest.UsageError(f"{len(started)} target providers answer to target: {name}")
