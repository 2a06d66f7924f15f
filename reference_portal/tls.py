"""A throw-away local CA and server certificate, and a Mozilla-intermediate TLS server context."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

LEAF_LIFETIME = dt.timedelta(days=90)
CA_LIFETIME = dt.timedelta(days=365)
# Tolerate small clock differences between the portal and the auditing machine.
BACKDATE = dt.timedelta(minutes=5)

TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
TLS_CURVE = "prime256v1"


@dataclass(frozen=True)
class TlsMaterial:
    ca_file: Path
    chain_file: Path
    key_file: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "portal-audit reference portal"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _subject_alt_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            names.append(x509.DNSName(host))
    else:
        if not address.is_unspecified and str(address) != "127.0.0.1":
            names.append(x509.IPAddress(address))
    return names


def key_usage(
    *, digital_signature: bool, signs_certificates: bool = False, key_encipherment: bool = False
) -> x509.KeyUsage:
    """A certificate's key usage: a CA's key signs certificates and CRLs; a server's signs its
    handshakes (digital signature) and, for RSA key exchange, enciphers keys."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def generate_tls_material(
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    leaf_lifetime: dt.timedelta = LEAF_LIFETIME,
    ocsp_url: str | None = None,
) -> TlsMaterial:
    """Create a fresh CA and leaf; only ca.pem is meant for clients, the CA key never hits disk."""
    now = dt.datetime.now(dt.UTC)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("portal-audit reference portal local CA")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            key_usage(digital_signature=False, signs_certificates=True),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_builder = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now - BACKDATE + leaf_lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            key_usage(digital_signature=True),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        # Not critical: sslyze rejects a critical SAN on a certificate with a subject.
        .add_extension(x509.SubjectAlternativeName(_subject_alt_names(host)), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
    )
    if ocsp_url:
        leaf_builder = leaf_builder.add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url)
                    )
                ]
            ),
            critical=False,
        )
    leaf_cert = leaf_builder.sign(ca_key, hashes.SHA256())

    tls_dir = state_dir / "tls"
    tls_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    ca_file = state_dir / "ca.pem"
    chain_file = tls_dir / "server-chain.pem"
    key_file = tls_dir / "server-key.pem"
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    ca_file.write_bytes(ca_pem)
    chain_file.write_bytes(leaf_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    _write_private(
        key_file,
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return TlsMaterial(ca_file=ca_file.resolve(), chain_file=chain_file, key_file=key_file)


def server_context(
    material: TlsMaterial, *, legacy_protocols: bool = False, extra_ciphers: str = ""
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    ciphers = TLS_CIPHERS + (f":{extra_ciphers}" if extra_ciphers else "")
    if legacy_protocols:
        # OpenSSL 3 allows TLS 1.0/1.1 only at security level 0, with a suite they can use.
        context.minimum_version = ssl.TLSVersion.TLSv1
        ciphers += ":ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"
    # TLS 1.3 suites are OpenSSL's defaults, which match Mozilla intermediate already.
    context.set_ciphers(ciphers)
    context.set_ecdh_curve(TLS_CURVE)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(certfile=material.chain_file, keyfile=material.key_file)
    return context
