"""Reports that keep secrets and stay private: redaction as Allure writes (a run killed half-way
leaves nothing in clear), credentials in URLs, every value a check sets registered before it is
typed, and report files 0600/0700 unless widened (the offline HTML report: test_report_offline)."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import textwrap
import zipfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from portal.abilities import SignInOutcome
from portal.driver import SelectorDriver
from portal.evidence import MASK, Redactor, url_credentials, url_without_credentials
from portal.password_keeper import PasswordKeeper
from portal.profile import Profile
from portal.profile_sections import Account
from portal.report_files import (
    apply_mode,
    secure_runs_dir,
)
from portal.second_factor import secret_of
from portal.summary import write_reports
from tests.local_portal import write_profile
from tests.test_profile import ROOT

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leaks(root: Path, needles: list[str]) -> list[str]:
    """Files under root (zip entries opened) holding any of the needles in clear."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        contents = [data]
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                contents = [archive.read(name) for name in archive.namelist()]
        for content in contents:
            found += [f"{path.name}: {n}" for n in needles if n.encode() in content]
    return found


# -- 1. redaction as Allure writes -----------------------------------------------------------

FEATURE = """
Feature: A check that sets a password
  Scenario: A password the check set is a step argument
    Given the check sets a new password
    Then the new password is used, and the step states "STATED_PASSWORD"

  Scenario: The run is stopped
    Given the run is stopped from outside
"""

CONFTEST = """
import os

import pytest

from portal.allure_writer import install_redacting_writer
from portal.evidence import Redactor

REDACTOR = Redactor()


def pytest_collection_finish(session):
    # Where the audit plugin installs it: once the run's redactor exists, before any scenario.
    if os.environ["INSTALL_WRITER"] == "1":
        install_redacting_writer(session.config, REDACTOR)


@pytest.fixture
def redactor():
    return REDACTOR
"""

STEPS = """
import io
import os
import signal
import zipfile

import allure
from pytest_bdd import given, parsers, scenarios, then

scenarios("run.feature")


@given("the check sets a new password", target_fixture="new_password")
def set_password(redactor):
    value = os.environ["NEW_PASSWORD"]
    redactor.add(value)  # learned during the run, long after the writer was installed
    return value


@then(parsers.parse('the new password is used, and the step states "{stated}"'))
def use_it(new_password, redactor, stated):
    portal = os.environ["PORTAL_URL"]
    print(f"typed {new_password} at {portal}")
    text = allure.attachment_type.TEXT
    allure.attach(f"password={new_password}", name="log", attachment_type=text)
    trace = io.BytesIO()
    with zipfile.ZipFile(trace, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("trace.trace", '{"fill": "%s", "url": "%s"}' % (new_password, portal))
    allure.attach(trace.getvalue(), name="trace", extension="zip")
    png = allure.attachment_type.PNG
    allure.attach(bytes.fromhex(os.environ["PNG_HEX"]), name="shot", attachment_type=png)


@given("the run is stopped from outside")
def stopped():
    os.kill(os.getpid(), signal.SIGTERM)
"""


def _killed_run(tmp_path: Path, install: bool, password: str, portal_url: str) -> Path:
    project = tmp_path / ("with-writer" if install else "without-writer")
    project.mkdir()
    feature = textwrap.dedent(FEATURE).lstrip().replace("STATED_PASSWORD", password)
    (project / "run.feature").write_text(feature)
    (project / "conftest.py").write_text(CONFTEST.lstrip())
    (project / "test_run.py").write_text(STEPS.lstrip())
    results = project / "allure-results"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "INSTALL_WRITER": "1" if install else "0",
        "NEW_PASSWORD": password,
        "PORTAL_URL": portal_url,
        "PNG_HEX": PNG.hex(),
    }
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--alluredir={results}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Killed by SIGTERM in the second scenario: no session end, no final redaction pass.
    assert completed.returncode == -signal.SIGTERM, completed.stdout + completed.stderr
    return results


