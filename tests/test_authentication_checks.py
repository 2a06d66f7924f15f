"""Unit tests of the authentication, MFA and caregiver-access evaluators (no portal, no browser)."""

from __future__ import annotations

import base64
import io
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pyotp
import pytest
import qrcode

from portal.evidence import Redactor
from portal.second_factor import EnrolmentOffer, decode_qr, secret_of
from scanners.access import RecordVisit, evaluate_proxy_access
from scanners.enumeration import FormComparison, evaluate_enumeration
from scanners.forms import FormAnswer, FormClient, find_form, visible_text
from scanners.mfa import (
    DirectVisit,
    EnrolmentObservation,
    OtpObservation,
    RecoveryObservation,
    estimate_code_bits,
    evaluate_enforcement,
    evaluate_enrolment,
    evaluate_otp,
    evaluate_recovery,
    secret_bits,
)

GENERIC = "The username or password is incorrect."


def keys(evaluation: object) -> set[str]:
    return {f.key for f in evaluation.failures}  # type: ignore[attr-defined]


# -- AUTH_LOCKOUT --------------------------------------------------------------------------
# Every lockout model, on recorded attempts and on live local servers: tests/test_lockout_models.py


# -- AUTH_ENUM -----------------------------------------------------------------------------


def _answers(text: str, ms: float, status: int = 401, n: int = 20) -> tuple[FormAnswer, ...]:
    return tuple(FormAnswer(status, None, text, (ms + i % 3) / 1000) for i in range(n))


SIGNED_IN = (FormAnswer(302, "/dashboard", "", 0.1, cookies_set=("sid",)),) * 2


def _sign_in(known: tuple[FormAnswer, ...], unknown: tuple[FormAnswer, ...]) -> FormComparison:
    """A sign-in comparison whose positive control (the right password) signed in."""
    return FormComparison("sign-in", known, unknown, positive=SIGNED_IN, needs_positive=True)


def test_identical_answers_pass_and_the_tolerance_is_reported() -> None:
    comparison = _sign_in(_answers(GENERIC, 140), _answers(GENERIC, 150))
    evaluation = evaluate_enumeration([comparison], tolerance_ms=100, min_samples=20)
    assert evaluation.status == "passed"
    assert "tolerance 100 ms, project default" in evaluation.measured


def test_different_text_status_or_timing_fail() -> None:
    text = _sign_in(_answers("Wrong password.", 140), _answers("No user.", 140))
    status = FormComparison("reset", _answers("Sent.", 80, 200), _answers("Sent.", 80, 404))
    timing = _sign_in(_answers(GENERIC, 300), _answers(GENERIC, 20))
    evaluation = evaluate_enumeration([text, status, timing], tolerance_ms=100, min_samples=20)
    assert keys(evaluation) == {"enum.text_differs", "enum.status_differs", "enum.timing_differs"}


def test_a_timing_gap_near_the_tolerance_passes_with_an_advisory() -> None:
    near = _sign_in(_answers(GENERIC, 230), _answers(GENERIC, 140))
    evaluation = evaluate_enumeration([near], tolerance_ms=100, min_samples=20)
    assert evaluation.status == "passed"
    assert [(f.key, f.severity) for f in evaluation.findings] == [
        ("enum.timing_near_tolerance", "warn")
    ]
    clear = _sign_in(_answers(GENERIC, 210), _answers(GENERIC, 140))
    assert evaluate_enumeration([clear], tolerance_ms=100, min_samples=20).findings == ()


def test_too_few_or_failed_samples_are_inconclusive() -> None:
    few = _sign_in(_answers(GENERIC, 1, n=5), _answers(GENERIC, 1, n=5))
    assert evaluate_enumeration([few], tolerance_ms=100, min_samples=20).status == "inconclusive"
    broken = tuple(FormAnswer(None, error="timed out") for _ in range(20))
    errors = FormComparison("sign-in", broken, broken)
    assert evaluate_enumeration([errors], tolerance_ms=100, min_samples=20).status == (
        "inconclusive"
    )


def test_forms_are_found_with_their_hidden_fields_and_text_is_visible_text_only() -> None:
    html = (
        "<html><head><title>T</title><script>var x=1</script></head><body><p>Hello <b>you</b></p>"
        "<form action='/search'><input name='q'></form>"
        "<form method='POST' action='/login'><input type='hidden' name='csrf' value='abc'>"
        "<input name='username'><input name='password' type='password'>"
        "<button type='submit' name='go'>Sign in</button></form></body></html>"
    )
    assert find_form(html, "username") == (
        "/login",
        "post",
        {"csrf": "abc", "username": "", "password": ""},
    )
    assert find_form(html, "missing") is None
    assert visible_text(html) == "Hello you Sign in"


