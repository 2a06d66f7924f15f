"""No false pass: every control that concludes from a refusal, a denial or two answers being alike
goes inconclusive when every answer is the same refusal (docs/positive-controls.md).

Each test feeds one control's evaluator "uniform error" observations: every page 403 or 429,
every code refused including the fresh one, every password refused including the strong control
password, every record denied including the granted one, the session refused even at the first
early replay. A portal (or a WAF, a throttle, a broken form) that refuses everything must never
be reported compliant; the reason must say why the refusals prove nothing.
"""

from __future__ import annotations

import pytest

from scanners.access import RecordVisit, evaluate_proxy_access
from scanners.enumeration import FormComparison, evaluate_enumeration
from scanners.forms import FormAnswer
from scanners.framing import FramingCheck, evaluate_framing, framing_header
from scanners.lockout import Attempt, LockoutMeasurement, evaluate_lockout
from scanners.mfa import (
    DirectVisit,
    EnrolmentObservation,
    OtpObservation,
    RecoveryObservation,
    evaluate_enforcement,
    evaluate_enrolment,
    evaluate_otp,
    evaluate_recovery,
)
from scanners.password_candidates import Candidate, Expected
from scanners.passwords import (
    ChangeMeasurement,
    LengthMeasurement,
    Trial,
    evaluate_blocklist,
    evaluate_change,
    evaluate_length,
    evaluate_strength,
)
from scanners.refusals import classify
from scanners.reset import ResetMeasurement, evaluate_reset
from scanners.result import Evaluation
from scanners.timeouts import (
    BackCheck,
    BusyMeasurement,
    IdleMeasurement,
    SessionCheck,
    SessionEnding,
    evaluate_absolute,
    evaluate_back_after_sign_out,
    evaluate_idle,
    evaluate_session_ended,
)

THROTTLED = "throttled by the portal: HTTP 429"
BLOCK_PAGE = "Request blocked by the web application firewall."
GENERIC = "The username or password is incorrect."
TOO_MANY = "Too many requests. Please slow down."


def inconclusive(evaluation: Evaluation, *words: str) -> None:
    """The evaluation is inconclusive and its reason names every one of ``words``."""
    assert evaluation.status == "inconclusive", evaluation.describe()
    for word in words:
        assert word.lower() in evaluation.reason.lower(), evaluation.reason


# -- SESS_IDLE -----------------------------------------------------------------------------


def test_sess_idle_refused_even_at_the_first_early_replay() -> None:
    checks = tuple(SessionCheck(s, False, THROTTLED) for s in (5.0, 10.0, 18.0, 22.0))
    evaluation = evaluate_idle(IdleMeasurement(20.0, checks, SessionCheck(0.5, False, THROTTLED)))
    inconclusive(evaluation, "was ever signed in", "idle timeout")


def test_sess_idle_expiry_met_as_a_throttle_page_is_not_credited() -> None:
    checks = (
        SessionCheck(5.0, True),
        SessionCheck(18.0, True),
        SessionCheck(22.0, False, THROTTLED),
    )
    inconclusive(evaluate_idle(IdleMeasurement(20.0, checks)), "429", "idle timeout")


def test_sess_idle_fresh_session_refused_right_after_is_inconclusive() -> None:
    checks = (SessionCheck(5.0, True), SessionCheck(18.0, True), SessionCheck(22.0, False))
    evaluation = evaluate_idle(IdleMeasurement(20.0, checks, SessionCheck(0.4, False)))
    inconclusive(evaluation, "fresh session", "throttling")


# -- SESS_ABS ------------------------------------------------------------------------------


def test_sess_abs_busy_session_refused_from_its_first_request() -> None:
    checks = tuple(SessionCheck(s, False, THROTTLED) for s in (6.7, 13.4))
    measurement = BusyMeasurement(40.0, 6.7, 2.0, checks, SessionCheck(0.5, False, THROTTLED))
    inconclusive(evaluate_absolute(measurement), "not signed in at its first request")


