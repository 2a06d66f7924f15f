"""The reference portal as a portal-audit target provider: a pytest plugin.

A profile with ``target: reference`` gets this portal started for its run, with the weakness
flags given by ``--weaken``. ``target: reference-sso`` starts it in SSO mode together with
Riverside ID, the OpenID Connect provider in ``targets/oidc_provider`` (node; installed with
``npm ci --prefix targets/oidc_provider``), see ``start_sso``. The provider answers
portal-audit's ``pytest_portal_audit_target`` hook (documented in the audit's
``portal/targets.py``) by duck typing, so this package imports nothing of the audit.

Each run generates the seeded accounts' passwords and TOTP secrets, unless the environment
already holds them (a test that wants to know them sets them), and hands them to the profile as
variables, never through this process's environment. ``REFERENCE_PORTAL_STATE_DIR`` keeps the
portal's database and mailbox in that directory after the run, for tests that inspect them.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyotp
import pytest

from reference_portal import launcher
from reference_portal.passwords import generate_password
from reference_portal.seed import SEED_ACCOUNTS, password_variables, secret_variables
from reference_portal.settings import SSO_CLIENT_SECRET_VARIABLE, SsoConfig
from reference_portal.sso import CALLBACK_PATH, SIGNED_OUT_PATH
from reference_portal.weaknesses import WEAKNESSES

NAME = "reference"
SSO_NAME = "reference-sso"
PROVIDER_DIR = launcher.PACKAGE_PARENT / "targets" / "oidc_provider"
PROVIDER_SETUP = "npm ci --prefix targets/oidc_provider"
SSO_CLIENT_ID = "riverside-patient-portal"
PROVIDER_READY_SECONDS = 20


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reference-portal", "the bundled reference portal as target")
    group.addoption(
        "--weaken",
        default="",
        help="comma-separated weakness flags of the bundled reference portal (target: "
        "reference or reference-sso) to switch on",
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
def pytest_portal_audit_target(
    config: pytest.Config, name: str | None
) -> ReferenceTarget | SsoTarget | None:
    flags = [w.strip() for w in str(config.getoption("weaken") or "").split(",") if w.strip()]
    if name not in (NAME, SSO_NAME):
        if flags:
            raise pytest.UsageError(
                f"--weaken applies only to the bundled reference portal (target: {NAME} or "
                f"{SSO_NAME}), not to this profile's target "
                f"({name or 'none: the portal at its base_url'})"
            )
        return None
    known = {w.flag for w in WEAKNESSES}
    unknown = [w for w in flags if w not in known]
    if unknown:
        raise pytest.UsageError(f"unknown weakness flag(s) {unknown}; known: {sorted(known)}")
    if name == SSO_NAME:
        return start_sso(flags)
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


# -- target: reference-sso ----------------------------------------------------------------------


@dataclass
class RunningProvider:
    """The node OpenID Connect provider process (targets/oidc_provider/server.mjs)."""

    issuer: str
    process: subprocess.Popen[str] = field(repr=False)
    stderr: launcher._StreamReader = field(repr=False)
    stdout: launcher._StreamReader = field(repr=False)

    def stop(self, timeout: float = 10) -> None:
        launcher.stop_process(self.process, (self.stderr, self.stdout), timeout)


@dataclass
class SsoTarget:
    """The reference portal in SSO mode and its provider, as the ``Target`` protocol describes."""

    portal: launcher.RunningPortal
    provider: RunningProvider
    variables: dict[str, str]
    secrets: list[str]
    facts: dict[str, Any] = field(default_factory=dict)
    remove_dir: Path | None = None

    def stop(self) -> None:
        try:
            self.provider.stop()
            self.portal.stop()
        finally:
            if self.remove_dir is not None:
                shutil.rmtree(self.remove_dir, ignore_errors=True)


def provider_installed() -> str | None:
    """Why the provider cannot start (node or its packages missing), or None."""
    if shutil.which("node") is None:
        return "node is not installed (Node 20.19 or later is needed)"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"{PROVIDER_DIR / 'node_modules'} is missing: run `{PROVIDER_SETUP}`"
    return None


def provider_accounts(passwords: Mapping[str, str]) -> list[dict[str, str]]:
    """The provider's accounts: every seeded account, ``sub`` = its portal username."""
    return [
        {
            "sub": account.username,
            "username": account.username,
            "password": passwords[account.password_env],
            "email": account.email,
            "name": account.full_name,
        }
        for account in SEED_ACCOUNTS
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_provider(
    issuer: str,
    port: int,
    portal: launcher.RunningPortal,
    client: SsoConfig,
    accounts: Sequence[Mapping[str, str]],
) -> RunningProvider:
    """Start the provider on ``port`` with the portal's certificate (see ``start_sso``)."""
    tls_dir = portal.state_dir / "tls"
    command = [
        "node",
        str(PROVIDER_DIR / "server.mjs"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--issuer",
        issuer,
        "--cert",
        str(tls_dir / "server-chain.pem"),
        "--key",
        str(tls_dir / "server-key.pem"),
        "--redirect-uri",
        portal.https_url.rstrip("/") + CALLBACK_PATH,
        "--post-logout-redirect-uri",
        portal.https_url.rstrip("/") + SIGNED_OUT_PATH,
    ]
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": client.client_id,
        "OIDC_CLIENT_SECRET": client.client_secret,
        "OIDC_ACCOUNTS": json.dumps(list(accounts)),
        "NODE_ENV": "production",
    }
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        errors="replace",
        env=env,
        cwd=PROVIDER_DIR,
    )
    assert process.stdout is not None and process.stderr is not None
    stdout = launcher._StreamReader(process.stdout)
    stderr = launcher._StreamReader(process.stderr, keep_lines=launcher.STDERR_TAIL_LINES)
    provider = RunningProvider(issuer, process, stderr, stdout)
    deadline = time.monotonic() + PROVIDER_READY_SECONDS
    try:
        line = stdout.lines.get(timeout=max(0.0, deadline - time.monotonic()))
        ready = json.loads(line) if line else None
    except (queue.Empty, ValueError):
        ready = None
    if not isinstance(ready, dict) or ready.get("issuer") != issuer:
        provider.stop()
        tail = "\n".join(stderr.tail) or "(no stderr output)"
        raise launcher.PortalStartError(
            f"the OpenID Connect provider did not report ready (exit status "
            f"{process.returncode}); stderr tail:\n{tail}"
        )
    return provider


