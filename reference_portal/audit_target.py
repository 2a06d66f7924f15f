"""The reference portal as a portal-audit target provider: a pytest plugin.

A profile with ``target: reference`` gets this portal started for its run, with the weakness
flags given by ``--weaken``. The provider answers portal-audit's ``pytest_portal_audit_target`` hook
(documented in the audit's ``portal/targets.py``) by duck typing, so this package imports
nothing of the audit.

Each run generates the seeded accounts' passwords and TOTP secrets, unless the environment
already holds them (a test that wants to know them sets them), and hands them to the profile as
variables, never through this process's environment. ``REFERENCE_PORTAL_STATE_DIR`` keeps the
portal's database and mailbox in that directory after the run, for tests that inspect them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest

from reference_portal import launcher
from reference_portal.passwords import generate_password
from reference_portal.seed import password_variables, secret_variables
from reference_portal.weaknesses import WEAKNESSES

NAME = "reference"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reference-portal", "the bundled reference portal as target")
    group.addoption(
        "--weaken",
        default="",
        help="comma-separated weakness flags of the bundled reference portal (target: "
        "reference) to switch on",
    )


@dataclass
class ReferenceTarget:
    """The running reference portal, as portal-audit's ``Target`` protocol describes it."""

    portal: launcher.RunningPortal
    variables: dict[str, str]
    secrets: list[str]
    facts: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> None:
        self.portal.stop()


@pytest.hookimpl
def pytest_portal_audit_target(config: pytest.Config, name: str | None) -> ReferenceTarget | None:
    flags = [w.strip() for w in str(config.getoption("weaken") or "").split(",") if w.strip()]
    if name != NAME:
        if flags:
            raise pytest.UsageError(
                f"--weaken applies only to the bundled reference portal (target: {NAME}), "
                f"not to this profile's target ({name or 'none: the portal at its base_url'})"
            )
        return None
    known = {w.flag for w in WEAKNESSES}
    unknown = [w for w in flags if w not in known]
    if unknown:
        raise pytest.UsageError(f"unknown weakness flag(s) {unknown}; known: {sorted(known)}")
    accounts = account_values(os.environ)
    kept = os.environ.get("REFERENCE_PORTAL_STATE_DIR")
    try:
        portal = launcher.start(flags, env=accounts, state_dir=Path(kept) if kept else None)
    except launcher.PortalStartError as exc:
        raise pytest.UsageError(f"the bundled reference portal did not start: {exc}") from exc
    variables = dict(accounts)
    variables["REFERENCE_PORTAL_URL"] = portal.https_url
    variables["REFERENCE_PORTAL_HTTP_URL"] = portal.http_url
    variables["REFERENCE_PORTAL_CA"] = str(portal.ca_file)
    if portal.maildir is not None:
        variables["REFERENCE_PORTAL_MAILDIR"] = str(portal.maildir)
    return ReferenceTarget(
        portal=portal,
        variables=variables,
        secrets=list(accounts.values()),
        facts={"weaknesses": flags},
    )


def account_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Every seeded account's password and TOTP secret: the environment's, else fresh ones."""
    values: dict[str, str] = {}
    for variable in password_variables():
        # Valid under every password policy the portal can be weakened to, so the password
        # controls can always put an account's original password back.
        values[variable] = environ.get(variable) or generate_password()
    for variable in secret_variables():
        values[variable] = environ.get(variable) or pyotp.random_base32(32)
    return values
