"""A portal that throttles password changes: waited out within the budget, never a refusal.

A real HTTPS portal on 127.0.0.1 allows two password changes, then answers 429 (mode "status")
or shows "Too many password changes, slow down" in its error message (mode "message") until
a few seconds have passed. The password checks' keeper submits changes through the real driver
and Chromium.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from portal.contexts import launch_browser
from portal.driver import SelectorDriver
from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.password_keeper import PasswordKeeper
from portal.profile import Profile
from tests.local_portal import HtmlHandler, serve_https, write_profile

PASSWORD = "correct horse battery staple"
ENV = {"LOCAL_PASSWORD": PASSWORD}
WINDOW = 4.0  # seconds in which two changes are allowed
CHANGE_FORM = (
    '<form method="post" action="/pw"><input id="c" name="current" type="password">'
    '<input id="n" name="new" type="password"><button id="go">Change</button></form>'
)
SIGN_IN_FORM = (
    '<form method="post" action="/login"><input id="u" name="username">'
    '<input id="p" name="password" type="password"><button id="s">Sign in</button></form>'
)


class _Portal(HtmlHandler):
    mode = "status"
    password = PASSWORD
    changes: list[float] = []

    def do_GET(self) -> None:
        signed_in = "session=ok" in self.headers.get("Cookie", "")
        if self.path.startswith("/login"):
            self.send_html(200, SIGN_IN_FORM)
        elif not signed_in:
            self.send_html(302, "", {"Location": "/login"})
        elif self.path.startswith("/pw"):
            self.send_html(200, '<p id="me">alice</p>' + CHANGE_FORM)
        else:
            self.send_html(200, '<p id="me">alice</p><a id="out" href="/login">Sign out</a>')

    def do_POST(self) -> None:
        fields = self.form_fields()
        cls = type(self)
        if self.path.startswith("/login"):
            if fields.get("password") == cls.password:
                self.send_html(302, "", {"Location": "/home", "Set-Cookie": "session=ok; Path=/"})
            else:
                self.send_html(200, '<p id="err">Invalid.</p>' + SIGN_IN_FORM)
            return
        now = time.monotonic()
        recent = [t for t in cls.changes if now - t < WINDOW]
        if len(recent) >= 2:
            if cls.mode == "status":
                wait = math.ceil(WINDOW - (now - recent[0]))
                self.send_html(429, "Too Many Requests", {"Retry-After": str(wait)})
            else:
                self.send_html(200, '<p id="err">Too many password changes, slow down.</p>')
            return
        cls.changes.append(now)
        if fields.get("current") != cls.password:
            self.send_html(200, '<p id="err">The current password is wrong.</p>' + CHANGE_FORM)
        elif len(fields.get("new", "")) < 12:
            self.send_html(200, '<p id="err">Too short.</p>' + CHANGE_FORM)
        else:
            cls.password = fields["new"]
            self.send_html(200, '<p id="me">alice</p><p id="ok">Password changed.</p>')


PROFILE = """
    name: Throttling portal
    base_url: {0}
    sign_in: {{url: /login, username: "#u", password: "#p", submit: "#s", error: "#err"}}
    signed_in: {{url: /home, indicator: "#me"}}
    sign_out: {{control: "#out"}}
    protected_pages:
      - {{name: home, url: /home, patient_data: "#me"}}
    passwords:
      account: tester
      change: {{url: /pw, current_password: "#c", new_password: "#n", submit: "#go",
               success: "#ok", error: "#err"}}
    accounts:
      patient: {{username: alice, password: "${{LOCAL_PASSWORD}}"}}
      tester: {{username: alice, password: "${{LOCAL_PASSWORD}}", dedicated_test_account: true}}
    tls: {{ca_file: {1}}}
    timeouts: {{navigation_seconds: 3}}
    rate_limits: {{budget_seconds: {2}}}
"""


@contextmanager
def _portal(mode: str, tmp_path: Path, budget: float) -> Iterator[tuple[Profile, type[_Portal]]]:
    handler = type("Portal", (_Portal,), {"mode": mode, "password": PASSWORD, "changes": []})
    with serve_https(handler, tmp_path / "tls") as (base_url, ca_file):
        yield write_profile(tmp_path, PROFILE.format(base_url, ca_file, budget), ENV), handler


@pytest.fixture(scope="module")
def browser_runtime() -> Iterator[object]:
    with sync_playwright() as runtime:
        yield runtime


def _keeper(runtime: object, profile: Profile) -> tuple[Browser, PasswordKeeper]:
    browser = launch_browser(runtime, profile)  # type: ignore[arg-type]
    driver = SelectorDriver(profile, Redactor([PASSWORD]))
    account = profile.accounts["tester"]
    keeper = PasswordKeeper(
        driver, account, Redactor([PASSWORD]), set(), browser.new_page, profile.rate_limits
    )
    return browser, keeper


@pytest.mark.parametrize("mode", ["status", "message"])
def test_a_throttled_change_is_waited_out_and_never_read_as_a_refusal(
    mode: str, tmp_path: Path, browser_runtime: object
) -> None:
    with _portal(mode, tmp_path, budget=10) as (profile, portal):
        browser, keeper = _keeper(browser_runtime, profile)
        try:
            page = browser.new_page()
            assert keeper.sign_in(page)
            verdicts = [
                keeper.change(page, f"a fine long passphrase number {n}").verdict for n in range(3)
            ]
            assert verdicts == ["accepted", "accepted", "accepted"]
            assert keeper.pacer.throttles >= 1
            keeper.restore()
            assert portal.password == PASSWORD
        finally:
            browser.close()


def test_a_throttle_beyond_the_budget_is_inconclusive_and_says_so(
    tmp_path: Path, browser_runtime: object
) -> None:
    with _portal("status", tmp_path, budget=0) as (profile, _):
        browser, keeper = _keeper(browser_runtime, profile)
        try:
            page = browser.new_page()
            assert keeper.sign_in(page)
            keeper.change(page, "a fine long passphrase number 1")
            keeper.change(page, "a fine long passphrase number 2")
            with pytest.raises(Inconclusive) as caught:
                keeper.change(page, "a fine long passphrase number 3")
            message = str(caught.value)
            assert message.startswith("changing the password: throttled by the portal: HTTP 429")
            assert "password was changed by this check" in message
        finally:
            browser.close()