def test_a_run_killed_half_way_leaves_every_result_and_attachment_redacted(
    tmp_path: Path,
) -> None:
    password = "Set-by-check-" + secrets.token_urlsafe(12)
    portal_url = f"https://auditor:{secrets.token_hex(6)}@portal.test.invalid/"
    needles = [password, portal_url, url_credentials(portal_url)[0]]

    # Without the redacting writer the killed run leaves the password in clear (the bug).
    plain = _killed_run(tmp_path, install=False, password=password, portal_url=portal_url)
    assert _leaks(plain, [password])

    results = _killed_run(tmp_path, install=True, password=password, portal_url=portal_url)
    assert _leaks(results, needles) == []
    written = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    assert [r["name"] for r in written] == ["A password the check set is a step argument"]
    parameters = {
        p["name"]: p["value"] for s in written[0]["steps"] for p in s.get("parameters", [])
    }
    # What the step states is a parameter, redacted; the step function's fixtures are not.
    assert parameters == {"stated": repr(MASK)}, parameters
    assert "stdout" in {a["name"] for a in written[0]["attachments"]}
    attached = [a for s in written[0]["steps"] for a in s.get("attachments", [])]
    by_name = {a["name"]: a["source"] for a in attached}
    assert (results / by_name["shot"]).read_bytes() == PNG  # images are left as they are
    with zipfile.ZipFile(results / by_name["trace"]) as archive:
        trace = archive.read("trace.trace").decode()
    assert trace.count(MASK) == 2, trace
    assert MASK in (results / by_name["log"]).read_text()
    assert {_mode(p) for p in results.iterdir()} == {0o600}


# -- 2. credentials in URLs ------------------------------------------------------------------

URL_PROFILE = """
    name: Portal behind basic auth
    base_url: https://auditor:{password}@portal.test.invalid/
    plain_http_url: http://auditor:{password}@portal.test.invalid/
    sign_in: {{url: /login, username: "#u", password: "#p", submit: "#s"}}
    signed_in: {{url: /home, indicator: "#me"}}
    sign_out: {{control: "#out"}}
    protected_pages:
      - {{name: home, url: /home, patient_data: "#data"}}
    accounts:
      patient:
        username: audit.patient
        password: ${{PORTAL_PATIENT_PASSWORD}}
"""


def test_credentials_in_profile_urls_are_learned_and_never_shown(tmp_path: Path) -> None:
    raw = "Pa$$-" + secrets.token_hex(4)
    encoded = raw.replace("$", "%24")
    profile = write_profile(
        tmp_path,
        URL_PROFILE.format(password=encoded),
        {"PORTAL_PATIENT_PASSWORD": "correct horse battery staple"},
    )
    assert url_without_credentials(profile.base_url) == "https://portal.test.invalid/"
    assert url_without_credentials("https://host/a?b=c") == "https://host/a?b=c"
    redactor = Redactor(profile.secrets())
    redactor.add_url_credentials(profile)
    basic = base64.b64encode(f"auditor:{raw}".encode()).decode()
    text = "\n".join(
        [profile.base_url, f"password {raw}", f"Authorization: Basic {basic}", encoded]
    )
    redacted = redactor.redact_text(text)
    for spelling in (raw, encoded, basic, "auditor:"):
        assert spelling not in redacted, redacted
    # A URL credential nobody registered is still masked wherever it turns up.
    assert (
        Redactor().redact_text("see https://bob:hunter2@h.test/x") == f"see https://{MASK}@h.test/x"
    )

    from portal.catalogue import load_catalogue
    from portal.summary import build_summary

    catalogue = load_catalogue()
    summary = build_summary({}, catalogue, profile="p", target=profile.base_url, extra={})
    assert summary["target"] == "https://portal.test.invalid/"
    write_reports({**summary, "target": profile.base_url}, catalogue, tmp_path / "run")
    assert _leaks(tmp_path / "run", [encoded, raw, "auditor"]) == []


# -- 3. every value a check sets is registered before it is typed ----------------------------


