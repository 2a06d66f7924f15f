"""A plain HTTPS client of the bundled reference portal for its own tests: the seeded accounts,
a cookie-keeping browser over http.client, sign-in and sign-out, and the portal fixtures."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from portal.catalogue import load_catalogue
from reference_portal import launcher
from reference_portal.launcher import RunningPortal

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


@pytest.fixture(scope="module", name="accounts")
def accounts_fixture() -> Accounts:
    return Accounts(alvarez=secrets.token_urlsafe(18), okafor=secrets.token_urlsafe(18))


@pytest.fixture(scope="module", name="portal")
def portal_fixture(accounts: Accounts) -> Iterator[RunningPortal]:
    running = launcher.start(env=accounts.env())
    try:
        yield running
    finally:
        assert running.stop() == 0, running.stderr_tail()


@pytest.fixture(name="browser")
def browser_fixture(portal: RunningPortal) -> Browser:
    return Browser(portal)
