"""Transport steps: TLS, security headers, HTTPS-only credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, quote_plus, urljoin

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request, Response
from pytest_bdd import given, then, when

from portal.contexts import Contexts
from portal.driver import PortalDriver
from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.profile import Profile
from portal.run import ControlRecord
from portal.session_checks import navigation_answers, signed_in_outcome
from scanners.framing import FramingCheck, evaluate_framing, framing_header
from scanners.header_policy import load_header_policy
from scanners.headers import evaluate_csp, evaluate_hsts, evaluate_misc
from scanners.http import HttpAnswer, HttpProbe, HttpSession, fetch, make_ssl_context, probe_of
from scanners.sign_in_transport import evaluate_credentials_transport, evaluate_https_redirect
from scanners.tls import (
    evaluate_certificate,
    evaluate_ciphers,
    evaluate_ocsp,
    evaluate_protocols,
    evaluate_vulnerabilities,
)
from scanners.tls_policy import MozillaPolicy, load_policy
from scanners.tls_scan import TlsScan, TlsTarget, scan_tls
from steps.outcome import conclude

FRAMING_ORIGIN = "http://framing-check.portal-audit.invalid/"


@when(
    "the sign-in page, a protected page, an error page and static files are fetched",
    target_fixture="header_probes",
)
def fetch_response_kinds(profile: Profile, evidence: Evidence) -> list[HttpProbe]:
    context = make_ssl_context(profile.tls.ca_file)
    timeout = profile.timeouts.reachability_seconds
    # The sign-in page is the one that shows the form: a sign-in URL that redirects (to an
    # identity provider, say) is followed there as a browser follows it, each answer judged.
    probes = sign_in_chain(
        HttpSession(context, timeout).open_page(profile.url(profile.sign_in.url))
    )
    wanted = [(profile.protected_pages[0].url, "redirect")]
    wanted += [(url, "page") for url in profile.headers.extra_pages]
    wanted.append((profile.headers.error_page, "error"))
    wanted += [(url, "static") for url in profile.headers.static_files]
    probes += [
        fetch(profile.url(url), ssl_context=context, timeout=timeout, kind=kind)
        for url, kind in wanted
    ]
    lines = []
    for probe in probes:
        hsts = probe.get("strict-transport-security") or probe.error or "none"
        lines.append(f"{probe.kind:8} {probe.status or '-'} {probe.url}  HSTS: {hsts}")
    evidence.text("responses fetched", "\n".join(lines))
    return probes


def sign_in_chain(chain: tuple[HttpAnswer, ...]) -> list[HttpProbe]:
    """The sign-in URL's answers as probes: its redirects, then the page that ends the chain."""
    hops = [probe_of(answer, "redirect") for answer in chain[:-1]]
    page = probe_of(chain[-1], "page", redirects=tuple(hop.url for hop in hops))
    return [*hops, page]


