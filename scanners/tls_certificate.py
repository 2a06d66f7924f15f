"""Facts about one certificate deployment, read from sslyze's ``certificate_info`` result.

Trust and the host name come from sslyze's own path validation: for every trust store it ships
(plus the supplied CA file), sslyze validates the received chain for the name sent as SNI, at
scan time, with ``cryptography``'s web-PKI verifier. ``trusted_by`` lists the stores whose
validation succeeded and ``hostname_matches`` reads the verifier's name check; no trust or
name-matching rule is implemented here.

Two things sslyze's answers leave open are settled by asking sslyze's stores again:

- The operating system's store, which sslyze does not consult, is validated the same way
  (``TlsTarget.ca_file`` is trusted *in addition to* the system store).
- A validation reports only the first problem it meets, and the verifier checks the leaf's
  dates, then its name, and only then the chain. An expired or misnamed certificate from a
  trusted CA therefore comes back "untrusted", and an expired one hides a wrong name. The TLS
  controls report the chain, the name and the dates apart, so in those cases the same stores
  are asked again at a moment inside the leaf's validity, and for a name the leaf carries when
  the chain itself is in question.

Kept here because sslyze does not give them: key type and size, signature algorithm, lifespan,
self-signed detection, SHA-1 anywhere in the received chain (sslyze looks only at a verified
chain, which never has SHA-1 under the web-PKI rules), and the OCSP responder URLs.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import ipaddress
import ssl
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID, SignatureAlgorithmOID

from scanners.tls_policy import normalise_group

if TYPE_CHECKING:
    from sslyze import CertificateDeploymentAnalysisResult, PathValidationResult, TrustStore

# sslyze's name for the store made of ``custom_ca_file``; ours for the operating system's store.
SUPPLIED_STORE = "Supplied CA file"
SYSTEM_STORE = "System"
# How ``cryptography``'s verifier says that no subjectAltName matches the name asked for.
_NAME_MISMATCH = "no matching subjectAltName"
_NO_SUBJECT_ALT_NAME = "the certificate has no subjectAltName to validate"

_SIGNATURE_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "md5WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "dsa_with_SHA1",
    SignatureAlgorithmOID.DSA_WITH_SHA224: "dsa_with_SHA224",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "dsa_with_SHA256",
    SignatureAlgorithmOID.ED25519: "ED25519",
    SignatureAlgorithmOID.ED448: "ED448",
}


@dataclass(frozen=True)
class CertificateFacts:
    """What was observed about one certificate deployment (the leaf and the chain sent with it)."""

    subject: str
    issuer: str
    serial_number: str
    sha256_fingerprint: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: datetime.datetime
    not_after: datetime.datetime
    lifespan_days: float
    key_type: str
    key_size: int
    curve: str | None
    signature_algorithm: str
    signature_hash: str | None
    self_signed: bool
    chain_length: int
    chain_has_sha1_signature: bool
    # Trust is judged apart from the name and the dates, which have findings of their own.
    chain_trusted: bool
    trusted_by: tuple[str, ...]
    trust_error: str | None
    hostname_matches: bool
    ocsp_responders: tuple[str, ...]
    must_staple: bool
    ocsp_stapled: bool
    ocsp_response_status: str | None
    ocsp_certificate_status: str | None
    ocsp_response_trusted: bool | None
    ocsp_next_update: datetime.datetime | None

    def describe(self) -> str:
        """``CN=portal.test (ECDSA prime256v1)``: how findings name this certificate."""
        return f"{self.subject} ({self.key_description()})"

    def key_description(self) -> str:
        if self.key_type == "ecdsa":
            return f"ECDSA {self.curve or self.key_size}"
        return f"{self.key_type.upper()} {self.key_size}"


def certificate_facts(
    deployment: CertificateDeploymentAnalysisResult, *, server_name: str, now: datetime.datetime
) -> CertificateFacts:
    """The facts of one deployment sslyze analysed for ``server_name`` (the SNI it sent)."""
    chain: list[x509.Certificate] = list(deployment.received_certificate_chain)
    leaf = chain[0]
    dns_names, ip_addresses = _subject_alt_names(leaf)
    key_type, key_size, curve = _key_facts(leaf)
    validation = _Validation(deployment, server_name, now)
    hostname_matches = validation.name_matches()
    trusted_by, trust_error = validation.chain_trust(name_matched=hostname_matches)
    response = deployment.ocsp_response
    response_status = certificate_status = None
    next_update = None
    if response is not None:
        response_status = response.response_status.name.lower()
        if response_status == "successful":
            certificate_status = response.certificate_status.name.lower()
            next_update = response.next_update_utc
    not_before = leaf.not_valid_before_utc
    not_after = leaf.not_valid_after_utc
    return CertificateFacts(
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        serial_number=f"{leaf.serial_number:x}",
        sha256_fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        not_before=not_before,
        not_after=not_after,
        lifespan_days=round((not_after - not_before).total_seconds() / 86400, 3),
        key_type=key_type,
        key_size=key_size,
        curve=curve,
        signature_algorithm=_signature_name(leaf),
        signature_hash=_signature_hash(leaf),
        self_signed=_is_self_signed(leaf),
        chain_length=len(chain),
        chain_has_sha1_signature=any(
            _signature_hash(cert) == "sha1"
            for index, cert in enumerate(chain)
            if index == 0 or not _is_self_signed(cert)
        ),
        chain_trusted=bool(trusted_by),
        trusted_by=trusted_by,
        trust_error=trust_error,
        hostname_matches=hostname_matches,
        ocsp_responders=_ocsp_responders(leaf),
        must_staple=bool(deployment.leaf_certificate_has_must_staple_extension),
        ocsp_stapled=response is not None,
        ocsp_response_status=response_status,
        ocsp_certificate_status=certificate_status,
        ocsp_response_trusted=deployment.ocsp_response_is_trusted,
        ocsp_next_update=next_update,
    )


# --------------------------------------------------------------------------------------------
# Trust and name, from sslyze's path validation


class _Validation:
    """sslyze's validation results for one deployment, and the stores to ask again."""

    def __init__(
        self,
        deployment: CertificateDeploymentAnalysisResult,
        server_name: str,
        now: datetime.datetime,
    ) -> None:
        chain = deployment.received_certificate_chain
        self._leaf = leaf = chain[0]
        self._chain_pem = [cert.public_bytes(Encoding.PEM).decode("ascii") for cert in chain]
        self._subject = _subject_for(server_name)
        # The moment nearest to ``now`` at which the leaf is in date.
        self._moment = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
        self._in_date = self._moment == now
        self._at_scan: list[PathValidationResult] = list(deployment.path_validation_results)
        stores = [result.trust_store for result in self._at_scan]
        system = _system_store()
        if system is not None:
            stores.append(system)
            self._at_scan.append(system.verify_certificate_chain(self._chain_pem, self._subject))
        rank = _store_rank()
        self._stores = sorted(stores, key=lambda store: rank.get(store.name, len(rank)))
        self._at_scan.sort(key=lambda result: rank.get(result.trust_store.name, len(rank)))

    def name_matches(self) -> bool:
        """The verifier's name check for the SNI name, unless a date problem came first."""
        if _subject_alt_names(self._leaf) == ((), ()):
            return False
        answers: Sequence[PathValidationResult] = self._at_scan
        if not self._in_date and self._stores:
            # The verifier checks the leaf's name before it consults a store: one store answers.
            store = self._stores[0]
            answers = [store.verify_certificate_chain(self._chain_pem, self._subject, self._moment)]
        return not any(_NAME_MISMATCH in (answer.validation_error or "") for answer in answers)

    def chain_trust(self, *, name_matched: bool) -> tuple[tuple[str, ...], str | None]:
        """The stores that validate the chain, whatever name was asked for and whenever.

        sslyze's answers are the chain's verdict when the leaf is in date and its name matched;
        otherwise the chain is validated again for a name the leaf carries, at a moment inside
        the leaf's validity, so an expired or misnamed certificate from a trusted CA still
        counts as trusted: the name and the dates are reported by their own findings.
        """
        answers: Sequence[PathValidationResult] = self._at_scan
        if not (self._in_date and name_matched):
            own_name = _name_the_leaf_carries(self._leaf)
            if own_name is None:
                return (), _NO_SUBJECT_ALT_NAME
            answers = [
                store.verify_certificate_chain(self._chain_pem, own_name, self._moment)
                for store in self._stores
            ]
        trusted_by = tuple(a.trust_store.name for a in answers if a.was_validation_successful)
        if trusted_by:
            return trusted_by, None
        return (), next((a.validation_error for a in answers if a.validation_error), None)


