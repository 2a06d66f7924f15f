"""Mozilla Server Side TLS as versioned data: the policy the TLS evaluators judge against.

``load_policy`` reads one configuration level (``intermediate`` or ``modern``) of Mozilla's
guideline JSON kept under ``scanners/policies``. Protocol and group names are OpenSSL's, as in
that data; ``protocol_label`` and ``normalise_group`` translate what sslyze reports into them.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICY_DIR = Path(__file__).resolve().parent / "policies"
POLICY_FILE = POLICY_DIR / "mozilla-server-side-tls-6.0.json"

# Oldest first; the names are OpenSSL's, as in Mozilla's guideline data.
PROTOCOLS: tuple[str, ...] = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
_PROTOCOL_LABELS = {
    "SSLv2": "SSL 2.0",
    "SSLv3": "SSL 3.0",
    "TLSv1": "TLS 1.0",
    "TLSv1.1": "TLS 1.1",
    "TLSv1.2": "TLS 1.2",
    "TLSv1.3": "TLS 1.3",
}
# sslyze reports SECG names; Mozilla and OpenSSL configuration files use the ANSI X9.62 ones.
_GROUP_ALIASES = {"secp256r1": "prime256v1", "secp192r1": "prime192v1"}


def protocol_label(protocol: str) -> str:
    """``TLSv1.1`` -> ``TLS 1.1``."""
    return _PROTOCOL_LABELS.get(protocol, protocol)


def normalise_group(name: str) -> str:
    """``secp256r1`` -> ``prime256v1``: a group or curve name as Mozilla's data spells it."""
    return _GROUP_ALIASES.get(name, name)


@dataclass(frozen=True)
class MozillaPolicy:
    """One configuration level of Mozilla's Server Side TLS guideline."""

    version: str
    source: str
    level: str
    tls_versions: tuple[str, ...]
    tls13_cipher_suites: tuple[str, ...]
    tls12_cipher_suites: tuple[str, ...]
    tls12_cipher_suites_openssl: tuple[str, ...]
    groups: tuple[str, ...]
    certificate_types: tuple[str, ...]
    certificate_curves: tuple[str, ...]
    certificate_signatures: tuple[str, ...]
    rsa_key_size: int | None
    dh_param_size: int | None
    ecdh_param_size: int | None
    maximum_certificate_lifespan_days: int
    recommended_certificate_lifespan_days: int
    hsts_min_age_seconds: int
    ocsp_staple: bool
    server_preferred_order: bool

    @property
    def label(self) -> str:
        return f"Mozilla {self.version} {self.level}"

    def allowed_suites(self, protocol: str) -> tuple[str, ...]:
        """The suites this profile allows over ``protocol``; none for a protocol it forbids."""
        if protocol not in self.tls_versions:
            return ()
        if protocol == "TLSv1.3":
            return self.tls13_cipher_suites
        if protocol == "TLSv1.2":
            return self.tls12_cipher_suites
        return ()


@functools.cache
def _policy_document(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def load_policy(level: str = "intermediate", *, path: Path = POLICY_FILE) -> MozillaPolicy:
    """Load one level (``intermediate`` or ``modern``) of the versioned Mozilla guideline data."""
    document = _policy_document(path)
    configurations: dict[str, dict[str, Any]] = document["configurations"]
    if level not in configurations:
        known = ", ".join(sorted(configurations))
        raise ValueError(f"unknown Mozilla TLS level {level!r}; known levels: {known}")
    config = configurations[level]
    return MozillaPolicy(
        version=str(document["version"]),
        source=str(document["source"]),
        level=level,
        tls_versions=tuple(config["tls_versions"]),
        tls13_cipher_suites=tuple(config["ciphersuites"]),
        tls12_cipher_suites=tuple(config["ciphers"]["iana"]),
        tls12_cipher_suites_openssl=tuple(config["ciphers"]["openssl"]),
        groups=tuple(normalise_group(name) for name in config["tls_curves"]),
        certificate_types=tuple(config["certificate_types"]),
        certificate_curves=tuple(normalise_group(name) for name in config["certificate_curves"]),
        certificate_signatures=tuple(config["certificate_signatures"]),
        rsa_key_size=config["rsa_key_size"],
        dh_param_size=config["dh_param_size"],
        ecdh_param_size=config["ecdh_param_size"],
        maximum_certificate_lifespan_days=int(config["maximum_certificate_lifespan"]),
        recommended_certificate_lifespan_days=int(config["recommended_certificate_lifespan"]),
        hsts_min_age_seconds=int(config["hsts_min_age"]),
        ocsp_staple=bool(config["ocsp_staple"]),
        server_preferred_order=bool(config["server_preferred_order"]),
    )
