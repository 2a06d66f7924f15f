"""End-to-end tests of the bundled reference portal's sign-in, sessions and sign-out, over real
HTTPS on 127.0.0.1."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from reference_portal.db import Database
from reference_portal.launcher import RunningPortal
from reference_portal.sessions import SessionStore, hash_token

# The *_fixture names are the reference portal fixtures (one portal per module), used by name.
from tests.reference_client import (  # noqa: F401
    GENERIC_ERROR,
    HARDENED_COOKIE,
    PROTECTED_PAGES,
    Accounts,
    Browser,
    accounts_fixture,
    browser_fixture,
    cookie_attributes,
    csrf_from,
    element_text,
    portal_fixture,
    session_cookie,
    sign_in,
    sign_out,
)

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
