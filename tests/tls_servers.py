"""Local TLS servers with deliberate configurations, for testing the TLS scanner.

Each server listens on its own free port on 127.0.0.1 and presents a certificate issued by a
throw-away test CA (made with ``cryptography``; trustme leaves are rejected by sslyze because of
their critical SAN). ``LocalPki.ca_file`` is the PEM file a scan must trust.

    with LocalPki.create(tmp_dir) as pki, tls_server("intermediate", pki) as server:
        scan_tls(server.target)

Run ``python -m tests.tls_servers record tests/data/tls`` to re-record the scan fixtures.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import ipaddress
import selectors
import socket
import ssl
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from reference_portal.tls import key_usage
from scanners.tls_scan import TlsTarget

HOST = "127.0.0.1"
SERVER_NAME = "portal.test"
KeyKind = Literal["ecdsa-p256", "rsa-2048", "rsa-1024"]

_MODERN_TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


@dataclass(frozen=True)
class LeafSpec:
    """The certificate a server presents."""

    names: tuple[str, ...] = (SERVER_NAME,)
    addresses: tuple[str, ...] = ()
    key: KeyKind = "ecdsa-p256"
    valid_from_days: float = -1.0
    valid_until_days: float = 89.0
    sha1: bool = False
    self_signed: bool = False
    ocsp_url: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """One deliberate TLS configuration, in the terms of Python's ``ssl`` module."""

    name: str
    description: str
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
    maximum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_3
    ciphers: str | None = _MODERN_TLS12_CIPHERS
    group: str | None = "prime256v1"
    leaf: LeafSpec = field(default_factory=LeafSpec)


CONFIGS: dict[str, ServerConfig] = {
    config.name: config
    for config in (
        ServerConfig(
            "modern",
            "TLS 1.3 only, X25519, ECDSA P-256 certificate",
            minimum=ssl.TLSVersion.TLSv1_3,
            ciphers=None,
            group="X25519",
        ),
        ServerConfig(
            "intermediate",
            "TLS 1.2 + 1.3, ECDHE+AESGCM:ECDHE+CHACHA20, prime256v1, ECDSA P-256 certificate",
        ),
        ServerConfig(
            "legacy",
            "TLS 1.0 to 1.3, ALL:@SECLEVEL=0, OpenSSL default groups, RSA 2048 certificate",
            minimum=ssl.TLSVersion.TLSv1,
            ciphers="ALL:@SECLEVEL=0",
            group=None,
            leaf=LeafSpec(key="rsa-2048"),
        ),
        ServerConfig(
            "weak_suites",
            "TLS 1.2 only, AEAD plus CBC and non-forward-secret suites, RSA 2048 certificate",
            maximum=ssl.TLSVersion.TLSv1_2,
            ciphers="ECDHE+AESGCM:ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA256",
            leaf=LeafSpec(key="rsa-2048"),
        ),
        ServerConfig(
            "self_signed",
            "intermediate settings, self-signed ECDSA certificate",
            leaf=LeafSpec(self_signed=True),
        ),
        ServerConfig(
            "wrong_host",
            "intermediate settings, certificate for other.test",
            leaf=LeafSpec(names=("other.test",)),
        ),
        ServerConfig(
            "expiring_soon",
            "intermediate settings, certificate expiring in 10 days",
            leaf=LeafSpec(valid_from_days=-80.0, valid_until_days=10.0),
        ),
        ServerConfig(
            "expired",
            "intermediate settings, certificate expired 10 days ago",
            leaf=LeafSpec(valid_from_days=-100.0, valid_until_days=-10.0),
        ),
        ServerConfig(
            "long_lifespan",
            "intermediate settings, certificate valid for 500 days",
            leaf=LeafSpec(valid_from_days=-1.0, valid_until_days=499.0),
        ),
        ServerConfig(
            "rsa_1024",
            "intermediate suites at SECLEVEL=0, RSA 1024 certificate",
            ciphers=f"{_MODERN_TLS12_CIPHERS}:@SECLEVEL=0",
            leaf=LeafSpec(key="rsa-1024"),
        ),
        ServerConfig(
            "sha1_signature",
            "intermediate suites at SECLEVEL=0, certificate signed with ecdsa-with-SHA1",
            ciphers=f"{_MODERN_TLS12_CIPHERS}:@SECLEVEL=0",
            leaf=LeafSpec(sha1=True),
        ),
        ServerConfig(
            "ocsp_unstapled",
            "intermediate settings, certificate naming an OCSP responder, no stapling",
            leaf=LeafSpec(ocsp_url="http://127.0.0.1:9/ocsp"),
        ),
    )
}


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _new_key(kind: KeyKind) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.split("-")[1]))


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class LocalPki:
    """A test CA in a directory, issuing one leaf certificate per server configuration."""

    directory: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca_cert: x509.Certificate

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    @contextmanager
    def create(cls, directory: Path | None = None) -> Iterator[LocalPki]:
        """A new CA in ``directory`` (or in a temporary directory removed afterwards)."""
        with ExitStack() as stack:
            if directory is None:
                directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            yield cls._new(directory)

    @classmethod
    def _new(cls, directory: Path) -> LocalPki:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "portal-audit tests"),
                x509.NameAttribute(NameOID.COMMON_NAME, "portal-audit Test CA"),
            ]
        )
        now = _utcnow()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=200))
            .not_valid_after(now + datetime.timedelta(days=730))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                key_usage(digital_signature=True, signs_certificates=True),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        directory.mkdir(parents=True, exist_ok=True)
        pki = cls(directory=directory, ca_key=key, ca_cert=cert)
        pki.ca_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return pki

    def issue(self, label: str, spec: LeafSpec) -> tuple[Path, Path]:
        """Write a leaf certificate and its key for ``spec``; return (certificate, key) paths."""
        key = _new_key(spec.key)
        now = _utcnow()
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spec.names[0])])
        issuer = subject if spec.self_signed else self.ca_cert.subject
        signing_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
            key if spec.self_signed else self.ca_key
        )
        is_rsa = isinstance(key, rsa.RSAPrivateKey)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=spec.valid_from_days))
            .not_valid_after(now + datetime.timedelta(days=spec.valid_until_days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                key_usage(digital_signature=True, key_encipherment=is_rsa),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(name) for name in spec.names]
                    + [x509.IPAddress(ipaddress.ip_address(a)) for a in spec.addresses]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
                False,
            )
        )
        if spec.ocsp_url:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(spec.ocsp_url),
                        )
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(signing_key, hashes.SHA256())
        if spec.sha1:
            cert = _resign_with_sha1(cert, signing_key)
        cert_path = self.directory / f"{label}.crt"
        key_path = self.directory / f"{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_key_pem(key))
        return cert_path, key_path


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + content


