"""Tests of the TLS scanner: evaluators on recorded scans, and live scans of local servers."""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portal.catalogue import load_catalogue
from scanners.result import Evaluation
from scanners.tls import (
    evaluate_certificate,
    evaluate_ciphers,
    evaluate_ocsp,
    evaluate_protocols,
    evaluate_vulnerabilities,
)
from scanners.tls_certificate import SUPPLIED_STORE, CertificateFacts, certificate_facts
from scanners.tls_policy import POLICY_FILE, MozillaPolicy, load_policy
from scanners.tls_scan import TlsScan, TlsTarget, VulnerabilityFacts, scan_tls
from tests.tls_servers import (
    CONFIGS,
    LeafSpec,
    LocalPki,
    RunningServer,
    free_port,
    tls_servers,
)

DATA = Path(__file__).parent / "data" / "tls"
# TLS_CERT's catalogue defaults, as the audit and portal-audit scan pass them.
_CERT_THRESHOLD = load_catalogue().get("TLS_CERT").threshold
CERT = {
    "warn_days": _CERT_THRESHOLD["expiry_warning_days"],
    "max_lifespan_days": _CERT_THRESHOLD["max_lifespan_days"],
}

# What each local server configuration must produce under Mozilla 6.0 intermediate: every
# finding key of every evaluator, and nothing more.
EXPECTED_KEYS: dict[str, set[str]] = {
    "modern": set(),
    "intermediate": set(),
    "legacy": {
        "tls.protocol.tls1_0_offered",
        "tls.protocol.tls1_1_offered",
        "tls.cipher.not_in_profile",
        "tls.group.not_in_profile",
    },
    "weak_suites": {"tls.protocol.tls1_3_not_offered", "tls.cipher.not_in_profile"},
    "self_signed": {"tls.cert.untrusted", "tls.cert.self_signed"},
    "wrong_host": {"tls.cert.hostname_mismatch"},
    "expiring_soon": {"tls.cert.expires_soon"},
    "expired": {"tls.cert.expired"},
    "long_lifespan": {"tls.cert.lifespan_too_long"},
    "rsa_1024": {"tls.cert.weak_key"},
    # webpki validation (cryptography, as in sslyze) refuses SHA-1 signatures outright.
    "sha1_signature": {"tls.cert.sha1_signature", "tls.cert.untrusted"},
    "ocsp_unstapled": {"tls.ocsp.not_stapled"},
}


def all_evaluations(
    scan: TlsScan, policy: MozillaPolicy, now: datetime.datetime | None = None
) -> list[Evaluation]:
    return [
        evaluate_protocols(scan, policy),
        evaluate_ciphers(scan, policy),
        evaluate_certificate(scan, policy, now=now or scan.scanned_at, **CERT),
        evaluate_vulnerabilities(scan),
        evaluate_ocsp(scan),
    ]


def finding_keys(evaluations: list[Evaluation]) -> set[str]:
    return {finding.key for evaluation in evaluations for finding in evaluation.findings}


