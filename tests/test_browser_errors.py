"""Browser failures in context: a throttled sign-in, an already signed-in page, raw errors.

A real HTTPS portal on 127.0.0.1 with a sign-in form that answers 429 once its budget of
sign-ins is used, and that sends a signed-in visitor on from the sign-in page to the dashboard.
The real driver signs in through Chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from portal.browser_errors import ServedPage, describe_browser_error
from portal.contexts import launch_browser
from portal.driver import SelectorDriver
from portal.errors import Inconclusive
from portal.evidence import Redactor
from portal.profile import Profile
from tests.local_portal import HtmlHandler, serve_https, write_profile

PASSWORD = "correct horse battery staple"
ENV = {"LOCAL_PASSWORD": PASSWORD}
SIGN_IN_FORM = (
    '<form method="post" action="/login"><input id="u" name="username">'
    '<input id="p" name="password" type="password"><button id="s">Sign in</button></form>'
)


class _Portal(HtmlHandler):
    allowed_sign_ins = 1
    sign_ins = 0

    def _signed_in(self) -> bool:
        return "session=ok" in self.headers.get("Cookie", "")

    def do_GET(self) -> None:
        if self.path.startswith("/logout"):
            self.send_html(302, "", {"Location": "/login", "Set-Cookie": "session=; Max-Age=0"})
        elif self.path.startswith("/login"):
            if self._signed_in():
                self.send_html(302, "", {"Location": "/home"})
            else:
                self.send_html(200, SIGN_IN_FORM)
        elif self._signed_in():
            self.send_html(200, '<p id="me">alice</p><a id="out" href="/logout">Sign out</a>')
        else:
            self.send_html(302, "", {"Location": "/login"})

    def do_POST(self) -> None:
        fields = self.form_fields()
        type(self).sign_ins += 1
        if type(self).sign_ins > self.allowed_sign_ins:
            self.send_html(429, "Too Many Requests", {"Retry-After": "60"})
        elif fields.get("password") == PASSWORD:
            self.send_html(302, "", {"Location": "/home", "Set-Cookie": "session=ok; Path=/"})
        else:
            self.send_html(200, '<p id="err">Invalid username or password.</p>' + SIGN_IN_FORM)


PROFILE = """
    name: Local portal
    base_url: {0}
    sign_in: {{url: /login, username: "#u", password: "#p", submit: "#s", error: "#err"}}
    signed_in: {{url: /home, indicator: "#me"}}
    sign_out: {{control: "#out"}}
    protected_pages:
      - {{name: home, url: /home, patient_data: "#me"}}
    accounts:
      patient: {{username: alice, password: "${{LOCAL_PASSWORD}}"}}
    tls: {{ca_file: {1}}}
    timeouts: {{navigation_seconds: 3}}
"""


@pytest.fixture
def browser_for(tmp_path: Path) -> Iterator[tuple[Browser, Profile]]:
    handler = type("Portal", (_Portal,), {"sign_ins": 0})
    with serve_https(handler, tmp_path / "tls") as (base_url, ca_file), sync_playwright() as pw:
        profile = write_profile(tmp_path, PROFILE.format(base_url, ca_file), ENV)
        browser = launch_browser(pw, profile)
        try:
            yield browser, profile
        finally:
            browser.close()


def test_a_signed_in_page_is_signed_out_before_signing_in_again_and_a_throttle_is_named(
    browser_for: tuple[Browser, Profile],
) -> None:
    browser, profile = browser_for
    driver = SelectorDriver(profile, Redactor([PASSWORD]))
    page = browser.new_page()
    first = driver.sign_in(page, profile.patient)
    assert first.signed_in, first.detail
    # Still signed in: the sign-in page sends the visitor on to the dashboard. The driver signs
    # out first, then the portal's sign-in budget is used up and it answers 429.
    second = driver.sign_in(page, profile.patient)
    assert not second.signed_in
    assert second.detail == (
        "throttled by the portal: HTTP 429, Retry-After 60 s after submitting the sign-in form"
    )
    page.close()


def test_a_missing_selector_is_told_with_action_selector_page_and_status(
    browser_for: tuple[Browser, Profile],
) -> None:
    browser, profile = browser_for
    driver = SelectorDriver(profile, Redactor([PASSWORD]))
    page = browser.new_page()
    driver._goto(page, "/login")
    with pytest.raises(Inconclusive) as caught:
        driver._click(page, "#no-such-button", "submitting the password change")
    message = str(caught.value)
    assert message.startswith("submitting the password change: could not click '#no-such-button'")
    assert "within 3 s" in message and "/login answered HTTP 200" in message
    assert "Timeout" not in message and "Locator" not in message
    page.close()


def test_raw_playwright_errors_are_described_never_copied() -> None:
    raw = PlaywrightError(
        'Locator.click: Timeout 30000ms exceeded.\nCall log:\n  - waiting for locator("#save")'
    )
    served = ServedPage("https://portal.test/account/password", 429, "30")
    text = describe_browser_error(raw, doing="while 'When the password is changed'", served=served)
    assert text == (
        "while 'When the password is changed': throttled by the portal: HTTP 429, Retry-After "
        "30 s; could not click '#save' within 30 s (last page "
        "https://portal.test/account/password answered HTTP 429)"
    )
    network = PlaywrightError("Page.goto: net::ERR_CONNECTION_REFUSED at https://x/\nCall log:")
    assert describe_browser_error(network, doing="opening https://x/") == (
        "opening https://x/: the page could not be loaded (ERR_CONNECTION_REFUSED)"
    )
