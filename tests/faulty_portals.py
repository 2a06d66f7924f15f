"""Faulty portals on 127.0.0.1, each broken in one way, and running a whole audit against one.

``HealthyPortal`` is a small portal that passes the controls these tests select; each faulty
portal breaks it in one way (every page a 500, a redirect loop, a CAPTCHA after sign-in, a
sign-out that does nothing, a server that dies mid-run, ...), or is a raw socket server where
HTTP cannot express the fault (a port that accepts TCP and never answers, TLS that is not TLS).
``FaultyPortal`` describes one: how to serve it, which controls to audit, and what the audit must
conclude. ``audit_faulty_portal`` serves it, writes its profile and runs
``python -m portal.audit`` as a user would, with a hard limit on the wall time.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from reference_portal.tls import generate_tls_material, server_context
from tests.local_portal import HtmlHandler

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_VARIABLE = "FAULTY_PATIENT_PASSWORD"
DISPLAY_NAME = "Alice Faultless"
# Every page of the healthy portal sends these, so header controls would pass on it.
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000",
    "Content-Security-Policy": (
        "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SIGN_IN_FORM = (
    '<form method="post" action="/login"><input id="u" name="username">'
    '<input id="p" name="password" type="password"><button id="s">Sign in</button></form>'
)
HOME = (
    f'<p id="me">{DISPLAY_NAME}</p><p id="data">Latest results: HbA1c 5.4 %</p>'
    '<a id="out" href="/logout">Sign out</a>'
)


# -- the healthy portal and its faulty variants ----------------------------------------------


class HealthyPortal(HtmlHandler):
    """Sign-in, a signed-in home page, sign-out; server-side sessions; every security header.

    Subclasses override one behaviour. State lives on the class, so each served portal gets a
    fresh subclass (``_fresh``).
    """

    password = ""
    sessions: set[str] = set()
    # Connections a client opened but never used do not hold a handler thread forever.
    timeout = 30

    def setup(self) -> None:
        super().setup()
        # TLS is set up at once, whatever the portal then does with the request.
        self.connection.do_handshake()

    def send_page(self, status: int, body: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_html(status, body, SECURITY_HEADERS | dict(headers or {}))

    def redirect(self, location: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_page(302, "", {"Location": location, **(headers or {})})

    def session(self) -> str:
        return self.cookie("sid") or ""

    def signed_in(self) -> bool:
        return self.session() in self.sessions

    @property
    def route(self) -> str:
        return self.path.split("?", 1)[0]

    def do_GET(self) -> None:
        route = self.route
        if route == "/login":
            if self.signed_in():
                self.redirect("/home")
            else:
                self.send_page(200, SIGN_IN_FORM)
        elif route == "/home":
            if self.signed_in():
                self.send_page(200, HOME)
            else:
                self.redirect("/login")
        elif route == "/logout":
            self.sign_out()
        elif route == "/static/app.css":
            self.send_page(200, "")
        else:
            self.send_page(404, "<h1>Not found</h1>")

    def sign_out(self) -> None:
        type(self).sessions.discard(self.session())
        self.redirect("/login", {"Set-Cookie": "sid=; Max-Age=0; Path=/; Secure; HttpOnly"})

    def do_POST(self) -> None:
        fields = self.form_fields()
        if self.route != "/login":
            self.send_page(404, "<h1>Not found</h1>")
        elif fields.get("password") == self.password and fields.get("username") == "alice":
            self.signed_in_answer()
        else:
            self.refuse_sign_in()

    def signed_in_answer(self) -> None:
        token = secrets.token_urlsafe(24)
        type(self).sessions.add(token)
        cookie = f"sid={token}; Path=/; Secure; HttpOnly; SameSite=Lax"
        self.redirect("/home", {"Set-Cookie": cookie})

    def refuse_sign_in(self) -> None:
        self.send_page(200, '<p id="err">Invalid username or password.</p>' + SIGN_IN_FORM)


class EveryPageFails(HealthyPortal):
    """Every request answers HTTP 500, with every security header (a proxy's error page)."""

    def do_GET(self) -> None:
        self.send_page(500, "<h1>Internal Server Error</h1>")

    def do_POST(self) -> None:
        self.do_GET()


class ThrottlesEverything(HealthyPortal):
    """Every request answers HTTP 429 with Retry-After."""

    def do_GET(self) -> None:
        self.send_page(429, "<h1>Too Many Requests</h1>", {"Retry-After": "120"})

    def do_POST(self) -> None:
        self.do_GET()


class RedirectLoop(HealthyPortal):
    """Every URL redirects, in a loop between two addresses that never end."""

    def do_GET(self) -> None:
        self.redirect("/loop-b" if self.route == "/loop-a" else "/loop-a")

    def do_POST(self) -> None:
        self.do_GET()


class GarbageBody(HealthyPortal):
    """Every page is 200 text/html holding binary noise and broken markup."""

    def do_GET(self) -> None:
        noise = secrets.token_bytes(2048) + b"<form <input id=\x00 <<<</b></html"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(noise)))
        self.end_headers()
        self.wfile.write(noise)

    def do_POST(self) -> None:
        self.do_GET()


