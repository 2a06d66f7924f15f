"""A portal whose stock two-factor pages behave like Flask-Security's (targets/flask_security).

Two things one-selector profiles and a same-page confirmation could not handle there:

- a wrong confirmation code sends the user back to the start of the enrolment (the setup
  choice, no confirmation field), so MFA_ENROLL must start again and confirm a new secret;
- the recovery-code entry is reached through a rescue form (choose an option, then submit), so
  ``mfa.recovery_link`` takes steps.

The key is shown in dashed groups (``ABCD-EFGH-...``), as Flask-Security shows it. Real HTTPS on
127.0.0.1, trusted through the profile's CA.
"""

from __future__ import annotations

import base64
import html
import io
import secrets
import ssl
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pyotp
import pytest
import qrcode
from playwright.sync_api import Browser, sync_playwright

from portal.abilities import ConfirmationGone
from portal.contexts import Contexts, launch_browser
from portal.driver import SelectorDriver
from portal.errors import Inconclusive
from portal.evidence import MASK, Evidence, Redactor
from portal.profile import Profile, load_profile
from portal.profile_file import ProfileError
from scanners.mfa import evaluate_enrolment
from steps.mfa import Enrolled, add_authenticator
from tests.local_portal import HtmlHandler

PASSWORD = "Restart-test-" + secrets.token_urlsafe(12)
ENV = {"RESTART_PASSWORD": PASSWORD}
USER = "layla@patients.example"


@dataclass
class TwoFactorState:
    """The one account's two-factor state, and what the audit did to it."""

    sessions: dict[str, str] = field(default_factory=dict)  # sid -> "pending" | "in"
    offered: list[str] = field(default_factory=list)  # every secret offered, in order
    enrolled_secret: str | None = None
    codes: list[str] = field(default_factory=list)
    flash: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


def _page(body: str) -> bytes:
    return f"<!doctype html><html><body>{body}</body></html>".encode()