class _LoginHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b"<form method=post action=/login><input type=hidden name=csrf value=t1>"
        body += b"<input name=username><input name=password></form>"
        self.send_response(200)
        self.send_header("Set-Cookie", "sid=s1; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        fields = parse_qs(self.rfile.read(length).decode())
        ok = fields.get("csrf") == ["t1"] and "sid=s1" in self.headers.get("Cookie", "")
        name = fields["username"][0]
        self.send_response(401 if ok else 403)
        self.end_headers()
        self.wfile.write(f"<p>No luck for {name}.</p>".encode())


@pytest.fixture
def login_server(tls_pair: tuple[ssl.SSLContext, str]) -> Iterator[str]:
    server_context, _ = tls_pair
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LoginHandler)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/login"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    from reference_portal.tls import generate_tls_material, server_context

    material = generate_tls_material(tmp_path_factory.mktemp("tls"), host="127.0.0.1")
    return server_context(material), str(material.ca_file)


def test_form_client_posts_the_form_with_its_cookie_and_csrf_and_hides_usernames(
    login_server: str, tls_pair: tuple[ssl.SSLContext, str]
) -> None:
    client_context = ssl.create_default_context(cafile=tls_pair[1])
    answer = FormClient(client_context, 5).submit(
        login_server, "username", {"username": "alice", "password": "x"}, ("alice",)
    )
    assert answer.error is None
    assert answer.status == 401
    assert answer.text == "No luck for <username>."
    assert answer.elapsed > 0


def test_form_client_reports_a_closed_port_as_data() -> None:
    answer = FormClient(ssl.create_default_context(), 2).submit(
        "https://127.0.0.1:9/login", "username", {}, ()
    )
    assert answer.status is None and answer.error


# -- MFA -----------------------------------------------------------------------------------


def test_enforcement_fails_when_a_page_answers_after_the_password_alone() -> None:
    fine = DirectVisit("/results", 200, "/login/mfa", False, False, True, False)
    leak = DirectVisit("/dashboard", 200, "/dashboard", True, True, False, False)
    opened = DirectVisit("/results", 200, "/results", True, True, False, False)
    assert evaluate_enforcement(True, [fine], [opened]).status == "passed"
    assert keys(evaluate_enforcement(True, [fine, leak])) == {"mfa.bypass"}
    assert evaluate_enforcement(False, [fine]).status == "inconclusive"


def test_secret_bits_of_base32_secrets() -> None:
    assert secret_bits(pyotp.random_base32(32)) == 160
    assert secret_bits("JBSW Y3DP EHPK 3PXP") == 80
    assert secret_bits("not base32!") is None


def _enrolment(**changes: object) -> EnrolmentObservation:
    values: dict[str, object] = {
        "reauthentication_asked": True,
        "secret_bits": 160,
        "qr_read": True,
        "key_shown": True,
        "qr_and_key_agree": True,
        "wrong_code_refused": True,
        "confirmed": True,
        "second_factor_asked_after": True,
        "removed": True,
    }
    values.update(changes)
    return EnrolmentObservation(**values)  # type: ignore[arg-type]


def test_enrolment_findings() -> None:
    assert evaluate_enrolment(_enrolment(), min_secret_bits=160).status == "passed"
    assert keys(evaluate_enrolment(_enrolment(secret_bits=80), min_secret_bits=160)) == {
        "enrol.short_secret"
    }
    unconfirmed = _enrolment(wrong_code_refused=False)
    assert keys(evaluate_enrolment(unconfirmed, min_secret_bits=160)) == {"enrol.unconfirmed"}
    no_reauth = _enrolment(reauthentication_asked=False)
    assert keys(evaluate_enrolment(no_reauth, min_secret_bits=160)) == {"enrol.no_reauthentication"}
    unread = _enrolment(secret_bits=None, qr_problem="blurred")
    assert evaluate_enrolment(unread, min_secret_bits=160).status == "inconclusive"


def test_otp_findings() -> None:
    good = OtpObservation(True, False, 3, False, 5, 5, None)
    assert evaluate_otp(good, max_drift_steps=1, max_wrong_codes=10).status == "passed"
    replay = OtpObservation(True, True, 3, False, 5, 5, None)
    assert keys(evaluate_otp(replay, max_drift_steps=1, max_wrong_codes=10)) == {"otp.replay"}
    unthrottled = OtpObservation(True, False, 3, False, 10, None, True)
    assert keys(evaluate_otp(unthrottled, max_drift_steps=1, max_wrong_codes=10)) == {
        "otp.not_throttled"
    }
    refused_after_burst = OtpObservation(True, False, 3, False, 10, None, False)
    assert evaluate_otp(refused_after_burst, max_drift_steps=1, max_wrong_codes=10).status == (
        "passed"
    )
    broken = OtpObservation(False, False, 3, False, 0, None, None)
    assert evaluate_otp(broken, max_drift_steps=1, max_wrong_codes=10).status == "inconclusive"