class CaptchaAfterSignIn(HealthyPortal):
    """The right password leads to a CAPTCHA page instead of the signed-in page."""

    def do_GET(self) -> None:
        if self.route == "/verify":
            self.send_page(
                200,
                "<h1>One more step</h1><p>Please confirm you are not a robot.</p>"
                '<iframe src="/recaptcha/api2/anchor?k=local" title="reCAPTCHA" width="300" '
                'height="80"></iframe><button id="continue">Continue</button>',
            )
        elif self.route.startswith("/recaptcha/"):
            self.send_page(200, '<label><input type="checkbox"> I am not a robot</label>')
        else:
            super().do_GET()

    def signed_in_answer(self) -> None:
        self.redirect("/verify")


class SignOutDoesNothing(HealthyPortal):
    """The sign-out link goes back to the signed-in page: neither session nor cookie ends."""

    def sign_out(self) -> None:
        self.redirect("/home")


class DiesMidRun(HealthyPortal):
    """Serves normally until its second sign-out, answers that, then stops for good.

    The preflight signs out once; the second sign-out is the one SESS_LOGOUT tests, so the
    portal is gone when that control replays the session.
    """

    sign_outs = 0
    dead = False

    def handle(self) -> None:
        if type(self).dead:
            return  # the connection closes without a byte: a portal that went away
        super().handle()

    def sign_out(self) -> None:
        type(self).sign_outs += 1
        super().sign_out()
        if type(self).sign_outs >= 2:
            type(self).dead = True
            server = self.server
            assert isinstance(server, ThreadingHTTPServer)
            threading.Thread(target=_stop_listening, args=(server,), daemon=True).start()


