"""The TLS and header verdicts of any hosts, without a portal profile (``portal-audit scan``).

Each target gets the audit's TLS controls (TLS_PROTOCOLS, TLS_CIPHERS, TLS_CERT, TLS_VULNS,
TLS_OCSP), the header controls of one page (HDR_HSTS, HDR_CSP, HDR_MISC) and the half of
AUTH_HTTPS a scan can see (the page asked for over plain HTTP redirects to https or is not
served; the password's own transport needs a sign-in, so an audit), with the catalogue's
thresholds, the same the audit applies, unless ``--policy`` overrides one (checked
against the catalogue's limits). Targets are scanned together (``scanners.tls_scan.scan_many``);
one that does not answer is inconclusive on its own.

Headers are read over a connection that does not verify the certificate and accepts every
protocol and suite the local OpenSSL has, so a self-signed, expired or misnamed certificate
leaves them judged, not unread; the HSTS verdict then says that browsers ignore HSTS over such
a certificate.
"""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from portal.catalogue import load_catalogue
from scanners.header_policy import load_header_policy
from scanners.headers import evaluate_csp, evaluate_hsts, evaluate_misc
from scanners.http import HttpProbe, fetch
from scanners.result import Evaluation
from scanners.sign_in_transport import evaluate_https_redirect
from scanners.tls import (
    evaluate_certificate,
    evaluate_ciphers,
    evaluate_ocsp,
    evaluate_protocols,
    evaluate_vulnerabilities,
)
from scanners.tls_policy import load_policy
from scanners.tls_scan import TlsScan, TlsTarget, scan_many

TLS_CONTROLS = ("TLS_PROTOCOLS", "TLS_CIPHERS", "TLS_CERT", "TLS_VULNS", "TLS_OCSP")
HEADER_CONTROLS = ("HDR_HSTS", "HDR_CSP", "HDR_MISC")
PLAIN_HTTP_CONTROLS = ("AUTH_HTTPS",)
CONTROLS = TLS_CONTROLS + HEADER_CONTROLS + PLAIN_HTTP_CONTROLS
PLAIN_HTTP_PORT = 80
SCAN_SHOWS_ONLY_THE_REDIRECT = (
    "the scan checks the plain-HTTP redirect only; that the password is sent only over https "
    "needs a sign-in (an audit)"
)
# RFC 6797 section 8.1: a browser ignores HSTS received over a connection with certificate errors.
IGNORED_OVER_BAD_CERTIFICATE = (
    "browsers ignore HSTS received over an invalid certificate (RFC 6797 section 8.1); the "
    "certificate problem is TLS_CERT's finding"
)
DEFAULT_PORT = 443


class ScanUsageError(ValueError):
    """A target or policy value the scan cannot use (exit status 3)."""


def parse_target(text: str, *, sni: str | None = None, ca_file: str | None = None) -> TlsTarget:
    """``host``, ``host:port``, ``[v6]:port`` or ``https://host[:port]/...``."""
    given = text.strip()
    if not given:
        raise ScanUsageError("an empty target")
    if "://" in given:
        parts = urlsplit(given)
        if parts.scheme != "https" or not parts.hostname:
            raise ScanUsageError(f"{text!r}: a URL target must be https://host[:port]/...")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ScanUsageError(f"{text!r}: the port is not a number from 1 to 65535") from None
        return TlsTarget(parts.hostname, port, server_name=sni, ca_file=ca_file)
    parts = urlsplit(f"//{given}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ScanUsageError(f"{text!r}: the port is not a number from 1 to 65535") from None
    if not parts.hostname or parts.path or parts.query:
        raise ScanUsageError(f"{text!r}: not host, host:port or https://host[:port]")
    return TlsTarget(parts.hostname, port, server_name=sni, ca_file=ca_file)


def url_of(text: str, target: TlsTarget) -> str:
    """The page whose headers are read: the URL given, else the host's root."""
    given = text.strip()
    if "://" in given:
        return given
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"https://{host}:{target.port}/"


def plain_http_url(url: str, port: int = PLAIN_HTTP_PORT) -> str:
    """The page ``url`` (https) asked for over plain HTTP on ``port``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if port != PLAIN_HTTP_PORT:
        netloc += f":{port}"
    return urlunsplit(("http", netloc, parts.path or "/", parts.query, ""))


def plain_http_of(probe: HttpProbe, scan: TlsScan) -> Evaluation:
    """AUTH_HTTPS's redirect half. Plain HTTP refused counts as not served only when the host
    answered over TLS: a host that answers nothing proves nothing."""
    if scan.status != "completed":
        reason = f"no TLS answer, so plain HTTP refused would prove nothing: {scan.reason}"
        return Evaluation("inconclusive", reason)
    evaluation = evaluate_https_redirect(probe)
    return replace(evaluation, reason=f"{evaluation.reason} ({SCAN_SHOWS_ONLY_THE_REDIRECT})")


def read_targets(text: str, name: str) -> list[str]:
    """A targets file: one target per line; blank lines and ``#`` comments are skipped."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if " " in entry:
            raise ScanUsageError(f"{name}:{number}: one target per line, got {entry!r}")
        if entry:
            found.append(entry)
    return found


def thresholds(overrides: Mapping[str, str]) -> dict[str, Any]:
    """The catalogue's thresholds of the scanned controls, with ``overrides`` (name -> text,
    read as YAML) checked against the catalogue's limits."""
    catalogue = load_catalogue()
    controls = [catalogue.get(control_id) for control_id in CONTROLS]
    applied: dict[str, Any] = {}
    limits = {}
    for control in controls:
        applied.update(control.threshold)
        limits.update(control.limits)
    for name, text in overrides.items():
        if name not in limits:
            known = ", ".join(sorted(limits))
            raise ScanUsageError(f"--policy {name}: not a threshold of the scan ({known})")
        try:
            applied[name] = limits[name].apply(yaml.safe_load(text))
        except (ValueError, yaml.YAMLError) as exc:
            raise ScanUsageError(f"--policy {name}: {exc}") from None
    return applied


@dataclass(frozen=True)
class TargetVerdicts:
    target: TlsTarget
    url: str  # the page whose headers were read
    scan: TlsScan
    evaluations: dict[str, Evaluation]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": str(self.target),
            "host": self.target.host,
            "port": self.target.port,
            "url": self.url,
            "scan": {"status": self.scan.status, "reason": self.scan.reason},
            "controls": {
                control_id: {
                    "status": evaluation.reported,
                    "reason": evaluation.reason,
                    "measured": evaluation.measured,
                    "threshold": evaluation.threshold,
                    "findings": [
                        {
                            "key": finding.key,
                            "severity": finding.severity,
                            "message": finding.message,
                            "where": finding.where,
                        }
                        for finding in evaluation.findings
                    ],
                }
                for control_id, evaluation in self.evaluations.items()
            },
        }


