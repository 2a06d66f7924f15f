"""TLS scanner: one sslyze scan per target, reduced to typed facts, judged against Mozilla 6.0.

``scan_tls`` does all the network I/O and returns a ``TlsScan`` (status envelope plus facts,
recordable with ``to_json``/``from_json``). The ``evaluate_*`` functions are pure: they read a
``TlsScan`` and a ``MozillaPolicy`` and return a ``scanners.result.Evaluation`` whose findings
carry stable keys (``tls.protocol.tls1_0_offered``, ``tls.cert.untrusted`` ...).
"""

from __future__ import annotations

import datetime
import functools
import ipaddress
import json
import math
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    SignatureAlgorithmOID,
)
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from scanners.result import Evaluation, Finding, verdict

ScanStatus = Literal["completed", "unreachable", "error"]

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
_PROTOCOL_KEYS = {
    "SSLv2": "ssl2_0",
    "SSLv3": "ssl3_0",
    "TLSv1": "tls1_0",
    "TLSv1.1": "tls1_1",
    "TLSv1.2": "tls1_2",
    "TLSv1.3": "tls1_3",
}
# sslyze scan command names, also the keys of ``TlsScan.errors``.
PROTOCOL_COMMANDS = {
    "SSLv2": "ssl_2_0_cipher_suites",
    "SSLv3": "ssl_3_0_cipher_suites",
    "TLSv1": "tls_1_0_cipher_suites",
    "TLSv1.1": "tls_1_1_cipher_suites",
    "TLSv1.2": "tls_1_2_cipher_suites",
    "TLSv1.3": "tls_1_3_cipher_suites",
}
GROUPS_COMMAND = "elliptic_curves"
CERTIFICATE_COMMAND = "certificate_info"
VULNERABILITY_COMMANDS = (
    "heartbleed",
    "robot",
    "openssl_ccs_injection",
    "session_renegotiation",
    "tls_compression",
    "tls_fallback_scsv",
)
SCAN_COMMANDS: tuple[str, ...] = (
    CERTIFICATE_COMMAND,
    *PROTOCOL_COMMANDS.values(),
    GROUPS_COMMAND,
    *VULNERABILITY_COMMANDS,
)

# sslyze reports SECG names; Mozilla and OpenSSL configuration files use the ANSI X9.62 ones.
_GROUP_ALIASES = {"secp256r1": "prime256v1", "secp192r1": "prime192v1"}
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
_ROBOT_VULNERABLE = {
    "VULNERABLE_STRONG_ORACLE": "strong oracle: a real attack is feasible",
    "VULNERABLE_WEAK_ORACLE": "weak oracle: an attack would be slow",
}
_ROBOT_UNKNOWN = "UNKNOWN_INCONSISTENT_RESULTS"
_MIN_RSA_BITS = 2048


def protocol_label(protocol: str) -> str:
    """``TLSv1.1`` -> ``TLS 1.1``."""
    return _PROTOCOL_LABELS.get(protocol, protocol)


def normalise_group(name: str) -> str:
    return _GROUP_ALIASES.get(name, name)


# --------------------------------------------------------------------------------------------
# Policy


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


# --------------------------------------------------------------------------------------------
# Facts


@dataclass(frozen=True)
class TlsTarget:
    """Where to scan. ``server_name`` is sent as SNI and checked against the certificate
    (default: ``host``); ``ca_file`` is a PEM bundle trusted in addition to the system store."""

    host: str
    port: int
    server_name: str | None = None
    ca_file: str | None = None

    @property
    def name_to_verify(self) -> str:
        return self.server_name or self.host

    def __str__(self) -> str:
        if self.server_name and self.server_name != self.host:
            return f"{self.server_name}:{self.port} ({self.host})"
        return f"{self.host}:{self.port}"


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


@dataclass(frozen=True)
class VulnerabilityFacts:
    """Results of sslyze's vulnerability probes; ``None`` where the probe could not run."""

    heartbleed: bool | None = None
    robot: str | None = None
    ccs_injection: bool | None = None
    secure_renegotiation: bool | None = None
    client_renegotiation: bool | None = None
    compression: bool | None = None
    fallback_scsv: bool | None = None


