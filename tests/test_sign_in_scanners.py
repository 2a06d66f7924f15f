"""What sign-in leaves and how it travels: the session cookie attributes (SESS_COOKIE) and the
sign-in page's transport (AUTH_HTTPS), judged on hand-written records and probes."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from scanners.cookies import (
    CookieRecord,
    evaluate_session_cookies,
    session_cookie_names,
)
from scanners.http import HttpProbe
from scanners.sign_in_transport import evaluate_credentials_transport, evaluate_https_redirect

# --- cookies ------------------------------------------------------------------------------

SECRET = "s3cr3t-session-value-0123456789abcdef"


def pw_cookie(name: str, value: str = SECRET, **attributes: Any) -> dict[str, Any]:
    cookie: dict[str, Any] = {
        "name": name,
        "value": value,
        "domain": "portal.test",
        "path": "/",
        "expires": -1,
        "httpOnly": True,
        "secure": True,
        "sameSite": "Lax",
    }
    cookie.update(attributes)
    return cookie


def test_cookie_record_keeps_no_value() -> None:
    record = CookieRecord.from_playwright(pw_cookie("__Host-sid"))
    assert "value" not in {f.name for f in fields(CookieRecord)}
    assert record.value_length == len(SECRET)
    assert SECRET not in repr(record)
    assert record.same_site == "Lax" and record.secure and record.http_only


def test_cookie_record_normalises_samesite() -> None:
    assert CookieRecord.from_playwright(pw_cookie("a", sameSite="strict")).same_site == "Strict"
    missing = pw_cookie("a")
    del missing["sameSite"]
    assert CookieRecord.from_playwright(missing).same_site is None


def test_session_cookie_names_finds_added_and_changed_cookies() -> None:
    before = [
        pw_cookie("pre", value="old"),
        pw_cookie("theme", value="dark"),
        pw_cookie("scoped", value="x", path="/a"),
    ]
    after = [
        pw_cookie("theme", value="dark"),
        pw_cookie("pre", value="new"),
        pw_cookie("__Host-sid"),
        pw_cookie("scoped", value="x", path="/a"),
        pw_cookie("scoped", value="x", path="/b"),
    ]
    assert session_cookie_names(before, after) == ["pre", "__Host-sid", "scoped"]
    assert session_cookie_names(after, after) == []


def test_session_cookie_compliant_with_host_prefix() -> None:
    records = [CookieRecord.from_playwright(pw_cookie("__Host-sid", sameSite="Strict"))]
    result = evaluate_session_cookies(records, ["__Host-sid"])
    assert result.status == "passed"
    assert result.findings == ()
    assert "Secure, HttpOnly, SameSite=Strict" in result.measured
    assert SECRET not in result.describe() + result.measured


def test_session_cookie_without_host_prefix_is_only_a_warning() -> None:
    result = evaluate_session_cookies([CookieRecord.from_playwright(pw_cookie("sid"))], ["sid"])
    assert result.status == "passed"
    assert [f.key for f in result.warnings] == ["cookie.no_host_prefix"]


def test_session_cookie_weak_attributes() -> None:
    records = [
        CookieRecord.from_playwright(
            pw_cookie("sid", secure=False, httpOnly=False, sameSite="None")
        ),
        CookieRecord.from_playwright(
            {k: v for k, v in pw_cookie("__Host-auth").items() if k != "sameSite"}
        ),
        CookieRecord.from_playwright(pw_cookie("theme", secure=False)),
    ]
    result = evaluate_session_cookies(records, ["sid", "__Host-auth"])
    assert result.status == "failed"
    assert [f.key for f in result.findings] == [
        "cookie.not_secure",
        "cookie.not_httponly",
        "cookie.samesite_weak",
        "cookie.no_host_prefix",
        "cookie.samesite_weak",
    ]
    assert result.findings[0].where == "sid (portal.test/)"
    assert "no SameSite" in result.findings[4].message
    assert SECRET not in result.describe() + result.measured


def test_no_session_cookie_is_inconclusive() -> None:
    records = [CookieRecord.from_playwright(pw_cookie("theme"))]
    assert evaluate_session_cookies(records, []).status == "inconclusive"
    assert evaluate_session_cookies(records, ["sid"]).status == "inconclusive"


# -- AUTH_HTTPS --------------------------------------------------------------------------------


def plain(status: int | None, location: str | None = None, error: str | None = None) -> HttpProbe:
    return HttpProbe(
        url="http://p.test/sign-in", kind="http", status=status, location=location, error=error
    )


def test_plain_http_redirecting_to_https_passes() -> None:
    result = evaluate_https_redirect(plain(301, "https://p.test/sign-in"))
    assert result.status == "passed"
    assert result.measured == "plain HTTP answered 301 -> https://p.test/sign-in"


def test_plain_http_not_served_at_all_passes() -> None:
    result = evaluate_https_redirect(plain(None, error="connection refused"))
    assert result.status == "passed"
    assert result.measured == "plain HTTP is not served at all (connection refused)"


@pytest.mark.parametrize(
    ("status", "location"),
    [(200, None), (302, "http://p.test/sign-in"), (404, "https://p.test/")],
)
def test_plain_http_served_or_redirected_elsewhere_fails(status: int, location: str | None) -> None:
    result = evaluate_https_redirect(plain(status, location))
    assert result.status == "failed"
    assert [f.key for f in result.findings] == ["https.plain_http_served"]


def test_plain_http_that_could_not_be_probed_is_inconclusive() -> None:
    result = evaluate_https_redirect(plain(None, error="timed out"))
    assert result.status == "inconclusive"
    assert result.reason == "plain HTTP could not be probed: timed out"


def test_password_sent_only_over_https_passes() -> None:
    result = evaluate_credentials_transport(["https://p.test/sign-in", "https://p.test/api"])
    assert result.status == "passed"
    assert result.measured == "requests carrying the password: 2, over plain HTTP: 0"


def test_password_over_plain_http_fails_per_url() -> None:
    result = evaluate_credentials_transport(["https://p.test/sign-in", "http://p.test/legacy"])
    assert result.status == "failed"
    assert [(f.key, f.where) for f in result.findings] == [
        ("https.password_over_plain_http", "http://p.test/legacy")
    ]


def test_no_request_carrying_the_password_is_inconclusive() -> None:
    assert evaluate_credentials_transport([]).status == "inconclusive"
