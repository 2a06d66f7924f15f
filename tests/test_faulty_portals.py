"""Whole audits of faulty portals: the right exit status, in bounded time, and no false pass.

Each portal in tests/faulty_portals.py is broken in one way. Its audit runs only a few controls
(destructive ones denied), concurrently with the others, and must end with the expected exit
status within its wall-time bound, write a summary naming every selected control, pass no
control whose evidence the fault makes impossible, and say in its reasons what the fault was.
"""

from __future__ import annotations

import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faulty_portals import (
    CaptchaAfterSignIn,
    DiesMidRun,
    EveryPageFails,
    FaultyPortal,
    FaultyRun,
    FrameNeverAnswered,
    GarbageBody,
    HealthyPortal,
    NoSessionAtAll,
    RedirectLoop,
    RefusesEverySignIn,
    SignOutDoesNothing,
    SlowToAnswer,
    ThrottlesEverything,
    UnexpectedMarkup,
    answer_plain_text,
    audit_faulty_portal,
    http_portal,
    never_answer,
    raw_portal,
)

# Audits mostly wait (timeouts, the browser), so a few run at once, as in the detection matrix.
PARALLEL_AUDITS = 3
# Beyond any bound below: an audit still running then is killed, and its test fails.
HARD_LIMIT_SECONDS = 240
# Alone, each audit takes 3-30 s; three at once on two busy cores, up to about twice that.
BOUND_SECONDS = 90
RUN_SECONDS = 30
# The deadline stops the run; writing the reports and ending the browser follow.
DEADLINE_MARGIN_SECONDS = 40
NOT_REACHED = r"did not answer|timed out|within \d+ s|could not be loaded|run deadline"