def _subject_for(server_name: str) -> x509.DNSName | x509.IPAddress:
    """The subject sslyze validates for: an IP address when the SNI name is one."""
    try:
        return x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        return x509.DNSName(server_name)


def _name_the_leaf_carries(cert: x509.Certificate) -> x509.DNSName | x509.IPAddress | None:
    dns_names, ip_addresses = _subject_alt_names(cert)
    for dns_name in dns_names:
        return x509.DNSName(dns_name.replace("*", "wildcard", 1))
    for ip in ip_addresses:
        return x509.IPAddress(ipaddress.ip_address(ip))
    return None


@functools.cache
def _store_rank() -> dict[str, int]:
    """Supplied CA file first, then the system store, then sslyze's in its own order."""
    from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
        TrustStoresRepository,
    )

    with _store_parsing():
        repository = TrustStoresRepository.get_default()
    bundled = [store.name for store in repository.get_all_stores()]
    return {name: index for index, name in enumerate((SUPPLIED_STORE, SYSTEM_STORE, *bundled))}


def _system_store() -> TrustStore | None:
    path = ssl.get_default_verify_paths().cafile
    if not path:
        return None
    try:
        version = Path(path).stat().st_mtime_ns
    except OSError:
        return None
    return _load_system_store(path, version)


@functools.cache
def _load_system_store(path: str, version: int) -> TrustStore | None:
    """Parsed once per file version, as sslyze parses its bundled stores once."""
    from sslyze import TrustStore

    try:
        with _store_parsing():
            return TrustStore(Path(path), SYSTEM_STORE, "N/A")
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _store_parsing() -> Iterator[None]:
    """Some roots in the stores have a non-positive serial number: ``cryptography`` warns about
    each one while parsing, and the warning is no finding about the scanned server."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        yield


# --------------------------------------------------------------------------------------------
# Certificate fields sslyze does not report


def _subject_alt_names(cert: x509.Certificate) -> tuple[tuple[str, ...], tuple[str, ...]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    dns_names = tuple(san.get_values_for_type(x509.DNSName))
    ip_addresses = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return dns_names, ip_addresses


def _key_facts(cert: x509.Certificate) -> tuple[str, int, str | None]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return "unknown", 0, None
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ecdsa", key.curve.key_size, normalise_group(key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size, None
    return "unknown", 0, None


def _signature_name(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return _SIGNATURE_NAMES.get(oid, oid.dotted_string)


def _signature_hash(cert: x509.Certificate) -> str | None:
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return "unknown"
    return None if algorithm is None else algorithm.name


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _ocsp_responders(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        access = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(
        str(description.access_location.value)
        for description in access
        if description.access_method == AuthorityInformationAccessOID.OCSP
    )
