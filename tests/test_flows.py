"""Profile flows: validation with file:line:field, and the executor on a purpose-built portal.

The local portal (real HTTPS on 127.0.0.1, trusted through the profile's CA like any private
CA) does what a mainstream framework's pages do and one selector cannot describe: re-authentication
on a page of its own before TOTP setup, the key in a disabled <input>, the recovery codes in one
<textarea>, removal through a link and a confirmation page, sign-out confirmed on a page.
"""

from __future__ import annotations

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
from playwright.sync_api import Browser, Page, sync_playwright

from portal.contexts import launch_browser
from portal.driver import SelectorDriver
from portal.errors import Inconclusive
from portal.evidence import MASK, Redactor
from portal.flow_runner import run_flow, split_items
from portal.profile import Profile, load_profile
from portal.profile_file import ProfileError
from portal.second_factor import EnrolmentOffer, secret_of
from scanners.mfa import EnrolmentObservation, evaluate_enrolment, secret_bits, secret_source
from tests.local_portal import HtmlHandler
from tests.test_profile import GOOD

PASSWORD = "Flow-test-" + secrets.token_urlsafe(12)
ENV = {"FLOW_PASSWORD": PASSWORD, "PORTAL_PATIENT_PASSWORD": PASSWORD}

# -- the purpose-built portal ----------------------------------------------------------------


@dataclass
class PortalState:
    qr: bool = False
    key_shown: bool = True
    sessions: set[str] = field(default_factory=set)
    reauthenticated: set[str] = field(default_factory=set)
    secret: str | None = None
    enrolled: bool = False
    codes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _page(body: str) -> bytes:
    return f"<!doctype html><html><body>{body}</body></html>".encode()


