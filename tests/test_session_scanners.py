"""Session lifetime and token evaluators, on recorded measurements."""

from __future__ import annotations

import secrets
import uuid

from scanners.cookies import (
    CookieRecord,
    evaluate_cookies_dropped,
    evaluate_session_cookies,
    evaluate_session_id_renewed,
)
from scanners.timeouts import (
    BusyMeasurement,
    IdleMeasurement,
    SessionCheck,
    duration,
    evaluate_absolute,
    evaluate_idle,
    evaluate_session_listing,
)
from scanners.tokens import (
    estimate_bits,
    evaluate_token_exposure,
    evaluate_token_strength,
    find_tokens_in_har,
)


def idle(*checks: tuple[float, bool]) -> IdleMeasurement:
    return IdleMeasurement(20.0, tuple(SessionCheck(s, alive) for s, alive in checks))


def test_idle_bracket_is_reported() -> None:
    result = evaluate_idle(idle((5, True), (10, True), (18, True), (22, False)))
    assert result.status == "passed"
    assert result.measured == "expired after 22.0s idle, alive at 18.0s"


def test_idle_session_alive_past_threshold_fails() -> None:
    result = evaluate_idle(idle((5, True), (18, True), (22, True)))
    assert result.status == "failed"
    assert result.findings[0].key == "session.idle_timeout_too_long"


def test_idle_without_any_live_replay_is_inconclusive() -> None:
    # Replayed cookies never worked: the expiry cannot be credited to the idle timeout.
    assert evaluate_idle(idle((5, False), (22, False))).status == "inconclusive"


def test_idle_inconsistent_replays_are_inconclusive() -> None:
    assert evaluate_idle(idle((5, False), (18, True), (22, False))).status == "inconclusive"


def test_stricter_idle_timeout_than_policy_passes() -> None:
    result = evaluate_idle(idle((5, True), (10, False), (18, False), (22, False)))
    assert result.status == "passed"
    assert "alive at 5.0s" in result.measured


def busy(*checks: tuple[float, bool]) -> BusyMeasurement:
    return BusyMeasurement(40.0, 6.7, 2.0, tuple(SessionCheck(s, a) for s, a in checks))


def test_busy_session_ending_in_time_passes() -> None:
    result = evaluate_absolute(busy((7, True), (33, True), (40.2, False)))
    assert result.status == "passed"
    assert "ended after 40.2s" in result.measured


def test_busy_session_alive_past_limit_fails() -> None:
    assert evaluate_absolute(busy((7, True), (42.1, True))).status == "failed"


def test_busy_session_dead_from_the_start_is_inconclusive() -> None:
    assert evaluate_absolute(busy((7, False))).status == "inconclusive"


def test_duration_formats() -> None:
    assert duration(75.2) == "1m15s"
    assert duration(43200) == "12h00m00s"


def har(*urls: str, referer: str = "") -> dict[str, object]:
    headers = [{"name": "Referer", "value": referer}] if referer else []
    return {
        "log": {
            "entries": [
                {"request": {"method": "GET", "url": url, "headers": headers}} for url in urls
            ]
        }
    }


def test_token_in_url_or_referer_is_found_without_revealing_it() -> None:
    token = secrets.token_urlsafe(32)
    findings = find_tokens_in_har(
        har(
            f"https://p.test/dashboard?sid={token}",
            "https://p.test/x",
            referer=f"https://p.test/?s={token}",
        ),
        {"sid": token},
    )
    keys = [f.key for f in findings]
    assert keys.count("session.token_in_url") == 1
    assert keys.count("session.token_in_referer") == 2
    assert all(token not in str(f) for f in findings)
    assert evaluate_token_exposure(findings, 2).status == "failed"


def test_clean_recording_passes_and_empty_one_is_inconclusive() -> None:
    assert evaluate_token_exposure([], 12).status == "passed"
    assert evaluate_token_exposure([], 0).status == "inconclusive"


def test_token_bits_from_samples() -> None:
    strong = [secrets.token_urlsafe(32) for _ in range(5)]
    assert estimate_bits(strong).bits > 250
    assert evaluate_token_strength(strong, 128).status == "passed"
    weak = [secrets.token_urlsafe(8) for _ in range(5)]
    assert evaluate_token_strength(weak, 128).status == "failed"


def test_bits_come_from_the_observed_alphabet() -> None:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    ids = ["".join(secrets.choice(alphabet) for _ in range(32)) for _ in range(6)]
    estimate = estimate_bits(ids)
    # 32 symbols of 36: about 165 bits, not the 192 a base64 alphabet would claim.
    assert estimate.alphabet == "lower-case letters and digits"
    assert 160 < estimate.bits < 166
    uuids = [str(uuid.uuid4()) for _ in range(6)]
    assert estimate_bits(uuids).bits <= 32 * 4  # hex digits only; the dashes count nothing


def test_fixed_prefix_counts_nothing_and_repeats_fail() -> None:
    prefixed = ["deadbeef" + secrets.token_hex(4) for _ in range(5)]
    estimate = estimate_bits(prefixed)
    assert estimate.bits <= 8 * 4 + 0.1
    repeated = ["a" * 40] * 4
    result = evaluate_token_strength(repeated, 128)
    assert {f.key for f in result.findings} == {"session.token_reused", "session.token_too_short"}