def test_sess_abs_end_with_a_fresh_session_refused_too_is_inconclusive() -> None:
    checks = (SessionCheck(6.7, True), SessionCheck(13.4, False))
    measurement = BusyMeasurement(40.0, 6.7, 2.0, checks, SessionCheck(0.5, False))
    inconclusive(evaluate_absolute(measurement), "fresh session", "absolute timeout")


# -- SESS_LOGOUT, SESS_FIXATION, SESS_REVOKE, SESS_PWCHANGE --------------------------------


def _uniform_ending(event: str, positive_name: str) -> SessionEnding:
    """Every replay refused: before the event, after it, and a fresh sign-in right after."""
    return SessionEnding(
        event,
        after=False,
        positive=False,
        positive_name=positive_name,
        control_after=False,
        refusal=THROTTLED,
    )


@pytest.mark.parametrize(
    ("control", "event", "positive_name"),
    [
        ("SESS_LOGOUT", "sign-out", "the same cookies replayed just before sign-out"),
        ("SESS_FIXATION", "sign-in (the session ID held before it)", "the issued cookies"),
        ("SESS_REVOKE", "ending the other sessions", "the second browser, checked just before"),
        ("SESS_PWCHANGE", "a password change", "the second browser, checked just before"),
    ],
)
def test_session_ending_refused_everywhere_is_inconclusive(
    control: str, event: str, positive_name: str
) -> None:
    evaluation = evaluate_session_ended(
        _uniform_ending(event, positive_name), control=control, finding_key="session.kept"
    )
    inconclusive(evaluation, "positive control", "refused too", "not be replayable")


def test_sess_logout_without_a_positive_control_is_inconclusive() -> None:
    ending = SessionEnding("sign-out", after=False, positive=None, positive_name="replay before")
    evaluation = evaluate_session_ended(ending, control="SESS_LOGOUT", finding_key="k")
    inconclusive(evaluation, "not taken")


def test_sess_logout_refusal_that_is_a_throttle_page_is_inconclusive() -> None:
    ending = SessionEnding(
        "sign-out", after=False, positive=True, positive_name="before", refusal=THROTTLED
    )
    evaluation = evaluate_session_ended(ending, control="SESS_LOGOUT", finding_key="k")
    inconclusive(evaluation, "429", "throttle or block page")


def test_sess_revoke_refused_like_the_session_that_must_stay_is_inconclusive() -> None:
    ending = SessionEnding(
        "ending the other sessions",
        after=False,
        positive=True,
        positive_name="second browser before",
        control_after=False,
        control_name="the first browser",
    )
    evaluation = evaluate_session_ended(ending, control="SESS_REVOKE", finding_key="k")
    inconclusive(evaluation, "the first browser", "uniform error pages")


def test_session_ending_backed_by_its_controls_passes_and_a_kept_session_fails() -> None:
    backed = SessionEnding("sign-out", False, True, "before", control_after=True)
    assert evaluate_session_ended(backed, control="SESS_LOGOUT", finding_key="k").status == (
        "passed"
    )
    kept = SessionEnding("sign-out", True, True, "before")
    failed = evaluate_session_ended(kept, control="SESS_LOGOUT", finding_key="session.kept")
    assert [f.key for f in failed.failures] == ["session.kept"]


# -- HDR_CACHE / SESS_LOGOUT: Back after sign-out --------------------------------------------


def test_back_after_sign_out_where_no_page_ever_showed_data_is_inconclusive() -> None:
    check = BackCheck("/dashboard", False, "/dashboard", False)
    inconclusive(evaluate_back_after_sign_out(check), "showed no patient data before")


def test_back_after_sign_out_met_by_a_block_page_is_inconclusive() -> None:
    refusal = classify(403, BLOCK_PAGE)
    assert refusal is not None
    check = BackCheck("/dashboard", True, "/dashboard", False, refusal.reason)
    inconclusive(evaluate_back_after_sign_out(check), "throttle or block page")


# -- PROXY_ACCESS ----------------------------------------------------------------------------


