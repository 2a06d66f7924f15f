"""Session lifetime and token evaluators, on recorded measurements."""

from __future__ import annotations

import secrets
import uuid

from scanners.timeouts import (
    BusyMeasurement,
    IdleMeasurement,
    SessionCheck,
    duration,
    evaluate_absolute,
    evaluate_idle,
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
