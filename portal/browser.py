"""Finding and launching Chromium, and trusting a portal's private CA the honest way."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ENV = "PORTAL_AUDIT_CHROMIUM"
RECORDED_PATH = ROOT / ".venv" / "chromium-path"
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


def verified_leaf_spki(
    host: str, port: int, *, server_name: str | None, ca_file: str, timeout: float
) -> str:
    """Verify the portal's chain against the private CA and return the leaf's SPKI pin.

    Chromium has no per-launch CA option; instead the leaf key is pinned with
    ``--ignore-certificate-errors-spki-list`` *after* Python has verified the chain and host
    name against the profile's CA. Any other certificate stays an error in the browser.
    """
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name or host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except ssl.SSLCertVerificationError as exc:
        message = f"certificate of {host}:{port} not trusted: {exc.verify_message}"
        raise TrustError(message) from None
    except OSError as exc:
        raise TrustError(f"{host}:{port} did not answer: {exc.strerror or exc}") from None
    if der is None:
        raise TrustError(f"{host}:{port} presented no certificate")
    public_key = x509.load_der_x509_certificate(der).public_key()
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()