class FakeLocator:
    """Just enough of a Playwright locator for the driver's form code."""

    def __init__(self, page: FakePage, selector: str, value: str | None = None) -> None:
        self.page = page
        self.selector = selector
        self.value = value

    @property
    def first(self) -> FakeLocator:
        return self

    def or_(self, other: FakeLocator) -> FakeLocator:
        return FakeLocator(self.page, f"{self.selector} | {other.selector}")

    def is_visible(self, **_: Any) -> bool:
        return any(part not in self.page.hidden for part in self.selector.split(" | "))

    def wait_for(self, **_: Any) -> None:
        if not self.is_visible():
            raise PlaywrightTimeout(f"{self.selector} never appeared")

    def fill(self, value: str, **_: Any) -> None:
        self.page.fills.append(
            (self.selector, value, self.page.redactor.contains_secret(value.encode()))
        )

    def click(self, **_: Any) -> None:
        pass

    def _text(self) -> str:
        if self.value is not None:
            return self.value
        shown = self.page.texts.get(self.selector, "")
        return shown if isinstance(shown, str) else "\n".join(shown)

    def evaluate(self, _script: str, *_: Any, **__: Any) -> Any:
        return self._text()

    def inner_text(self, **_: Any) -> str:
        return self._text()

    def input_value(self, **_: Any) -> str:
        return self._text()

    def all(self) -> list[FakeLocator]:
        shown = self.page.texts.get(self.selector)
        if isinstance(shown, list):
            return [FakeLocator(self.page, self.selector, value) for value in shown]
        return [self]

    def count(self) -> int:
        return len(self.all())


class FakeContext:
    def on(self, *_: Any) -> None:
        pass


class FakePage:
    """A page where every selector is shown (except ``hidden``) and every fill is recorded with
    whether the redactor knew the value at that moment."""

    def __init__(self, redactor: Redactor, hidden: set[str] | None = None) -> None:
        self.redactor = redactor
        self.hidden = hidden or set()
        self.texts: dict[str, str | list[str]] = {}
        self.fills: list[tuple[str, str, bool]] = []
        self.url = "https://portal.test.invalid/"
        self.context = FakeContext()

    def locator(self, selector: str) -> FakeLocator:
        return FakeLocator(self, selector)

    def goto(self, url: str, **_: Any) -> None:
        self.url = url

    def expect_navigation(self, **_: Any) -> AbstractContextManager[None]:
        return nullcontext()

    def unregistered(self, *selectors: str) -> list[tuple[str, str]]:
        """Values typed into these fields that the redactor did not know when typed."""
        return [(s, v) for s, v, known in self.fills if s in selectors and not known]


FLOWS_PROFILE = """
    name: Fake portal
    base_url: https://portal.test.invalid/
    sign_in: {url: /login, username: "#u", password: "#p", submit: "#s"}
    signed_in: {url: /home, indicator: "#me"}
    sign_out: {control: "#out"}
    protected_pages:
      - {name: home, url: /home, patient_data: "#data"}
    passwords:
      account: tester
      change: {url: /pw, current_password: "#current", new_password: "#new",
               confirm_password: "#again", submit: "#change", success: "#ok", error: "#err"}
      reset: {request_url: /forgot, identifier: "#who", submit: "#send", requested: "#sent",
              new_password: "#reset-new", submit_new_password: "#set", success: "#done",
              invalid_link: "#invalid"}
    mfa:
      code: "#otp"
      submit: "#verify"
      recovery_code: "#recovery"
      recovery_submit: "#use-recovery"
      enrolment:
        url: /security
        start: "#add"
        reauth_password: "#reauth"
        shown_key: "#key"
        confirm_code: "#confirm"
        confirm_submit: "#confirm-go"
        recovery_codes: ".code"
        enrolled: "#active"
        remove: "#remove"
    accounts:
      patient: {username: alice, password: "${PATIENT_PASSWORD}"}
      tester: {username: bob, password: "${TESTER_PASSWORD}", dedicated_test_account: true}
"""


@pytest.fixture
def fake_portal(tmp_path: Path) -> tuple[Profile, Redactor]:
    env = {"PATIENT_PASSWORD": "patient-" + secrets.token_hex(8)}
    env["TESTER_PASSWORD"] = "tester-" + secrets.token_hex(8)
    profile = write_profile(tmp_path, FLOWS_PROFILE, env)
    return profile, Redactor(profile.secrets())


