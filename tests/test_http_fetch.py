"""``fetch`` against real HTTPS servers on 127.0.0.1 with a certificate authority made for the
test: headers, redirects, credentials, time limits and certificate verification."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from scanners.header_policy import HeaderPolicy, load_header_policy
from scanners.headers import evaluate_cache, evaluate_csp, evaluate_hsts, evaluate_misc
from scanners.http import fetch, make_ssl_context, redact_set_cookie
from tests.tls_servers import LeafSpec, LocalPki

SECRET = "s3cr3t-session-value-0123456789abcdef"
GOOD_HSTS = "max-age=63072000; includeSubDomains; preload"
GOOD_CSP = "default-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'"


@pytest.fixture(scope="module")
def policy() -> HeaderPolicy:
    return load_header_policy()


# --- fetch against real servers -------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: str
    leaf_cert: str
    leaf_key: str
    localhost_only_cert: str
    localhost_only_key: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    with LocalPki.create(tmp_path_factory.mktemp("pki")) as local:
        cert, key = local.issue("leaf", LeafSpec(names=("localhost",), addresses=("127.0.0.1",)))
        # Valid for "localhost" only, so a connection to 127.0.0.1 fails host-name checks.
        other_cert, other_key = local.issue("localhost", LeafSpec(names=("localhost",)))
        return Pki(
            ca_file=str(local.ca_file),
            leaf_cert=str(cert),
            leaf_key=str(key),
            localhost_only_cert=str(other_cert),
            localhost_only_key=str(other_key),
        )


Route = tuple[int, list[tuple[str, str]]]


class _HeaderServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Route], tls: ssl.SSLContext | None) -> None:
        self.routes = routes
        self.tls = tls
        self.seen_cookies: list[str | None] = []
        super().__init__(("127.0.0.1", 0), _RouteHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            # The handshake then happens in the handler thread, not the accept loop.
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that reject the certificate abort the handshake; that is the point of the test.
        pass


class _RouteHandler(BaseHTTPRequestHandler):
    server: _HeaderServer

    def do_GET(self) -> None:
        self.server.seen_cookies.append(self.headers.get("Cookie"))
        status, headers = self.server.routes.get(self.path, (404, []))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class RunningServer:
    base: str
    port: int
    seen_cookies: list[str | None]


@contextmanager
def _serve(routes: dict[str, Route], tls: ssl.SSLContext | None) -> Iterator[RunningServer]:
    server = _HeaderServer(routes, tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    port = server.server_address[1]
    scheme = "https" if tls else "http"
    try:
        yield RunningServer(
            base=f"{scheme}://127.0.0.1:{port}", port=port, seen_cookies=server.seen_cookies
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _server_tls(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


ROUTES: dict[str, Route] = {
    "/": (
        200,
        [
            ("Strict-Transport-Security", GOOD_HSTS),
            ("Content-Security-Policy", "object-src 'none'"),
            ("content-security-policy", "frame-ancestors 'none'; base-uri 'self'"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "unsafe-url, no-referrer"),
            ("Cache-Control", "no-store"),
            ("Set-Cookie", f"__Host-sid={SECRET}; Path=/; Secure; HttpOnly; SameSite=Lax"),
        ],
    ),
    "/old": (302, [("Location", "/"), ("Strict-Transport-Security", "max-age=60")]),
    "/loop": (302, [("Location", "/loop")]),
}


@pytest.fixture(scope="module")
def https_server(pki: Pki) -> Iterator[RunningServer]:
    with _serve(ROUTES, _server_tls(pki.leaf_cert, pki.leaf_key)) as server:
        yield server


@pytest.fixture()
def trusting(pki: Pki) -> ssl.SSLContext:
    return make_ssl_context(pki.ca_file)


def test_make_ssl_context_always_verifies(pki: Pki) -> None:
    context = make_ssl_context(pki.ca_file)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert make_ssl_context(None).verify_mode == ssl.CERT_REQUIRED


def test_fetch_records_headers_with_duplicates(
    https_server: RunningServer, trusting: ssl.SSLContext, policy: HeaderPolicy
) -> None:
    result = fetch(f"{https_server.base}/", ssl_context=trusting, timeout=5, kind="page")
    assert result.error is None and result.reachable
    assert result.status == 200
    assert result.kind == "page"
    assert result.elapsed > 0
    assert result.get("strict-TRANSPORT-security") == GOOD_HSTS
    assert result.get_all("CONTENT-SECURITY-POLICY") == (
        "object-src 'none'",
        "frame-ancestors 'none'; base-uri 'self'",
    )
    assert result.get("x-missing") is None
    assert (
        result.get("set-cookie") == "__Host-sid=[REDACTED]; Path=/; Secure; HttpOnly; SameSite=Lax"
    )
    assert SECRET not in repr(result)
    for evaluate in (evaluate_hsts, evaluate_csp, evaluate_misc, evaluate_cache):
        assert evaluate([result], policy).status == "passed"


def test_fetch_does_not_follow_redirects_by_default(
    https_server: RunningServer, trusting: ssl.SSLContext, policy: HeaderPolicy
) -> None:
    result = fetch(f"{https_server.base}/old", ssl_context=trusting, timeout=5, kind="redirect")
    assert result.status == 302
    assert result.location == "/"
    assert [f.key for f in evaluate_hsts([result], policy).findings] == ["hsts.max_age_too_short"]


def test_fetch_follows_redirects_when_asked(
    https_server: RunningServer, trusting: ssl.SSLContext
) -> None:
    result = fetch(
        f"{https_server.base}/old", ssl_context=trusting, timeout=5, follow_redirects=True
    )
    assert result.status == 200
    assert result.url == f"{https_server.base}/"
    assert result.redirects == (f"{https_server.base}/old",)


def test_fetch_keeps_credentials_on_the_same_origin_only(pki: Pki) -> None:
    tls = _server_tls(pki.leaf_cert, pki.leaf_key)
    with _serve({"/": (200, [])}, tls) as other:
        routes: dict[str, Route] = {
            "/same": (302, [("Location", "/away")]),
            "/away": (302, [("Location", f"https://localhost:{other.port}/")]),
        }
        with _serve(routes, tls) as first:
            result = fetch(
                f"{first.base}/same",
                ssl_context=make_ssl_context(pki.ca_file),
                timeout=5,
                headers={"Cookie": "sid=abc"},
                follow_redirects=True,
            )
            assert result.status == 200, result.error
            assert first.seen_cookies == ["sid=abc", "sid=abc"]
            assert other.seen_cookies == [None]


def test_fetch_stops_a_redirect_loop(https_server: RunningServer, trusting: ssl.SSLContext) -> None:
    result = fetch(
        f"{https_server.base}/loop", ssl_context=trusting, timeout=5, follow_redirects=True
    )
    assert result.error is not None and "redirects" in result.error
    assert result.status == 302


def test_fetch_head_and_not_found(https_server: RunningServer, trusting: ssl.SSLContext) -> None:
    result = fetch(
        f"{https_server.base}/nope", ssl_context=trusting, timeout=5, method="HEAD", kind="error"
    )
    assert result.status == 404 and result.error is None and result.kind == "error"


def test_fetch_plain_http_redirect_to_https(pki: Pki) -> None:
    routes: dict[str, Route] = {"/": (301, [("Location", "https://127.0.0.1/")])}
    with _serve(routes, None) as server:
        result = fetch(f"{server.base}/", ssl_context=None, timeout=5, kind="redirect")
        assert result.status == 301
        assert result.location == "https://127.0.0.1/"
        assert result.scheme == "http"


def test_fetch_closed_port_is_refused_without_raising() -> None:
    # Bound but not listening: the kernel answers the SYN with a reset, and nobody can take
    # the port while we hold it.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        result = fetch(f"https://127.0.0.1:{port}/", ssl_context=None, timeout=5)
    assert result.error == "connection refused"
    assert result.status is None and not result.reachable


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sid=abc; Secure", "sid=[REDACTED]; Secure"),
        ("sid=", "sid=[REDACTED]"),
        ("=abc", "=[REDACTED]"),
        ("junk", "junk=[REDACTED]"),
    ],
)
def test_set_cookie_values_are_not_kept(value: str, expected: str) -> None:
    assert redact_set_cookie(value) == expected


@pytest.mark.parametrize("scheme", ["https", "http"])
def test_fetch_silent_server_times_out_within_the_bound(scheme: str) -> None:
    # Listening but never accepting: the connection completes in the backlog and then
    # nothing is ever said.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        result = fetch(f"{scheme}://127.0.0.1:{port}/", ssl_context=None, timeout=0.4)
    assert result.error == "timed out"
    assert 0.3 <= result.elapsed < 1.5


def test_fetch_untrusted_certificate_is_a_verification_error(https_server: RunningServer) -> None:
    result = fetch(f"{https_server.base}/", ssl_context=make_ssl_context(None), timeout=5)
    assert result.status is None
    assert result.error is not None
    assert "verification failed" in result.error


def test_fetch_host_name_mismatch_is_a_verification_error(pki: Pki) -> None:
    tls = _server_tls(pki.localhost_only_cert, pki.localhost_only_key)
    with _serve({"/": (200, [])}, tls) as server:
        result = fetch(f"{server.base}/", ssl_context=make_ssl_context(pki.ca_file), timeout=5)
        assert result.error is not None
        assert "verification failed" in result.error and "127.0.0.1" in result.error


def test_fetch_rejects_non_http_urls() -> None:
    with pytest.raises(ValueError):
        fetch("ftp://127.0.0.1/", ssl_context=None)
    with pytest.raises(ValueError):
        fetch("https:///nohost", ssl_context=None)