def test_recovery_code_entropy_and_reuse() -> None:
    assert estimate_code_bits(["ABCD-EFGH-2345-6723"]) == pytest.approx(80)
    assert estimate_code_bits(["12345678"]) == pytest.approx(8 * 3.3219, rel=1e-3)
    assert estimate_code_bits([]) is None
    good = RecoveryObservation(10, 80.0, True, False)
    assert evaluate_recovery(good, min_bits=64).status == "passed"
    assert keys(evaluate_recovery(RecoveryObservation(10, 80.0, True, True), min_bits=64)) == {
        "recovery.reusable"
    }
    assert keys(evaluate_recovery(RecoveryObservation(10, 40.0, True, False), min_bits=64)) == {
        "recovery.weak"
    }


def test_qr_codes_decode_to_their_otpauth_uri_and_secret() -> None:
    secret = pyotp.random_base32(32)
    uri = pyotp.TOTP(secret).provisioning_uri(name="someone", issuer_name="Clinic")
    png = io.BytesIO()
    qrcode.make(uri).save(png, format="PNG")
    decoded = decode_qr(png.getvalue())
    assert decoded == uri
    assert secret_of(EnrolmentOffer(True, decoded, None)) == secret
    assert secret_of(EnrolmentOffer(True, None, " ".join([secret[:16], secret[16:]]))) == secret


def test_one_time_codes_are_redacted_only_where_they_stand_alone() -> None:
    redactor = Redactor()
    code = "493817"
    redactor.add(code)
    text = f'fill("{code}") at 1764149381723 wallTime 1764{code}1'
    assert (
        redactor.redact_text(text)
        == 'fill("[REDACTED]") at 1764149381723 wallTime 1764493817' + "1"
    )
    secret = base64.b32encode(b"x" * 20).decode()
    redactor.add(secret)
    assert secret not in redactor.redact_text(f"key {secret}")


# -- PROXY_ACCESS --------------------------------------------------------------------------


def test_proxy_access() -> None:
    granted = RecordVisit("/patients/1/results", True, 200, "/patients/1/results", True, False)
    refused = RecordVisit("/patients/2/results", False, 404, "/patients/2/results", False, False)
    sign_in = RecordVisit("/patients/2/messages", False, 200, "/login", False, True)
    leak = RecordVisit("/patients/2/messages", False, 200, "/patients/2/messages", True, False)
    assert evaluate_proxy_access([granted, refused, sign_in]).status == "passed"
    assert keys(evaluate_proxy_access([granted, refused, leak])) == {"proxy.not_granted_visible"}
    broken = RecordVisit("/patients/1/results", True, 404, "/patients/1/results", False, False)
    assert evaluate_proxy_access([broken, refused]).status == "inconclusive"


# -- profile -------------------------------------------------------------------------------

PROFILE = """\
name: Test portal
base_url: https://portal.test.invalid/
sign_in: {url: /login, username: "#u", password: "#p", submit: "#s"}
signed_in: {url: /home, indicator: "#me"}
sign_out: {control: "#out"}
protected_pages:
  - {name: home, url: /home, patient_data: "#data"}
accounts:
  patient: {username: audit.patient, password: "${PW}"}
"""


def test_mfa_and_proxy_sections_are_validated_with_file_line_and_field(tmp_path: Path) -> None:
    from portal.profile import load_profile
    from portal.profile_file import ProfileError

    path = tmp_path / "portal.yaml"
    path.write_text(
        PROFILE + "mfa:\n  code: '#c'\n  enrolment: {url: /mfa, start: '#go', confirm_code: '#k',"
        " confirm_submit: '#ok', enrolled: '#on'}\n"
        + "proxy_access: {granted_urls: [], not_granted_urls: [/x], patient_data: '#d'}\n"
    )
    with pytest.raises(ProfileError) as raised:
        load_profile(path, env={"PW": "secret-password"})
    text = str(raised.value)
    assert f"{path}:10: mfa.submit: required setting is missing" in text
    assert "mfa.enrolment: give 'qr_image' or 'shown_key'" in text
    assert "proxy_access.granted_urls" in text


def test_a_literal_totp_secret_is_refused(tmp_path: Path) -> None:
    from portal.profile import load_profile
    from portal.profile_file import ProfileError

    path = tmp_path / "portal.yaml"
    path.write_text(PROFILE + "  mfa: {username: m, password: '${PW}', totp_secret: JBSWY3DP}\n")
    with pytest.raises(ProfileError, match="accounts.mfa.totp_secret: a secret must be"):
        load_profile(path, env={"PW": "secret-password"})