@dataclass(frozen=True)
class TlsScan:
    """One TLS scan of one target: a status envelope and the facts the TLS controls need.

    ``cipher_suites`` maps each protocol whose scan ran to its accepted suites (IANA names);
    ``errors`` maps each sslyze scan command that failed to why, so evaluators needing it can
    say they are inconclusive instead of guessing.
    """

    status: ScanStatus
    reason: str
    target: TlsTarget
    scanned_at: datetime.datetime
    duration_seconds: float = 0.0
    protocols: tuple[str, ...] = ()
    cipher_suites: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    supports_ecdh: bool | None = None
    groups: tuple[str, ...] = ()
    certificates: tuple[CertificateFacts, ...] = ()
    vulnerabilities: VulnerabilityFacts = field(default_factory=VulnerabilityFacts)
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(_encode(self), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> TlsScan:
        return _decode_scan(json.loads(text))


def _encode(value: object) -> object:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {name: _encode(getattr(value, name)) for name in value.__dataclass_fields__}
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    return value


def _decode_time(text: str | None) -> datetime.datetime | None:
    return None if text is None else datetime.datetime.fromisoformat(text)


def _decode_certificate(data: dict[str, Any]) -> CertificateFacts:
    values = dict(data)
    for name in ("not_before", "not_after", "ocsp_next_update"):
        values[name] = _decode_time(values.get(name))
    for name in ("dns_names", "ip_addresses", "trusted_by", "ocsp_responders"):
        values[name] = tuple(values.get(name, ()))
    return CertificateFacts(**values)


def _decode_scan(data: dict[str, Any]) -> TlsScan:
    scanned_at = _decode_time(data["scanned_at"])
    if scanned_at is None:
        raise ValueError("a recorded scan needs scanned_at")
    return TlsScan(
        status=data["status"],
        reason=data["reason"],
        target=TlsTarget(**data["target"]),
        scanned_at=scanned_at,
        duration_seconds=float(data.get("duration_seconds", 0.0)),
        protocols=tuple(data.get("protocols", ())),
        cipher_suites={key: tuple(value) for key, value in data.get("cipher_suites", {}).items()},
        supports_ecdh=data.get("supports_ecdh"),
        groups=tuple(data.get("groups", ())),
        certificates=tuple(_decode_certificate(item) for item in data.get("certificates", ())),
        vulnerabilities=VulnerabilityFacts(**data.get("vulnerabilities", {})),
        errors=dict(data.get("errors", {})),
    )


# --------------------------------------------------------------------------------------------
# Scanning


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _not_completed(
    target: TlsTarget, status: ScanStatus, reason: str, started: float, at: datetime.datetime
) -> TlsScan:
    return TlsScan(
        status=status,
        reason=reason,
        target=target,
        scanned_at=at,
        duration_seconds=time.monotonic() - started,
    )


def _resolve(host: str, port: int) -> str:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # IPv4 first, as sslyze does, to work around broken IPv6 routes.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return str(infos[0][4][0])


def _first_contact(
    target: TlsTarget, ip_address: str, timeout: float
) -> tuple[ScanStatus, str] | None:
    """Fail fast, before sslyze's retries, when nothing listens or nothing answers a ClientHello.

    Any answer at all, even a handshake failure, lets the real scan go ahead.
    """
    try:
        connection = socket.create_connection((ip_address, target.port), timeout=timeout)
    except TimeoutError:
        return "unreachable", f"no TCP connection to {target} within {timeout:g} s"
    except OSError as exc:
        return "unreachable", f"TCP connection to {target} failed: {exc.strerror or exc}"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with connection:
        try:
            with context.wrap_socket(connection, server_hostname=target.name_to_verify):
                return None
        except TimeoutError:
            return (
                "unreachable",
                f"{target} accepts TCP but sent no TLS response within {timeout:g} s",
            )
        except (OSError, ValueError):
            return None


_T = TypeVar("_T")


def _run_bounded(
    work: Callable[[], _T], limit: float
) -> tuple[bool, _T | None, BaseException | None]:
    """Run ``work`` in a daemon thread; give up waiting after ``limit`` seconds."""
    outcome: list[_T] = []
    failure: list[Exception] = []

    def runner() -> None:
        try:
            outcome.append(work())
        except Exception as exc:  # a failed probe is data, reported by the caller
            failure.append(exc)

    worker = threading.Thread(target=runner, name="tls-scan", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        return False, None, None
    return True, (outcome[0] if outcome else None), (failure[0] if failure else None)


def scan_tls(target: TlsTarget, *, timeout: float = 10.0) -> TlsScan:
    """Scan ``target`` once with sslyze, running only the commands the TLS controls need.

    ``timeout`` bounds each network operation; the whole scan is bounded too, so an unreachable
    or stalling host comes back as data (status ``unreachable`` or ``error``), never as an
    exception.
    """
    started = time.monotonic()
    scanned_at = _utcnow()
    try:
        ip_address = _resolve(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        return _not_completed(
            target, "unreachable", f"cannot resolve {target.host}: {exc}", started, scanned_at
        )
    except (OverflowError, ValueError) as exc:
        return _not_completed(
            target, "error", f"invalid target {target}: {exc}", started, scanned_at
        )
    unreachable = _first_contact(target, ip_address, timeout)
    if unreachable is not None:
        status, reason = unreachable
        return _not_completed(target, status, reason, started, scanned_at)
    if target.ca_file and not Path(target.ca_file).is_file():
        reason = f"CA file {target.ca_file} does not exist"
        return _not_completed(target, "error", reason, started, scanned_at)

    # Generous: a healthy local scan takes seconds; this only catches a stalling server.
    limit = 60.0 + 12 * timeout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        finished, scan, failure = _run_bounded(
            lambda: _scan_with_sslyze(target, ip_address, timeout, scanned_at, started), limit
        )
    if not finished:
        reason = f"the scan of {target} did not finish within {limit:g} s"
        return _not_completed(target, "error", reason, started, scanned_at)
    if failure is not None or scan is None:
        reason = f"sslyze failed on {target}: {type(failure).__name__}: {failure}"
        return _not_completed(target, "error", reason, started, scanned_at)
    return scan


def _scan_with_sslyze(
    target: TlsTarget,
    ip_address: str,
    timeout: float,
    scanned_at: datetime.datetime,
    started: float,
) -> TlsScan:
    # Imported on first scan: nassl and sslyze's plugins are heavy, and evaluating recorded
    # scans never needs them.
    import sslyze

    server_name = target.name_to_verify
    location = sslyze.ServerNetworkLocation(
        hostname=server_name, port=target.port, ip_address=ip_address
    )
    network = sslyze.ServerNetworkConfiguration(
        tls_server_name_indication=server_name,
        network_timeout=max(1, math.ceil(timeout)),
        network_max_retries=2,
    )
    extra = sslyze.ScanCommandsExtraArguments(
        certificate_info=(
            sslyze.CertificateInfoExtraArgument(custom_ca_file=Path(target.ca_file))
            if target.ca_file
            else None
        )
    )
    request = sslyze.ServerScanRequest(
        server_location=location,
        network_configuration=network,
        scan_commands={sslyze.ScanCommand(name) for name in SCAN_COMMANDS},
        scan_commands_extra_arguments=extra,
    )
    scanner = sslyze.Scanner(concurrent_server_scans_limit=1)
    scanner.queue_scans([request])
    results = list(scanner.get_results())
    if len(results) != 1:
        raise RuntimeError(f"expected one scan result, got {len(results)}")
    result = results[0]

    def not_completed(status: ScanStatus, reason: str) -> TlsScan:
        return _not_completed(target, status, reason, started, scanned_at)

    if result.connectivity_status != sslyze.ServerConnectivityStatusEnum.COMPLETED:
        trace = result.connectivity_error_trace
        error = _exception_text(trace) if trace else "unknown connectivity error"
        exc_name = trace.exc_type.__name__ if trace and trace.exc_type else ""
        if exc_name in {
            "ConnectionToServerTimedOut",
            "ServerRejectedConnection",
            "ConnectionToServerFailed",
        }:
            return not_completed("unreachable", f"{target} is unreachable: {error}")
        return not_completed("error", f"no TLS handshake with {target}: {error}")
    if result.scan_status != sslyze.ServerScanStatusEnum.COMPLETED or result.scan_result is None:
        return not_completed("error", f"sslyze did not complete the scan of {target}")

    attempts = result.scan_result
    errors: dict[str, str] = {}
    outputs: dict[str, Any] = {}
    for name in SCAN_COMMANDS:
        attempt = getattr(attempts, name)
        if attempt.status == sslyze.ScanCommandAttemptStatusEnum.COMPLETED:
            outputs[name] = attempt.result
        else:
            why = attempt.error_reason.value if attempt.error_reason else attempt.status.value
            detail = _exception_text(attempt.error_trace) if attempt.error_trace else ""
            errors[name] = f"{why}: {detail}" if detail else str(why)

    cipher_suites: dict[str, tuple[str, ...]] = {}
    for protocol, command in PROTOCOL_COMMANDS.items():
        if command in outputs:
            accepted = outputs[command].accepted_cipher_suites
            cipher_suites[protocol] = tuple(sorted(a.cipher_suite.name for a in accepted))
    protocols = tuple(p for p in PROTOCOLS if cipher_suites.get(p))

    supports_ecdh: bool | None = None
    groups: tuple[str, ...] = ()
    if GROUPS_COMMAND in outputs:
        curves = outputs[GROUPS_COMMAND]
        supports_ecdh = bool(curves.supports_ecdh_key_exchange)
        groups = tuple(
            sorted(normalise_group(curve.name) for curve in curves.supported_curves or ())
        )

    certificates: tuple[CertificateFacts, ...] = ()
    if CERTIFICATE_COMMAND in outputs:
        now = _utcnow()
        certificates = tuple(
            _certificate_facts(deployment, target, now)
            for deployment in outputs[CERTIFICATE_COMMAND].certificate_deployments
        )

    return TlsScan(
        status="completed",
        reason=_completed_reason(target, errors),
        target=target,
        scanned_at=scanned_at,
        duration_seconds=time.monotonic() - started,
        protocols=protocols,
        cipher_suites=cipher_suites,
        supports_ecdh=supports_ecdh,
        groups=groups,
        certificates=certificates,
        vulnerabilities=_vulnerability_facts(outputs),
        errors=errors,
    )


def _completed_reason(target: TlsTarget, errors: Mapping[str, str]) -> str:
    if not errors:
        return f"scanned {target}"
    return f"scanned {target}; probes that failed: {', '.join(sorted(errors))}"


def _exception_text(trace: Any) -> str:
    text = str(trace).strip()
    name = trace.exc_type.__name__ if trace.exc_type else "error"
    return f"{name}: {text}" if text else name


def _vulnerability_facts(outputs: Mapping[str, Any]) -> VulnerabilityFacts:
    def read(command: str, attribute: str) -> Any:
        result = outputs.get(command)
        return None if result is None else getattr(result, attribute)

    robot = read("robot", "robot_result")
    return VulnerabilityFacts(
        heartbleed=read("heartbleed", "is_vulnerable_to_heartbleed"),
        robot=None if robot is None else str(robot.value),
        ccs_injection=read("openssl_ccs_injection", "is_vulnerable_to_ccs_injection"),
        secure_renegotiation=read("session_renegotiation", "supports_secure_renegotiation"),
        client_renegotiation=read(
            "session_renegotiation", "is_vulnerable_to_client_renegotiation_dos"
        ),
        compression=read("tls_compression", "supports_compression"),
        fallback_scsv=read("tls_fallback_scsv", "supports_fallback_scsv"),
    )


# --------------------------------------------------------------------------------------------
# Certificate facts


def _certificate_facts(
    deployment: Any, target: TlsTarget, now: datetime.datetime
) -> CertificateFacts:
    chain: list[x509.Certificate] = list(deployment.received_certificate_chain)
    leaf = chain[0]
    dns_names, ip_addresses = _subject_alt_names(leaf)
    key_type, key_size, curve = _key_facts(leaf)
    trusted_by, trust_error = _chain_trust(chain, target.ca_file, now)
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
        hostname_matches=hostname_matches(target.name_to_verify, dns_names, ip_addresses),
        ocsp_responders=_ocsp_responders(leaf),
        must_staple=bool(deployment.leaf_certificate_has_must_staple_extension),
        ocsp_stapled=response is not None,
        ocsp_response_status=response_status,
        ocsp_certificate_status=certificate_status,
        ocsp_response_trusted=deployment.ocsp_response_is_trusted,
        ocsp_next_update=next_update,
    )


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


def hostname_matches(name: str, dns_names: Sequence[str], ip_addresses: Sequence[str]) -> bool:
    """RFC 6125 matching against subjectAltName only (no CN fallback, as browsers do)."""
    try:
        wanted_ip = ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return any(ipaddress.ip_address(ip) == wanted_ip for ip in ip_addresses)
    try:
        wanted = name.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        wanted = name.rstrip(".").lower()
    for pattern in dns_names:
        pattern = pattern.rstrip(".").lower()
        if pattern == wanted:
            return True
        # A wildcard stands for exactly one whole left-most label, and never for a public suffix.
        if pattern.startswith("*.") and pattern.count(".") >= 2:
            head, _, rest = wanted.partition(".")
            if head and rest == pattern[2:]:
                return True
    return False


def _store(path: str) -> Store | None:
    try:
        version = Path(path).stat().st_mtime_ns
    except OSError:
        return None
    return _load_store(path, version)


@functools.cache
def _load_store(path: str, version: int) -> Store | None:
    """Parsed once per file version: the bundled stores hold hundreds of certificates."""
    try:
        certificates = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError):
        return None
    return Store(certificates) if certificates else None


def _trust_stores(ca_file: str | None) -> list[tuple[str, Store]]:
    """Supplied CA file first, then the operating system's store, then sslyze's bundled ones."""
    candidates: list[tuple[str, str]] = []
    if ca_file:
        candidates.append(("Supplied CA file", str(Path(ca_file).resolve())))
    system = ssl.get_default_verify_paths().cafile
    if system:
        candidates.append(("System", system))
    from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
        TrustStoresRepository,
    )

    for bundled in TrustStoresRepository.get_default().get_all_stores():
        candidates.append((bundled.name, str(bundled.path)))
    stores = []
    for name, path in candidates:
        store = _store(path)
        if store is not None:
            stores.append((name, store))
    return stores


