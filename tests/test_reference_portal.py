"""End-to-end tests of the bundled reference portal over real HTTPS on 127.0.0.1: its command
line and process, TLS, headers and the HTTP listener, and each weakness flag."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from reference_portal import launcher
from reference_portal.launcher import PortalStartError, RunningPortal
from reference_portal.weaknesses import WEAKNESSES

# The *_fixture names are the reference portal fixtures (one portal per module), used by name.
from tests.reference_client import (  # noqa: F401
    CONTROL_IDS,
    HARDENED_COOKIE,
    REPO_ROOT,
    WEAK_COOKIE,
    Accounts,
    Browser,
    accounts_fixture,
    assert_security_headers,
    browser_fixture,
    cookie_attributes,
    element_text,
    portal_fixture,
    session_cookie,
    sign_in,
    sign_out,
)

# -- command line and process life cycle -------------------------------------------------


def test_list_weaknesses_prints_flags_with_their_controls() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reference_portal", "--list-weaknesses"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert isinstance(listed, list)
    for entry in listed:
        assert (
            {"flag", "control", "description"}
            <= set(entry)
            <= {
                "flag",
                "control",
                "description",
                "also_breaks",
            }
        )
        assert entry["control"] == entry["control"].upper()
        assert entry["control"] in CONTROL_IDS
        assert entry["description"]
    assert {(entry["flag"], entry["control"]) for entry in listed} >= {
        ("logout_keeps_session", "SESS_LOGOUT"),
        ("cookie_flags_missing", "SESS_COOKIE"),
        ("hsts_missing", "HDR_HSTS"),
        ("hsts_short", "HDR_HSTS"),
    }
    assert [entry["flag"] for entry in listed] == [weakness.flag for weakness in WEAKNESSES]


def test_unknown_weakness_flag_exits_2_naming_it_and_the_known_flags() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reference_portal", "serve", "--weaken", "hsts_short,no_such"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no_such" in result.stderr
    for weakness in WEAKNESSES:
        assert weakness.flag in result.stderr


def test_launcher_reports_a_failed_start_with_the_stderr_tail() -> None:
    with pytest.raises(PortalStartError, match="no_such"):
        launcher.start(["no_such"])


def test_ready_line_describes_the_running_portal(portal: RunningPortal) -> None:
    assert portal.https_url == f"https://127.0.0.1:{portal.https_port}/"
    assert portal.http_url == f"http://127.0.0.1:{portal.http_port}/"
    assert portal.host == "127.0.0.1"
    assert portal.ca_file.is_absolute() and portal.ca_file.is_file()
    assert portal.ca_file.parent == portal.state_dir
    assert portal.weaknesses == ()
    assert portal.process.poll() is None


def test_stop_is_clean_on_sigterm_and_sigint(accounts: Accounts) -> None:
    first = launcher.start(env=accounts.env())
    assert first.stop() == 0, first.stderr_tail()
    assert not first.state_dir.exists(), "a temporary state dir must be removed on exit"

    second = launcher.start(env=accounts.env())
    second.process.send_signal(signal.SIGINT)
    assert second.process.wait(timeout=10) == 0, second.stderr_tail()
    second.stop()


def test_given_state_dir_is_kept(accounts: Accounts, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with launcher.start(env=accounts.env(), state_dir=state_dir) as running:
        assert running.state_dir == state_dir.resolve()
        assert Browser(running).get("/login").status == 200
    assert running.process.returncode == 0
    assert (state_dir / "ca.pem").is_file()


# -- TLS ---------------------------------------------------------------------------------


def test_tls_certificate_and_protocol(portal: RunningPortal) -> None:
    context = portal.ssl_context()
    with (
        socket.create_connection(("127.0.0.1", portal.https_port), 10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert not san.critical
    assert "localhost" in san.value.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert dt.timedelta(days=89) < lifetime <= dt.timedelta(days=91)

    ca = x509.load_pem_x509_certificate(portal.ca_file.read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_tls12_uses_only_ecdhe_aead_suites(portal: RunningPortal) -> None:
    context = portal.ssl_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", portal.https_port), 10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        cipher = tls.cipher()
    assert cipher is not None
    name, version, _ = cipher
    assert version == "TLSv1.2"
    assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)


# -- headers and the HTTP listener --------------------------------------------------------


def test_security_headers_on_every_kind_of_response(browser: Browser) -> None:
    page = browser.get("/login")
    assert_security_headers(page)
    not_found = browser.get("/no/such/page")
    assert not_found.status == 404
    assert not_found.header("Content-Type") == "text/html; charset=utf-8"
    assert "Page not found" in not_found.body
    assert_security_headers(not_found)
    assert_security_headers(browser.get("/static/no-such.css"))
    static = browser.get("/static/portal.css")
    assert static.status == 200
    assert static.header("Content-Type") == "text/css; charset=utf-8"
    assert_security_headers(static, cacheable=True)
    redirect = browser.get("/dashboard")
    assert redirect.status == 303
    assert_security_headers(redirect)
    api = browser.get("/api/me")
    assert api.status == 401
    assert_security_headers(api)
    wrong_method = browser.request("DELETE", "/login")
    assert wrong_method.status == 405
    assert_security_headers(wrong_method)


def test_http_listener_redirects_to_https(portal: RunningPortal) -> None:
    def fetch(method: str, path: str, host: str | None = None) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", portal.http_port, timeout=10)
        headers = {"Host": host} if host else {}
        connection.request(method, path, body=b"" if method == "POST" else None, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    response = fetch("GET", "/dashboard?tab=1")
    assert response.status == 301
    assert response.headers["Location"] == f"https://127.0.0.1:{portal.https_port}/dashboard?tab=1"
    assert response.headers.get("Strict-Transport-Security") is None

    assert fetch("POST", "/login").status == 301
    local = fetch("GET", "/", host=f"localhost:{portal.http_port}")
    assert local.headers["Location"] == f"https://localhost:{portal.https_port}/"
    foreign = fetch("GET", "/", host="evil.example")
    assert foreign.headers["Location"] == f"https://127.0.0.1:{portal.https_port}/"


# -- weakness flags: each breaks its one control and nothing else ------------------------


def test_weakness_logout_keeps_session(accounts: Accounts) -> None:
    with launcher.start(["logout_keeps_session"], env=accounts.env()) as weak:
        assert weak.weaknesses == ("logout_keeps_session",)
        browser = Browser(weak)
        assert sign_in(browser, "patient.alvarez", accounts.alvarez).status == 303
        captured = dict(browser.cookies)
        reply = sign_out(browser)
        assert reply.status == 303 and reply.location == "/login?signed_out=1"
        assert "max-age=0" in session_cookie(reply).lower()
        assert_security_headers(reply)

        replay = Browser(weak)
        replay.cookies.update(captured)
        page = replay.get("/dashboard")
        assert page.status == 200
        assert element_text(page.body, "patient-mrn") == "4481-2290"
    assert weak.process.returncode == 0


def test_weakness_cookie_flags_missing(accounts: Accounts) -> None:
    with launcher.start(["cookie_flags_missing"], env=accounts.env()) as weak:
        browser = Browser(weak)
        reply = sign_in(browser, "patient.alvarez", accounts.alvarez)
        assert reply.status == 303
        raw = session_cookie(reply, WEAK_COOKIE)
        assert cookie_attributes(raw) == {"path"}
        assert not any(c.startswith(HARDENED_COOKIE) for c in reply.set_cookies)
        assert browser.get("/dashboard").status == 200
        assert_security_headers(reply)

        captured = dict(browser.cookies)
        assert sign_out(browser).status == 303
        replay = Browser(weak)
        replay.cookies.update(captured)
        assert replay.get("/dashboard").status == 303, "sign-out must still end the session"
    assert weak.process.returncode == 0


@pytest.mark.parametrize(
    ("flag", "expected"),
    [("hsts_missing", None), ("hsts_short", "max-age=86400; includeSubDomains")],
)
def test_weakness_hsts(accounts: Accounts, flag: str, expected: str | None) -> None:
    with launcher.start([flag], env=accounts.env()) as weak:
        browser = Browser(weak)
        login = browser.get("/login")
        assert_security_headers(login, hsts=expected)
        assert cookie_attributes(session_cookie(login)) >= {"secure", "httponly", "samesite"}
        assert_security_headers(browser.get("/no/such/page"), hsts=expected)
        assert_security_headers(browser.get("/static/portal.css"), hsts=expected, cacheable=True)
        assert_security_headers(browser.get("/dashboard"), hsts=expected)
    assert weak.process.returncode == 0
