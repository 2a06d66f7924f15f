"""Profiles: a bad profile names file, line, field and problem, and stops the run with status 3."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
import textwrap
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import BaseModel

from portal.catalogue import load_catalogue
from portal.flows import Step
from portal.profile import Profile, load_profile, target_of
from portal.profile_file import ProfileError
from portal.selectors import selector_problem

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PORTAL_PATIENT_PASSWORD": "correct horse battery staple"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portal.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


GOOD = """
    name: Test portal
    base_url: https://portal.test.invalid/
    sign_in: {url: /login, username: "#u", password: "#p", submit: "#s"}
    signed_in: {url: /home, indicator: "#me"}
    sign_out: {control: "#out"}
    protected_pages:
      - {name: home, url: /home, patient_data: "#data"}
    accounts:
      patient:
        username: audit.patient
        password: ${PORTAL_PATIENT_PASSWORD}
"""


def test_template_profile_is_valid() -> None:
    profile = load_profile(ROOT / "profiles" / "template.yaml", env=ENV)
    assert profile.patient.dedicated_test_account
    assert profile.thresholds.min_max_age_seconds == 31536000


def test_good_profile_applies_catalogue_defaults(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, GOOD), env=ENV)
    assert profile.thresholds.idle_timeout_seconds == 900.0
    assert profile.is_default("idle_timeout_seconds")
    assert profile.patient.password.get_secret_value() == ENV["PORTAL_PATIENT_PASSWORD"]
    assert ENV["PORTAL_PATIENT_PASSWORD"] not in repr(profile)
    assert profile.tls_host == "portal.test.invalid" and profile.tls_port == 443


def test_missing_variable_names_file_line_field_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    with pytest.raises(ProfileError) as caught:
        load_profile(path, env={})
    message = str(caught.value)
    assert f"{path}:11:" in message
    assert "accounts.patient.password" in message
    assert "PORTAL_PATIENT_PASSWORD is not set" in message


def test_literal_password_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("${PORTAL_PATIENT_PASSWORD}", "hunter2hunter2"))
    with pytest.raises(ProfileError, match="must be an environment reference"):
        load_profile(path, env=ENV)


def test_unknown_setting_and_bad_types_are_all_reported(tmp_path: Path) -> None:
    text = GOOD + "    sign_in_page: /oops\n    timeouts: {navigation_seconds: -1}\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, text), env=ENV)
    message = str(caught.value)
    assert ":12: sign_in_page: unknown setting" in message
    assert (
        ":13: timeouts.navigation_seconds: must be a number above 0 and at most 300, got -1"
        in message
    )


def test_unknown_policy_setting_and_control(tmp_path: Path) -> None:
    text = GOOD + "    policy: {idle_timeout: 60}\n    out_of_scope: {SESS_NOPE: because}\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, text), env=ENV)
    message = str(caught.value)
    assert (
        ":12: policy.idle_timeout: unknown policy setting (did you mean 'idle_timeout_seconds'?)"
        in message
    )
    assert ":13: out_of_scope.SESS_NOPE: unknown control 'SESS_NOPE'" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nbase_url: [unclosed\n")
    with pytest.raises(ProfileError, match=r"portal.yaml:\d+: not valid YAML"):
        load_profile(path, env=ENV)


def test_bad_profile_stops_the_audit_with_status_3_before_any_browser(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "portal.audit",
            "--profile",
            str(path),
            "--no-html",
            "--no-latest",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 3, output
    assert "PORTAL_PATIENT_PASSWORD is not set" in output
    assert "Traceback" not in output
    assert not (tmp_path / "run" / "summary.json").exists()


def test_weaken_is_refused_for_another_portal(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "portal.audit",
            "--profile",
            str(path),
            "--weaken",
            "hsts_missing",
            "--no-html",
            "--no-latest",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 3
    assert (
        "--weaken applies only to the bundled reference portal"
        in completed.stdout + completed.stderr
    )


# -- the catalogue's limits --------------------------------------------------------------------


def test_every_threshold_has_limits_and_its_default_is_within_them() -> None:
    catalogue = load_catalogue()
    defaults, limits = catalogue.threshold_defaults(), catalogue.limits()
    assert set(limits) == set(defaults)
    for name, default in defaults.items():
        assert limits[name].apply(default) == default, name


def test_every_policy_example_in_the_template_is_allowed(tmp_path: Path) -> None:
    template = (ROOT / "profiles" / "template.yaml").read_text(encoding="utf-8")
    lines = template.splitlines()
    start = lines.index("policy:")
    examples = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        examples.append("  " + line.strip().removeprefix("# ").split("  #")[0])
    assert len(examples) == len(load_catalogue().limits())
    path = write(tmp_path, GOOD + textwrap.indent("policy:\n" + "\n".join(examples), "    "))
    assert set(load_profile(path, env=ENV).policy) == set(load_catalogue().limits())


@pytest.mark.parametrize(
    ("given", "applied"),
    [
        ("samples: 20", 20),
        ("samples: 20.0", 20),
        ("samples: '20'", 20),
        ("lockout_seconds: 1.5", 1.5),
        ("lockout_seconds: 60", 60.0),
        ("same_site: [Strict]", ("Strict",)),
        ("composition_rules_allowed: true", True),
    ],
)
def test_policy_values_are_applied_with_their_types(
    tmp_path: Path, given: str, applied: object
) -> None:
    profile = load_profile(write(tmp_path, GOOD + f"    policy: {{{given}}}\n"), env=ENV)
    name = given.split(":")[0]
    value = getattr(profile.thresholds, name)
    assert value == applied and not profile.is_default(name)
    assert type(value) is type(applied)


# -- model-level problems at the field's own line ------------------------------------------------


def test_a_cross_field_problem_names_the_line_of_the_field(tmp_path: Path) -> None:
    passwords = """\
        passwords:
          account: patient
          reset_account: nobody
          change: {url: /pw, current_password: "#c", new_password: "#n", submit: "#s",
                   success: "#ok", error: "#err"}
    """
    path = write(tmp_path, GOOD + textwrap.indent(textwrap.dedent(passwords), "    "))
    with pytest.raises(ProfileError) as caught:
        load_profile(path, env=ENV)
    message = str(caught.value)
    assert f"{path}:13: passwords.account: use a dedicated account, not 'patient'" in message
    assert f"{path}:14: passwords.reset_account: no account 'nobody' under accounts" in message


# -- secrets and the environment ---------------------------------------------------------------


def test_a_variable_set_but_empty_is_named_so(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="PORTAL_PATIENT_PASSWORD is set but empty"):
        load_profile(write(tmp_path, GOOD), env={"PORTAL_PATIENT_PASSWORD": ""})


def test_a_default_applies_to_a_setting_but_never_to_a_secret(tmp_path: Path) -> None:
    text = GOOD.replace("name: Test portal", "name: ${PORTAL_NAME:-Test portal}")
    assert load_profile(write(tmp_path, text), env={**ENV, "PORTAL_NAME": ""}).name == "Test portal"
    smuggled = GOOD.replace("${PORTAL_PATIENT_PASSWORD}", "${PORTAL_PATIENT_PASSWORD:-x}")
    with pytest.raises(ProfileError, match="a secret must be exactly ..PORTAL_PATIENT_PASSWORD."):
        load_profile(write(tmp_path, smuggled), env=ENV)


# -- booleans ------------------------------------------------------------------------------------


def test_booleans_are_unquoted_true_or_false(tmp_path: Path) -> None:
    for text in ('"true"', "yes", "1"):
        path = write(tmp_path, GOOD + f"    destructive_checks_allowed: {text}\n")
        with pytest.raises(ProfileError, match=r":12: destructive_checks_allowed: must be true or"):
            load_profile(path, env=ENV)
    on = load_profile(write(tmp_path, GOOD + "    destructive_checks_allowed: true\n"), env=ENV)
    assert on.destructive_checks_allowed is True


def test_the_target_provider_is_read_before_interpolation(tmp_path: Path) -> None:
    assert target_of(ROOT / "profiles" / "reference.yaml") == "reference"
    assert target_of(write(tmp_path, GOOD)) is None
    path = write(tmp_path, GOOD + "    target: [reference]\n")
    with pytest.raises(ProfileError) as caught:
        target_of(path)
    assert str(caught.value).startswith(f"{path}:12: target: must be a target provider's name")
    old = write(tmp_path, GOOD + "    reference_portal: true\n")
    with pytest.raises(ProfileError, match=r":12: reference_portal: replaced by `target: refer"):
        target_of(old)


# -- selectors -----------------------------------------------------------------------------------

# Selectors from Playwright's documentation and the profiles: all must load.
GOOD_SELECTORS = [
    "#username",
    "button[type=submit]",
    "[data-test=user-menu]",
    "iframe[title*=captcha i], .g-recaptcha",
    "text=Sign out",
    "text=Can't scan the code?",
    '"Sign in"',
    'article:has-text("Playwright")',
    '#nav-bar :text("Contact us")',
    "button:visible",
    ":nth-match(:text('Buy'), 3)",
    "div:has(> p)",
    'input:right-of(:text("Username"))',
    "css=button >> text=Sign in >> nth=0",
    "xpath=//button[@id='go']",
    "//html/body",
    'role=button[name="Sign in"]',
    "data-testid=submit",
    'text="a >> b"',
    "li:nth-child(2n+1)",
    "input:-webkit-autofill",
]
BAD_SELECTORS = {
    "#username[name=": "the '[' at position 9 is not closed",
    "#a >> ": "nothing after '>>'",
    "buton=Sign in": "unknown selector engine 'buton='",
    'button:has-text("Sign in"': "':has-text(' is not closed",
    "#out:hoverr": "unknown pseudo-class :hoverr",
    "[data-id=5]": 'an attribute value is a name or "quoted text"',
    "#1st": "an #id cannot start with a digit",
    'role=button[name="Sign in]': "unclosed quote",
}


@pytest.mark.parametrize("selector", GOOD_SELECTORS)
def test_playwright_selectors_are_accepted(selector: str) -> None:
    assert selector_problem(selector) is None


@pytest.mark.parametrize("selector", sorted(BAD_SELECTORS))
def test_malformed_selectors_are_refused(selector: str) -> None:
    problem = selector_problem(selector)
    assert problem is not None and BAD_SELECTORS[selector] in problem


def _models(model: type[BaseModel]) -> Iterator[type[BaseModel]]:
    yield model
    for field in model.model_fields.values():
        for inner in _plain_types(field.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                yield from _models(inner)


def _plain_types(annotation: object) -> Iterator[object]:
    arguments = typing.get_args(annotation)
    yield annotation
    for argument in arguments:
        yield from _plain_types(argument)


def test_every_selector_field_and_every_flow_is_checked() -> None:
    """Fields described as "Selector ..." parse as selectors; fields taking steps check each
    step's selector (the steps themselves are portal/flows.py's)."""
    checked = 0
    for model in _models(Profile):
        if not model.__module__.startswith("portal.profile"):
            continue
        for name, field in model.model_fields.items():
            inner = list(_plain_types(field.annotation))
            texts = [repr(t) for t in inner] + [repr(m) for m in field.metadata]
            if Step in inner:
                assert any("_flow_selectors" in t for t in texts), f"{model.__name__}.{name}"
            elif (field.description or "").startswith("Selector"):
                assert any("valid_selector" in t for t in texts), f"{model.__name__}.{name}"
            else:
                continue
            checked += 1
    assert checked >= 50


# -- hosts and CA files --------------------------------------------------------------------------


def _certificate_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_a_relative_ca_file_is_read_from_the_profiles_directory(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(_certificate_pem())
    profile = load_profile(write(tmp_path, GOOD + "    tls: {ca_file: ca.pem}\n"), env=ENV)
    assert profile.tls.ca_file == str(tmp_path / "ca.pem")


def test_ipv6_and_international_host_names_are_accepted(tmp_path: Path) -> None:
    ipv6 = load_profile(write(tmp_path, GOOD.replace("portal.test.invalid", "[::1]:8443")), ENV)
    assert ipv6.tls_host == "::1" and ipv6.tls_port == 8443
    assert ipv6.http_url == "http://[::1]/"
    idna = GOOD.replace("portal.test.invalid", "bücher.example") + "    tls: {host: '[fe80::1]'}\n"
    assert load_profile(write(tmp_path, idna), ENV).tls_host == "fe80::1"


def test_the_reference_profile_is_valid(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(_certificate_pem())
    text = (ROOT / "profiles" / "reference.yaml").read_text(encoding="utf-8")
    env = {name: "value-" + name for name in re.findall(r"\$\{(\w+)\}", text)}
    env |= {"REFERENCE_PORTAL_URL": "https://127.0.0.1:8443/"}
    env |= {"REFERENCE_PORTAL_HTTP_URL": "http://127.0.0.1:8080/"}
    env |= {"REFERENCE_PORTAL_CA": str(tmp_path / "ca.pem")}
    profile = load_profile(ROOT / "profiles" / "reference.yaml", env=env)
    assert profile.target == "reference" and "lockout" in profile.accounts