def _verification_subject(cert: x509.Certificate) -> x509.DNSName | x509.IPAddress | None:
    dns_names, ip_addresses = _subject_alt_names(cert)
    for dns_name in dns_names:
        return x509.DNSName(dns_name.replace("*", "wildcard", 1))
    for ip in ip_addresses:
        return x509.IPAddress(ipaddress.ip_address(ip))
    return None


def _chain_trust(
    chain: list[x509.Certificate], ca_file: str | None, now: datetime.datetime
) -> tuple[tuple[str, ...], str | None]:
    """Which stores build a valid path for the chain, whatever name was asked for and whenever.

    The chain is validated for a name the leaf itself carries, at a moment inside the leaf's
    validity, so an expired or misnamed certificate from a trusted CA still counts as trusted:
    the name and the dates are reported by their own findings.
    """
    leaf = chain[0]
    subject = _verification_subject(leaf)
    if subject is None:
        return (), "the certificate has no subjectAltName to validate"
    moment = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    trusted_by: list[str] = []
    first_error: str | None = None
    for name, store in _trust_stores(ca_file):
        verifier = PolicyBuilder().store(store).time(moment).build_server_verifier(subject)
        try:
            verifier.verify(leaf, chain[1:])
        except VerificationError as exc:
            first_error = first_error or str(exc)
        else:
            trusted_by.append(name)
    return tuple(trusted_by), (None if trusted_by else first_error)