PORTALS = [
    FaultyPortal(
        "healthy",
        "none: the control portal every faulty one breaks in one way",
        http_portal(HealthyPortal),
        ("SESS_LOGOUT", "SESS_COOKIE", "HDR_MISC"),
        status=0,
        bound_seconds=BOUND_SECONDS,
        reasons={},
        may_pass=frozenset({"SESS_LOGOUT", "SESS_COOKIE", "HDR_MISC"}),
        navigation_seconds=10,
    ),
    FaultyPortal(
        "every_page_500",
        "every request answers HTTP 500, with every security header",
        http_portal(EveryPageFails),
        ("HDR_MISC", "HDR_CSP", "HDR_HSTS", "SESS_LOGOUT"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            "HDR_MISC": ("every page answered with an error", "HTTP 500"),
            "HDR_CSP": ("every page answered with an error", "HTTP 500"),
            "HDR_HSTS": ("every page answered with an error", "HTTP 500"),
            "SESS_LOGOUT": ("HTTP 500",),
        },
    ),
    FaultyPortal(
        "throttles_everything",
        "every request answers HTTP 429 with Retry-After",
        http_portal(ThrottlesEverything),
        ("PREFLIGHT", "SESS_LOGOUT", "SESS_COOKIE", "HDR_MISC"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            "PREFLIGHT": ("429",),
            "SESS_LOGOUT": ("throttled by the portal: HTTP 429",),
            "SESS_COOKIE": ("429",),
            "HDR_MISC": ("every page answered with an error", "HTTP 429"),
        },
    ),
    FaultyPortal(
        "redirect_loop",
        "every URL redirects, in a loop",
        http_portal(RedirectLoop),
        ("SESS_LOGOUT", "HDR_MISC", "HDR_HSTS"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            "SESS_LOGOUT": ("ERR_TOO_MANY_REDIRECTS",),
            "HDR_MISC": ("no page answered successfully", "HTTP 302"),
            "HDR_HSTS": ("no page answered successfully", "HTTP 302"),
        },
    ),
    FaultyPortal(
        "garbage_body",
        "every page is binary noise and broken markup",
        http_portal(GarbageBody),
        ("SESS_LOGOUT", "SESS_COOKIE", "AUTH_HTTPS"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            control: ("sign-in form not found",)
            for control in ("SESS_LOGOUT", "SESS_COOKIE", "AUTH_HTTPS")
        },
    ),
    FaultyPortal(
        "captcha_after_sign_in",
        "the right password leads to a CAPTCHA, not to the signed-in page",
        http_portal(CaptchaAfterSignIn),
        ("PREFLIGHT", "SESS_LOGOUT", "SESS_COOKIE"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            control: ("the portal asked for a CAPTCHA after sign-in",)
            for control in ("PREFLIGHT", "SESS_LOGOUT", "SESS_COOKIE")
        },
    ),
    FaultyPortal(
        "sign_out_does_nothing",
        "the sign-out link leads back to the signed-in page; the session lives on",
        http_portal(SignOutDoesNothing),
        ("SESS_LOGOUT", "SESS_COOKIE"),
        status=1,
        bound_seconds=BOUND_SECONDS,
        reasons={
            "SESS_LOGOUT": ("still signs in after sign-out",),
            "SESS_COOKIE": ("signed-in indicator stayed visible after signing out",),
        },
        failed=frozenset({"SESS_LOGOUT"}),
        navigation_seconds=8,
    ),
    FaultyPortal(
        "dies_mid_run",
        "the portal stops for good right after the second sign-out",
        http_portal(DiesMidRun),
        ("SESS_COOKIE", "HDR_MISC", "SESS_LOGOUT", "TLS_CERT"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        # SESS_LOGOUT runs when the portal stops (at its sign-out, the preflight's being the
        # first); the others pass only if they ran before that, which their evidence allows.
        reasons={"SESS_LOGOUT": (r"could not be loaded \(ERR_",)},
        may_pass=frozenset({"SESS_COOKIE", "HDR_MISC", "TLS_CERT"}),
        navigation_seconds=8,
    ),
    FaultyPortal(
        "refuses_every_sign_in",
        "the sign-in form refuses the right password",
        http_portal(RefusesEverySignIn),
        ("SESS_LOGOUT", "SESS_COOKIE", "AUTH_HTTPS"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            control: ("refused the sign-in: Invalid username or password",)
            for control in ("SESS_LOGOUT", "SESS_COOKIE", "AUTH_HTTPS")
        },
    ),
    FaultyPortal(
        "unexpected_markup",
        "the sign-in form's fields are not where the profile says",
        http_portal(UnexpectedMarkup),
        ("SESS_LOGOUT", "SESS_COOKIE", "AUTH_HTTPS"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            control: ("sign-in form not found: no visible '#u'",)
            for control in ("SESS_LOGOUT", "SESS_COOKIE", "AUTH_HTTPS")
        },
    ),
    FaultyPortal(
        "no_session_at_all",
        "every page, patient data included, is public: sign-in sets no session",
        http_portal(NoSessionAtAll),
        ("SESS_LOGOUT", "SESS_COOKIE", "SESS_FIXATION"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            "SESS_LOGOUT": ("no session cookie was identified",),
            "SESS_COOKIE": ("could not sign out",),
            "SESS_FIXATION": ("could not sign out",),
        },
        navigation_seconds=8,
    ),
    FaultyPortal(
        "expired_certificate",
        "the portal's certificate expired",
        http_portal(HealthyPortal, leaf_lifetime=dt.timedelta(minutes=1)),
        ("TLS_CERT", "HDR_MISC", "SESS_LOGOUT"),
        status=1,
        bound_seconds=BOUND_SECONDS,
        reasons={
            "TLS_CERT": ("certificate",),
            "HDR_MISC": ("certificate has expired",),
            "SESS_LOGOUT": ("certificate has expired",),
        },
        failed=frozenset({"TLS_CERT"}),
        # The failure's findings stay in the evidence; the measurement shows the expiry.
        measured={"TLS_CERT": r"-\d+(\.\d+)? d left"},
    ),
    FaultyPortal(
        "not_tls",
        "the HTTPS port answers plain-text HTTP to a TLS handshake",
        raw_portal(answer_plain_text),
        ("TLS_PROTOCOLS", "HDR_MISC", "SESS_LOGOUT"),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={
            "TLS_PROTOCOLS": ("TLS|handshake|sslyze",),
            "HDR_MISC": ("TLS handshake failed",),
            "SESS_LOGOUT": ("certificate|did not answer|TLS|SSL",),
        },
    ),
    FaultyPortal(
        "frame_never_answered",
        "the sign-in page answers top-level, but a request for it inside a frame gets nothing",
        http_portal(FrameNeverAnswered),
        ("HDR_CSP",),
        status=2,
        bound_seconds=BOUND_SECONDS,
        reasons={"HDR_CSP": ("the framed sign-in page never answered",)},
    ),
    FaultyPortal(
        "never_answers",
        "the port accepts TCP connections and never sends a byte",
        raw_portal(never_answer),
        ("PREFLIGHT", "SESS_LOGOUT", "HDR_MISC", "TLS_CERT"),
        status=2,
        bound_seconds=RUN_SECONDS + DEADLINE_MARGIN_SECONDS,
        reasons={control: (NOT_REACHED,) for control in ("SESS_LOGOUT", "HDR_MISC", "TLS_CERT")},
        reachability_seconds=3,
        navigation_seconds=3,
        run_seconds=RUN_SECONDS,
    ),
    FaultyPortal(
        "slow_to_answer",
        "every answer comes after 12 s, within the profile's timeouts: slow, not down",
        http_portal(SlowToAnswer),
        ("PREFLIGHT", "SESS_LOGOUT", "HDR_MISC", "TLS_CERT"),
        status=2,
        bound_seconds=RUN_SECONDS + DEADLINE_MARGIN_SECONDS,
        # Only the run deadline can end this audit in time; the certificate is sound.
        reasons={"HDR_MISC": ("stopped at the run deadline",)},
        may_pass=frozenset({"TLS_CERT"}),
        reachability_seconds=15,
        navigation_seconds=15,
        run_seconds=RUN_SECONDS,
    ),
]


@pytest.fixture(scope="module")
def faulty_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FaultyRun]:
    """One audit per portal, a few at a time; those with a run deadline first (the longest)."""

    # Made here, not in the threads: the factory's first call creates its base directory, and
    # two threads racing to do so would each make one.
    directories = {portal.key: tmp_path_factory.mktemp(portal.key) for portal in PORTALS}

    def audit(portal: FaultyPortal) -> tuple[str, FaultyRun]:
        directory = directories[portal.key]
        return portal.key, audit_faulty_portal(portal, directory, HARD_LIMIT_SECONDS)

    ordered = sorted(PORTALS, key=lambda portal: portal.run_seconds is None)
    with ThreadPoolExecutor(max_workers=PARALLEL_AUDITS) as pool:
        return dict(pool.map(audit, ordered))