def handler_for(state: PortalState) -> type[BaseHTTPRequestHandler]:
    class Handler(HtmlHandler):
        def _session(self) -> str | None:
            value = self.cookie("sid")
            return value if value in state.sessions else None

        def _setup_page(self, error: str = "") -> bytes:
            assert state.secret is not None
            shown = html.escape(state.secret) if state.key_shown else ""
            return _page(
                (f'<p id="enrol-error" role="alert">{error}</p>' if error else "")
                + ('<img id="qr" src="/mfa/qr.png" width="200" height="200">' if state.qr else "")
                + f'<label>Key <input id="totp-key" value="{shown}" disabled></label>'
                '<form method="post" action="/mfa/confirm"><input id="code" name="code">'
                '<button id="confirm">Turn on</button></form>'
            )

        def do_GET(self) -> None:  # noqa: C901 - one small portal, page by page
            path = urlsplit(self.path).path
            sid = self._session()
            if path == "/login":
                self.send_bytes(
                    _page(
                        '<form method="post" action="/login"><input id="username" name="u">'
                        '<input id="password" name="p" type="password">'
                        '<button id="sign-in">Sign in</button></form>'
                    )
                )
                return
            if sid is None:
                self.redirect("/login")
                return
            if path == "/home":
                self.send_bytes(
                    _page('<span id="me">Signed in</span><a id="sign-out" href="/logout">Out</a>')
                )
            elif path == "/logout":
                self.send_bytes(
                    _page(
                        '<form method="post" action="/logout"><p>Sign out now?</p>'
                        '<button id="really-sign-out">Sign out</button></form>'
                    )
                )
            elif path == "/mfa":
                if state.enrolled:
                    body = '<p id="mfa-on">On</p><a id="remove-link" href="/mfa/remove">Remove</a>'
                else:
                    body = '<p>Off</p><a id="add" href="/mfa/reauth?next=setup">Add an app</a>'
                self.send_bytes(_page(body))
            elif path == "/mfa/reauth":
                self.send_bytes(
                    _page(
                        '<form method="post" action="/mfa/reauth"><label>Password '
                        '<input id="reauth-password" name="p" type="password"></label>'
                        '<button id="reauth-continue">Continue</button></form>'
                    )
                )
            elif path == "/mfa/setup":
                if sid not in state.reauthenticated:
                    self.redirect("/mfa/reauth")
                    return
                with state.lock:
                    state.secret = state.secret or pyotp.random_base32(32)
                self.send_bytes(self._setup_page())
            elif path == "/mfa/qr.png" and state.secret:
                uri = pyotp.TOTP(state.secret).provisioning_uri(name="p", issuer_name="Flows")
                png = io.BytesIO()
                qrcode.make(uri).save(png, format="PNG")
                self.send_bytes(png.getvalue(), headers={"Content-Type": "image/png"})
            elif path == "/mfa/remove" and state.enrolled:
                self.send_bytes(
                    _page(
                        '<form id="remove-form" method="post" action="/mfa/remove">'
                        "<p>Remove your authenticator app?</p>"
                        '<input id="remove-password" name="p" type="password">'
                        '<button id="remove-confirm">Yes, remove it</button></form>'
                    )
                )
            else:
                self.send_bytes(_page("<p>Not found</p>"), 404)

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            form = self.form_fields()
            sid = self._session()
            if path == "/login":
                if form.get("u") == "flow.patient" and form.get("p") == PASSWORD:
                    new = secrets.token_urlsafe(16)
                    state.sessions.add(new)
                    self.redirect("/home", {"Set-Cookie": f"sid={new}; Path=/; Secure"})
                else:
                    self.send_bytes(_page('<p id="sign-in-error">No.</p>'), 401)
                return
            if sid is None:
                self.redirect("/login")
            elif path == "/logout":
                state.sessions.discard(sid)
                self.redirect("/login", {"Set-Cookie": "sid=; Path=/; Max-Age=0"})
            elif path == "/mfa/reauth":
                if form.get("p") == PASSWORD:
                    state.reauthenticated.add(sid)
                    self.redirect("/mfa/setup")
                else:
                    self.redirect("/mfa/reauth")
            elif path == "/mfa/confirm" and state.secret:
                if pyotp.TOTP(state.secret).verify(form.get("code", ""), valid_window=1):
                    state.enrolled = True
                    state.codes = [
                        f"{code[:4]}-{code[4:8]}"
                        for code in (pyotp.random_base32() for _ in range(5))
                    ]
                    block = "\n".join(state.codes)
                    self.send_bytes(
                        _page(
                            '<p id="mfa-on">On</p><label>Recovery codes '
                            f'<textarea id="codes" readonly rows="6">{block}</textarea></label>'
                        )
                    )
                else:
                    self.send_bytes(self._setup_page("That code is not right."))
            elif path == "/mfa/remove" and form.get("p") == PASSWORD:
                state.enrolled = False
                state.secret = None
                state.reauthenticated.discard(sid)
                self.redirect("/mfa")
            else:
                self.redirect("/mfa")

    return Handler


@dataclass
class FlowPortal:
    state: PortalState
    base_url: str
    ca_file: str


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    from reference_portal.tls import generate_tls_material, server_context

    material = generate_tls_material(tmp_path_factory.mktemp("tls"), host="127.0.0.1")
    return server_context(material), str(material.ca_file)


@pytest.fixture(scope="module")
def flow_portal(tls_material: tuple[ssl.SSLContext, str]) -> Iterator[FlowPortal]:
    context, ca_file = tls_material
    state = PortalState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FlowPortal(state, f"https://127.0.0.1:{server.server_address[1]}/", ca_file)
    server.shutdown()
    server.server_close()


@pytest.fixture
def portal(flow_portal: FlowPortal) -> FlowPortal:
    """The portal with a fresh state for each test (one server for the module)."""
    fresh = PortalState()
    for name in ("sessions", "reauthenticated", "secret", "enrolled", "codes"):
        setattr(flow_portal.state, name, getattr(fresh, name))
    flow_portal.state.qr = False
    flow_portal.state.key_shown = True
    return flow_portal


