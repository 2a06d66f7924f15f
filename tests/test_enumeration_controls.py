"""AUTH_ENUM's positive controls on purpose-built local forms.

Each case is a real HTTPS sign-in form on 127.0.0.1 with its own behaviour: CSRF protection
that checks the token, the cookie and Origin/Referer as mainstream frameworks do; CSRF that
refuses every post; a throttle that answers 429; a throttle that lifts after its Retry-After.
The audit's own sampling (portal.form_sampling) and evaluation (scanners.enumeration) run
against them. A form that refuses everything alike must never pass.
"""

from __future__ import annotations

import re
import secrets
import threading
from pathlib import Path

import pytest

from portal.form_sampling import sample_forms
from portal.pacing import Pacer
from scanners.enumeration import FormComparison, evaluate_enumeration, unknown_name_like
from scanners.refusals import Refusal, classify, retry_after_seconds
from scanners.result import Evaluation
from tests.local_portal import HtmlHandler, serve_https, write_profile

PASSWORD = "correct horse battery staple"
ENV = {"LOCAL_PASSWORD": PASSWORD}
SAMPLES = 4
PROFILE = """
    name: Local form
    base_url: {0}
    sign_in: {{url: /login, username: "#u", password: "#p", submit: "#s"}}
    signed_in: {{url: /home, indicator: "#me"}}
    sign_out: {{control: "#out"}}
    protected_pages:
      - {{name: home, url: /home, patient_data: "#data"}}
    accounts:
      patient:
        username: alice
        password: ${{LOCAL_PASSWORD}}
    auth_enum:
      known_username: bob
    tls: {{ca_file: {1}}}
    rate_limits: {{budget_seconds: {2}}}
    policy: {{samples: 4, timing_tolerance_ms: 1000}}
"""


class _Portal(HtmlHandler):
    """A sign-in form; ``mode`` (set per server) picks how it treats posts."""

    mode = "csrf"
    posts = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        form = (
            '<form method="post" action="/login"><input type="hidden" name="csrf" '
            'value="token-1"><input name="username"><input name="password" type="password">'
            "<button>Sign in</button></form>"
        )
        self.send_html(200, form, {"Set-Cookie": "csrftoken=c1; Path=/; Secure"})

    def do_POST(self) -> None:
        fields = self.form_fields()
        with self.lock:
            type(self).posts += 1
            count = type(self).posts
        if self.mode == "throttled" or (self.mode == "throttled_once" and count == 1):
            self.send_html(429, "Too Many Requests", {"Retry-After": "1"})
            return
        origin = self.headers.get("Origin", "")
        host = self.headers.get("Host", "")
        csrf_ok = (
            fields.get("csrf") == "token-1"
            and "csrftoken=c1" in self.headers.get("Cookie", "")
            and origin == f"https://{host}"
            and self.headers.get("Referer", "").startswith(f"https://{host}/")
            and self.headers.get("Content-Type") == "application/x-www-form-urlencoded"
        )
        if self.mode == "csrf_everything" or not csrf_ok:
            self.send_html(403, "Forbidden (403) CSRF verification failed. Request aborted.")
            return
        if fields.get("username") == "alice" and fields.get("password") == PASSWORD:
            self.send_html(302, "", {"Location": "/home", "Set-Cookie": "session=s; Path=/"})
            return
        if self.mode == "enumerating" and fields.get("username") != "bob":
            self.send_html(200, "No account with that name.")
            return
        self.send_html(200, "Invalid username or password.")


def _audit(
    mode: str, tmp_path: Path, budget: float = 5
) -> tuple[list[FormComparison], Pacer, Evaluation]:
    handler = type(f"Portal_{mode}", (_Portal,), {"mode": mode, "posts": 0})
    with serve_https(handler, tmp_path / "tls") as (base_url, ca_file):
        profile = write_profile(tmp_path, PROFILE.format(base_url, ca_file, budget), ENV)
        comparisons, pacer = sample_forms(profile, SAMPLES)
        evaluation = evaluate_enumeration(comparisons, tolerance_ms=1000, min_samples=SAMPLES)
        return comparisons, pacer, evaluation


def test_a_csrf_protected_form_is_posted_like_a_browser_and_judged(
    tmp_path: Path,
) -> None:
    comparisons, _, evaluation = _audit("csrf", tmp_path)
    assert evaluation.status == "passed", evaluation.describe()
    positive = comparisons[0].positive
    assert [a.status for a in positive] == [302, 302]
    assert "positive control" in evaluation.measured


def test_a_portal_telling_accounts_apart_behind_csrf_fails(
    tmp_path: Path,
) -> None:
    _, _, evaluation = _audit("enumerating", tmp_path)
    assert evaluation.status == "failed"
    assert {f.key for f in evaluation.findings} == {"enum.text_differs"}


def test_a_form_refusing_every_post_alike_is_inconclusive_never_passed(
    tmp_path: Path,
) -> None:
    _, _, evaluation = _audit("csrf_everything", tmp_path)
    assert evaluation.status == "inconclusive"
    assert "CSRF" in evaluation.reason


def test_a_throttled_form_is_inconclusive_with_the_throttle_as_reason(
    tmp_path: Path,
) -> None:
    _, pacer, evaluation = _audit("throttled", tmp_path, budget=1)
    assert evaluation.status == "inconclusive"
    assert "throttled by the portal: HTTP 429, Retry-After 1 s" in evaluation.reason
    assert pacer.throttles >= 1 and pacer.waited <= 1


def test_a_throttle_that_lifts_is_waited_out_within_the_budget(
    tmp_path: Path,
) -> None:
    _, pacer, evaluation = _audit("throttled_once", tmp_path)
    assert evaluation.status == "passed", evaluation.describe()
    assert pacer.throttles == 1
    assert "throttled 1 time(s)" in pacer.describe()


def test_refusals_are_recognised_by_status_header_and_text() -> None:
    assert classify(429, "", "30") == Refusal(
        "throttle", "throttled by the portal: HTTP 429, Retry-After 30 s", 30.0
    )
    assert classify(503, "Service Unavailable") is None  # an outage, not a throttle
    throttle = classify(503, "", "5")
    assert throttle is not None and throttle.throttled
    text = classify(200, "Too many attempts. Try again later.")
    assert text is not None and text.throttled
    custom = classify(200, "Bitte warten Sie", throttle_patterns=(r"bitte warten",))
    assert custom is not None and custom.throttled
    block = classify(400, "The CSRF token is missing.")
    assert block is not None and block.kind == "block"
    assert classify(200, "Invalid username or password.") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None


def test_the_pacer_keeps_to_its_budget() -> None:
    pacer = Pacer(0, budget=0.2)
    assert pacer.back_off(Refusal("throttle", "x", 0.1))
    assert not pacer.back_off(Refusal("throttle", "x", 0.5))
    assert pacer.waited == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("known", "shape"),
    [
        ("m.alvarez@patients.example.org", r"portal-audit-[0-9a-f]{12}@patients\.example\.org"),
        ("0012345678", r"[0-9]{10}"),
        ("alvarez", r"portal-audit-[0-9a-f]{12}"),
        ("@handle", r"portal-audit-[0-9a-f]{12}"),
    ],
)
def test_a_made_up_name_has_the_shape_of_the_known_one(known: str, shape: str) -> None:
    made_up = unknown_name_like(known, secrets.token_hex(6))
    assert re.fullmatch(shape, made_up) and made_up != known