# --------------------------------------------------------------------------------------------
# Evaluation


def _inconclusive(scan: TlsScan, threshold: str) -> Evaluation:
    return Evaluation(
        status="inconclusive",
        reason=scan.reason or f"the TLS scan of {scan.target} did not complete ({scan.status})",
        measured=f"scan {scan.status}",
        threshold=threshold,
    )


def _with_gaps(evaluation: Evaluation, gaps: Iterable[str]) -> Evaluation:
    """A passed evaluation with probes missing becomes inconclusive; a failure stays failed."""
    gaps = list(gaps)
    if not gaps or evaluation.status == "failed":
        return evaluation
    return replace(
        evaluation,
        status="inconclusive",
        reason="could not be fully checked: " + "; ".join(gaps),
    )


def _labels(protocols: Iterable[str]) -> str:
    return ", ".join(protocol_label(p) for p in protocols) or "none"


def evaluate_protocols(scan: TlsScan, policy: MozillaPolicy) -> Evaluation:
    """TLS_PROTOCOLS: only the protocol versions of the profile are offered."""
    threshold = f"{policy.label}: only {_labels(policy.tls_versions)}"
    if not scan.completed:
        return _inconclusive(scan, threshold)
    findings: list[Finding] = []
    for protocol in scan.protocols:
        if protocol not in policy.tls_versions:
            findings.append(
                Finding(
                    key=f"tls.protocol.{_PROTOCOL_KEYS.get(protocol, protocol.lower())}_offered",
                    message=(
                        f"{protocol_label(protocol)} is offered; {policy.label} allows only "
                        f"{_labels(policy.tls_versions)}"
                    ),
                    where=protocol_label(protocol),
                )
            )
    tls13_probe_failed = PROTOCOL_COMMANDS["TLSv1.3"] in scan.errors
    if (
        "TLSv1.3" in policy.tls_versions
        and "TLSv1.3" not in scan.protocols
        and not tls13_probe_failed
    ):
        findings.append(
            Finding(
                key="tls.protocol.tls1_3_not_offered",
                message=f"TLS 1.3 is not offered; {policy.label} recommends it",
                severity="warn",
                where="TLS 1.3",
            )
        )
    evaluation = verdict(
        findings,
        measured=f"offered: {_labels(scan.protocols)}",
        threshold=threshold,
        passed_reason=f"only protocol versions allowed by {policy.label} are offered",
        failed_reason=f"protocol versions outside {policy.label} are offered",
    )
    gaps = [
        f"{protocol_label(p)} probe failed ({scan.errors[c]})"
        for p, c in PROTOCOL_COMMANDS.items()
        if c in scan.errors
    ]
    return _with_gaps(evaluation, gaps)