class RecordingDriver(SelectorDriver):
    """The real driver, with sign-in recording whether the password was registered first."""

    signed_in_with: list[tuple[str, bool]]

    def sign_in(self, page: Any, account: Account) -> SignInOutcome:
        password = account.password.get_secret_value()
        self.signed_in_with.append((password, self.redactor.contains_secret(password.encode())))
        return SignInOutcome(True, "signed in")


def test_every_password_a_check_types_is_registered_before_it_is_typed(
    fake_portal: tuple[Profile, Redactor],
) -> None:
    profile, redactor = fake_portal
    driver = RecordingDriver(profile, redactor)
    driver.signed_in_with = []
    ledger: set[str] = set()
    keeper = PasswordKeeper(
        driver,
        profile.accounts["tester"],
        redactor,
        ledger,
        lambda: FakePage(redactor),  # type: ignore[arg-type, return-value]
        profile.rate_limits,
    )
    page: Any = FakePage(redactor)
    new = "New-" + secrets.token_hex(10)
    wrong = "Wrong-current-" + secrets.token_hex(10)
    assert keeper.change(page, new, current=wrong).verdict == "accepted"
    assert keeper.change(page, "Newer-" + secrets.token_hex(10)).verdict == "accepted"
    # PWD_LENGTH signs in with the longest password cut by one character.
    keeper.sign_in(FakePage(redactor), keeper.current[:-1])  # type: ignore[arg-type]
    keeper.restore()
    typed = {value for _, value, _ in page.fills}
    assert {new, wrong} <= typed
    assert page.unregistered("#current", "#new", "#again") == []
    assert driver.signed_in_with and all(known for _, known in driver.signed_in_with)
    assert new in ledger

    # The flows register what they type themselves, whoever calls them (RESET_TOKEN's probe).
    bare = SelectorDriver(profile, Redactor())
    reset_page: Any = FakePage(bare.redactor)
    bare.complete_reset(reset_page, "Reset-" + secrets.token_hex(10))
    bare.change_password(reset_page, "Old-" + secrets.token_hex(8), "Fresh-" + secrets.token_hex(8))
    assert len(reset_page.fills) == 4
    assert reset_page.unregistered("#reset-new", "#current", "#new", "#again") == []


def test_every_code_and_secret_of_the_second_factor_is_registered_before_use(
    fake_portal: tuple[Profile, Redactor],
) -> None:
    profile, redactor = fake_portal
    driver = SelectorDriver(profile, redactor)
    secret = pyotp.random_base32(32)

    # Codes are registered when made, before a step can log or type them.
    made = [driver.fresh_totp(secret), driver.stale_totp(secret, 3), driver.wrong_totp(secret, 1)]
    assert all(redactor.contains_secret(code.encode()) for code in made)
    page: Any = FakePage(redactor)
    for code in made:
        driver.submit_code(page, code)
    assert len(page.fills) == 3 and page.unregistered("#otp") == []

    # Enrolment: the key shown (grouped, lower-case) and the secret derived from it.
    shown = " ".join(secret.lower()[i : i + 4] for i in range(0, len(secret), 4))
    enrolling: Any = FakePage(redactor, hidden={"#active"})
    enrolling.texts["#key"] = shown
    offer = driver.start_enrolment(enrolling, profile.accounts["tester"])
    derived = secret_of(offer)
    assert derived == secret
    assert all(redactor.contains_secret(s.encode()) for s in (shown, derived))
    assert enrolling.unregistered("#reauth") == []

    # Confirmation: the recovery codes shown are registered before they are returned.
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(4)]
    confirming: Any = FakePage(redactor)
    confirming.texts[".code"] = codes
    result = driver.confirm_enrolment(confirming, driver.fresh_totp(secret))
    assert result.recovery_codes == codes
    assert all(redactor.contains_secret(code.encode()) for code in codes)
    driver.submit_recovery_code(confirming, codes[0])
    assert len(confirming.fills) == 2
    assert confirming.unregistered("#confirm", "#recovery") == []