def start_sso(flags: Sequence[str], attempts: int = 3) -> SsoTarget:
    """The reference portal in SSO mode and its provider, on free 127.0.0.1 ports.

    The provider is another origin and another host (``https://localhost:<port>``; the portal is
    ``https://127.0.0.1:<port>``), so their cookies stay apart. It serves the portal's own
    certificate chain (it names both ``localhost`` and ``127.0.0.1``), as a portal and its IdP
    sharing a certificate do; the audit's browser trusts the run's CA, and the portal verifies
    the provider with it too. The portal starts first (its certificate is
    made at start), knowing the provider's address in advance; the provider then gets the
    portal's redirect URIs.
    """
    problem = provider_installed()
    if problem:
        raise pytest.UsageError(f"target {SSO_NAME}: {problem}")
    accounts = account_values(os.environ)
    kept = os.environ.get("REFERENCE_PORTAL_STATE_DIR")
    # From the environment when a test wants to know it, like the accounts' passwords.
    client_secret = os.environ.get(SSO_CLIENT_SECRET_VARIABLE) or secrets.token_urlsafe(32)
    last_error: Exception | None = None
    for _ in range(attempts):
        state_dir = Path(kept) if kept else Path(tempfile.mkdtemp(prefix="reference-sso-"))
        state_dir = state_dir.resolve()
        port = _free_port()
        issuer = f"https://localhost:{port}"
        client = SsoConfig(issuer, state_dir / "ca.pem", SSO_CLIENT_ID, client_secret)
        portal: launcher.RunningPortal | None = None
        try:
            portal = launcher.start(flags, env=accounts, state_dir=state_dir, sso=client)
            provider = start_provider(issuer, port, portal, client, provider_accounts(accounts))
        except launcher.PortalStartError as exc:
            last_error = exc
            if portal is not None:
                portal.stop()
            if not kept:
                shutil.rmtree(state_dir, ignore_errors=True)
            continue
        variables = dict(accounts)
        variables["REFERENCE_PORTAL_URL"] = portal.https_url
        variables["REFERENCE_PORTAL_HTTP_URL"] = portal.http_url
        variables["REFERENCE_PORTAL_CA"] = str(portal.ca_file)
        variables["REFERENCE_SSO_PROVIDER_URL"] = issuer + "/"
        if portal.maildir is not None:
            variables["REFERENCE_PORTAL_MAILDIR"] = str(portal.maildir)
        return SsoTarget(
            portal=portal,
            provider=provider,
            variables=variables,
            secrets=[*accounts.values(), client_secret],
            facts={"weaknesses": list(flags), "sign_in": f"OpenID Connect provider {issuer}"},
            remove_dir=None if kept else state_dir,
        )
    raise pytest.UsageError(f"target {SSO_NAME} did not start: {last_error}")