def dashed(secret: str) -> str:
    """The key as Flask-Security shows it (passlib's pretty_key): groups of four, dashes."""
    return "-".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def handler_for(state: TwoFactorState) -> type[BaseHTTPRequestHandler]:
    class Handler(HtmlHandler):
        def _sid(self) -> str | None:
            value = self.cookie("sid")
            return value if value in state.sessions else None

        def _flashes(self) -> str:
            flash, state.flash = state.flash, ""
            return f'<ul class="flashes"><li class="error">{flash}</li></ul>' if flash else ""

        def _setup(self, offered: str | None = None, codes: str = "") -> bytes:
            """The setup choice; with a secret offered, also the QR code, key and code form."""
            if state.enrolled_secret:
                choice = '<label><input type="radio" name="setup" value="disable"> Disable</label>'
                method = "authenticator"
            else:
                choice = (
                    '<label><input type="radio" name="setup" value="authenticator"> App</label>'
                )
                method = "none"
            body = (
                self._flashes() + f"<p>Currently setup two-factor method: {method}</p>"
                '<form method="post" action="/setup" name="setup_form">'
                f'{choice}<input type="submit" id="setup-submit" value="Submit"></form>'
            )
            if offered:
                body += (
                    '<img id="qr" src="/qr.png" width="200" height="200">'
                    f'<div id="key">{html.escape(dashed(offered))}</div>'
                    '<form method="post" action="/confirm" name="verify_form">'
                    '<input id="confirm-code" name="code"><button id="confirm">Confirm</button>'
                    "</form>"
                )
            return _page(body + codes)

        def _code_page(self, error: str = "") -> bytes:
            return _page(
                (f'<p class="code-error">{error}</p>' if error else "")
                + '<form method="post" action="/code"><input id="code" name="code">'
                '<button id="verify">Verify</button></form>'
                '<form method="post" action="/rescue" name="rescue_form">'
                '<label><input type="radio" name="help" value="help"> Contact us</label>'
                '<label><input type="radio" name="help" value="recovery_code"> Recovery code'
                '</label><input type="submit" id="rescue" value="Submit"></form>'
            )

        def _recovery_page(self, error: str = "") -> bytes:
            return _page(
                (f'<p class="code-error">{error}</p>' if error else "")
                + '<form method="post" action="/recovery"><input id="recovery" name="code">'
                '<button id="use-recovery">Use it</button></form>'
            )

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            sid = self._sid()
            signed_in = sid is not None and state.sessions[sid] == "in"
            if path == "/login":
                self.send_bytes(
                    _page(
                        '<form method="post" action="/login"><input id="email" name="email">'
                        '<input id="password" name="password" type="password">'
                        '<button id="sign-in">Sign in</button></form>'
                    )
                )
            elif path == "/code" and sid is not None and not signed_in:
                self.send_bytes(self._code_page())
            elif path == "/recovery" and sid is not None and not signed_in:
                self.send_bytes(self._recovery_page())
            elif not signed_in:
                self.redirect("/login")
            elif path == "/home":
                self.send_bytes(
                    _page(
                        '<span id="me">Layla</span><form method="post" action="/logout">'
                        '<button id="sign-out">Sign out</button></form>'
                    )
                )
            elif path == "/setup":
                self.send_bytes(self._setup())
            elif path == "/qr.png" and state.offered:
                uri = pyotp.TOTP(state.offered[-1]).provisioning_uri(name=USER, issuer_name="R")
                png = io.BytesIO()
                qrcode.make(uri).save(png, format="PNG")
                self.send_bytes(png.getvalue(), headers={"Content-Type": "image/png"})
            else:
                self.send_bytes(_page("<p>Not found</p>"), 404)

        def do_POST(self) -> None:  # noqa: C901 - one small portal, form by form
            path = urlsplit(self.path).path
            form = self.form_fields()
            sid = self._sid()
            if path == "/login":
                if form.get("email") == USER and form.get("password") == PASSWORD:
                    new = secrets.token_urlsafe(16)
                    state.sessions[new] = "pending" if state.enrolled_secret else "in"
                    to = "/code" if state.enrolled_secret else "/home"
                    self.redirect(to, {"Set-Cookie": f"sid={new}; Path=/; Secure"})
                else:
                    self.send_bytes(_page('<p id="sign-in-error">No.</p>'), 401)
            elif sid is None:
                self.redirect("/login")
            elif path == "/code":
                secret = state.enrolled_secret
                if secret and pyotp.TOTP(secret).verify(form.get("code", ""), valid_window=1):
                    state.sessions[sid] = "in"
                    self.redirect("/home")
                else:
                    self.send_bytes(self._code_page("Invalid code"))
            elif path == "/rescue":
                if form.get("help") == "recovery_code":
                    self.redirect("/recovery")
                else:
                    self.send_bytes(self._code_page())
            elif path == "/recovery":
                with state.lock:
                    used = form.get("code", "")
                    if used in state.codes:
                        state.codes.remove(used)
                        state.sessions[sid] = "in"
                        self.redirect("/home")
                        return
                self.send_bytes(self._recovery_page("Invalid recovery code"))
            elif state.sessions[sid] != "in":
                self.redirect("/code")
            elif path == "/logout":
                del state.sessions[sid]
                self.redirect("/login", {"Set-Cookie": "sid=; Path=/; Max-Age=0"})
            elif path == "/setup" and form.get("setup") == "authenticator":
                secret = base64.b32encode(secrets.token_bytes(20)).decode()  # 160 bits
                state.offered.append(secret)
                self.send_bytes(self._setup(offered=secret))
            elif path == "/setup" and form.get("setup") == "disable":
                state.enrolled_secret = None
                state.codes = []
                self.redirect("/setup")
            elif path == "/confirm" and state.offered:
                secret = state.offered[-1]
                if pyotp.TOTP(secret).verify(form.get("code", ""), valid_window=1):
                    state.enrolled_secret = secret
                    state.codes = [secrets.token_hex(6) for _ in range(5)]
                    codes = "".join(f'<li class="recovery-code">{c}</li>' for c in state.codes)
                    self.send_bytes(self._setup(codes=f"<ul>{codes}</ul>"))
                else:
                    # As Flask-Security (views.py:1044-1049): flash, back to the setup choice.
                    state.flash = "Invalid code"
                    self.redirect("/setup")
            else:
                self.redirect("/setup")

    return Handler


@dataclass
class RestartPortal:
    state: TwoFactorState
    base_url: str
    ca_file: str