# -- 4. report files are private unless widened ----------------------------------------------


def test_apply_mode_sets_every_file_and_directory_and_leaves_links(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "allure-results").mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    (run / "allure-results" / "a-result.json").write_text("{}")
    outside = tmp_path / "outside.txt"
    outside.write_text("not the run's")
    os.chmod(outside, 0o604)
    (run / "link").symlink_to(outside)
    for mode, (file_mode, dir_mode) in {
        "world": (0o644, 0o755),
        "group": (0o640, 0o750),
        "private": (0o600, 0o700),
    }.items():
        apply_mode(run, mode)
        files = {_mode(p) for p in run.rglob("*") if p.is_file() and not p.is_symlink()}
        dirs = {_mode(p) for p in [run, *run.rglob("*")] if p.is_dir()}
        assert (files, dirs) == ({file_mode}, {dir_mode}), mode
    assert _mode(outside) == 0o604

    runs = tmp_path / "runs"
    (runs / "a").mkdir(parents=True, mode=0o700)
    os.chmod(runs, 0o755)
    secure_runs_dir(runs)
    assert _mode(runs) == 0o700
    apply_mode(runs / "a", "group")
    secure_runs_dir(runs)
    assert _mode(runs) == 0o710  # reachable by the group, never listable


AUDIT_PROFILE = """
    name: Closed portal
    base_url: https://auditor:{password}@127.0.0.1:9/
    sign_in: {{url: /login, username: "#u", password: "#p", submit: "#s"}}
    signed_in: {{url: /home, indicator: "#me"}}
    sign_out: {{control: "#out"}}
    protected_pages:
      - {{name: home, url: /home, patient_data: "#data"}}
    accounts:
      patient:
        username: audit.patient
        password: ${{PORTAL_PATIENT_PASSWORD}}
    timeouts: {{reachability_seconds: 2, navigation_seconds: 2}}
"""


def _audit(tmp_path: Path, name: str, *options: str) -> tuple[Path, str, str]:
    url_password = "Url-" + secrets.token_hex(8)
    profile = tmp_path / f"{name}.yaml"
    profile.write_text(textwrap.dedent(AUDIT_PROFILE.format(password=url_password)).lstrip())
    run_dir = tmp_path / name
    completed = subprocess.run(
        [sys.executable, "-m", "portal.audit", "--profile", str(profile), "-m", "hdr_misc",
         "--run-dir", str(run_dir), "--no-latest", *options],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
             "PORTAL_PATIENT_PASSWORD": "correct horse battery staple"},
        capture_output=True,
        text=True,
        timeout=180,
    )  # fmt: skip
    output = completed.stdout + completed.stderr
    # Nothing listens on port 9: the control is inconclusive, and every report is written.
    assert completed.returncode == 2, output
    return run_dir, url_password, output


def _modes(run_dir: Path) -> tuple[set[int], set[int]]:
    files = {_mode(p) for p in run_dir.rglob("*") if p.is_file()}
    dirs = {_mode(p) for p in [run_dir, *run_dir.rglob("*")] if p.is_dir()}
    return files, dirs


def test_an_audit_writes_private_reports_without_url_credentials(tmp_path: Path) -> None:
    run_dir, url_password, output = _audit(tmp_path, "private")
    assert (run_dir / "allure-report" / "index.html").is_file(), output
    assert len(list((run_dir / "allure-results").glob("*-result.json"))) == 1
    assert _modes(run_dir) == ({0o600}, {0o700})
    assert _leaks(run_dir, [url_password, "auditor:"]) == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["target"] == "https://127.0.0.1:9/"
    assert url_password not in output
    page = (run_dir / "allure-report" / "index.html").read_text()
    assert "googletagmanager" not in page and "Content-Security-Policy" in page


def test_report_mode_group_widens_the_run_for_the_group_only(tmp_path: Path) -> None:
    run_dir, _, output = _audit(tmp_path, "group", "--report-mode", "group", "--no-html")
    assert (run_dir / "summary.json").is_file(), output
    assert _modes(run_dir) == ({0o640}, {0o750})
