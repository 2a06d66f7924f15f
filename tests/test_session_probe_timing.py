"""SESS_ABS's and SESS_IDLE's probes against a portal whose signed-out answer is slow.

The portal ends every session a fixed time after it was made (or never), and a page without a
session goes through a redirect that takes seconds to answer before the sign-in form shows, as
an identity provider's chain does on a loaded machine. The probes must time a signed-out
replay by the portal's first answer, not by when the form finally showed, and must count a
session's age from when it could first have existed. Real HTTPS on 127.0.0.1, a real browser.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TypeVar

import pytest
from playwright.sync_api import Browser, sync_playwright

from portal.background import ProbeContext
from portal.contexts import launch_browser
from portal.driver import SelectorDriver
from portal.evidence import Redactor
from portal.profile import Profile
from portal.session_probes import busy_schedule, measure_absolute_timeout, measure_idle_timeout
from scanners.timeouts import evaluate_absolute, evaluate_idle
from tests.local_portal import HtmlHandler, serve_https, write_profile

T = TypeVar("T")
PASSWORD = "Timing-test-" + secrets.token_urlsafe(12)
ABSOLUTE = 4.0
IDLE = 3.0
SLOW_HOP = 3.0  # the signed-out redirect's answer: longer than the grace (2 s)
FORM = (
    "<form method=post action=/login><input id=user name=user><input id=password "
    "name=password type=password><button id=sign-in>Sign in</button></form>"
)


@dataclass
class Sessions:
    lifetime: float | None  # None: sessions never end
    idle: float | None = None  # None: no idle timeout
    made: dict[str, tuple[float, float]] = field(default_factory=dict)  # sid -> made, last use
    lock: threading.Lock = field(default_factory=threading.Lock)

    def alive(self, sid: str | None) -> bool:
        with self.lock:
            if sid not in self.made:
                return False
            made, used = self.made[sid]
            now = time.monotonic()
            if self.lifetime is not None and now - made >= self.lifetime:
                return False
            if self.idle is not None and now - used >= self.idle:
                return False
            self.made[sid] = (made, now)
            return True


def handler_for(sessions: Sessions) -> type[BaseHTTPRequestHandler]:
    class Handler(HtmlHandler):
        def do_GET(self) -> None:
            if self.path == "/home":
                if sessions.alive(self.cookie("sid")):
                    self.send_html(200, '<p id=me>Ana</p><a id=sign-out href="/out">out</a>')
                else:
                    self.redirect("/hop")
            elif self.path == "/hop":
                time.sleep(SLOW_HOP)
                self.redirect("/login")
            else:
                self.send_html(200, FORM)

        def do_POST(self) -> None:
            fields = self.form_fields()
            if fields.get("password") != PASSWORD:
                self.send_html(200, "<p id=error>No</p>" + FORM)
                return
            sid = secrets.token_urlsafe(16)
            with sessions.lock:
                sessions.made[sid] = (time.monotonic(), time.monotonic())
            self.redirect("/home", {"Set-Cookie": f"sid={sid}; Path=/; Secure; HttpOnly"})

    return Handler


PROFILE = """
    name: Slow signed-out answer
    base_url: {base_url}
    sign_in: {{url: /login, username: "#user", password: "#password", submit: "#sign-in",
              error: "#error"}}
    signed_in: {{url: /home, indicator: "#me"}}
    sign_out: {{control: "#sign-out"}}
    protected_pages:
      - {{name: home, url: /home, patient_data: "#me"}}
    accounts:
      patient: {{username: ana, password: "${{TIMING_PASSWORD}}"}}
    session_cookies: [sid]
    tls: {{ca_file: {ca_file}}}
    timeouts: {{navigation_seconds: 10}}
    policy: {{absolute_timeout_seconds: {absolute}, idle_timeout_seconds: {idle}}}
"""


@dataclass
class Portal:
    sessions: Sessions
    profile: Profile


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    sessions = Sessions(lifetime=ABSOLUTE)
    directory = tmp_path_factory.mktemp("timing")
    with serve_https(handler_for(sessions), directory / "tls") as (base_url, ca_file):
        text = PROFILE.format(base_url=base_url, ca_file=ca_file, absolute=ABSOLUTE, idle=IDLE)
        yield Portal(sessions, write_profile(directory, text, {"TIMING_PASSWORD": PASSWORD}))


@pytest.fixture(scope="module")
def browser(portal: Portal) -> Iterator[Browser]:
    with sync_playwright() as runtime:
        launched = launch_browser(runtime, portal.profile)
        yield launched
        launched.close()


def measure(portal: Portal, browser: Browser, probe: Callable[[ProbeContext], T]) -> T:
    """Run one probe against the portal as the run would, in a fresh probe context."""
    redactor = Redactor(portal.profile.secrets())
    driver = SelectorDriver(portal.profile, redactor)
    context = ProbeContext("TEST", portal.profile, driver, redactor, browser, threading.Event())
    try:
        return probe(context)
    finally:
        context.close()


def test_the_busy_session_is_checked_through_the_grace() -> None:
    grace = [40 + 0.25 * step for step in range(9)]
    assert busy_schedule(40, 6.7, 2) == pytest.approx([6.7, 13.4, 20.1, 26.8, 33.5, *grace])
    assert busy_schedule(4, 1, 2) == pytest.approx([1, 2, 3, *(4 + 0.25 * s for s in range(9))])


def test_a_session_that_ends_on_time_passes_though_the_signed_out_answer_is_slow(
    portal: Portal, browser: Browser
) -> None:
    portal.sessions.lifetime, portal.sessions.idle = ABSOLUTE, None
    measurement = measure(portal, browser, measure_absolute_timeout)
    result = evaluate_absolute(measurement)
    assert result.status == "passed", result
    gone = [check for check in measurement.checks if not check.signed_in]
    # Counted from the portal's first answer, not from the form shown SLOW_HOP seconds later.
    assert gone and gone[0].seconds <= ABSOLUTE + 2.0


def test_a_session_that_never_ends_fails(portal: Portal, browser: Browser) -> None:
    portal.sessions.lifetime, portal.sessions.idle = None, None
    result = evaluate_absolute(measure(portal, browser, measure_absolute_timeout))
    assert result.status == "failed", result
    assert "still signed in" in result.reason


def test_idle_sessions_are_bracketed_though_every_sign_in_and_signed_out_answer_is_slow(
    portal: Portal, browser: Browser
) -> None:
    portal.sessions.lifetime, portal.sessions.idle = None, IDLE
    result = evaluate_idle(measure(portal, browser, measure_idle_timeout))
    assert result.status == "passed", result