@pytest.mark.parametrize("portal", PORTALS, ids=[portal.key for portal in PORTALS])
def test_faulty_portal_audit(portal: FaultyPortal, faulty_runs: dict[str, FaultyRun]) -> None:
    run = faulty_runs[portal.key]
    context = f"{portal.key} ({portal.fault}), {run.seconds:.0f} s:\n{run.output[-3000:]}"
    assert run.status is not None, f"killed after {HARD_LIMIT_SECONDS} s: {context}"
    assert run.status == portal.status, context
    assert run.seconds < portal.bound_seconds, context
    assert run.summary is not None, f"no summary.json: {context}"
    assert set(run.summary["controls"]) == set(portal.controls), context
    statuses = {cid: result["status"] for cid, result in run.summary["controls"].items()}
    false_passes = {
        cid: run.control(cid)["reason"]
        for cid, status in statuses.items()
        if status == "passed" and cid not in portal.may_pass
    }
    assert not false_passes, f"false pass: {false_passes}; {context}"
    for control in portal.failed:
        assert statuses[control] == "failed", context
    for control, patterns in portal.reasons.items():
        reason = run.control(control)["reason"]
        for pattern in patterns:
            assert re.search(pattern, reason, re.IGNORECASE), (
                f"{control}: {reason!r} does not name the fault ({pattern!r})"
            )
    for control, pattern in portal.measured.items():
        measured = run.control(control)["measured"]
        assert re.search(pattern, measured), f"{control}: {measured!r} lacks {pattern!r}"


def test_at_least_twelve_faulty_portals() -> None:
    faulty = [portal for portal in PORTALS if portal.status != 0]
    assert len(faulty) >= 12
    assert len({portal.key for portal in PORTALS}) == len(PORTALS)