def _der_content(element: bytes) -> bytes:
    first_length_byte = element[1]
    if first_length_byte < 0x80:
        return element[2:]
    return element[2 + (first_length_byte & 0x7F) :]


_ECDSA_SHA256_ALGORITHM = _der(0x30, _der(0x06, bytes.fromhex("2a8648ce3d040302")))
_ECDSA_SHA1_ALGORITHM = _der(0x30, _der(0x06, bytes.fromhex("2a8648ce3d0401")))


def _resign_with_sha1(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
) -> x509.Certificate:
    """The same certificate signed with ecdsa-with-SHA1.

    ``cryptography`` refuses to issue SHA-1 certificates, so the TBS part is re-encoded with the
    SHA-1 algorithm identifier and signed directly.
    """
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("SHA-1 re-signing is implemented for ECDSA issuers only")
    tbs_content = _der_content(cert.tbs_certificate_bytes)
    if _ECDSA_SHA256_ALGORITHM not in tbs_content:
        raise ValueError("expected an ecdsa-with-SHA256 certificate")
    tbs = _der(0x30, tbs_content.replace(_ECDSA_SHA256_ALGORITHM, _ECDSA_SHA1_ALGORITHM, 1))
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA1()))
    return x509.load_der_x509_certificate(
        _der(0x30, tbs + _ECDSA_SHA1_ALGORITHM + _der(0x03, b"\x00" + signature))
    )


def _server_context(config: ServerConfig, cert_path: Path, key_path: Path) -> ssl.SSLContext:
    # Python flags TLS 1.0/1.1 and SECLEVEL=0 as deprecated: that is the point of these servers.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = config.minimum
        context.maximum_version = config.maximum
        if config.ciphers is not None:
            context.set_ciphers(config.ciphers)
        if config.group is not None:
            context.set_ecdh_curve(config.group)
        context.load_cert_chain(cert_path, key_path)
    return context


# With the security headers a portal must send, so they are there to judge whatever the
# certificate.
_HTTP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Strict-Transport-Security: max-age=63072000\r\n"
    b"Content-Security-Policy: default-src 'none'; object-src 'none'; base-uri 'none'; "
    b"frame-ancestors 'none'\r\n"
    b"X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
    b"Connection: close\r\n\r\nok\n"
)