def recorded(name: str) -> TlsScan:
    return TlsScan.from_json((DATA / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def intermediate() -> MozillaPolicy:
    return load_policy("intermediate")


@pytest.fixture(scope="module")
def modern() -> MozillaPolicy:
    return load_policy("modern")


# --------------------------------------------------------------------------------------------
# Policy data


def test_policy_file_is_versioned_mozilla_6_0() -> None:
    policy = load_policy()
    assert policy.version == "6.0"
    assert policy.source == "https://ssl-config.mozilla.org/guidelines/6.0.json"
    assert policy.label == "Mozilla 6.0 intermediate"
    assert POLICY_FILE.name == "mozilla-server-side-tls-6.0.json"


def test_intermediate_policy_values(intermediate: MozillaPolicy) -> None:
    assert intermediate.tls_versions == ("TLSv1.2", "TLSv1.3")
    assert "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" in intermediate.tls12_cipher_suites
    assert len(intermediate.tls12_cipher_suites) == len(intermediate.tls12_cipher_suites_openssl)
    assert not any("DHE_RSA" in s and "ECDHE" not in s for s in intermediate.tls12_cipher_suites)
    assert intermediate.groups == ("X25519MLKEM768", "X25519", "prime256v1", "secp384r1")
    assert intermediate.rsa_key_size == 2048
    assert intermediate.maximum_certificate_lifespan_days == 366
    assert intermediate.hsts_min_age_seconds == 63072000
    assert intermediate.ocsp_staple is True


def test_modern_policy_values(modern: MozillaPolicy) -> None:
    assert modern.tls_versions == ("TLSv1.3",)
    assert modern.tls12_cipher_suites == ()
    assert modern.certificate_types == ("ecdsa",)
    assert modern.maximum_certificate_lifespan_days == 90


def test_unknown_policy_level_is_a_usage_error() -> None:
    with pytest.raises(ValueError, match="unknown Mozilla TLS level 'old'"):
        load_policy("old")


# --------------------------------------------------------------------------------------------
# Evaluators on recorded scans


@pytest.mark.parametrize(
    "name", ["intermediate", "modern", "legacy", "weak_suites", "self_signed", "wrong_host"]
)
def test_recorded_scan_gives_expected_findings(name: str, intermediate: MozillaPolicy) -> None:
    assert finding_keys(all_evaluations(recorded(name), intermediate)) == EXPECTED_KEYS[name]


def test_recorded_scan_round_trips_through_json() -> None:
    scan = recorded("legacy")
    assert TlsScan.from_json(scan.to_json()) == scan


def test_compliant_scan_passes_with_readable_measurements(intermediate: MozillaPolicy) -> None:
    protocols, ciphers, certificate, vulnerabilities, ocsp = all_evaluations(
        recorded("intermediate"), intermediate
    )
    assert [e.status for e in (protocols, ciphers, certificate, vulnerabilities)] == ["passed"] * 4
    assert protocols.measured == "offered: TLS 1.2, TLS 1.3"
    assert protocols.threshold.startswith("Mozilla 6.0 intermediate")
    assert "groups: prime256v1" in ciphers.measured
    assert "trusted by Supplied CA file" in certificate.measured
    assert "\n" not in certificate.measured
    assert ocsp.status == "skipped"
    assert "names no OCSP responder" in ocsp.reason


def test_legacy_findings_name_protocols_suites_and_groups(intermediate: MozillaPolicy) -> None:
    scan = recorded("legacy")
    protocols = evaluate_protocols(scan, intermediate)
    ciphers = evaluate_ciphers(scan, intermediate)
    assert protocols.status == "failed"
    assert {f.where for f in protocols.findings} == {"TLS 1.0", "TLS 1.1"}
    where = {f.where for f in ciphers.findings}
    # Suites offered only over a forbidden protocol are that protocol's finding.
    assert not any(w.startswith(("TLS 1.0", "TLS 1.1")) for w in where)
    assert "TLS 1.2 TLS_ECDH_anon_WITH_AES_128_CBC_SHA" in where
    assert {"X448", "secp521r1"} <= where
    assert "TLS 1.2 TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" not in where
    assert all(f.where for f in protocols.findings + ciphers.findings)


def test_weak_suites_names_each_suite(intermediate: MozillaPolicy) -> None:
    ciphers = evaluate_ciphers(recorded("weak_suites"), intermediate)
    assert {f.where for f in ciphers.findings} == {
        "TLS 1.2 TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "TLS 1.2 TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS 1.2 TLS_RSA_WITH_AES_256_CBC_SHA256",
    }
    protocols = evaluate_protocols(recorded("weak_suites"), intermediate)
    assert protocols.status == "passed"
    assert [f.severity for f in protocols.findings] == ["warn"]


def test_modern_profile_refuses_tls_1_2(modern: MozillaPolicy) -> None:
    scan = recorded("intermediate")
    assert finding_keys(all_evaluations(scan, modern)) == {"tls.protocol.tls1_2_offered"}
    assert finding_keys(all_evaluations(recorded("modern"), modern)) == set()


def test_modern_profile_refuses_rsa_certificates(modern: MozillaPolicy) -> None:
    certificate = evaluate_certificate(
        recorded("legacy"), modern, now=recorded("legacy").scanned_at, **CERT
    )
    keys = {f.key for f in certificate.findings}
    assert "tls.cert.key_type_not_in_profile" in keys


def test_certificate_expiry_follows_the_clock(intermediate: MozillaPolicy) -> None:
    scan = recorded("intermediate")
    not_after = scan.certificates[0].not_after
    soon = evaluate_certificate(
        scan, intermediate, now=not_after - datetime.timedelta(days=5), **CERT
    )
    assert soon.status == "passed"
    assert [(f.key, f.severity) for f in soon.findings] == [("tls.cert.expires_soon", "warn")]
    assert "notAfter" in soon.findings[0].message
    late = evaluate_certificate(
        scan, intermediate, now=not_after + datetime.timedelta(days=1), **CERT
    )
    assert late.status == "failed"
    assert [f.key for f in late.findings] == ["tls.cert.expired"]
    early = evaluate_certificate(
        scan,
        intermediate,
        now=scan.certificates[0].not_before - datetime.timedelta(days=1),
        **CERT,
    )
    assert [f.key for f in early.findings] == ["tls.cert.not_yet_valid"]


def test_warn_days_and_lifespan_limit_are_settings(intermediate: MozillaPolicy) -> None:
    scan = recorded("intermediate")
    now = scan.certificates[0].not_after - datetime.timedelta(days=40)
    assert evaluate_certificate(scan, intermediate, now=now, **CERT).findings == ()
    wide = evaluate_certificate(scan, intermediate, now=now, **{**CERT, "warn_days": 45})
    assert [f.key for f in wide.findings] == ["tls.cert.expires_soon"]
    strict = evaluate_certificate(scan, intermediate, now=now, **{**CERT, "max_lifespan_days": 60})
    assert [f.key for f in strict.findings] == ["tls.cert.lifespan_too_long"]
    assert "lifespan <= 60 d" in strict.threshold


def test_hostname_mismatch_names_the_certificate_names(intermediate: MozillaPolicy) -> None:
    scan = recorded("wrong_host")
    (finding,) = evaluate_certificate(scan, intermediate, now=scan.scanned_at, **CERT).findings
    assert finding.key == "tls.cert.hostname_mismatch"
    assert "other.test" in finding.message and "portal.test" in finding.message
    assert finding.where.startswith("CN=other.test")


def replace_certificate(scan: TlsScan, **changes: object) -> TlsScan:
    certificate = dataclasses.replace(scan.certificates[0], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(scan, certificates=(certificate,))


def test_certificate_key_and_signature_rules(intermediate: MozillaPolicy) -> None:
    scan = recorded("intermediate")

    def keys(**changes: object) -> set[str]:
        changed = replace_certificate(scan, **changes)
        return {
            f.key
            for f in evaluate_certificate(
                changed, intermediate, now=scan.scanned_at, **CERT
            ).findings
        }

    assert keys(key_type="rsa", key_size=1024, curve=None) == {"tls.cert.weak_key"}
    assert keys(key_type="rsa", key_size=2048, curve=None) == set()
    assert keys(curve="secp521r1", key_size=521) == {"tls.cert.curve_not_in_profile"}
    assert keys(key_type="dsa", key_size=2048, curve=None) == {"tls.cert.key_type_not_in_profile"}
    assert keys(signature_algorithm="ecdsa-with-SHA1", signature_hash="sha1") == {
        "tls.cert.sha1_signature"
    }
    assert keys(chain_has_sha1_signature=True) == {"tls.cert.sha1_signature"}
    assert keys(signature_algorithm="sha384WithRSAEncryption") == {
        "tls.cert.signature_not_in_profile"
    }


def test_every_certificate_of_a_multi_certificate_server_is_checked(
    intermediate: MozillaPolicy,
) -> None:
    scan = recorded("intermediate")
    rsa = dataclasses.replace(
        scan.certificates[0], key_type="rsa", key_size=1024, curve=None, subject="CN=rsa"
    )
    both = dataclasses.replace(scan, certificates=(scan.certificates[0], rsa))
    evaluation = evaluate_certificate(both, intermediate, now=scan.scanned_at, **CERT)
    assert [(f.key, f.where) for f in evaluation.findings] == [
        ("tls.cert.weak_key", "CN=rsa (RSA 1024)")
    ]


def test_vulnerability_findings(intermediate: MozillaPolicy) -> None:
    scan = recorded("legacy")
    assert evaluate_vulnerabilities(scan).status == "passed"
    vulnerable = dataclasses.replace(
        scan,
        vulnerabilities=VulnerabilityFacts(
            heartbleed=True,
            robot="VULNERABLE_STRONG_ORACLE",
            ccs_injection=True,
            secure_renegotiation=False,
            client_renegotiation=True,
            compression=True,
            fallback_scsv=False,
        ),
    )
    evaluation = evaluate_vulnerabilities(vulnerable)
    assert evaluation.status == "failed"
    assert {(f.key, f.severity) for f in evaluation.findings} == {
        ("tls.vuln.heartbleed", "fail"),
        ("tls.vuln.robot", "fail"),
        ("tls.vuln.ccs_injection", "fail"),
        ("tls.vuln.insecure_renegotiation", "fail"),
        ("tls.vuln.client_renegotiation", "warn"),
        ("tls.vuln.compression", "fail"),
        ("tls.vuln.no_fallback_scsv", "fail"),
    }
    assert "Heartbleed: yes" in evaluation.measured


def test_failed_probes_make_a_clean_result_inconclusive(intermediate: MozillaPolicy) -> None:
    scan = recorded("intermediate")
    broken = dataclasses.replace(
        scan,
        vulnerabilities=dataclasses.replace(scan.vulnerabilities, robot=None),
        errors={"robot": "CONNECTIVITY_ISSUE: timed out"},
    )
    evaluation = evaluate_vulnerabilities(broken)
    assert evaluation.status == "inconclusive"
    assert "robot probe failed" in evaluation.reason
    assert "ROBOT: not measured" in evaluation.measured
    # A finding is certain even when another probe failed.
    worse = dataclasses.replace(
        broken, vulnerabilities=dataclasses.replace(broken.vulnerabilities, heartbleed=True)
    )
    assert evaluate_vulnerabilities(worse).status == "failed"

    no_tls10 = dataclasses.replace(scan, errors={"tls_1_0_cipher_suites": "timed out"})
    assert evaluate_protocols(no_tls10, intermediate).status == "inconclusive"
    assert evaluate_ciphers(no_tls10, intermediate).status == "inconclusive"
    legacy = recorded("legacy")
    partly = dataclasses.replace(legacy, errors={"tls_1_1_cipher_suites": "timed out"})
    assert evaluate_protocols(partly, intermediate).status == "failed"

    no_cert = dataclasses.replace(scan, certificates=(), errors={"certificate_info": "timed out"})
    assert (
        evaluate_certificate(no_cert, intermediate, now=scan.scanned_at, **CERT).status
        == "inconclusive"
    )
    assert evaluate_ocsp(no_cert).status == "inconclusive"


def test_every_evaluator_is_inconclusive_when_the_scan_did_not_complete(
    intermediate: MozillaPolicy,
) -> None:
    scan = TlsScan(
        status="unreachable",
        reason="TCP connection to portal.test:443 failed: Connection refused",
        target=TlsTarget("portal.test", 443),
        scanned_at=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
    )
    for evaluation in all_evaluations(scan, intermediate):
        assert evaluation.status == "inconclusive"
        assert evaluation.reason == scan.reason
        assert evaluation.findings == ()


def ocsp_scan(**changes: object) -> TlsScan:
    return replace_certificate(
        recorded("intermediate"), ocsp_responders=("http://ocsp.example.test",), **changes
    )


def test_ocsp_stapling() -> None:
    assert [f.key for f in evaluate_ocsp(ocsp_scan()).findings] == ["tls.ocsp.not_stapled"]
    stapled = {
        "ocsp_stapled": True,
        "ocsp_response_status": "successful",
        "ocsp_certificate_status": "good",
        "ocsp_response_trusted": True,
        "ocsp_next_update": datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC),
    }
    good = evaluate_ocsp(ocsp_scan(**stapled))
    assert good.status == "passed"
    assert good.findings == ()

    def keys(**changes: object) -> list[str]:
        return [f.key for f in evaluate_ocsp(ocsp_scan(**{**stapled, **changes})).findings]

    assert keys(ocsp_certificate_status="revoked") == ["tls.ocsp.certificate_revoked"]
    assert keys(ocsp_response_trusted=False) == ["tls.ocsp.response_untrusted"]
    assert keys(ocsp_next_update=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)) == [
        "tls.ocsp.response_stale"
    ]
    assert keys(ocsp_response_status="try_later", ocsp_certificate_status=None) == [
        "tls.ocsp.response_unsuccessful"
    ]


# --------------------------------------------------------------------------------------------
# Trust and name from sslyze's path validation, on chains analysed offline


@pytest.fixture(scope="module")
def pki() -> Iterator[LocalPki]:
    with LocalPki.create() as created:
        yield created


@pytest.fixture(scope="module")
def unknown_ca() -> Iterator[LocalPki]:
    with LocalPki.create() as created:
        yield created


def analysed(
    pki: LocalPki, spec: LeafSpec, server_name: str, *, issuer: LocalPki | None = None
) -> CertificateFacts:
    """The facts of a leaf as sslyze's certificate_info analyses it for ``server_name``, with
    ``pki``'s CA as the supplied CA file; no network involved."""
    from cryptography import x509
    from sslyze import TrustStore
    from sslyze.plugins.certificate_info._cert_chain_analyzer import (
        CertificateDeploymentAnalyzer,
    )

    cert_file, _ = (issuer or pki).issue(f"leaf-{uuid.uuid4().hex}", spec)
    subject: x509.DNSName | x509.IPAddress
    try:
        subject = x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        subject = x509.DNSName(server_name)
    deployment = CertificateDeploymentAnalyzer(
        server_subject=subject,
        server_certificate_chain_as_pem=[cert_file.read_text()],
        server_ocsp_response=None,
        trust_stores_for_validation=[TrustStore(pki.ca_file, SUPPLIED_STORE, "N/A")],
    ).perform()
    return certificate_facts(
        deployment, server_name=server_name, now=datetime.datetime.now(datetime.UTC)
    )


@pytest.mark.parametrize(
    ("name", "dns_names", "ips", "expected"),
    [
        ("portal.test", ("portal.test",), (), True),
        ("PORTAL.test", ("portal.test",), (), True),
        ("www.portal.test", ("*.portal.test",), (), True),
        ("portal.test", ("*.portal.test",), (), False),
        ("a.b.portal.test", ("*.portal.test",), (), False),
        # cryptography's verifier, which sslyze uses, lets a wildcard cover a whole one-label
        # suffix; no CA may issue such a name under the CA/Browser Forum rules.
        ("example.test", ("*.test",), (), True),
        ("other.test", ("portal.test",), (), False),
        ("127.0.0.1", ("portal.test",), ("127.0.0.1",), True),
        ("127.0.0.2", ("x.test",), ("127.0.0.1",), False),
    ],
)
def test_name_match_is_sslyzes_and_apart_from_trust(
    pki: LocalPki, name: str, dns_names: tuple[str, ...], ips: tuple[str, ...], expected: bool
) -> None:
    facts = analysed(pki, LeafSpec(names=dns_names, addresses=ips), name)
    assert facts.hostname_matches is expected
    # A certificate for another name from a trusted CA still has a trusted chain.
    assert facts.trusted_by == (SUPPLIED_STORE,)
    assert facts.trust_error is None


def test_an_expired_certificate_still_shows_a_wrong_name(
    pki: LocalPki, intermediate: MozillaPolicy
) -> None:
    # sslyze's validation stops at the date here; the name and the chain are asked apart.
    spec = LeafSpec(names=("other.test",), valid_from_days=-100.0, valid_until_days=-10.0)
    facts = analysed(pki, spec, "portal.test")
    assert (facts.hostname_matches, facts.trusted_by) == (False, (SUPPLIED_STORE,))
    scan = dataclasses.replace(recorded("intermediate"), certificates=(facts,))
    evaluation = evaluate_certificate(
        scan, intermediate, now=datetime.datetime.now(datetime.UTC), **CERT
    )
    assert {f.key for f in evaluation.findings} == {
        "tls.cert.expired",
        "tls.cert.hostname_mismatch",
    }


def test_a_misnamed_certificate_from_an_unknown_ca_is_both_untrusted_and_misnamed(
    pki: LocalPki, unknown_ca: LocalPki, intermediate: MozillaPolicy
) -> None:
    facts = analysed(pki, LeafSpec(names=("other.test",)), "portal.test", issuer=unknown_ca)
    assert (facts.hostname_matches, facts.chain_trusted) == (False, False)
    assert facts.trust_error
    scan = dataclasses.replace(recorded("intermediate"), certificates=(facts,))
    evaluation = evaluate_certificate(
        scan, intermediate, now=datetime.datetime.now(datetime.UTC), **CERT
    )
    assert {f.key for f in evaluation.findings} == {
        "tls.cert.untrusted",
        "tls.cert.hostname_mismatch",
    }


# --------------------------------------------------------------------------------------------
# Live scans of local servers


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, RunningServer]]:
    with LocalPki.create() as pki, tls_servers(list(CONFIGS), pki) as running:
        yield running