def _visit(url: str, granted: bool, status: int, **extra: object) -> RecordVisit:
    return RecordVisit(url, granted, status, url, False, False, **extra)  # type: ignore[arg-type]


def test_proxy_access_every_record_denied_including_the_granted_one() -> None:
    visits = [
        _visit("/patients/1/results", True, 403),
        _visit("/patients/2/results", False, 403),
        _visit("/patients/2/messages", False, 403),
    ]
    inconclusive(evaluate_proxy_access(visits), "granted patient's record did not load")


def test_proxy_access_throttled_refusals_are_inconclusive() -> None:
    granted = RecordVisit("/patients/1/results", True, 200, "/patients/1/results", True, False)
    visits = [granted, _visit("/patients/2/results", False, 429, refusal=THROTTLED)]
    inconclusive(evaluate_proxy_access(visits), "429", "not the portal's access decision")


def test_proxy_access_session_lost_before_the_granted_record_is_reopened() -> None:
    granted = RecordVisit("/patients/1/results", True, 200, "/patients/1/results", True, False)
    signed_out = RecordVisit("/patients/2/results", False, 200, "/login", False, True)
    reopened = RecordVisit("/patients/1/results", True, 200, "/login", False, True, reopened=True)
    evaluation = evaluate_proxy_access([granted, signed_out, reopened])
    inconclusive(evaluation, "no longer loaded", "signed out")


# -- AUTH_ENUM -------------------------------------------------------------------------------


def _same(status: int, text: str, n: int = 20) -> tuple[FormAnswer, ...]:
    refusal = classify(status, text)
    return tuple(FormAnswer(status, None, text, 0.05, refusal=refusal) for _ in range(n))


def test_auth_enum_uniform_403_even_for_the_right_password() -> None:
    page = "Forbidden"
    comparison = FormComparison(
        "sign-in",
        _same(403, page),
        _same(403, page),
        positive=_same(403, page, 2),
        needs_positive=True,
    )
    evaluation = evaluate_enumeration([comparison], tolerance_ms=100, min_samples=20)
    inconclusive(evaluation, "right password exactly like a wrong one", "did not reach")


def test_auth_enum_uniform_429_throttle() -> None:
    comparison = FormComparison(
        "sign-in",
        _same(429, TOO_MANY),
        _same(429, TOO_MANY),
        positive=_same(429, TOO_MANY, 2),
        needs_positive=True,
    )
    evaluation = evaluate_enumeration([comparison], tolerance_ms=100, min_samples=20)
    inconclusive(evaluation, "throttled", "says nothing about the accounts")


def test_auth_enum_reset_form_uniform_block_page() -> None:
    comparison = FormComparison("reset", _same(403, BLOCK_PAGE), _same(403, BLOCK_PAGE))
    evaluation = evaluate_enumeration([comparison], tolerance_ms=100, min_samples=20)
    inconclusive(evaluation, "block page")


# -- AUTH_LOCKOUT ----------------------------------------------------------------------------


def test_auth_lockout_right_password_refused_before_any_failure() -> None:
    # A block page answers every sign-in: the control attempt (right password, no failure
    # yet) is refused like everything else, so a "lock" would prove nothing.
    attempts = (
        Attempt("right", "control", 0.0, 0.1, False, BLOCK_PAGE),
        Attempt("wrong", "baseline", 0.2, 0.3, False, BLOCK_PAGE),
        Attempt("right", "alternating", 0.4, 0.5, False, BLOCK_PAGE),
    )
    measurement = LockoutMeasurement(ceiling=5, pause_seconds=0.1, attempts=attempts, lock_index=2)
    evaluation = evaluate_lockout(measurement, max_failures=5, lockout_seconds=10)
    inconclusive(evaluation, "right password did not sign in")


