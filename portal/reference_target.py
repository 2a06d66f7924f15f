"""Starting the bundled reference portal as the audit's target, when the profile asks for it.

Each run generates the reference accounts' passwords and TOTP secrets and passes them through
the environment, so none is ever stored; the redactor learns them like any profile secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyotp

from portal.evidence import Redactor


class ReferenceTargetError(Exception):
    """The bundled portal cannot be started as asked (a usage problem, exit status 3)."""


def reference_password_variables() -> tuple[str, ...]:
    """The reference portal's accounts read their passwords from these variables; a run
    generates fresh random ones so no password is ever stored anywhere."""
    from reference_portal.seed import password_variables

    return password_variables()


def reference_secret_variables() -> tuple[str, ...]:
    """The variables holding the TOTP secrets of the reference portal's pre-enrolled accounts;
    generated for each run like the passwords."""
    from reference_portal.seed import secret_variables

    return secret_variables()


def start_reference_portal(weaknesses: list[str]) -> Any:
    """The running reference portal (reference_portal.launcher.RunningPortal) with those
    weakness flags on; its addresses and CA are published in the environment for the profile."""
    from reference_portal import launcher
    from reference_portal.passwords import generate_password
    from reference_portal.weaknesses import WEAKNESSES

    known = {w.flag for w in WEAKNESSES}
    unknown = [w for w in weaknesses if w not in known]
    if unknown:
        raise ReferenceTargetError(f"unknown weakness flag(s) {unknown}; known: {sorted(known)}")
    for variable in reference_password_variables():
        # Valid under every password policy the portal can be weakened to, so the password
        # controls can always put an account's original password back.
        os.environ.setdefault(variable, generate_password())
    for variable in reference_secret_variables():
        os.environ.setdefault(variable, pyotp.random_base32(32))
    # A test may keep the portal's state (database, mailbox) to inspect it after the run.
    kept = os.environ.get("REFERENCE_PORTAL_STATE_DIR")
    try:
        portal = launcher.start(weaknesses, state_dir=Path(kept) if kept else None)
    except launcher.PortalStartError as exc:
        raise ReferenceTargetError(f"the bundled reference portal did not start: {exc}") from exc
    os.environ["REFERENCE_PORTAL_URL"] = portal.https_url
    os.environ["REFERENCE_PORTAL_HTTP_URL"] = portal.http_url
    os.environ["REFERENCE_PORTAL_CA"] = str(portal.ca_file)
    if portal.maildir is not None:
        os.environ["REFERENCE_PORTAL_MAILDIR"] = str(portal.maildir)
    return portal


def register_reference_secrets(redactor: Redactor) -> None:
    """Teach the redactor the generated passwords and TOTP secrets of the reference accounts."""
    for variable in reference_password_variables():
        redactor.add(os.environ.get(variable))
    for variable in reference_secret_variables():
        redactor.add(os.environ.get(variable))
