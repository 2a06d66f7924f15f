"""The TLS controls: a ``TlsScan`` judged against a ``MozillaPolicy``.

Each ``evaluate_*`` function is pure: it reads a scan (``scanners.tls_scan``, live or recorded)
and a policy (``scanners.tls_policy``) and returns a ``scanners.result.Evaluation`` whose
findings carry stable keys (``tls.protocol.tls1_0_offered``, ``tls.cert.untrusted`` ...). A scan
that did not complete, or a probe a control needs that failed, makes the control inconclusive.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

from scanners.result import Evaluation, Finding, verdict
from scanners.tls_certificate import CertificateFacts
from scanners.tls_policy import PROTOCOLS, MozillaPolicy, protocol_label
from scanners.tls_scan import (
    CERTIFICATE_COMMAND,
    GROUPS_COMMAND,
    PROTOCOL_COMMANDS,
    VULNERABILITY_COMMANDS,
    TlsScan,
)

_PROTOCOL_KEYS = {
    "SSLv2": "ssl2_0",
    "SSLv3": "ssl3_0",
    "TLSv1": "tls1_0",
    "TLSv1.1": "tls1_1",
    "TLSv1.2": "tls1_2",
    "TLSv1.3": "tls1_3",
}
_ROBOT_VULNERABLE = {
    "VULNERABLE_STRONG_ORACLE": "strong oracle: a real attack is feasible",
    "VULNERABLE_WEAK_ORACLE": "weak oracle: an attack would be slow",
}
_ROBOT_UNKNOWN = "UNKNOWN_INCONSISTENT_RESULTS"
_MIN_RSA_BITS = 2048


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
    warn_days: int,
    max_lifespan_days: int,
) -> Evaluation:
    """TLS_CERT: trusted chain, matching name, in date (warn ``warn_days`` ahead of expiry),
    lifespan at most ``max_lifespan_days``, key type/size and signature allowed.

    The two numbers have no default here: callers pass the catalogue's (or a profile's), so
    the audit, ``portal-audit scan`` and any other caller apply one set of defaults.
    """
    max_lifespan = max_lifespan_days
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