def test_auth_lockout_a_block_page_after_some_failures_is_not_a_lock() -> None:
    # The right password works, then after a few failures a WAF page answers everything.
    attempts = (
        Attempt("right", "control", 0.0, 0.1, True),
        Attempt("wrong", "baseline", 0.2, 0.3, False, GENERIC),
        Attempt("right", "alternating", 0.4, 0.5, True),
        Attempt("wrong", "alternating", 0.6, 0.7, False, GENERIC),
        Attempt("right", "alternating", 0.8, 0.9, False, BLOCK_PAGE),
    )
    measurement = LockoutMeasurement(ceiling=5, pause_seconds=0.1, attempts=attempts, lock_index=4)
    evaluation = evaluate_lockout(measurement, max_failures=5, lockout_seconds=10)
    inconclusive(evaluation, "not the portal's lock")


def test_auth_enum_nothing_compared_is_inconclusive() -> None:
    inconclusive(evaluate_enumeration([], tolerance_ms=100, min_samples=20), "no form")


# -- MFA_ENFORCE -----------------------------------------------------------------------------


def test_mfa_enforce_every_protected_url_403_block_page() -> None:
    urls = ("/dashboard", "/results", "/api/me")
    visits = [DirectVisit(url, 403, url, False, False, False, False) for url in urls]
    inconclusive(evaluate_enforcement(True, visits), "positive control was not taken")
    # The same 403 with both factors: the refusal was not the missing factor's doing.
    inconclusive(evaluate_enforcement(True, visits, visits), "did not answer after the second")
    blocked = [DirectVisit(u, 403, u, False, False, False, False, "a WAF page") for u in urls]
    inconclusive(evaluate_enforcement(True, blocked), "block page")
    opened = [DirectVisit(url, 200, url, True, True, False, False) for url in urls]
    assert evaluate_enforcement(True, visits, opened).status == "passed"


# -- MFA_ENROLL ------------------------------------------------------------------------------


def test_mfa_enroll_every_confirmation_code_refused_including_the_valid_one() -> None:
    observed = EnrolmentObservation(
        reauthentication_asked=True,
        secret_bits=160,
        qr_read=True,
        key_shown=True,
        qr_and_key_agree=True,
        wrong_code_refused=True,
        confirmed=False,
        second_factor_asked_after=None,
        removed=True,
    )
    inconclusive(evaluate_enrolment(observed, min_secret_bits=160), "valid confirmation code")


# -- MFA_OTP ---------------------------------------------------------------------------------


def test_mfa_otp_every_code_refused_including_the_fresh_one() -> None:
    observed = OtpObservation(
        fresh_code_accepted=False,
        replay_accepted=False,
        stale_steps=3,
        stale_accepted=False,
        wrong_codes_sent=10,
        ended_after_wrong=None,
        valid_after_wrong_accepted=False,
    )
    inconclusive(evaluate_otp(observed, max_drift_steps=1, max_wrong_codes=10), "fresh")


# -- MFA_RECOVERY ----------------------------------------------------------------------------


def test_mfa_recovery_every_recovery_code_refused_including_the_first_use() -> None:
    observed = RecoveryObservation(10, 80.0, first_use_accepted=False, second_use_accepted=False)
    inconclusive(evaluate_recovery(observed, min_bits=64), "fresh recovery code was refused")


# -- PWD_* -----------------------------------------------------------------------------------


def _candidate(kind: str, score: int, expected: Expected = "refuse", length: int = 16) -> Candidate:
    return Candidate("x" * length, kind, kind, score, expected, "test")


def test_pwd_length_every_password_refused() -> None:
    trials = {
        "too_short": Trial(_candidate("too short", 4, length=14), "refused"),
        "minimum": Trial(_candidate("minimum length", 4, "accept", 15), "refused"),
        "long": Trial(_candidate("long", 4, "accept", 64), "refused"),
        "very_long": Trial(_candidate("very long", 4, "accept", 100), "refused"),
        "unicode": Trial(_candidate("unicode", 4, "accept", 50), "refused"),
    }
    evaluation = evaluate_length(LengthMeasurement(15, 64, trials))
    inconclusive(evaluation, "refused even a strong password")