PORTAL_PROFILE = """
    name: Flow portal
    base_url: {base_url}
    sign_in: {{url: /login, username: "#username", password: "#password", submit: "#sign-in",
              error: "#sign-in-error"}}
    signed_in: {{url: /home, indicator: "#me"}}
    sign_out:
      control:
        - click: "#sign-out"
        - click: "#really-sign-out"
    protected_pages:
      - {{name: home, url: /home, patient_data: "#me"}}
    accounts:
      patient:
        username: flow.patient
        password: ${{FLOW_PASSWORD}}
        dedicated_test_account: true
    tls:
      ca_file: {ca_file}
    timeouts:
      navigation_seconds: 5
    mfa:
      code: "#otp"
      submit: "#verify"
      enrolment:
        url: /mfa
        start: "#add"
        reauthenticate:
          - fill: "#reauth-password"
            value: "{{password}}"
          - click: "#reauth-continue"
        qr_image: "#qr"
        shown_key: "#totp-key"
        confirm_code: "#code"
        confirm_submit: "#confirm"
        error: "#enrol-error"
        recovery_codes: "#codes"
        recovery_code_pattern: "[A-Z2-7]{{4}}-[A-Z2-7]{{4}}"
        enrolled: "#mfa-on"
        remove:
          - click: "#remove-link"
          - expect: "#remove-form"
          - fill: "#remove-password"
            value: "{{password}}"
            optional: true
          - click: "#remove-confirm"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portal.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def profile(portal: FlowPortal, tmp_path: Path) -> Profile:
    text = PORTAL_PROFILE.format(base_url=portal.base_url, ca_file=portal.ca_file)
    return load_profile(write(tmp_path, text), env=ENV)


@pytest.fixture(scope="module")
def browser(flow_portal: FlowPortal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    text = PORTAL_PROFILE.format(base_url=flow_portal.base_url, ca_file=flow_portal.ca_file)
    module_profile = load_profile(write(tmp_path_factory.mktemp("profile"), text), env=ENV)
    with sync_playwright() as runtime:
        launched = launch_browser(runtime, module_profile)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def observation(offer: EnrolmentOffer, confirmed: bool) -> EnrolmentObservation:
    """What steps/mfa.py builds from an offer (no secret values)."""
    secret = secret_of(offer)
    both = offer.qr_uri is not None and offer.shown_key is not None
    agree = secret == secret_of(EnrolmentOffer(True, None, offer.shown_key)) if both else None
    return EnrolmentObservation(
        reauthentication_asked=offer.reauthentication_asked,
        secret_bits=secret_bits(secret) if secret else None,
        qr_read=offer.qr_uri is not None,
        key_shown=offer.shown_key is not None,
        qr_and_key_agree=agree,
        wrong_code_refused=True,
        confirmed=confirmed,
        second_factor_asked_after=True,
        removed=True,
        qr_problem=offer.qr_problem,
    )


# -- driving the portal ----------------------------------------------------------------------


def test_enrolment_through_a_reauth_page_reads_a_disabled_key_and_splits_one_block_of_codes(
    portal: FlowPortal, profile: Profile, page: Page
) -> None:
    redactor = Redactor(profile.secrets())
    driver = SelectorDriver(profile, redactor)
    assert driver.sign_in(page, profile.patient).signed_in

    offer = driver.start_enrolment(page, profile.patient)
    assert offer.reauthentication_asked  # the password was typed on the re-auth page
    assert portal.state.secret is not None
    assert offer.shown_key == portal.state.secret  # the disabled input's value, not its text
    assert offer.qr_uri is None and offer.qr_problem == ""  # no QR on this portal: no problem
    assert secret_of(offer) == portal.state.secret
    assert redactor.redact_text(f"key {portal.state.secret}") == f"key {MASK}"

    wrong = driver.confirm_enrolment(page, driver.wrong_totp(portal.state.secret, 1))
    assert not wrong.confirmed and wrong.detail == "refused: That code is not right."
    result = driver.confirm_enrolment(page, driver.fresh_totp(portal.state.secret))
    assert result.confirmed
    assert result.recovery_codes == portal.state.codes and len(result.recovery_codes) == 5
    assert all(redactor.redact_text(code) == MASK for code in result.recovery_codes)

    evaluation = evaluate_enrolment(observation(offer, True), min_secret_bits=160)
    assert evaluation.status == "passed"
    assert "(read from key)" in evaluation.measured

    assert driver.remove_authenticator(page, profile.patient)  # link, confirmation page, submit
    assert not portal.state.enrolled


def test_an_empty_key_element_is_not_named_as_a_source_of_the_secret(
    portal: FlowPortal, profile: Profile, page: Page
) -> None:
    portal.state.qr = True
    portal.state.key_shown = False  # <input disabled value="">: reads as nothing
    driver = SelectorDriver(profile, Redactor(profile.secrets()))
    assert driver.sign_in(page, profile.patient).signed_in
    offer = driver.start_enrolment(page, profile.patient)
    assert offer.shown_key is None
    assert offer.qr_uri is not None and secret_of(offer) == portal.state.secret
    evaluation = evaluate_enrolment(observation(offer, True), min_secret_bits=160)
    assert "(read from QR code)" in evaluation.measured


def test_a_flow_signs_out_through_a_confirmation_page(profile: Profile, page: Page) -> None:
    driver = SelectorDriver(profile, Redactor(profile.secrets()))
    assert driver.sign_in(page, profile.patient).signed_in
    driver.sign_out(page)
    assert not driver.is_signed_in(page)


def test_a_missing_element_is_inconclusive_naming_flow_step_selector_and_page(
    profile: Profile, page: Page
) -> None:
    from portal.flows import Step
    from portal.profile_sections import Timeouts

    profile = profile.model_copy(update={"timeouts": Timeouts(navigation_seconds=1)})
    redactor = Redactor()
    steps = (
        Step(open="/login?token=do-not-show"),
        Step(click="#no-such-banner", optional=True),  # skipped within the short bound
        Step(fill="#username", value="{password}"),
        Step(expect="#no-such-field"),
    )
    with pytest.raises(Inconclusive) as caught:
        run_flow(
            page,
            steps,
            name="test.flow",
            profile=profile,
            redactor=redactor,
            values={"password": PASSWORD},
        )
    message = str(caught.value)
    assert message.startswith("flow test.flow, step 4 (expect '#no-such-field') at https://")
    assert message.endswith("/login: not visible within 1 s")
    assert "do-not-show" not in message and "Timeout" not in message
    assert redactor.redact_text(PASSWORD) == MASK  # registered before it was typed

    with pytest.raises(Inconclusive, match=r"step 1 \(fill '#username'\).*no value for \{code\}"):
        run_flow(
            page,
            (Step(fill="#username", value="{code}"),),
            name="x",
            profile=profile,
            redactor=redactor,
        )


def test_read_value_reads_a_disabled_input_and_split_finds_each_item(
    profile: Profile, page: Page
) -> None:
    from portal.flows import Step

    page.set_content(
        '<input id="k" value="ABCD EFGH" disabled><textarea id="c">x1y2-aaaa\nq9z8-bbbb '
        "z7p6-cccc</textarea>"
    )
    outcome = run_flow(
        page,
        (
            Step(read_text="#k", into="as_text"),
            Step(read_value="#k", into="key"),
            Step(read_value="#c", into="block"),
            Step(split="block", pattern=r"[a-z0-9]{4}-[a-z]{4}", into="codes"),
            Step(split="missing_block", pattern="x", into="nothing", optional=True),
        ),
        name="read",
        profile=profile,
        redactor=Redactor(),
    )
    assert outcome.text("as_text") == ""
    assert outcome.text("key") == "ABCD EFGH"
    assert outcome.items("codes") == ["x1y2-aaaa", "q9z8-bbbb", "z7p6-cccc"]
    assert outcome.skipped == (5,)


def test_split_items_uses_the_first_group_when_there_is_one() -> None:
    assert split_items("1. abc\n2. def", r"\d\. (\w+)") == ["abc", "def"]
    assert split_items("abc def", r"\w+") == ["abc", "def"]


def test_secret_source_names_only_sources_that_yielded_the_secret() -> None:
    offer = EnrolmentOffer(True, None, "JBSWY3DPEHPK3PXP")
    assert secret_source(observation(offer, True)) == "read from key"
    base = observation(offer, True)
    mismatch = EnrolmentObservation(
        **{**vars(base), "qr_read": True, "key_shown": True, "qr_and_key_agree": False}
    )
    assert secret_source(mismatch) == "read from QR code"
    both = EnrolmentObservation(**{**vars(mismatch), "qr_and_key_agree": True})
    assert secret_source(both) == "read from QR code and key"


# -- profile validation ----------------------------------------------------------------------

# The minimal profile of tests/test_profile.py, with an authenticator enrolment page.
BASE = (
    GOOD
    + """    mfa:
      code: "#c"
      submit: "#go"
      enrolment:
        url: /mfa
        start: "#add"
        shown_key: "#key"
        confirm_code: "#k"
        confirm_submit: "#ok"
        enrolled: "#on"