class _TlsServer:
    """Accepts on a listening socket; each connection is handled in its own thread."""

    def __init__(self, context: ssl.SSLContext, *, connection_timeout: float = 10.0) -> None:
        self._context = context
        self._connection_timeout = connection_timeout
        self._listener = socket.create_server((HOST, 0), backlog=64)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._open_handles: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def start(self) -> None:
        self._acceptor.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake_writer.send(b"x")
        self._acceptor.join(timeout=5)
        with self._lock:
            connections = list(self._open_handles)
            workers = list(self._workers)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join(timeout=5)
        self._listener.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_reader:
                        return
                    try:
                        connection, _ = self._listener.accept()
                    except OSError:
                        continue
                    # wrap_socket() detaches ``connection``; a duplicate descriptor lets stop()
                    # shut down a worker blocked inside the TLS socket.
                    handle = connection.dup()
                    worker = threading.Thread(
                        target=self._handle, args=(connection, handle), daemon=True
                    )
                    with self._lock:
                        self._open_handles.add(handle)
                        self._workers.add(worker)
                    worker.start()

    def _handle(self, connection: socket.socket, handle: socket.socket) -> None:
        try:
            connection.settimeout(self._connection_timeout)
            with self._context.wrap_socket(connection, server_side=True) as tls:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    request += chunk
                tls.sendall(_HTTP_RESPONSE)
        except (OSError, ValueError):
            # Scanners send broken handshakes and drop connections on purpose.
            pass
        finally:
            connection.close()
            with self._lock:
                self._open_handles.discard(handle)
                self._workers.discard(threading.current_thread())
            handle.close()


@dataclass(frozen=True)
class RunningServer:
    """A started server: where it listens and which CA file makes its certificate trusted."""

    config: ServerConfig
    host: str
    port: int
    server_name: str
    ca_file: Path
    cert_file: Path

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def target(self) -> TlsTarget:
        return TlsTarget(
            host=self.host, port=self.port, server_name=self.server_name, ca_file=str(self.ca_file)
        )


@contextmanager
def tls_server(name: str, pki: LocalPki) -> Iterator[RunningServer]:
    """Start the server configuration ``name`` on a free port; stop it on exit."""
    config = CONFIGS[name]
    cert_path, key_path = pki.issue(name, config.leaf)
    server = _TlsServer(_server_context(config, cert_path, key_path))
    server.start()
    try:
        yield RunningServer(
            config=config,
            host=HOST,
            port=server.port,
            server_name=SERVER_NAME,
            ca_file=pki.ca_file,
            cert_file=cert_path,
        )
    finally:
        server.stop()


@contextmanager
def tls_servers(names: Sequence[str], pki: LocalPki) -> Iterator[dict[str, RunningServer]]:
    """Start several configurations at once, each on its own port."""
    with ExitStack() as stack:
        yield {name: stack.enter_context(tls_server(name, pki)) for name in names}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (for unreachable-host tests)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# The configurations kept as JSON fixtures under tests/data/tls/.
RECORDED = ("intermediate", "modern", "legacy", "weak_suites", "self_signed", "wrong_host")


def _record(directory: Path, names: Sequence[str]) -> None:
    from scanners.tls_scan import scan_tls

    directory.mkdir(parents=True, exist_ok=True)
    with LocalPki.create() as pki, tls_servers(names, pki) as servers:
        for name, server in servers.items():
            scan = scan_tls(server.target)
            # Ports and temporary paths differ on every run; fixtures keep stable placeholders.
            scan = dataclasses.replace(
                scan,
                reason=scan.reason.replace(f":{server.port}", ":443"),
                target=dataclasses.replace(scan.target, port=443, ca_file="ca.pem"),
            )
            (directory / f"{name}.json").write_text(scan.to_json(indent=2) + "\n")
            sys.stdout.write(f"{name}: {scan.status} ({scan.duration_seconds:.2f} s)\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="scan local servers and save the scans as JSON")
    record.add_argument("directory", type=Path)
    record.add_argument("names", nargs="*", default=list(RECORDED))
    serve = commands.add_parser("serve", help="run one configuration until interrupted")
    serve.add_argument("name", choices=sorted(CONFIGS))
    args = parser.parse_args(argv)
    if args.command == "record":
        _record(args.directory, args.names)
        return 0
    with LocalPki.create() as pki, tls_server(args.name, pki) as server:
        sys.stdout.write(
            f"{server.name} on {server.host}:{server.port} (SNI {server.server_name}), "
            f"CA file {server.ca_file}\n"
        )
        sys.stdout.flush()
        with suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