def reading_context() -> ssl.SSLContext:
    """A client that reads headers whatever the certificate and whatever the server offers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def read_page(url: str, timeout: float) -> HttpProbe:
    """The page at ``url`` over TLS, whatever the certificate (for the header controls)."""
    return fetch(url, ssl_context=reading_context(), timeout=timeout, kind="page")


def read_plain_http(url: str, port: int, timeout: float) -> HttpProbe:
    """The page at ``url`` asked for over plain HTTP on ``port`` (for AUTH_HTTPS)."""
    return fetch(plain_http_url(url, port), ssl_context=None, timeout=timeout, kind="http")


def headers_of(
    probe: HttpProbe, applied: Mapping[str, Any], certificate: Evaluation
) -> dict[str, Evaluation]:
    """HDR_HSTS, HDR_CSP and HDR_MISC of a page read whatever the certificate."""
    policy = load_header_policy()
    hsts = evaluate_hsts(
        [probe],
        policy,
        min_max_age=int(applied["min_max_age_seconds"]),
        recommended_max_age=int(applied["recommended_max_age_seconds"]),
    )
    if certificate.status == "failed" and hsts.status in ("passed", "failed"):
        hsts = replace(hsts, reason=f"{hsts.reason}; {IGNORED_OVER_BAD_CERTIFICATE}")
    return {
        "HDR_HSTS": hsts,
        "HDR_CSP": evaluate_csp([probe], policy),
        "HDR_MISC": evaluate_misc([probe], policy),
    }


def evaluate(
    scan: TlsScan, applied: Mapping[str, Any], now: datetime.datetime
) -> dict[str, Evaluation]:
    policy = load_policy(applied["mozilla_level"])
    return {
        "TLS_PROTOCOLS": evaluate_protocols(scan, policy),
        "TLS_CIPHERS": evaluate_ciphers(scan, policy),
        "TLS_CERT": evaluate_certificate(
            scan,
            policy,
            now=now,
            warn_days=int(applied["expiry_warning_days"]),
            max_lifespan_days=int(applied["max_lifespan_days"]),
        ),
        "TLS_VULNS": evaluate_vulnerabilities(scan),
        "TLS_OCSP": evaluate_ocsp(scan),
    }


def scan_targets(
    targets: Sequence[TlsTarget],
    urls: Sequence[str],
    applied: Mapping[str, Any],
    *,
    timeout: float = 10.0,
    concurrency: int = 10,
    plain_http_port: int = PLAIN_HTTP_PORT,
) -> list[TargetVerdicts]:
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        # The pages are read while the TLS scans run; each read is bounded by ``timeout``.
        pages = [pool.submit(read_page, url, timeout) for url in urls]
        plain = [pool.submit(read_plain_http, url, plain_http_port, timeout) for url in urls]
        scans = scan_many(targets, timeout=timeout, concurrency=concurrency)
        now = datetime.datetime.now(datetime.UTC)
        results = []
        for index, (target, scan) in enumerate(zip(targets, scans, strict=True)):
            tls = evaluate(scan, applied, now)
            if scan.status == "completed":
                headers = headers_of(pages[index].result(), applied, tls["TLS_CERT"])
            else:
                reason = f"no TLS connection to read the page's headers over: {scan.reason}"
                headers = {
                    control: Evaluation("inconclusive", reason) for control in HEADER_CONTROLS
                }
            verdicts = {**tls, **headers, "AUTH_HTTPS": plain_http_of(plain[index].result(), scan)}
            results.append(TargetVerdicts(target, urls[index], scan, verdicts))
    return results


def exit_status(results: Sequence[TargetVerdicts]) -> int:
    """The audit's statuses: 1 any control failed, 2 none failed but one was inconclusive."""
    statuses = {e.status for result in results for e in result.evaluations.values()}
    if "failed" in statuses:
        return 1
    if "inconclusive" in statuses or not results:
        return 2
    return 0
