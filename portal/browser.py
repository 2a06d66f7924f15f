"""Finding and launching Chromium, and trusting a portal's private CA the honest way."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ENV = "PORTAL_AUDIT_CHROMIUM"
RECORDED_PATH = ROOT / ".venv" / "chromium-path"
PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
PEM_END = "-----END CERTIFICATE-----\n"
SYSTEM_CANDIDATES = (
    "/usr/lib/chromium/chromium",  # Debian: the real binary, without the wrapper's shell noise
    "/usr/lib/chromium-browser/chromium-browser",
    "/snap/bin/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
)
# Keep Chromium from calling home: this machine's network is closed and an audit must only
# talk to the portal under test.
QUIET_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Chromium's Local Network Access checks block a page of another (public) origin from framing
    # a portal on a local or private address before the portal's own headers are read; HDR_CSP's
    # framing check must see the portal refuse, not the browser.
    "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
    "PrivateNetworkAccessSendPreflights",
]


def find_chromium() -> str | None:
    """Explicit setting, then the path set-up recorded, then a system Chromium.

    ``None`` means: use Playwright's own downloaded browser.
    """
    explicit = os.environ.get(CHROMIUM_ENV)
    if explicit:
        return explicit
    if RECORDED_PATH.is_file():
        recorded = RECORDED_PATH.read_text().strip()
        if recorded and Path(recorded).exists():
            return recorded
        if recorded == "playwright":
            return None
    for candidate in SYSTEM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found


class TrustError(Exception):
    """The portal's certificate does not verify against the trusted CAs."""


def verify_portal_chain(
    host: str, port: int, *, server_name: str | None, ca_file: str, timeout: float
) -> None:
    """Verify the portal's chain and host name against the profile's CA before any browser
    starts, so that an untrusted certificate is a clear reason rather than a browser error."""
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name or host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        message = f"certificate of {host}:{port} not trusted: {exc.verify_message}"
        raise TrustError(message) from None
    except OSError as exc:
        raise TrustError(f"{host}:{port} did not answer: {exc.strerror or exc}") from None


def trusting_home(ca_file: str) -> Path:
    """A fresh home directory whose NSS database trusts the profile's CA certificates.

    Chromium has no per-launch CA option, but on Linux it reads the user's NSS database
    ($HOME/.pki/nssdb); a browser started with this directory as HOME trusts exactly the system's
    roots plus these CAs, verified like any other chain (an allow-list of leaf keys would also
    accept an impostor's chain with the portal's public certificate appended). The caller
    removes the directory when the browser has closed.
    """
    certutil = shutil.which("certutil")
    if certutil is None:
        raise TrustError(
            "trusting a private CA in the browser needs NSS's certutil (Debian: libnss3-tools; "
            "`make setup` installs it)"
        )
    pems = [
        block + PEM_END
        for block in Path(ca_file).read_text(encoding="ascii", errors="replace").split(PEM_END)
        if PEM_BEGIN in block
    ]
    if not pems:
        raise TrustError(f"{ca_file} holds no certificate")
    home = Path(tempfile.mkdtemp(prefix="portal-audit-browser-"))
    database = home / ".pki" / "nssdb"
    database.mkdir(parents=True)
    try:
        _certutil(certutil, "-N", "-d", f"sql:{database}", "--empty-password")
        for index, pem in enumerate(pems):
            pem_file = home / f"ca-{index}.pem"
            pem_file.write_text(pem[pem.index(PEM_BEGIN) :], encoding="ascii")
            # "C,,": trusted to issue TLS server certificates, and nothing else.
            trust = ["-n", f"portal-audit private CA {index}", "-t", "C,,", "-i", str(pem_file)]
            _certutil(certutil, "-A", "-d", f"sql:{database}", *trust)
    except TrustError:
        shutil.rmtree(home, ignore_errors=True)
        raise
    return home


def _certutil(certutil: str, *args: str) -> None:
    completed = subprocess.run(
        [certutil, *args], capture_output=True, text=True, timeout=30, check=False
    )
    if completed.returncode != 0:
        problem = (completed.stderr or completed.stdout).strip().splitlines()
        raise TrustError(f"certutil {args[0]} failed: {problem[-1] if problem else 'no output'}")