def evaluate_ciphers(scan: TlsScan, policy: MozillaPolicy) -> Evaluation:
    """TLS_CIPHERS: only the cipher suites and key exchange groups of the profile are accepted."""
    threshold = (
        f"{policy.label}: TLS 1.3 suites {', '.join(policy.tls13_cipher_suites) or 'none'}; "
        f"TLS 1.2 suites {', '.join(policy.tls12_cipher_suites) or 'none'}; "
        f"groups {', '.join(policy.groups)}"
    )
    if not scan.completed:
        return _inconclusive(scan, threshold)
    findings: list[Finding] = []
    total = 0
    for protocol in PROTOCOLS:
        suites = scan.cipher_suites.get(protocol, ())
        total += len(suites)
        if protocol not in policy.tls_versions:
            # A forbidden protocol is TLS_PROTOCOLS' finding; its suites are judged only
            # under the protocols the profile allows, so one weakness fails one control.
            continue
        allowed = policy.allowed_suites(protocol)
        for suite in suites:
            if suite not in allowed:
                findings.append(
                    Finding(
                        key="tls.cipher.not_in_profile",
                        message=f"{suite} is accepted over {protocol_label(protocol)}; "
                        f"not in {policy.label}",
                        where=f"{protocol_label(protocol)} {suite}",
                    )
                )
    for group in scan.groups:
        if group not in policy.groups:
            findings.append(
                Finding(
                    key="tls.group.not_in_profile",
                    message=f"key exchange group {group} is accepted; {policy.label} allows "
                    f"{', '.join(policy.groups)}",
                    where=group,
                )
            )
    per_protocol = ", ".join(
        f"{protocol_label(p)}: {len(scan.cipher_suites[p])}"
        for p in PROTOCOLS
        if scan.cipher_suites.get(p)
    )
    outside = sum(1 for f in findings if f.key == "tls.cipher.not_in_profile")
    measured = (
        f"{total} suites accepted ({per_protocol or 'none'}), {outside} outside the profile; "
        f"groups: {', '.join(scan.groups) or 'none'}"
    )
    evaluation = verdict(
        findings,
        measured=measured,
        threshold=threshold,
        passed_reason=f"only suites and groups of {policy.label} are accepted",
        failed_reason=f"suites or groups outside {policy.label} are accepted",
    )
    gaps = [
        f"{protocol_label(p)} suites probe failed ({scan.errors[c]})"
        for p, c in PROTOCOL_COMMANDS.items()
        if c in scan.errors
    ]
    if GROUPS_COMMAND in scan.errors:
        gaps.append(f"groups probe failed ({scan.errors[GROUPS_COMMAND]})")
    return _with_gaps(evaluation, gaps)