"""
)


def problems(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, BASE + textwrap.indent(textwrap.dedent(extra), " " * 8)), ENV)
    return str(caught.value)


def test_the_one_selector_form_and_flows_load(tmp_path: Path) -> None:
    plain = load_profile(write(tmp_path, BASE), ENV)
    assert plain.mfa is not None and plain.mfa.enrolment is not None
    assert plain.mfa.enrolment.start == "#add"
    flows = load_profile(
        write(
            tmp_path,
            BASE
            + textwrap.indent(
                textwrap.dedent("""
                    remove:
                      - click: "text=Remove"
                      - fill: "#password"
                        value: "{password}"
                        optional: true
                      - click: "text=Yes, remove"
                    recovery_codes:
                      - read_value: "textarea#codes"
                        into: block
                      - split: block
                        pattern: "[a-z0-9]{5}-[a-z0-9]{5}"
                        into: recovery_codes
                """),
                " " * 8,
            ),
        ),
        ENV,
    )
    assert flows.mfa is not None and flows.mfa.enrolment is not None
    remove = flows.mfa.enrolment.remove
    assert isinstance(remove, tuple) and [s.kind for s in remove] == ["click", "fill", "click"]


def test_a_step_with_two_kinds_names_its_line(tmp_path: Path) -> None:
    text = problems(tmp_path, 'remove:\n  - click: "#a"\n  - click: "#b"\n    fill: "#c"\n')
    assert (
        ":24: mfa.enrolment.remove.1: a step has exactly one kind; this one has click and fill"
        in text
    )


def test_an_unknown_step_kind_names_its_line(tmp_path: Path) -> None:
    text = problems(tmp_path, 'remove:\n  - click: "#a"\n  - tap: "#b"\n')
    assert ":24: mfa.enrolment.remove.1: unknown step kind 'tap'" in text


def test_an_unknown_placeholder_names_its_line(tmp_path: Path) -> None:
    text = problems(tmp_path, 'remove:\n  - fill: "#p"\n    value: "{pasword}"\n')
    assert ":24: mfa.enrolment.remove.0.value: unknown placeholder {pasword}" in text


def test_a_placeholder_the_field_does_not_offer_is_refused(tmp_path: Path) -> None:
    text = problems(tmp_path, 'remove:\n  - fill: "#p"\n    value: "{new_password}"\n')
    assert ":22: mfa.enrolment.remove: this flow cannot fill {new_password}" in text


def test_a_bad_regular_expression_names_its_line(tmp_path: Path) -> None:
    flow = (
        'recovery_codes:\n  - read_text: "pre"\n    into: block\n'
        '  - split: block\n    into: recovery_codes\n    pattern: "([a-z"\n'
    )
    text = problems(tmp_path, flow)
    assert ":27: mfa.enrolment.recovery_codes.1.pattern: not a valid regular expression" in text
    pattern = problems(tmp_path, 'recovery_codes: "#codes"\nrecovery_code_pattern: "(x"\n')
    assert ":23: mfa.enrolment.recovery_code_pattern: not a valid regular expression" in pattern


def test_flows_missing_what_their_field_needs_are_refused(tmp_path: Path) -> None:
    no_split = problems(tmp_path, 'recovery_codes:\n  - read_text: "pre"\n    into: codes\n')
    assert "mfa.enrolment.recovery_codes: this flow must end with a split step" in no_split
    split_first = problems(
        tmp_path, "recovery_codes:\n  - split: block\n    pattern: x\n    into: recovery_codes\n"
    )
    assert "step 1 splits 'block', which no earlier step reads" in split_first
    bad_start = problems(tmp_path, "reauthenticate: '#password'\n")
    assert "mfa.enrolment.reauthenticate: give a list of steps" in bad_start
    missing_value = problems(tmp_path, 'remove:\n  - fill: "#p"\n')
    assert ":23: mfa.enrolment.remove.0: a fill step needs 'value'" in missing_value
