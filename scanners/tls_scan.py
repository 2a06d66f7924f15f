"""The TLS scan: one sslyze scan per target, reduced to a typed, recordable ``TlsScan``.

``scan_tls`` does all the network I/O. It fails fast when nothing listens or nothing answers a
ClientHello, runs only the sslyze scan commands the TLS controls need, and bounds the whole
scan in time, so an unreachable or stalling host comes back as data (status ``unreachable`` or
``error``), never as an exception. Each scan command that failed is kept in ``TlsScan.errors``
under its sslyze name. ``TlsScan.to_json``/``from_json`` record a scan, so the evaluators in
``scanners.tls`` are tested on recorded data.
"""

from __future__ import annotations

import datetime
import json
import math
import socket
import ssl
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from cryptography.utils import CryptographyDeprecationWarning

from scanners.tls_certificate import CertificateFacts, certificate_facts
from scanners.tls_policy import PROTOCOLS, normalise_group

ScanStatus = Literal["completed", "unreachable", "error"]

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


# --------------------------------------------------------------------------------------------
# What a scan found


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


# --------------------------------------------------------------------------------------------
# Recorded scans (JSON)


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


def scan_many(
    targets: Sequence[TlsTarget], *, timeout: float = 10.0, concurrency: int = 10
) -> list[TlsScan]:
    """Scan several targets with one sslyze ``Scanner``: up to ``concurrency`` servers at once,
    each with its scan commands run concurrently, as ``scan_tls`` scans one. The scans come back
    in the order of ``targets``; a target that cannot be resolved, reached or scanned comes back
    as data (``unreachable`` or ``error``), and the whole scan is bounded in time.
    """
    started = time.monotonic()
    scanned_at = _utcnow()
    scans: dict[int, TlsScan] = {}
    queued: dict[tuple[str, int, str], list[int]] = {}
    requests: list[Any] = []
    for index, target in enumerate(targets):
        try:
            ip_address = _resolve(target.host, target.port)
        except (OSError, UnicodeError) as exc:
            reason = f"cannot resolve {target.host}: {exc}"
            scans[index] = _not_completed(target, "unreachable", reason, started, scanned_at)
            continue
        except (OverflowError, ValueError) as exc:
            reason = f"invalid target {target}: {exc}"
            scans[index] = _not_completed(target, "error", reason, started, scanned_at)
            continue
        if target.ca_file and not Path(target.ca_file).is_file():
            reason = f"CA file {target.ca_file} does not exist"
            scans[index] = _not_completed(target, "error", reason, started, scanned_at)
            continue
        key = (target.name_to_verify, target.port, ip_address)
        if key not in queued:
            requests.append(_request(target, ip_address, timeout))
        queued.setdefault(key, []).append(index)
    if requests:
        rounds = math.ceil(len(requests) / max(1, concurrency))
        limit = (60.0 + 12 * timeout) * rounds
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            finished, results, failure = _run_bounded(
                lambda: _run_scanner(requests, concurrency), limit
            )
        for key, indexes in queued.items():
            result = (results or {}).get(key)
            for index in indexes:
                target = targets[index]
                if result is not None:
                    scans[index] = _scan_of(target, result, scanned_at, started)
                    continue
                if not finished:
                    reason = f"the scan of {target} did not finish within {limit:g} s"
                elif failure is not None:
                    reason = f"sslyze failed on {target}: {type(failure).__name__}: {failure}"
                else:
                    reason = f"sslyze returned no result for {target}"
                scans[index] = _not_completed(target, "error", reason, started, scanned_at)
    return [scans[index] for index in range(len(targets))]


def load_sslyze() -> None:
    """Import sslyze and its plugins now rather than at the first scan (a second or so of
    imports on a slow machine; a program that scans can take them with its own start-up)."""
    import sslyze  # noqa: F401


def _run_scanner(requests: list[Any], concurrency: int) -> dict[tuple[str, int, str], Any]:
    import sslyze

    scanner = sslyze.Scanner(concurrent_server_scans_limit=max(1, concurrency))
    scanner.queue_scans(requests)
    return {
        (
            result.server_location.hostname,
            result.server_location.port,
            str(result.server_location.ip_address),
        ): result
        for result in scanner.get_results()
    }


def _request(target: TlsTarget, ip_address: str, timeout: float) -> Any:
    """sslyze's request for the scan commands the TLS controls need."""
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
    return sslyze.ServerScanRequest(
        server_location=location,
        network_configuration=network,
        scan_commands={sslyze.ScanCommand(name) for name in SCAN_COMMANDS},
        scan_commands_extra_arguments=extra,
    )


def _scan_with_sslyze(
    target: TlsTarget,
    ip_address: str,
    timeout: float,
    scanned_at: datetime.datetime,
    started: float,
) -> TlsScan:
    import sslyze

    scanner = sslyze.Scanner(concurrent_server_scans_limit=1)
    scanner.queue_scans([_request(target, ip_address, timeout)])
    results = list(scanner.get_results())
    if len(results) != 1:
        raise RuntimeError(f"expected one scan result, got {len(results)}")
    return _scan_of(target, results[0], scanned_at, started)


def _scan_of(
    target: TlsTarget, result: Any, scanned_at: datetime.datetime, started: float
) -> TlsScan:
    """One server's sslyze result as a ``TlsScan``."""
    import sslyze

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
            certificate_facts(deployment, server_name=target.name_to_verify, now=now)
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