@then("every response carries HSTS with a max-age of at least the policy minimum")
def hsts_everywhere(
    header_probes: list[HttpProbe],
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_hsts(
        header_probes,
        load_header_policy(),
        min_max_age=profile.thresholds.min_max_age_seconds,
        recommended_max_age=profile.thresholds.recommended_max_age_seconds,
    )
    conclude(evaluation, control_record, evidence, "HSTS findings")


# -- TLS: one scan per run, judged by each TLS control ----------------------------------------


@pytest.fixture(scope="session")
def tls_scan(profile: Profile) -> TlsScan:
    target = TlsTarget(
        host=profile.tls_host,
        port=profile.tls_port,
        server_name=profile.tls.server_name,
        ca_file=profile.tls.ca_file,
    )
    return scan_tls(target, timeout=profile.timeouts.reachability_seconds)


@pytest.fixture(scope="session")
def mozilla_policy(profile: Profile) -> MozillaPolicy:
    return load_policy(profile.thresholds.mozilla_level)


@given("the portal's TLS endpoint has been scanned", target_fixture="scanned")
def tls_endpoint_scanned(tls_scan: TlsScan, evidence: Evidence) -> TlsScan:
    evidence.text(
        "TLS scan summary",
        f"{tls_scan.target}: {tls_scan.status} ({tls_scan.reason}); protocols "
        f"{', '.join(tls_scan.protocols) or 'none'}",
    )
    return tls_scan


@then("only the protocol versions of the selected Mozilla profile are offered")
def tls_protocols(
    scanned: TlsScan,
    mozilla_policy: MozillaPolicy,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    conclude(evaluate_protocols(scanned, mozilla_policy), control_record, evidence, "protocols")


@then("only the cipher suites and key exchange groups of the selected Mozilla profile are accepted")
def tls_ciphers(
    scanned: TlsScan,
    mozilla_policy: MozillaPolicy,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    conclude(evaluate_ciphers(scanned, mozilla_policy), control_record, evidence, "cipher suites")


@then("the certificate chain is trusted, matches the host name and is within its lifetime rules")
def tls_certificate(
    scanned: TlsScan,
    mozilla_policy: MozillaPolicy,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    evaluation = evaluate_certificate(
        scanned,
        mozilla_policy,
        now=datetime.now(UTC),
        warn_days=profile.thresholds.expiry_warning_days,
        max_lifespan_days=profile.thresholds.max_lifespan_days,
    )
    conclude(evaluation, control_record, evidence, "certificate")


@then("the certificate's key and signature are strong enough")
def tls_certificate_key(scanned: TlsScan, control_record: ControlRecord) -> None:
    # Key type, size and signature hash are judged with the certificate above; this line
    # records what was seen so the report shows it.
    if scanned.certificates:
        control_record.measure(f"key {scanned.certificates[0].key_description()}")


@then(
    "the endpoint is not vulnerable to Heartbleed, ROBOT, CCS injection, insecure renegotiation "
    "or compression, and supports fallback protection"
)
def tls_vulnerabilities(
    scanned: TlsScan, control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(evaluate_vulnerabilities(scanned), control_record, evidence, "vulnerabilities")


@then("a valid OCSP response is stapled when the certificate names a responder")
def tls_ocsp(scanned: TlsScan, control_record: ControlRecord, evidence: Evidence) -> None:
    conclude(evaluate_ocsp(scanned), control_record, evidence, "OCSP stapling")


# -- HDR_CSP, HDR_MISC ---------------------------------------------------------------------------

PAGE_KINDS = ("page", "error")


@then(
    "every page carries a content security policy with object-src none, a restricted base-uri "
    "and frame-ancestors"
)
def csp_everywhere(
    header_probes: list[HttpProbe], control_record: ControlRecord, evidence: Evidence
) -> None:
    pages = [p for p in header_probes if p.kind in PAGE_KINDS]
    conclude(evaluate_csp(pages, load_header_policy()), control_record, evidence, "CSP findings")


@then("a page of another site cannot show the sign-in page in a frame")
def framing_blocked(
    contexts: Contexts, profile: Profile, control_record: ControlRecord, evidence: Evidence
) -> None:
    page = contexts.new_page()
    target = profile.url(profile.sign_in.url)
    # A made-up origin served by the browser itself: the framing attempt needs no other host.
    page.route(
        FRAMING_ORIGIN + "**",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            body=f'<!doctype html><title>framing check</title><iframe src="{target}"></iframe>',
        ),
    )
    answers: list[Response] = []
    page.on(
        "response",
        lambda r: (
            answers.append(r)
            if r.frame != page.main_frame and r.request.is_navigation_request()
            else None
        ),
    )
    page.goto(FRAMING_ORIGIN, wait_until="load")
    frames = [f for f in page.frames if f is not page.main_frame]
    if not frames:
        raise Inconclusive("the framing page did not create its frame")
    framed = frames[0].locator(profile.sign_in.username).count() > 0
    answer = answers[-1] if answers else None
    # Positive control: the same page, top-level in the same browser, shows the sign-in form.
    top = contexts.new_page()
    with navigation_answers(top) as top_answers:
        try:
            top.goto(target, wait_until="load")
            top_level = top.locator(profile.sign_in.username).count() > 0
        except PlaywrightError:
            top_level = False
    shown_by = top_answers[-1] if top_level and top_answers else None
    check = FramingCheck(
        framed=framed,
        top_level_loaded=top_level,
        frame_status=answer.status if answer is not None else None,
        blocked_by=framing_header(answer.headers) if answer is not None else "",
        top_level_blocked_by=framing_header(shown_by.headers) if shown_by is not None else "",
    )
    conclude(evaluate_framing(check), control_record, evidence, "framing check")


@then("every response turns content sniffing off and pages send a strict referrer policy")
def misc_headers(
    header_probes: list[HttpProbe], control_record: ControlRecord, evidence: Evidence
) -> None:
    probes = [p for p in header_probes if p.kind in (*PAGE_KINDS, "static")]
    conclude(evaluate_misc(probes, load_header_policy()), control_record, evidence, "findings")


# -- AUTH_HTTPS ------------------------------------------------------------------------------------


@when("the sign-in page is requested over plain HTTP", target_fixture="plain_probe")
def plain_http_sign_in(profile: Profile, evidence: Evidence) -> HttpProbe:
    url = urljoin(profile.http_url, profile.sign_in.url.lstrip("/"))
    probe = fetch(url, ssl_context=None, timeout=profile.timeouts.reachability_seconds, kind="http")
    evidence.text(
        "plain HTTP request", f"GET {url}: {probe.status or probe.error} -> {probe.location or '-'}"
    )
    return probe


@then("the plain HTTP request is redirected to HTTPS")
def redirected_to_https(
    plain_probe: HttpProbe, control_record: ControlRecord, evidence: Evidence
) -> None:
    conclude(evaluate_https_redirect(plain_probe), control_record, evidence, "plain HTTP findings")


@then("the patient's credentials are submitted only over HTTPS")
def credentials_over_https(
    page: Page,
    driver: PortalDriver,
    profile: Profile,
    control_record: ControlRecord,
    evidence: Evidence,
) -> None:
    password = profile.patient.password.get_secret_value()
    spellings = {password, quote_plus(password), quote(password, safe="")}
    carrying: list[str] = []

    def watch(request: Request) -> None:
        body = request.post_data or ""
        if any(s in body for s in spellings):
            carrying.append(request.url.split("?", 1)[0])

    page.on("request", watch)
    try:
        signed_in_outcome(driver, page, profile.patient)
    finally:
        page.remove_listener("request", watch)
    evaluation = evaluate_credentials_transport(carrying)
    conclude(evaluation, control_record, evidence, "where the password was sent")
