"""Shared, expensive fixtures of the project's own tests."""

from __future__ import annotations

import pytest

from tests.audits import AuditResult, run_audit


@pytest.fixture(scope="session")
def compliant_run(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    """One full audit of the reference portal as shipped, with the HTML report."""
    return run_audit(tmp_path_factory.mktemp("compliant"), html=True)


@pytest.fixture(scope="session")
def logout_weakness_run(tmp_path_factory: pytest.TempPathFactory) -> AuditResult:
    """One full audit with the weakness that breaks SESS_LOGOUT switched on."""
    return run_audit(tmp_path_factory.mktemp("logout"), weaken=("logout_keeps_session",))