def _days(delta: datetime.timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f} d"


def evaluate_certificate(
    scan: TlsScan,
    policy: MozillaPolicy,
    *,
    now: datetime.datetime,
    warn_days: int = 30,
    max_lifespan_days: int | None = None,
) -> Evaluation:
    """TLS_CERT: trusted chain, matching name, in date (warn ``warn_days`` ahead of expiry),
    lifespan within the profile (or ``max_lifespan_days``), key type/size and signature allowed."""
    max_lifespan = max_lifespan_days or policy.maximum_certificate_lifespan_days
    min_rsa = policy.rsa_key_size or _MIN_RSA_BITS
    threshold = (
        f"{policy.label}: trusted chain, name matches, not expired, warn < {warn_days} d "
        f"before expiry, lifespan <= {max_lifespan} d, key {'/'.join(policy.certificate_types)}"
        f" (RSA >= {min_rsa}, curves {'/'.join(policy.certificate_curves)}), "
        f"signatures {', '.join(policy.certificate_signatures)}"
    )
    if not scan.completed:
        return _inconclusive(scan, threshold)
    if CERTIFICATE_COMMAND in scan.errors:
        return Evaluation(
            status="inconclusive",
            reason=f"certificate probe failed: {scan.errors[CERTIFICATE_COMMAND]}",
            measured="no certificate information",
            threshold=threshold,
        )
    if not scan.certificates:
        return Evaluation(
            status="inconclusive",
            reason="the server presented no certificate",
            measured="no certificate",
            threshold=threshold,
        )
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.UTC)
    findings: list[Finding] = []
    for cert in scan.certificates:
        findings.extend(
            _certificate_findings(
                cert,
                policy,
                name=scan.target.name_to_verify,
                now=now,
                warn_days=warn_days,
                max_lifespan=max_lifespan,
                min_rsa=min_rsa,
            )
        )
    measured = "; ".join(_certificate_summary(cert, now) for cert in scan.certificates)
    return verdict(
        findings,
        measured=measured,
        threshold=threshold,
        passed_reason=f"the certificate meets {policy.label}",
        failed_reason=f"the certificate does not meet {policy.label}",
    )


def _certificate_summary(cert: CertificateFacts, now: datetime.datetime) -> str:
    trust = f"trusted by {', '.join(cert.trusted_by)}" if cert.chain_trusted else "untrusted"
    name = "name matches" if cert.hostname_matches else "name does not match"
    return (
        f"{cert.subject}, {cert.key_description()}, {cert.signature_algorithm}, "
        f"{cert.not_before:%Y-%m-%d} to {cert.not_after:%Y-%m-%d} "
        f"({cert.lifespan_days:.0f} d lifespan, {_days(cert.not_after - now)} left), "
        f"{trust}, {name}"
    )