@pytest.fixture(scope="module")
def restart_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartPortal]:
    from reference_portal.tls import generate_tls_material, server_context

    material = generate_tls_material(tmp_path_factory.mktemp("tls"), host="127.0.0.1")
    context: ssl.SSLContext = server_context(material)
    state = TwoFactorState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    yield RestartPortal(state, f"https://127.0.0.1:{port}/", str(material.ca_file))
    server.shutdown()
    server.server_close()


@pytest.fixture
def portal(restart_portal: RestartPortal) -> RestartPortal:
    """The portal with a fresh state for each test (one server for the module)."""
    fresh = TwoFactorState()
    for name in ("sessions", "offered", "enrolled_secret", "codes", "flash"):
        setattr(restart_portal.state, name, getattr(fresh, name))
    return restart_portal


PROFILE = """
    name: Restarting enrolment portal
    base_url: {base_url}
    sign_in: {{url: /login, username: "#email", password: "#password", submit: "#sign-in",
              error: "#sign-in-error"}}
    signed_in: {{url: /home, indicator: "#me"}}
    sign_out: {{control: "#sign-out"}}
    protected_pages:
      - {{name: home, url: /home, patient_data: "#me"}}
    accounts:
      patient:
        username: {user}
        password: ${{RESTART_PASSWORD}}
        dedicated_test_account: true
    tls:
      ca_file: {ca_file}
    timeouts:
      navigation_seconds: 3
    mfa:
      code: "#code"
      submit: "#verify"
      error: ".code-error"
      recovery_link:
        - click: "form[name=rescue_form] input[value=recovery_code]"
        - click: "form[name=rescue_form] #rescue"
      recovery_code: "#recovery"
      recovery_submit: "#use-recovery"
      enrolment:
        url: /setup
        start:
          - expect: "text=Currently setup two-factor method: none"
          - click: "form[name=setup_form] input[value=authenticator]"
          - click: "form[name=setup_form] #setup-submit"
        qr_image: "#qr"
        shown_key: "#key"
        confirm_code: "#confirm-code"
        confirm_submit: "#confirm"
        error: "ul.flashes li.error"
        recovery_codes: "li.recovery-code"
        enrolled: "form[name=setup_form] input[value=disable]"
        remove:
          - click: "form[name=setup_form] input[value=disable]"
          - click: "form[name=setup_form] #setup-submit"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portal.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def profile_text(portal: RestartPortal) -> str:
    return PROFILE.format(base_url=portal.base_url, ca_file=portal.ca_file, user=USER)


@pytest.fixture
def profile(portal: RestartPortal, tmp_path: Path) -> Profile:
    return load_profile(write(tmp_path, profile_text(portal)), env=ENV)


@pytest.fixture(scope="module")
def browser(
    restart_portal: RestartPortal, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    path = write(tmp_path_factory.mktemp("profile"), profile_text(restart_portal))
    with sync_playwright() as runtime:
        launched = launch_browser(runtime, load_profile(path, env=ENV))
        yield launched
        launched.close()


@pytest.fixture
def contexts(browser: Browser, profile: Profile, tmp_path: Path) -> Iterator[Contexts]:
    opened = Contexts(browser, profile, Redactor(profile.secrets()), tmp_path / "contexts")
    yield opened
    opened.close(None)


# -- MFA_ENROLL: a refused code that goes back to the start ----------------------------------


def test_a_refusal_that_returns_to_the_start_restarts_the_enrolment_and_confirms_the_new_secret(
    portal: RestartPortal, profile: Profile, contexts: Contexts, tmp_path: Path
) -> None:
    redactor = contexts.redactor
    driver = SelectorDriver(profile, redactor)
    page = contexts.new_page()
    assert driver.sign_in(page, profile.patient).signed_in

    observation = add_authenticator(
        Enrolled(page, profile.patient), driver, contexts, Evidence(redactor, tmp_path / "ev")
    )

    first, second = portal.state.offered  # the wrong code spent the first; the second was enrolled
    assert first != second
    assert observation.restarted_after_wrong_code
    assert observation.wrong_code_refused and observation.confirmed
    assert observation.secret_bits == 160
    assert observation.qr_and_key_agree  # the dashed key is the QR code's secret
    assert observation.second_factor_asked_after
    # Removal signed in again with the secret actually enrolled, then disabled it.
    assert observation.removed and portal.state.enrolled_secret is None
    assert redactor.redact_text(f"{first} {second} {dashed(first)}") == f"{MASK} {MASK} {MASK}"

    evaluation = evaluate_enrolment(observation, min_secret_bits=160)
    assert evaluation.status == "failed"
    assert [f.key for f in evaluation.findings] == ["enrol.no_reauthentication"]
    assert "wrong confirmation code refused (the portal went back to the start" in (
        evaluation.measured
    )


def test_confirming_where_there_is_no_confirmation_field_raises_confirmation_gone(
    portal: RestartPortal, profile: Profile, contexts: Contexts
) -> None:
    driver = SelectorDriver(profile, contexts.redactor)
    page = contexts.new_page()
    assert driver.sign_in(page, profile.patient).signed_in
    page.goto(profile.url("/setup"))  # the setup choice: no secret offered, no field
    with pytest.raises(ConfirmationGone, match=r"no confirmation field '#confirm-code' at https"):
        driver.confirm_enrolment(page, "123456")
    assert issubclass(ConfirmationGone, Inconclusive)  # inconclusive wherever nobody expects it


# -- MFA_RECOVERY: the recovery-code entry behind a rescue form -------------------------------


def test_recovery_link_steps_open_the_entry_through_the_rescue_form(
    portal: RestartPortal, profile: Profile, contexts: Contexts
) -> None:
    portal.state.enrolled_secret = pyotp.random_base32(32)
    portal.state.codes = [secrets.token_hex(6) for _ in range(3)]
    code = portal.state.codes[0]
    driver = SelectorDriver(profile, contexts.redactor)

    page = contexts.new_page()
    assert driver.first_factor(page, profile.patient) == "second_factor"
    assert driver.submit_recovery_code(page, code) == "signed_in"  # radio, submit, entry
    again = contexts.new_page()
    assert driver.first_factor(again, profile.patient) == "second_factor"
    assert driver.submit_recovery_code(again, code) == "second_factor"  # used: refused
    assert code not in portal.state.codes


def test_recovery_link_steps_that_cannot_run_name_the_flow(
    portal: RestartPortal, profile: Profile, contexts: Contexts
) -> None:
    portal.state.enrolled_secret = pyotp.random_base32(32)
    driver = SelectorDriver(profile, contexts.redactor)
    page = contexts.new_page()
    assert driver.first_factor(page, profile.patient) == "second_factor"
    page.evaluate("document.querySelector('form[name=rescue_form]').remove()")
    with pytest.raises(Inconclusive, match=r"^flow mfa\.recovery_link, step 1 \(click "):
        driver.submit_recovery_code(page, "0123456789ab")


# -- the profile field -----------------------------------------------------------------------


def test_recovery_link_takes_a_selector_or_steps_that_fill_nothing(
    portal: RestartPortal, tmp_path: Path
) -> None:
    steps = profile_text(portal)
    loaded = load_profile(write(tmp_path, steps), env=ENV)
    assert loaded.mfa is not None and isinstance(loaded.mfa.recovery_link, tuple)
    assert [step.kind for step in loaded.mfa.recovery_link] == ["click", "click"]

    one = steps.replace(
        """      recovery_link:
        - click: "form[name=rescue_form] input[value=recovery_code]"
        - click: "form[name=rescue_form] #rescue"
""",
        '      recovery_link: "text=Use a recovery code"\n',
    )
    single = load_profile(write(tmp_path, one), env=ENV)
    assert single.mfa is not None and single.mfa.recovery_link == "text=Use a recovery code"

    filling = steps.replace(
        '        - click: "form[name=rescue_form] #rescue"\n',
        '        - fill: "#password"\n          value: "{password}"\n',
    )
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, filling), env=ENV)
    assert "mfa.recovery_link: this flow cannot fill {password} (placeholders here: none)" in str(
        caught.value
    )
    bad = steps.replace('- click: "form[name=rescue_form] #rescue"', '- tap: "#rescue"')
    with pytest.raises(ProfileError, match=r"mfa\.recovery_link\.1: unknown step kind 'tap'"):
        load_profile(write(tmp_path, bad), env=ENV)