def test_pwd_length_short_password_refused_by_a_throttle_is_inconclusive() -> None:
    trials = {
        "too_short": Trial(_candidate("too short", 4, length=14), "refused", TOO_MANY),
        "minimum": Trial(_candidate("minimum length", 4, "accept", 15), "accepted"),
        "long": Trial(_candidate("long", 4, "accept", 64), "accepted"),
    }
    inconclusive(evaluate_length(LengthMeasurement(15, 64, trials)), "throttled")


def test_pwd_blocklist_every_password_refused_including_the_strong_control() -> None:
    trials = [
        Trial(_candidate("breached", 0), "refused"),
        Trial(_candidate("context", 1), "refused"),
    ]
    control = Trial(_candidate("strong", 4, "accept", 24), "refused")
    inconclusive(evaluate_blocklist(trials, control), "strong control password too")


def test_pwd_blocklist_refusals_by_a_throttle_are_inconclusive() -> None:
    trials = [Trial(_candidate("breached", 0), "refused", TOO_MANY)]
    control = Trial(_candidate("strong", 4, "accept", 24), "accepted")
    inconclusive(evaluate_blocklist(trials, control), "throttled", "not by the password policy")


def test_pwd_blocklist_can_require_its_control() -> None:
    trials = [Trial(_candidate("breached", 0), "refused")]
    inconclusive(evaluate_blocklist(trials, require_control=True), "no strong control")


def test_pwd_strength_every_password_refused_including_the_strong_ones() -> None:
    trials = [
        Trial(_candidate("weak pattern", 1), "refused"),
        Trial(_candidate("strong", 4, "accept"), "refused"),
    ]
    inconclusive(evaluate_strength(trials, 3, "Use a long passphrase"), "refused even the strong")


def test_pwd_strength_without_a_strong_candidate_is_inconclusive() -> None:
    trials = [Trial(_candidate("weak pattern", 1), "refused")]
    inconclusive(evaluate_strength(trials, 3, "guidance"), "no strong candidate")


def test_pwd_change_every_change_refused_including_the_right_current_password() -> None:
    evaluation = evaluate_change(ChangeMeasurement(True, "refused", "refused", "refused"))
    inconclusive(evaluation, "right current password was refused")


def test_pwd_change_refusal_by_a_csrf_page_is_inconclusive() -> None:
    measurement = ChangeMeasurement(
        True, "refused", "refused", "accepted", without_message="CSRF token missing or invalid."
    )
    inconclusive(evaluate_change(measurement), "csrf", "not by the current-password check")


# -- RESET_TOKEN -----------------------------------------------------------------------------


def test_reset_token_every_link_refused_including_the_fresh_one() -> None:
    measurement = ResetMeasurement(
        first_use="refused",
        first_use_detail="invalid-link page",
        second_use="refused",
        after_expiry="refused",
    )
    inconclusive(evaluate_reset(measurement, 3600, 64), "fresh reset link did not")


# -- HDR_CSP: framing blocked ----------------------------------------------------------------


def test_hdr_csp_framing_blocked_because_nothing_loads_at_all() -> None:
    # The sign-in page loads neither framed nor top-level (every answer a 403 block page).
    check = FramingCheck(framed=False, top_level_loaded=False, frame_status=403, blocked_by="")
    inconclusive(evaluate_framing(check), "top-level")
    # Loads top-level, stays empty in a frame, but no header forbids framing: another cause.
    unexplained = FramingCheck(False, True, 500, "")
    inconclusive(evaluate_framing(unexplained), "neither")
    assert evaluate_framing(FramingCheck(False, True, 200, "X-Frame-Options: DENY")).status == (
        "passed"
    )
    assert evaluate_framing(FramingCheck(True, True, 200, "")).status == "failed"
    assert framing_header({"Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"})
    assert framing_header({"X-Frame-Options": "sameorigin"}) == "X-Frame-Options: SAMEORIGIN"
    assert framing_header({"Content-Security-Policy": "default-src 'self'"}) == ""