def _certificate_findings(
    cert: CertificateFacts,
    policy: MozillaPolicy,
    *,
    name: str,
    now: datetime.datetime,
    warn_days: int,
    max_lifespan: int,
    min_rsa: int,
) -> list[Finding]:
    where = cert.describe()
    findings: list[Finding] = []

    def add(key: str, message: str, severity: Literal["fail", "warn"] = "fail") -> None:
        findings.append(Finding(key=key, message=message, severity=severity, where=where))

    if not cert.chain_trusted:
        add(
            "tls.cert.untrusted",
            f"issued by {cert.issuer}, which no trust store accepts"
            + (f" ({cert.trust_error})" if cert.trust_error else ""),
        )
    if cert.self_signed:
        add("tls.cert.self_signed", f"the certificate is self-signed (issuer {cert.issuer})")
    if not cert.hostname_matches:
        names = ", ".join((*cert.dns_names, *cert.ip_addresses)) or "no subjectAltName"
        add("tls.cert.hostname_mismatch", f"subjectAltName lists {names}; expected {name}")
    if now < cert.not_before:
        add("tls.cert.not_yet_valid", f"notBefore is {cert.not_before.isoformat()}")
    remaining = cert.not_after - now
    if remaining.total_seconds() < 0:
        add("tls.cert.expired", f"notAfter was {cert.not_after.isoformat()}")
    elif remaining < datetime.timedelta(days=warn_days):
        add(
            "tls.cert.expires_soon",
            f"notAfter is {cert.not_after.isoformat()}, in {_days(remaining)} (< {warn_days} d)",
            severity="warn",
        )
    if cert.lifespan_days > max_lifespan:
        add(
            "tls.cert.lifespan_too_long",
            f"validity period is {cert.lifespan_days:.0f} days (notBefore to notAfter); "
            f"at most {max_lifespan} allowed",
        )
    if cert.key_type not in policy.certificate_types:
        add(
            "tls.cert.key_type_not_in_profile",
            f"public key is {cert.key_description()}; {policy.label} allows "
            f"{', '.join(policy.certificate_types)}",
        )
    if cert.key_type == "rsa" and cert.key_size < min_rsa:
        add("tls.cert.weak_key", f"RSA key of {cert.key_size} bits; at least {min_rsa} required")
    if cert.key_type == "ecdsa" and cert.curve not in policy.certificate_curves:
        add(
            "tls.cert.curve_not_in_profile",
            f"ECDSA key on {cert.curve}; {policy.label} allows "
            f"{', '.join(policy.certificate_curves)}",
        )
    if cert.signature_hash == "sha1" or cert.chain_has_sha1_signature:
        signed = "the certificate" if cert.signature_hash == "sha1" else "a chain certificate"
        add(
            "tls.cert.sha1_signature", f"{signed} is signed with SHA-1 ({cert.signature_algorithm})"
        )
    elif cert.signature_algorithm not in policy.certificate_signatures:
        add(
            "tls.cert.signature_not_in_profile",
            f"signature algorithm {cert.signature_algorithm}; {policy.label} allows "
            f"{', '.join(policy.certificate_signatures)}",
        )
    return findings