def _stop_listening(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.socket.close()


class RefusesEverySignIn(HealthyPortal):
    """The sign-in form refuses the right password as if it were wrong."""

    def do_POST(self) -> None:
        self.refuse_sign_in()


class UnexpectedMarkup(HealthyPortal):
    """The sign-in page's form has other field names than the profile's selectors expect."""

    def do_GET(self) -> None:
        if self.route == "/login" and not self.signed_in():
            form = SIGN_IN_FORM.replace('id="u"', 'id="user-name"').replace('id="p"', 'id="pw"')
            self.send_page(200, form)
        else:
            super().do_GET()


class NoSessionAtAll(HealthyPortal):
    """Every page is public: the signed-in page and its patient data need no session."""

    def signed_in(self) -> bool:
        return self.route != "/login"

    def signed_in_answer(self) -> None:
        self.redirect("/home")


class FrameNeverAnswered(HealthyPortal):
    """A normal portal, except that a request for a page inside a frame gets no answer at all.

    The framing check must not read the empty frame as framing refused.
    """

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline or not self.parse_request():
            self.close_connection = True
            return
        if self.headers.get("Sec-Fetch-Dest") == "iframe":
            self.close_connection = True
            return  # hang up without a byte
        method = getattr(self, f"do_{self.command}", None)
        if method is None:
            self.send_error(501)
        else:
            method()
        self.wfile.flush()


class SlowToAnswer(HealthyPortal):
    """Every answer comes after 12 s."""

    def handle_one_request(self) -> None:
        time.sleep(12)
        super().handle_one_request()


def _fresh(handler: type[HealthyPortal], password: str) -> type[HealthyPortal]:
    """A subclass with its own state, so portals served at once share nothing."""
    state: dict[str, Any] = {"password": password, "sessions": set()}
    if issubclass(handler, DiesMidRun):
        state |= {"sign_outs": 0, "dead": False}
    return type(handler.__name__, (handler,), state)


# -- serving ---------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-request is expected here, not worth a traceback


@dataclass(frozen=True)
class Served:
    base_url: str
    ca_file: str


@contextmanager
def serve_http_portal(
    handler: type[HealthyPortal],
    directory: Path,
    password: str,
    *,
    leaf_lifetime: dt.timedelta | None = None,
) -> Iterator[Served]:
    """``handler`` over HTTPS on a free port of 127.0.0.1 (an expired leaf if asked)."""
    if leaf_lifetime is None:
        material = generate_tls_material(directory, host="127.0.0.1")
    else:
        material = generate_tls_material(directory, host="127.0.0.1", leaf_lifetime=leaf_lifetime)
    server = _Server(("127.0.0.1", 0), _fresh(handler, password))
    # The handshake runs in each connection's own thread, so a client that connects and says
    # nothing cannot stall the portal for everyone.
    server.socket = server_context(material).wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"https://127.0.0.1:{server.server_address[1]}/", str(material.ca_file))
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_raw(answer: Callable[[socket.socket], None], directory: Path) -> Iterator[Served]:
    """A TCP listener whose every connection gets ``answer(connection)``; never HTTP or TLS.

    ``answer`` may return at once (the connection then stays open, unanswered, until the end).
    A CA file is still made, as a profile for a real portal would name one.
    """
    material = generate_tls_material(directory, host="127.0.0.1")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stopped = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stopped.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(connection)
            threading.Thread(target=answer, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield Served(f"https://127.0.0.1:{listener.getsockname()[1]}/", str(material.ca_file))
    finally:
        stopped.set()
        thread.join(5)
        listener.close()
        for connection in held:
            connection.close()


def never_answer(connection: socket.socket) -> None:
    """Accept the connection and say nothing, ever (it stays open until the portal stops)."""


def answer_plain_text(connection: socket.socket) -> None:
    """Whatever the client sends (a TLS ClientHello), answer plain-text HTTP and hang up."""
    try:
        connection.settimeout(5)
        connection.recv(4096)
        connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def closed_port() -> int:
    """A port of 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- the portals the tests audit ----------------------------------------------------------


Serve = Callable[[Path, str], AbstractContextManager[Served]]


def http_portal(handler: type[HealthyPortal], **options: Any) -> Serve:
    return lambda directory, password: serve_http_portal(handler, directory, password, **options)


def raw_portal(answer: Callable[[socket.socket], None]) -> Serve:
    return lambda directory, _password: serve_raw(answer, directory)


@dataclass(frozen=True)
class FaultyPortal:
    """A portal with one fault, the controls audited and what the audit must conclude.

    ``reasons``: a word or phrase each control's reason must hold, naming the fault
    (case-insensitive). ``may_pass``: selected controls the fault leaves untouched, so passing
    is legitimate; every other selected control passing would be a false pass. ``failed``:
    controls that must fail (the fault is what they exist to detect). ``measured``: a pattern
    the control's measurement must hold.
    """

    key: str
    fault: str
    serve: Serve
    controls: tuple[str, ...]
    status: int
    bound_seconds: float
    reasons: Mapping[str, tuple[str, ...]]
    may_pass: frozenset[str] = frozenset()
    failed: frozenset[str] = frozenset()
    measured: Mapping[str, str] = field(default_factory=dict)
    reachability_seconds: float = 4
    navigation_seconds: float = 4
    run_seconds: float | None = None

    @property
    def markexpr(self) -> str:
        return " or ".join(control.lower() for control in self.controls)


def profile_text(portal: FaultyPortal, served: Served) -> str:
    timeouts = {
        "reachability_seconds": portal.reachability_seconds,
        "navigation_seconds": portal.navigation_seconds,
    }
    if portal.run_seconds is not None:
        timeouts["run_seconds"] = portal.run_seconds
    listed = ", ".join(f"{name}: {value:g}" for name, value in timeouts.items())
    return textwrap.dedent(
        f"""\
        name: "Faulty portal: {portal.key}"
        base_url: {served.base_url}
        plain_http_url: http://127.0.0.1:{closed_port()}/
        sign_in: {{url: /login, username: "#u", password: "#p", submit: "#s", error: "#err"}}
        signed_in: {{url: /home, indicator: "#me"}}
        sign_out: {{control: "#out"}}
        protected_pages:
          - {{name: home, url: /home, patient_data: "#data"}}
        accounts:
          patient:
            username: alice
            password: ${{{PASSWORD_VARIABLE}}}
            display_name: {DISPLAY_NAME}
        tls: {{ca_file: {served.ca_file}}}
        headers: {{error_page: /missing, static_files: [/static/app.css]}}
        timeouts: {{{listed}}}
        destructive_checks_allowed: false
        """
    )


# -- running an audit ----------------------------------------------------------------------


@dataclass(frozen=True)
class FaultyRun:
    """What an audit of a faulty portal ended with. ``status`` None: killed at the hard limit."""

    status: int | None
    seconds: float
    summary: dict[str, Any] | None
    output: str = field(repr=False)

    def control(self, control_id: str) -> dict[str, Any]:
        assert self.summary is not None, self.output
        result: dict[str, Any] = self.summary["controls"][control_id]
        return result


def audit_faulty_portal(portal: FaultyPortal, directory: Path, hard_limit: float) -> FaultyRun:
    """Serve ``portal``, audit it with its controls, stop it; kill the audit at ``hard_limit``."""
    password = "Pw-" + secrets.token_urlsafe(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFERENCE_", "PORTAL_"))}
    env[PASSWORD_VARIABLE] = password
    run_dir = directory / "run"
    with portal.serve(directory / "tls", password) as served:
        profile = directory / "profile.yaml"
        profile.write_text(profile_text(portal, served), encoding="utf-8")
        command = [
            sys.executable, "-m", "portal.audit", "--profile", str(profile), "--run-dir",
            str(run_dir), "--no-latest", "--no-html", "--deny-destructive", "-m", portal.markexpr,
        ]  # fmt: skip
        started = time.monotonic()
        # A session of its own, so the audit's pytest and browser go with it at the hard limit.
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        status: int | None
        try:
            output, _ = process.communicate(timeout=hard_limit)
            status = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            status = None
        seconds = time.monotonic() - started
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    return FaultyRun(status, seconds, summary, output)