@pytest.fixture(scope="module")
def live_scans(servers: dict[str, RunningServer]) -> dict[str, TlsScan]:
    return {name: scan_tls(server.target) for name, server in servers.items()}


def test_every_configuration_has_an_expectation() -> None:
    assert set(EXPECTED_KEYS) == set(CONFIGS)


@pytest.mark.parametrize("name", list(EXPECTED_KEYS))
def test_live_scan_gives_exactly_the_expected_findings(
    name: str, live_scans: dict[str, TlsScan], intermediate: MozillaPolicy
) -> None:
    scan = live_scans[name]
    assert scan.status == "completed", scan.reason
    assert dict(scan.errors) == {}
    evaluations = all_evaluations(scan, intermediate, now=datetime.datetime.now(datetime.UTC))
    assert finding_keys(evaluations) == EXPECTED_KEYS[name]
    for evaluation in evaluations:
        assert evaluation.status in {"passed", "failed", "skipped"}, evaluation.describe()
        assert all(finding.where for finding in evaluation.findings)


def test_live_modern_server_meets_the_modern_profile(
    live_scans: dict[str, TlsScan], modern: MozillaPolicy
) -> None:
    assert finding_keys(all_evaluations(live_scans["modern"], modern)) == set()


def test_live_scan_records_the_facts(live_scans: dict[str, TlsScan]) -> None:
    scan = live_scans["intermediate"]
    assert scan.protocols == ("TLSv1.2", "TLSv1.3")
    assert scan.groups == ("prime256v1",)
    (certificate,) = scan.certificates
    assert certificate.key_type == "ecdsa" and certificate.curve == "prime256v1"
    assert certificate.signature_algorithm == "ecdsa-with-SHA256"
    assert certificate.trusted_by == ("Supplied CA file",)
    assert 89.9 < certificate.lifespan_days < 90.1
    assert scan.vulnerabilities.fallback_scsv is True
    assert live_scans["ocsp_unstapled"].certificates[0].ocsp_responders == (
        "http://127.0.0.1:9/ocsp",
    )
    assert live_scans["self_signed"].certificates[0].self_signed is True
    assert TlsScan.from_json(scan.to_json()) == scan