def test_hdr_csp_framing_an_empty_frame_that_never_answered_is_not_blocked() -> None:
    never = FramingCheck(framed=False, top_level_loaded=True, frame_status=None, blocked_by="")
    inconclusive(evaluate_framing(never), "never answered")
    # A refusing header on an error answer is not the sign-in page refusing to be framed.
    error = FramingCheck(False, True, 503, "CSP frame-ancestors 'none'")
    inconclusive(evaluate_framing(error), "HTTP 503", "not the sign-in page")


def test_hdr_csp_framing_an_error_in_the_frame_is_judged_by_the_page_shown_top_level() -> None:
    # An identity provider's interaction cookie is SameSite=Lax: framed, the flow ends on 400.
    refused = FramingCheck(False, True, 400, "", top_level_blocked_by="CSP frame-ancestors 'self'")
    result = evaluate_framing(refused)
    assert result.status == "passed"
    assert "shown top-level" in result.reason and "HTTP 400" in result.reason
    # Without that header on the page that showed the form, nothing is proven.
    inconclusive(evaluate_framing(FramingCheck(False, True, 400, "")), "HTTP 400", "neither")
    # The top-level header counts only when the form was shown top-level.
    blank = FramingCheck(False, False, 400, "", top_level_blocked_by="X-Frame-Options: DENY")
    inconclusive(evaluate_framing(blank), "top-level")


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Security-Policy": "frame-ancestors *"},
        {"Content-Security-Policy": "frame-ancestors https: http:"},
        {"Content-Security-Policy": "frame-ancestors *.invalid"},
        # Where a policy sets frame-ancestors, browsers ignore X-Frame-Options.
        {"Content-Security-Policy": "frame-ancestors *", "X-Frame-Options": "DENY"},
        {"X-Frame-Options": "ALLOWALL"},
    ],
)
def test_hdr_csp_framing_headers_that_admit_any_origin_block_nothing(
    headers: dict[str, str],
) -> None:
    assert framing_header(headers) == ""
    inconclusive(
        evaluate_framing(FramingCheck(False, True, 200, framing_header(headers))), "neither"
    )


def test_hdr_csp_framing_headers_that_keep_other_origins_out() -> None:
    assert framing_header(
        {"Content-Security-Policy": "frame-ancestors 'self' https://portal.test"}
    ) == ("CSP frame-ancestors 'self' https://portal.test")
    assert framing_header({"Content-Security-Policy": "default-src 'self', frame-ancestors"}) == (
        "CSP frame-ancestors 'none'"
    )


def test_sess_logout_replay_signed_in_like_a_browser_without_cookies_is_inconclusive() -> None:
    # The signed-in check says "signed in" with no session at all: the replay proves nothing.
    ending = SessionEnding("sign-out", True, True, "before", anonymous=True)
    evaluation = evaluate_session_ended(ending, control="SESS_LOGOUT", finding_key="k")
    inconclusive(evaluation, "browser holding no cookie", "signed_in.indicator")
    kept = SessionEnding("sign-out", True, True, "before", anonymous=False)
    failed = evaluate_session_ended(kept, control="SESS_LOGOUT", finding_key="session.kept")
    assert failed.status == "failed"
    assert "negative control (a browser without cookies): signed out" in failed.measured


def test_mfa_otp_a_replay_answered_by_an_unknown_page_is_not_a_refusal() -> None:
    observed = OtpObservation(True, False, 3, False, 10, None, True, ("unknown", "second_factor"))
    inconclusive(
        evaluate_otp(observed, max_drift_steps=1, max_wrong_codes=10), "neither the code form"
    )


def test_mfa_recovery_a_reuse_answered_by_an_unknown_page_is_not_a_refusal() -> None:
    observed = RecoveryObservation(10, 80.0, True, False, "unknown")
    inconclusive(evaluate_recovery(observed, min_bits=64), "neither the code form")
    refused = RecoveryObservation(10, 80.0, True, False, "second_factor")
    assert evaluate_recovery(refused, min_bits=64).status == "passed"
