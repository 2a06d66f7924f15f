"""Password candidates, the password and reset evaluations, and why each reference-portal
password weakness can only break its own control (its policy against the suite's candidates)."""

from __future__ import annotations

import random
import secrets

import pytest

from reference_portal.passwords import PasswordPolicy, generate_password
from scanners.password_candidates import (
    Candidate,
    CandidateContext,
    blocklist_candidates,
    length_candidates,
    load_common_passwords,
    lowercase_passphrase,
    strength_candidates,
)
from scanners.passwords import (
    ChangeMeasurement,
    LengthMeasurement,
    Trial,
    candidate_table,
    evaluate_blocklist,
    evaluate_change,
    evaluate_length,
    evaluate_nocomposition,
    evaluate_strength,
)
from scanners.reset import (
    RefererObservation,
    ResetMeasurement,
    estimated_bits,
    evaluate_reset,
    token_of,
)

CONTEXT = CandidateContext(
    username="patient.lindqvist",
    display_name="Erik Lindqvist",
    context_words=("Riverside Health", "Riverside"),
    min_length=15,
    min_score=3,
    year=2025,
)
ACCOUNT = (CONTEXT.username, CONTEXT.display_name)


@pytest.fixture(scope="module")
def candidates() -> dict[str, list[Candidate]]:
    rng = random.Random(7)
    return {
        "blocklist": blocklist_candidates(CONTEXT, load_common_passwords()),
        "strength": strength_candidates(CONTEXT, rng),
        "length": list(length_candidates(CONTEXT, 64, rng).values()),
        "lowercase": [lowercase_passphrase(CONTEXT, rng)],
    }


def _accepted(policy: PasswordPolicy, candidate: Candidate) -> bool:
    return policy.check(candidate.value, ACCOUNT).accepted


def test_candidates_have_the_promised_shape(candidates: dict[str, list[Candidate]]) -> None:
    assert all(len(c.value) >= CONTEXT.min_length for c in candidates["blocklist"])
    assert {c.kind for c in candidates["blocklist"]} == {"breached", "context"}
    strength = candidates["strength"]
    assert any(c.score < 3 for c in strength) and any(c.score >= 3 for c in strength)
    assert all((c.expected == "refuse") == (c.score < 3) for c in strength)
    lengths = {c.kind: c.length for c in candidates["length"]}
    assert lengths["too short"] == 14 and lengths["minimum length"] == 15
    assert lengths["long"] == 64 and lengths["very long"] > 72
    lowercase = candidates["lowercase"][0].value
    assert lowercase == lowercase.lower() and not any(ch.isdigit() for ch in lowercase)


def test_candidate_values_stay_out_of_reprs_and_tables(
    candidates: dict[str, list[Candidate]],
) -> None:
    trials = [Trial(c, "refused") for c in candidates["blocklist"]]
    table = candidate_table(trials)
    for candidate in candidates["blocklist"]:
        assert candidate.value not in repr(candidate)
        assert candidate.value not in table
    assert "| candidate (masked) | kind | length | zxcvbn score | expected |" in table


def test_compliant_policy_gives_every_expected_verdict(
    candidates: dict[str, list[Candidate]],
) -> None:
    policy = PasswordPolicy(min_length=15)
    for group in candidates.values():
        for candidate in group:
            assert _accepted(policy, candidate) == (candidate.expected == "accept"), candidate


@pytest.mark.parametrize(
    ("weakened", "breaks"),
    [
        (PasswordPolicy(min_length=8), "length"),
        (PasswordPolicy(min_length=15, check_blocklist=False), "blocklist"),
        (PasswordPolicy(min_length=15, min_score=None), "strength"),
        (PasswordPolicy(min_length=15, composition_rules=True), "lowercase"),
    ],
)
def test_each_weakened_policy_breaks_only_its_own_candidates(
    candidates: dict[str, list[Candidate]], weakened: PasswordPolicy, breaks: str
) -> None:
    for group, members in candidates.items():
        wrong = [c for c in members if _accepted(weakened, c) != (c.expected == "accept")]
        if group == breaks:
            assert wrong, f"{group}: the weakness changes no verdict"
        else:
            assert not wrong, f"{group} is affected too: {[c.kind for c in wrong]}"


def test_generated_account_passwords_satisfy_every_policy() -> None:
    strict = PasswordPolicy(min_length=15, composition_rules=True)
    for _ in range(20):
        assert strict.check(generate_password(), ACCOUNT).accepted


def _candidate(kind: str, score: int, expected: str = "refuse", length: int = 20) -> Candidate:
    return Candidate("x" * length, kind, kind, score, expected, "")  # type: ignore[arg-type]


def test_blocklist_evaluation() -> None:
    refused = [Trial(_candidate("breached", 4), "refused")]
    assert evaluate_blocklist(refused).status == "passed"
    accepted = refused + [Trial(_candidate("context", 3), "accepted")]
    failed = evaluate_blocklist(accepted)
    assert failed.status == "failed" and "1 of 2" in failed.measured
    assert evaluate_blocklist([]).status == "inconclusive"


def test_strength_evaluation() -> None:
    strong = Trial(_candidate("strong", 4, "accept"), "accepted")
    weak = _candidate("weak pattern", 1)
    assert evaluate_strength([Trial(weak, "refused"), strong], 3, "Use 15+").status == "passed"
    failed = evaluate_strength([Trial(weak, "accepted"), strong], 3, "Use 15+")
    assert [f.key for f in failed.failures] == ["password.weak_accepted"]
    no_guidance = evaluate_strength([Trial(weak, "refused"), strong], 3, "")
    assert [f.key for f in no_guidance.failures] == ["password.no_guidance"]
    all_refused = evaluate_strength(
        [Trial(weak, "refused"), Trial(strong.candidate, "refused")], 3, "g"
    )
    assert all_refused.status == "inconclusive"


