"""Target providers: the profile's ``target:`` is started by exactly one provider plugin."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest

from portal.targets import NoProvider, Target, start_target
from reference_portal.audit_target import ReferenceTarget, account_values


@dataclass
class FakeTarget:
    variables: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    stopped: bool = False

    def stop(self) -> None:
        self.stopped = True


def config_with(*answers: FakeTarget | None) -> pytest.Config:
    """A config whose providers answer the hook with ``answers`` (pluggy's list of results)."""

    def hook(config: pytest.Config, name: str | None) -> list[FakeTarget]:
        return [a for a in answers if a is not None]

    return cast(
        pytest.Config, SimpleNamespace(hook=SimpleNamespace(pytest_portal_audit_target=hook))
    )


def test_the_one_provider_that_answers_starts_the_target() -> None:
    target = FakeTarget(variables={"PORTAL_URL": "https://127.0.0.1:1/"})
    assert start_target(config_with(None, target), "fake") is target
    assert not target.stopped


def test_a_name_no_provider_answers_is_refused() -> None:
    with pytest.raises(NoProvider, match="no installed target provider is named 'acme'"):
        start_target(config_with(None), "acme")


def test_two_providers_answering_one_name_are_refused_and_both_stopped() -> None:
    first, second = FakeTarget(), FakeTarget()
    with pytest.raises(pytest.UsageError, match="2 target providers answer"):
        start_target(config_with(first, second), "twice")
    assert first.stopped and second.stopped


def test_no_target_named_starts_nothing() -> None:
    stray = FakeTarget()
    assert start_target(config_with(stray), None) is None
    assert stray.stopped


def as_target(target: ReferenceTarget) -> Target:
    """mypy checks here that the reference provider's target is what the audit expects."""
    return target


def test_reference_accounts_come_from_the_environment_else_fresh() -> None:
    given = account_values({"REFERENCE_PATIENT_PASSWORD": "Pw-given-0123456789"})
    assert given["REFERENCE_PATIENT_PASSWORD"] == "Pw-given-0123456789"
    fresh = [v for k, v in given.items() if k != "REFERENCE_PATIENT_PASSWORD"]
    assert fresh and all(len(v) >= 16 for v in fresh)
    assert account_values({}) != account_values({})
