"""The scanners' one HTTP client (``scanners.http``) as the form client uses it: cookies kept
between requests, redirects followed only when a page is opened, every request bounded by one
deadline and a body cap, against local servers on 127.0.0.1."""

from __future__ import annotations

import ast
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from scanners.forms import FormClient
from scanners.http import MAX_BODY_BYTES, HttpSession, make_ssl_context
from steps.transport import sign_in_chain
from tests.tls_servers import LeafSpec, LocalPki

SCANNERS = Path(__file__).resolve().parent.parent / "scanners"
FORM = (
    b"<form method=post action=/login><input type=hidden name=csrf value=t1>"
    b"<input name=username><input name=password></form>"
)
DRIP_SECONDS = 3.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.seen: list[tuple[str, str, str | None]] = []  # method, path, Cookie header
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up on a dripping answer or reject the certificate hang up on
        # purpose: that is what these tests check.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: bytes = b"", *headers: tuple[str, str]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, what: str) -> None:
        """An answer that never finishes in time: one byte every 50 ms, of the head or body."""
        self.wfile.write(b"HTTP/1.0 200 OK\r\n")
        if what == "body":
            self.wfile.write(b"Content-Type: text/html\r\n\r\n")
        stop = time.monotonic() + DRIP_SECONDS
        while time.monotonic() < stop:
            self.wfile.write(b"X" if what == "head" else b"<")
            self.wfile.flush()
            time.sleep(0.05)

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, self.headers.get("Cookie")))
        if self.path == "/set":
            self._answer(200, b"", ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"))
        elif self.path == "/redirect":
            self._answer(
                302,
                b"",
                ("Location", "/elsewhere"),
                ("Set-Cookie", "c=3; Path=/"),
                ("Set-Cookie", "b=; Path=/; Max-Age=0"),
            )
        elif self.path.startswith("/drip-"):
            self._drip(self.path.removeprefix("/drip-"))
        elif self.path == "/huge":
            self.send_response(200)
            self.end_headers()
            chunk = b"x" * 65536
            for _ in range(MAX_BODY_BYTES // len(chunk) + 2):
                self.wfile.write(chunk)
        elif self.path == "/sign-in":  # a portal sending its visitor to an identity provider
            location = "/idp/auth?state=flow-state-1&nonce=n1"
            self._answer(302, b"", ("Location", location), ("Set-Cookie", "portal=p1; Path=/"))
        elif self.path.startswith("/idp/auth"):
            self._answer(303, b"", ("Location", "/idp/form"), ("Set-Cookie", "flow=f1; Path=/"))
        elif self.path == "/idp/form":  # found only with the cookie set on the way
            found = "flow=f1" in self.headers.get("Cookie", "")
            self._answer(200 if found else 400, FORM.replace(b"/login", b"/idp/login"))
        elif self.path == "/loop":
            self._answer(302, b"", ("Location", "/loop"))
        elif self.path == "/to-ftp":
            self._answer(302, b"", ("Location", "ftp://127.0.0.1/file?key=k"))
        elif self.path in ("/login", "/login-drip"):
            form = FORM.replace(b"/login", self.path.encode())
            self._answer(200, form, ("Set-Cookie", "sid=s1; Path=/"))
        else:
            self._answer(200, b"<p>echo</p>")

    def do_POST(self) -> None:
        self.server.seen.append(("POST", self.path, self.headers.get("Cookie")))
        fields = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        if self.path == "/login-drip":
            self._drip("body")
            return
        cookie = "flow=f1" if self.path == "/idp/login" else "sid=s1"
        ok = fields.get("csrf") == ["t1"] and cookie in self.headers.get("Cookie", "")
        self._answer(302 if ok else 403, b"", ("Location", "/home"), ("Set-Cookie", "s2=x"))


@contextmanager
def _serve(tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, _Server]]:
    server = _Server(tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    scheme = "https" if tls else "http"
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture()
def portal() -> Iterator[tuple[str, _Server]]:
    with _serve() as running:
        yield running


def cookies_sent(server: _Server, path: str) -> set[str]:
    header = next(cookie for _method, seen, cookie in server.seen if seen == path) or ""
    return {part.strip() for part in header.split(";") if part.strip()}


def test_a_session_keeps_cookies_between_requests_as_a_browser_does(
    portal: tuple[str, _Server],
) -> None:
    base, server = portal
    session = HttpSession(None, 5)
    assert session.request(f"{base}/set").status == 200
    redirect = session.request(f"{base}/redirect")
    session.request(f"{base}/echo")
    assert cookies_sent(server, "/redirect") == {"a=1", "b=2"}
    # Cookies set on a redirect are kept, and one expired by the server is dropped.
    assert cookies_sent(server, "/echo") == {"a=1", "c=3"}
    assert redirect.status == 302 and redirect.get("location") == "/elsewhere"
    assert "c=3" not in repr(redirect)


def test_a_session_follows_no_redirect(portal: tuple[str, _Server]) -> None:
    base, server = portal
    answer = HttpSession(None, 5).request(f"{base}/redirect")
    assert answer.status == 302 and answer.error is None
    assert [path for _method, path, _cookie in server.seen] == ["/redirect"]


def test_the_form_client_posts_with_the_page_cookie_and_does_not_follow_the_redirect(
    portal: tuple[str, _Server],
) -> None:
    base, server = portal
    answer = FormClient(ssl.create_default_context(), 5).submit(
        f"{base}/login", "username", {"username": "alice", "password": "x"}, ("alice",)
    )
    assert answer.error is None
    assert (answer.status, answer.location, answer.cookies_set) == (302, "/home", ("s2",))
    assert [(method, path) for method, path, _cookie in server.seen] == [
        ("GET", "/login"),
        ("POST", "/login"),
    ]


def test_opening_a_page_follows_its_redirects_with_the_cookies_set_on_the_way(
    portal: tuple[str, _Server],
) -> None:
    base, server = portal
    chain = HttpSession(None, 5).open_page(f"{base}/sign-in")
    assert [answer.status for answer in chain] == [302, 303, 200]
    assert chain[-1].url == f"{base}/idp/form" and chain[-1].error is None
    assert cookies_sent(server, "/idp/form") == {"portal=p1", "flow=f1"}
    # As header probes: the redirects, then the page; no query, no cookie value kept.
    probes = sign_in_chain(chain)
    assert [probe.kind for probe in probes] == ["redirect", "redirect", "page"]
    assert probes[0].location == "/idp/auth" and probes[1].url == f"{base}/idp/auth"
    assert probes[-1].redirects == (f"{base}/sign-in", f"{base}/idp/auth")
    assert "flow-state-1" not in repr(probes) and "f1" not in repr(probes)
    assert probes[1].get("set-cookie") == "flow=[REDACTED]; Path=/"


@pytest.mark.parametrize(
    ("path", "problem", "length"),
    [("/loop", "more than 10 redirects", 11), ("/to-ftp", "unsupported URL: ftp://", 1)],
)
def test_a_redirect_chain_that_does_not_end_on_a_page_is_an_error(
    portal: tuple[str, _Server], path: str, problem: str, length: int
) -> None:
    base, _server = portal
    chain = HttpSession(None, 5).open_page(f"{base}{path}")
    assert len(chain) == length and chain[-1].status == 302
    assert chain[-1].error is not None and problem in chain[-1].error
    assert "key=k" not in chain[-1].error


def test_the_form_client_finds_the_form_where_the_sign_in_url_leads(
    portal: tuple[str, _Server],
) -> None:
    base, server = portal
    answer = FormClient(ssl.create_default_context(), 5).submit(
        f"{base}/sign-in", "username", {"username": "alice", "password": "x"}, ("alice",)
    )
    assert answer.error is None and answer.status == 302
    assert [(method, path) for method, path, _cookie in server.seen][-2:] == [
        ("GET", "/idp/form"),
        ("POST", "/idp/login"),
    ]
    assert "flow=f1" in (server.seen[-1][2] or "")


@pytest.mark.parametrize("where", ["head", "body"])
def test_a_dripping_answer_is_a_timeout_within_the_deadline(
    portal: tuple[str, _Server], where: str
) -> None:
    base, _server = portal
    started = time.monotonic()
    answer = HttpSession(None, 0.5).request(f"{base}/drip-{where}")
    assert answer.error == "timed out" and answer.status is None
    assert time.monotonic() - started < 1.5


def test_the_form_client_gives_up_on_a_dripping_form_page_within_its_timeout(
    portal: tuple[str, _Server],
) -> None:
    base, _server = portal
    started = time.monotonic()
    answer = FormClient(ssl.create_default_context(), 0.5).submit(
        f"{base}/drip-body", "username", {"username": "alice"}, ()
    )
    assert (answer.status, answer.error) == (None, "timed out")
    assert time.monotonic() - started < 1.5


def test_the_form_client_gives_up_on_a_dripping_answer_to_its_post_within_its_timeout(
    portal: tuple[str, _Server],
) -> None:
    base, _server = portal
    started = time.monotonic()
    answer = FormClient(ssl.create_default_context(), 0.5).submit(
        f"{base}/login-drip", "username", {"username": "alice"}, ()
    )
    assert (answer.status, answer.error) == (None, "timed out")
    # Two requests, each bounded by the timeout.
    assert time.monotonic() - started < 2.0


def test_a_body_over_the_cap_is_an_error(portal: tuple[str, _Server]) -> None:
    base, _server = portal
    answer = HttpSession(None, 10).request(f"{base}/huge")
    assert answer.status is None
    assert answer.error == (
        f"invalid HTTP response: HTTPException the answer is larger than {MAX_BODY_BYTES} bytes"
    )


def test_the_form_client_verifies_the_certificate(tmp_path: Path) -> None:
    with LocalPki.create(tmp_path) as pki:
        cert, key = pki.issue("leaf", LeafSpec(names=("localhost",), addresses=("127.0.0.1",)))
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        with _serve(tls) as (base, _server):
            untrusted = FormClient(make_ssl_context(None), 5).submit(
                f"{base}/login", "username", {}, ()
            )
            trusted = FormClient(make_ssl_context(str(pki.ca_file)), 5).submit(
                f"{base}/login", "username", {"username": "alice"}, ()
            )
    assert untrusted.status is None and untrusted.error is not None
    assert untrusted.error.startswith("TLS certificate verification failed")
    assert trusted.error is None and trusted.status == 302


def test_only_scanners_http_speaks_http() -> None:
    """One client: no other scanner opens HTTP connections or keeps cookies itself."""
    clients = {"urllib.request", "http.client", "http.cookiejar", "requests", "httpx"}
    for path in sorted(SCANNERS.glob("*.py")):
        if path.name == "http.py":
            continue
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
                imported.update(f"{node.module}.{alias.name}" for alias in node.names)
        assert not imported & clients, path.name