def _length(**changes: object) -> LengthMeasurement:
    trials = {
        "too_short": Trial(_candidate("too short", 4, length=14), "refused"),
        "minimum": Trial(_candidate("minimum length", 4, "accept", 15), "accepted"),
        "long": Trial(_candidate("long", 4, "accept", 64), "accepted"),
        "very_long": Trial(_candidate("very long", 4, "accept", 100), "accepted"),
        "unicode": Trial(_candidate("unicode", 4, "accept", 50), "accepted"),
    }
    base = LengthMeasurement(15, 64, trials, False, 100, True, True, True)
    return LengthMeasurement(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_length_evaluation() -> None:
    assert evaluate_length(_length()).status == "passed"
    truncated = evaluate_length(_length(truncated_sign_in=True))
    assert [f.key for f in truncated.failures] == ["password.truncated"]
    short = _length()
    short.trials["too_short"] = Trial(short.trials["too_short"].candidate, "accepted")
    assert [f.key for f in evaluate_length(short).failures] == ["password.too_short_accepted"]
    assert [f.key for f in evaluate_length(_length(paste_allowed=False)).failures] == [
        "password.paste_blocked"
    ]


def test_composition_and_change_evaluations() -> None:
    trial = Trial(_candidate("lowercase passphrase", 4, "accept", 33), "refused", "needs a digit")
    assert evaluate_nocomposition(trial, rules_allowed=False).status == "failed"
    assert evaluate_nocomposition(trial, rules_allowed=True).status == "skipped"
    good = ChangeMeasurement(True, "refused", "refused", "accepted")
    assert evaluate_change(good).status == "passed"
    bad = ChangeMeasurement(False, "accepted", "accepted", "accepted")
    assert {f.key for f in evaluate_change(bad).failures} == {
        "password.change_no_current_field",
        "password.change_without_current",
        "password.change_wrong_current",
    }
    assert evaluate_change(ChangeMeasurement(True, "refused", "refused", "refused")).status == (
        "inconclusive"
    )


def test_reset_token_extraction_and_bits() -> None:
    token = "w3IKHMo79HPv9GIPJ8a6_-5JNdew6gRugioy4zvJ85Q"
    assert token_of(f"https://portal.example/password/reset/{token}") == token
    assert token_of(f"https://portal.example/reset?user=7&token={token}") == token
    assert estimated_bits(["123456"]) == pytest.approx(6 * 3.3219, rel=1e-3)
    assert estimated_bits([token]) >= 256


def test_reset_token_bits_count_only_what_varies_between_links() -> None:
    # A signed token: a fixed user part, a timestamp that barely moves, 128 random bits (hex).
    tokens = [f"InVzZXIgNyI.ZK3q{n}A.{secrets.token_hex(16)}" for n in "QR"]
    bits = estimated_bits(tokens)
    assert 128 <= bits <= 140  # 32 random hex digits and two timestamp letters, not 250+


def _reset(**changes: object) -> ResetMeasurement:
    base = ResetMeasurement(
        first_use="accepted",
        second_use="refused",
        signed_in_after_reset=False,
        stated_lifetime_seconds=15,
        waited_seconds=17,
        after_expiry="refused",
        token_lengths=(43, 43),
        token_bits=(258.0, 258.0),
        tokens_distinct=True,
        referers=(RefererObservation("https://elsewhere.example", "link", "", False),),
    )
    return ResetMeasurement(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_reset_evaluation() -> None:
    assert evaluate_reset(_reset(), 3600, 64).status == "passed"
    cases = {
        "reset.reusable": _reset(second_use="accepted"),
        "reset.never_expires": _reset(after_expiry="accepted"),
        "reset.token_short": _reset(token_bits=(20.0, 20.0)),
        "reset.lifetime_too_long": _reset(stated_lifetime_seconds=7200),
        "reset.referer_leak": _reset(
            referers=(RefererObservation("https://x.example", "link", "[REDACTED]", True),)
        ),
        "reset.mfa_bypassed": _reset(signed_in_after_reset=True, account_has_mfa=True),
    }
    for key, measurement in cases.items():
        evaluation = evaluate_reset(measurement, 3600, 64)
        assert [f.key for f in evaluation.failures] == [key], key
    assert "not evaluated" in evaluate_reset(_reset(), 3600, 64).measured
    assert evaluate_reset(_reset(first_use="refused"), 3600, 64).status == "inconclusive"
    assert evaluate_reset(ResetMeasurement(skipped="not dedicated"), 3600, 64).status == "skipped"


def test_a_link_refused_near_its_lifetime_proves_nothing_about_single_use() -> None:
    # Under load the second use came 14 s after the request of a link living 15 s: the refusal
    # may be expiry (the reset_link_reusable weakness then passed). Inconclusive, never passed.
    late = evaluate_reset(_reset(second_use_after_seconds=14.0), 3600, 64)
    assert late.status == "inconclusive"
    assert "may be expiry" in late.reason
    early = evaluate_reset(_reset(second_use_after_seconds=4.0), 3600, 64)
    assert early.status == "passed"
    reusable_late = evaluate_reset(
        _reset(second_use="accepted", second_use_after_seconds=14.0), 3600, 64
    )
    assert [f.key for f in reusable_late.failures] == ["reset.reusable"]


def test_a_link_refused_by_a_throttle_page_proves_nothing() -> None:
    throttled = _reset(other_refusal="throttled by the portal: the page says 'too many requests'")
    evaluation = evaluate_reset(throttled, 3600, 64)
    assert evaluation.status == "inconclusive"
    assert "not the portal's verdict on the link" in evaluation.reason
