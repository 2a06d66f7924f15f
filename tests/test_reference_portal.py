"""End-to-end tests of the bundled reference portal, over real HTTPS on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import re
import secrets
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from portal.catalogue import load_catalogue
from reference_portal import launcher
from reference_portal.db import Database
from reference_portal.launcher import PortalStartError, RunningPortal
from reference_portal.sessions import SessionStore, hash_token
from reference_portal.weaknesses import WEAKNESSES

REPO_ROOT = Path(__file__).resolve().parent.parent
HARDENED_COOKIE = "__Host-portal_session"
WEAK_COOKIE = "portal_session"
HSTS = "max-age=63072000; includeSubDomains"
CSP = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
GENERIC_ERROR = "The username or password is incorrect."
PROTECTED_PAGES = ("/dashboard", "/results", "/messages", "/appointments")
CONTROL_IDS = {control.id for control in load_catalogue().controls}


@dataclass(frozen=True)
class Accounts:
    alvarez: str
    okafor: str

    def env(self) -> dict[str, str]:
        return {
            "REFERENCE_PATIENT_PASSWORD": self.alvarez,
            "REFERENCE_PATIENT2_PASSWORD": self.okafor,
        }


@dataclass(frozen=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def set_cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def json(self) -> object:
        return json.loads(self.body)


class Browser:
    """A minimal cookie-keeping HTTPS client that never follows redirects."""

    def __init__(self, portal: RunningPortal) -> None:
        self.portal = portal
        self.context = portal.ssl_context()
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", self.portal.https_port, context=self.context, timeout=10
        )
        try:
            all_headers = dict(headers or {})
            if self.cookies:
                all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            connection.request(method, path, body=body, headers=all_headers)
            response = connection.getresponse()
            reply = Reply(response.status, response.headers, response.read().decode("utf-8"))
        finally:
            connection.close()
        for raw in reply.set_cookies:
            for name, morsel in SimpleCookie(raw).items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return reply

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post_form(self, path: str, fields: Mapping[str, str]) -> Reply:
        return self.request(
            "POST",
            path,
            body=urllib.parse.urlencode(fields).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def post_json(self, path: str, payload: object, csrf: str | None) -> Reply:
        headers = {"Content-Type": "application/json"}
        if csrf is not None:
            headers["X-CSRF-Token"] = csrf
        return self.request("POST", path, body=json.dumps(payload).encode(), headers=headers)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def element_text(html: str, element_id: str) -> str | None:
    match = re.search(rf'<(\w+)[^>]*\bid="{re.escape(element_id)}"[^>]*>(.*?)</\1>', html, re.S)
    return re.sub(r"<[^>]+>", "", match.group(2)).strip() if match else None


def sign_in(browser: Browser, username: str, password: str, next_path: str | None = None) -> Reply:
    page = browser.get("/login" + (f"?next={urllib.parse.quote(next_path)}" if next_path else ""))
    assert page.status == 200
    fields = {"username": username, "password": password, "csrf_token": csrf_from(page.body)}
    if next_path:
        fields["next"] = next_path
    return browser.post_form("/login", fields)


def sign_out(browser: Browser) -> Reply:
    page = browser.get("/dashboard")
    assert page.status == 200
    return browser.post_form("/logout", {"csrf_token": csrf_from(page.body)})


def session_cookie(reply: Reply, name: str = HARDENED_COOKIE) -> str:
    matches = [raw for raw in reply.set_cookies if raw.startswith(f"{name}=")]
    assert len(matches) == 1, reply.set_cookies
    return matches[0]


def cookie_attributes(raw: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in raw.split(";")[1:]}


def assert_security_headers(
    reply: Reply, *, hsts: str | None = HSTS, cacheable: bool = False
) -> None:
    assert reply.header("Strict-Transport-Security") == hsts
    assert reply.header("Content-Security-Policy") == CSP
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert reply.header("Referrer-Policy") == "no-referrer"
    if not cacheable:
        assert reply.header("Cache-Control") == "no-store"


@pytest.fixture(scope="module")
def accounts() -> Accounts:
    return Accounts(alvarez=secrets.token_urlsafe(18), okafor=secrets.token_urlsafe(18))


@pytest.fixture(scope="module")
def portal(accounts: Accounts) -> Iterator[RunningPortal]:
    running = launcher.start(env=accounts.env())
    try:
        yield running
    finally:
        assert running.stop() == 0, running.stderr_tail()


@pytest.fixture
def browser(portal: RunningPortal) -> Browser:
    return Browser(portal)


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


# -- sign-in, sessions and sign-out -------------------------------------------------------


def test_sign_in_rotates_the_session_id(
    browser: Browser, accounts: Accounts, portal: RunningPortal
) -> None:
    page = browser.get("/login")
    assert page.status == 200
    pre_cookie = session_cookie(page)
    assert cookie_attributes(pre_cookie) >= {"secure", "httponly", "samesite", "path"}
    assert "max-age" not in cookie_attributes(pre_cookie)
    pre_token = browser.cookies[HARDENED_COOKIE]

    reply = browser.post_form(
        "/login",
        {
            "username": "patient.alvarez",
            "password": accounts.alvarez,
            "csrf_token": csrf_from(page.body),
        },
    )
    assert reply.status == 303
    assert reply.location == "/dashboard"
    signed_in_cookie = session_cookie(reply)
    assert "samesite=lax" in signed_in_cookie.lower()
    token = browser.cookies[HARDENED_COOKIE]
    assert token != pre_token
    assert len(token) >= 43  # 32 random bytes, base64url

    dashboard = browser.get("/dashboard")
    assert dashboard.status == 200
    assert element_text(dashboard.body, "signed-in-user") == "Maria Alvarez"
    assert element_text(dashboard.body, "patient-mrn") == "4481-2290"
    assert 'id="patient-data"' in dashboard.body

    replay = Browser(browser.portal)
    replay.cookies[HARDENED_COOKIE] = pre_token
    assert replay.get("/dashboard").status == 303, "the pre-sign-in ID must not be authenticated"

    with sqlite3.connect(f"file:{portal.state_dir / 'portal.sqlite3'}?mode=ro", uri=True) as db:
        stored = [row[0] for row in db.execute("SELECT token_hash FROM sessions")]
    assert hash_token(token) in stored
    assert token not in stored and pre_token not in stored
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()


def test_wrong_password_and_unknown_user_get_identical_answers(
    browser: Browser, accounts: Accounts
) -> None:
    page = browser.get("/login")
    csrf = csrf_from(page.body)
    wrong_password = browser.post_form(
        "/login", {"username": "patient.alvarez", "password": "not-it", "csrf_token": csrf}
    )
    unknown_user = browser.post_form(
        "/login", {"username": "patient.nobody", "password": "not-it", "csrf_token": csrf}
    )
    assert wrong_password.status == unknown_user.status == 401
    assert element_text(wrong_password.body, "sign-in-error") == GENERIC_ERROR
    assert wrong_password.body == unknown_user.body
    assert wrong_password.set_cookies == unknown_user.set_cookies == []


def test_second_patient_sees_only_their_own_record(browser: Browser, accounts: Accounts) -> None:
    assert sign_in(browser, "patient.okafor", accounts.okafor).status == 303
    me = browser.get("/api/me")
    assert me.status == 200
    assert me.json() == {
        "username": "patient.okafor",
        "display_name": "Daniel Okafor",
        "patient": {
            "full_name": "Daniel Okafor",
            "date_of_birth": "1979-11-02",
            "mrn": "5520-1187",
        },
    }
    results = browser.get("/results")
    assert "Potassium" in results.body and "Hemoglobin A1c" not in results.body
    assert "4481-2290" not in browser.get("/dashboard").body


def test_patient_pages_show_seeded_data(browser: Browser, accounts: Accounts) -> None:
    assert sign_in(browser, "patient.alvarez", accounts.alvarez).status == 303
    dashboard = browser.get("/dashboard").body
    assert element_text(dashboard, "patient-name") == "Maria Alvarez"
    assert '<time datetime="1984-03-12">' in dashboard
    assert element_text(dashboard, "unread-count") == "2"
    assert "Annual physical" in (element_text(dashboard, "next-appointment") or "")
    assert browser.get("/results").body.count('class="lab-result"') == 4
    assert browser.get("/messages").body.count('<li class="message') == 3
    assert browser.get("/appointments").body.count('class="appointment"') == 2
    for path in PROTECTED_PAGES:
        page = browser.get(path).body
        assert re.search(r"<script(?![^>]*\bsrc=)", page) is None
        assert "<style" not in page and " style=" not in page


@pytest.mark.parametrize("path", PROTECTED_PAGES)
def test_protected_page_redirects_to_sign_in_when_signed_out(browser: Browser, path: str) -> None:
    reply = browser.get(path)
    assert reply.status == 303
    assert reply.location == f"/login?next={path}"


def test_signed_out_api_and_root(browser: Browser) -> None:
    me = browser.get("/api/me")
    assert me.status == 401
    assert me.header("Content-Type") == "application/json"
    assert browser.get("/").location == "/login"


def test_sign_in_honours_only_a_local_next(browser: Browser, accounts: Accounts) -> None:
    assert sign_in(browser, "patient.alvarez", accounts.alvarez, "/results").location == "/results"
    other = Browser(browser.portal)
    reply = sign_in(other, "patient.alvarez", accounts.alvarez, "//evil.example/steal")
    assert reply.location == "/dashboard"


def test_sign_in_refuses_a_missing_csrf_token(browser: Browser, accounts: Accounts) -> None:
    browser.get("/login")
    reply = browser.post_form(
        "/login", {"username": "patient.alvarez", "password": accounts.alvarez, "csrf_token": "x"}
    )
    assert reply.status == 403
    assert browser.get("/dashboard").status == 303


def test_sign_out_invalidates_the_server_side_session(browser: Browser, accounts: Accounts) -> None:
    assert sign_in(browser, "patient.alvarez", accounts.alvarez).status == 303
    captured = dict(browser.cookies)

    refused = browser.post_form("/logout", {"csrf_token": "forged"})
    assert refused.status == 403
    assert browser.get("/dashboard").status == 200

    reply = sign_out(browser)
    assert reply.status == 303
    assert reply.location == "/login?signed_out=1"
    expired = session_cookie(reply)
    assert "max-age=0" in expired.lower()
    assert cookie_attributes(expired) >= {"secure", "httponly", "samesite", "path"}
    assert HARDENED_COOKIE not in browser.cookies

    notice = browser.get("/login?signed_out=1")
    assert element_text(notice.body, "signed-out-notice") == "You have signed out."

    replay = Browser(browser.portal)
    replay.cookies.update(captured)
    assert replay.get("/dashboard").status == 303
    assert replay.get("/api/me").status == 401


def test_spa_sign_in(browser: Browser, accounts: Accounts) -> None:
    page = browser.get("/app/login")
    assert page.status == 200
    for element_id in ("spa-sign-in-form", "spa-username", "spa-password", "spa-sign-in"):
        assert f'id="{element_id}"' in page.body
    assert re.search(r'<p id="spa-error"[^>]*\bhidden\b', page.body)
    assert '<script src="/static/spa-login.js" defer></script>' in page.body
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.body)
    assert meta
    pre_token = browser.cookies[HARDENED_COOKIE]

    script = browser.get("/static/spa-login.js")
    assert script.status == 200
    assert "/api/login" in script.body and "X-CSRF-Token" in script.body

    no_csrf = browser.post_json(
        "/api/login", {"username": "patient.alvarez", "password": accounts.alvarez}, None
    )
    assert no_csrf.status == 403
    wrong = browser.post_json(
        "/api/login", {"username": "patient.alvarez", "password": "nope"}, meta.group(1)
    )
    unknown = browser.post_json(
        "/api/login", {"username": "patient.nobody", "password": "nope"}, meta.group(1)
    )
    assert wrong.status == unknown.status == 401
    assert wrong.body == unknown.body
    assert wrong.json() == {"error": "invalid_credentials", "message": GENERIC_ERROR}

    ok = browser.post_json(
        "/api/login", {"username": "patient.alvarez", "password": accounts.alvarez}, meta.group(1)
    )
    assert ok.status == 200
    assert ok.json() == {"signed_in": True, "redirect": "/dashboard"}
    assert browser.cookies[HARDENED_COOKIE] != pre_token
    assert browser.get("/api/me").status == 200


def test_session_store_enforces_idle_and_absolute_timeouts(tmp_path: Path) -> None:
    db = Database(tmp_path / "sessions.sqlite3")
    db.migrate()
    now = [1_000.0]
    store = SessionStore(db, idle_timeout=60, absolute_timeout=150, clock=lambda: now[0])

    idle_token, _ = store.create(None)
    now[0] += 59
    assert store.load(idle_token) is not None
    now[0] += 59
    assert store.load(idle_token) is not None, "activity must extend the idle deadline"
    now[0] += 61
    assert store.load(idle_token) is None
    now[0] -= 61
    assert store.load(idle_token) is None, "an expired session must be deleted"

    busy_token, _ = store.create(None)
    for _ in range(2):
        now[0] += 50
        assert store.load(busy_token) is not None
    now[0] += 50
    assert store.load(busy_token) is None, "the absolute timeout ends even an active session"


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