def test_certificate_is_untrusted_without_the_test_ca(
    servers: dict[str, RunningServer], intermediate: MozillaPolicy
) -> None:
    target = dataclasses.replace(servers["intermediate"].target, ca_file=None)
    scan = scan_tls(target)
    evaluation = evaluate_certificate(scan, intermediate, now=scan.scanned_at, **CERT)
    assert [f.key for f in evaluation.findings] == ["tls.cert.untrusted"]


def test_closed_port_is_unreachable_not_an_exception(intermediate: MozillaPolicy) -> None:
    started = time.monotonic()
    scan = scan_tls(TlsTarget("127.0.0.1", free_port(), server_name="portal.test"), timeout=2)
    assert time.monotonic() - started < 2
    assert scan.status == "unreachable"
    assert "refused" in scan.reason
    for evaluation in all_evaluations(scan, intermediate):
        assert evaluation.status == "inconclusive"
        assert evaluation.reason == scan.reason


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


def test_silent_server_is_unreachable_within_the_timeout(silent_port: int) -> None:
    started = time.monotonic()
    scan = scan_tls(TlsTarget("127.0.0.1", silent_port), timeout=1)
    assert time.monotonic() - started < 3
    assert scan.status == "unreachable"
    assert "no TLS response" in scan.reason


def test_missing_ca_file_is_an_error(servers: dict[str, RunningServer]) -> None:
    target = dataclasses.replace(servers["intermediate"].target, ca_file="/nonexistent/ca.pem")
    scan = scan_tls(target)
    assert scan.status == "error"
    assert "/nonexistent/ca.pem" in scan.reason


def test_recorded_certificate_facts_load(intermediate: MozillaPolicy) -> None:
    certificate = recorded("intermediate").certificates[0]
    assert isinstance(certificate, CertificateFacts)
    assert certificate.not_after.tzinfo is not None