def test_too_few_samples_are_inconclusive() -> None:
    assert evaluate_token_strength(["abc"], 128).status == "inconclusive"


# -- SESS_LOGOUT: the captured cookies are gone from the browser --------------------------------


def cookie(name: str, value: str, **extra: object) -> dict[str, object]:
    return {"name": name, "value": value, "domain": "portal.test", "path": "/", **extra}


def test_browser_without_the_captured_cookies_passes() -> None:
    captured = [cookie("__Host-sid", "s3cret-value")]
    # The same name with another value (a fresh anonymous session) is not the captured cookie.
    held = [cookie("__Host-sid", "new-anonymous-value"), cookie("lang", "en")]
    result = evaluate_cookies_dropped(captured, held)
    assert result.status == "passed"
    assert result.measured == "session cookies left in the browser after sign-out: 0"


def test_captured_cookie_still_held_fails_under_its_key_without_its_value() -> None:
    captured = [cookie("__Host-sid", "s3cret-value"), cookie("csrf", "token-value")]
    held = [cookie("csrf", "token-value"), cookie("__Host-sid", "other")]
    result = evaluate_cookies_dropped(captured, held)
    assert result.status == "failed"
    assert [(f.key, f.where) for f in result.findings] == [
        ("session.logout_cookie_still_held", "csrf")
    ]
    assert result.measured == "session cookies left in the browser after sign-out: 1"
    assert "token-value" not in result.describe()


def test_nothing_captured_is_inconclusive() -> None:
    assert evaluate_cookies_dropped([], [cookie("sid", "x")]).status == "inconclusive"


# -- SESS_FIXATION: sign-in issues a new session ID ----------------------------------------------


def test_new_session_cookie_at_sign_in_passes() -> None:
    before = [cookie("sid", "anonymous")]
    after = [cookie("sid", "signed-in")]
    result = evaluate_session_id_renewed(before, after, ["sid"])
    assert result.status == "passed"
    assert result.measured == "cookies issued or changed at sign-in: sid"


def test_no_cookie_changed_at_sign_in_fails() -> None:
    same = [cookie("sid", "anonymous")]
    result = evaluate_session_id_renewed(same, list(same), [])
    assert result.status == "failed"
    assert [f.key for f in result.findings] == ["session.fixation_no_new_cookie"]
    assert result.measured == "cookies issued or changed at sign-in: none"


def test_declared_session_cookie_keeping_its_value_fails() -> None:
    before = [cookie("sid", "planted")]
    # Another cookie changed, but the declared session cookie kept its pre-sign-in value.
    after = [cookie("sid", "planted"), cookie("remember", "new")]
    result = evaluate_session_id_renewed(before, after, ["sid"])
    assert result.status == "failed"
    assert [f.key for f in result.findings] == ["session.fixation_id_kept"]
    assert "planted" not in result.describe()
    # Undeclared, the same cookie is not judged as the session ID.
    assert evaluate_session_id_renewed(before, after, []).status == "passed"


# -- SESS_REVOKE: the list of active sessions ----------------------------------------------------


def test_session_list_with_both_browsers_and_a_recent_sign_in_passes() -> None:
    result = evaluate_session_listing(2, 3)
    assert result.status == "passed"
    assert result.measured == "active sessions listed: 2; recent sign-ins listed: 3"


def test_session_list_missing_a_browser_or_the_recent_sign_ins_fails() -> None:
    result = evaluate_session_listing(1, 0)
    assert result.status == "failed"
    assert [f.key for f in result.findings] == [
        "session.list_missing_sessions",
        "session.list_no_recent_sign_in",
    ]


def test_session_list_without_selectors_is_inconclusive_never_passed() -> None:
    result = evaluate_session_listing(None, None)
    assert result.status == "inconclusive"
    assert "sessions_page.active_sessions or sessions_page.recent_sign_ins" in result.reason
    assert result.measured == (
        "active sessions listed: not checked (no selector); "
        "recent sign-ins listed: not checked (no selector)"
    )
    assert evaluate_session_listing(2, None).status == "inconclusive"
    # What could be checked and failed still fails.
    assert evaluate_session_listing(1, None).status == "failed"


def _hardened_cookie(same_site: str) -> CookieRecord:
    return CookieRecord.from_playwright(
        {
            "name": "__Host-sid",
            "value": secrets.token_hex(16),
            "domain": "portal.test",
            "path": "/",
            "expires": -1,
            "httpOnly": True,
            "secure": True,
            "sameSite": same_site,
        }
    )


def test_the_policy_same_site_values_are_the_ones_accepted() -> None:
    lax = [_hardened_cookie("Lax")]
    assert evaluate_session_cookies(lax, ["__Host-sid"]).status == "passed"
    strict_only = evaluate_session_cookies(lax, ["__Host-sid"], ("Strict",))
    assert strict_only.status == "failed"
    assert "SameSite=Lax; Strict is required" in strict_only.findings[0].message
    strict = [_hardened_cookie("Strict")]
    assert evaluate_session_cookies(strict, ["__Host-sid"], ("Strict",)).status == "passed"