def evaluate_vulnerabilities(scan: TlsScan) -> Evaluation:
    """TLS_VULNS: none of the known TLS vulnerabilities, and TLS_FALLBACK_SCSV supported."""
    threshold = (
        "not vulnerable to Heartbleed, ROBOT, CCS injection, insecure renegotiation, "
        "TLS compression; TLS_FALLBACK_SCSV supported; no client-initiated renegotiation (warn)"
    )
    if not scan.completed:
        return _inconclusive(scan, threshold)
    facts = scan.vulnerabilities
    findings: list[Finding] = []
    if facts.heartbleed:
        findings.append(
            Finding(
                "tls.vuln.heartbleed",
                "the server leaks memory through heartbeats",
                "fail",
                "Heartbleed",
            )
        )
    if facts.robot in _ROBOT_VULNERABLE:
        findings.append(
            Finding(
                "tls.vuln.robot",
                f"RSA key exchange is a Bleichenbacher oracle ({_ROBOT_VULNERABLE[facts.robot]})",
                "fail",
                "ROBOT",
            )
        )
    if facts.ccs_injection:
        findings.append(
            Finding(
                "tls.vuln.ccs_injection",
                "the server accepts an early ChangeCipherSpec (CVE-2014-0224)",
                "fail",
                "OpenSSL CCS injection",
            )
        )
    if facts.secure_renegotiation is False:
        findings.append(
            Finding(
                "tls.vuln.insecure_renegotiation",
                "the server does not support secure renegotiation (RFC 5746)",
                "fail",
                "renegotiation",
            )
        )
    if facts.client_renegotiation:
        findings.append(
            Finding(
                "tls.vuln.client_renegotiation",
                "the server accepts client-initiated renegotiation (denial-of-service lever)",
                "warn",
                "renegotiation",
            )
        )
    if facts.compression:
        findings.append(
            Finding(
                "tls.vuln.compression",
                "the server accepts TLS compression (CRIME)",
                "fail",
                "compression",
            )
        )
    if facts.fallback_scsv is False:
        findings.append(
            Finding(
                "tls.vuln.no_fallback_scsv",
                "the server ignores TLS_FALLBACK_SCSV, allowing protocol downgrades",
                "fail",
                "TLS_FALLBACK_SCSV",
            )
        )
    observed = {
        "Heartbleed": facts.heartbleed,
        "ROBOT": facts.robot,
        "CCS injection": facts.ccs_injection,
        "secure renegotiation": facts.secure_renegotiation,
        "client renegotiation": facts.client_renegotiation,
        "compression": facts.compression,
        "fallback SCSV": facts.fallback_scsv,
    }
    measured = ", ".join(f"{label}: {_yes_no(value)}" for label, value in observed.items())
    evaluation = verdict(
        findings,
        measured=measured,
        threshold=threshold,
        passed_reason="no known TLS vulnerability found",
        failed_reason="the server is vulnerable to known TLS attacks",
    )
    gaps = [
        f"{command} probe failed ({scan.errors[command]})"
        for command in VULNERABILITY_COMMANDS
        if command in scan.errors
    ]
    if facts.robot == _ROBOT_UNKNOWN:
        gaps.append("ROBOT results were inconsistent")
    return _with_gaps(evaluation, gaps)


def _yes_no(value: object) -> str:
    if value is None:
        return "not measured"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value).lower()


def evaluate_ocsp(scan: TlsScan) -> Evaluation:
    """TLS_OCSP: a valid OCSP response is stapled when the certificate names an OCSP responder."""
    threshold = (
        "a good, trusted, current OCSP response stapled when the certificate names a responder"
    )
    if not scan.completed:
        return _inconclusive(scan, threshold)
    if CERTIFICATE_COMMAND in scan.errors:
        return Evaluation(
            status="inconclusive",
            reason=f"certificate probe failed: {scan.errors[CERTIFICATE_COMMAND]}",
            measured="no certificate information",
            threshold=threshold,
        )
    with_responder = [cert for cert in scan.certificates if cert.ocsp_responders]
    if not with_responder:
        return Evaluation(
            status="skipped",
            reason="the certificate names no OCSP responder, so there is nothing to staple",
            measured="no OCSP responder URL in the certificate",
            threshold=threshold,
        )
    findings: list[Finding] = []
    for cert in with_responder:
        where = cert.describe()
        if not cert.ocsp_stapled:
            findings.append(
                Finding(
                    "tls.ocsp.not_stapled",
                    f"no OCSP response stapled although the certificate names "
                    f"{', '.join(cert.ocsp_responders)}",
                    where=where,
                )
            )
            continue
        if cert.ocsp_response_status != "successful":
            findings.append(
                Finding(
                    "tls.ocsp.response_unsuccessful",
                    f"stapled OCSP response status is {cert.ocsp_response_status}",
                    where=where,
                )
            )
            continue
        if cert.ocsp_certificate_status != "good":
            status = "revoked" if cert.ocsp_certificate_status == "revoked" else "unknown"
            findings.append(
                Finding(
                    f"tls.ocsp.certificate_{status}",
                    f"stapled OCSP response says the certificate is {cert.ocsp_certificate_status}",
                    where=where,
                )
            )
        if cert.ocsp_response_trusted is False:
            findings.append(
                Finding(
                    "tls.ocsp.response_untrusted",
                    "the stapled OCSP response is not signed by a trusted responder",
                    where=where,
                )
            )
        if cert.ocsp_next_update is not None and cert.ocsp_next_update < scan.scanned_at:
            findings.append(
                Finding(
                    "tls.ocsp.response_stale",
                    f"the stapled OCSP response expired at {cert.ocsp_next_update.isoformat()}",
                    where=where,
                )
            )
    measured = "; ".join(
        f"{cert.subject}: "
        + (
            f"stapled ({cert.ocsp_response_status}, {cert.ocsp_certificate_status})"
            if cert.ocsp_stapled
            else "not stapled"
        )
        for cert in with_responder
    )
    return verdict(
        findings,
        measured=measured,
        threshold=threshold,
        passed_reason="a valid OCSP response is stapled",
        failed_reason="no valid OCSP response is stapled",
    )
