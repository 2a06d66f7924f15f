"""The installed ``portal-audit`` command: its subcommands, exit statuses and quick start-up."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from portal.catalogue import load_catalogue
from tests.audits import derived_profile

ROOT = Path(__file__).resolve().parent.parent
COMMAND = Path(sys.executable).parent / "portal-audit"


def portal_audit(
    *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any profile variable, plus ``extra``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("REFERENCE_", "PORTAL_"))}
    return {**kept, **extra}


def test_the_setup_installs_the_command_with_the_project_s_version() -> None:
    assert COMMAND.is_file(), "make setup installs the portal-audit console script"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    shown = portal_audit("--version")
    assert shown.returncode == 0, shown.stderr
    catalogue = load_catalogue().version
    assert shown.stdout.strip() == (
        f"portal-audit {project['version']} (controls catalogue version {catalogue})"
    )


def test_controls_lists_the_catalogue_as_json_and_as_a_table() -> None:
    listed = portal_audit("controls", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["controls"]
    catalogue = load_catalogue().controls
    assert [row["id"] for row in rows] == [control.id for control in catalogue]
    abs_row = next(row for row in rows if row["id"] == "SESS_ABS")
    assert abs_row["threshold"] == {"absolute_timeout_seconds": 43200}
    assert abs_row["slow"] is True and abs_row["marker"] == "sess_abs"
    standards = json.loads(listed.stdout)["standards"]
    assert standards["r4"]["name"] == "NIST SP 800-63B-4 (2025)"
    assert {source.split()[0] for row in rows for source in row["sources"]} <= set(standards)
    table = portal_audit("controls", "--area", "transport")
    assert table.returncode == 0, table.stderr
    shown = {line.split()[0] for line in table.stdout.splitlines() if line[:1].strip()}
    assert shown == {control.id for control in catalogue if control.area == "transport"}


def test_usage_errors_exit_3_and_name_the_problem() -> None:
    unknown_area = portal_audit("controls", "--area", "nope")
    assert unknown_area.returncode == 3
    assert "no area 'nope'" in unknown_area.stderr and "transport" in unknown_area.stderr
    unknown_command = portal_audit("bogus")
    assert unknown_command.returncode == 3
    assert "invalid choice: 'bogus'" in unknown_command.stderr
    # argparse's own status would be 2, which means inconclusive to the audit's callers.
    bad_workers = portal_audit("audit", "--workers", "many")
    assert bad_workers.returncode == 3
    assert "--workers" in bad_workers.stderr and "'many'" in bad_workers.stderr
    assert portal_audit().returncode == 3


def test_every_help_states_the_exit_statuses() -> None:
    for arguments in (["--help"], ["audit", "--help"]):
        shown = portal_audit(*arguments)
        assert shown.returncode == 0, shown.stderr
        text = " ".join(shown.stdout.split())
        assert "Exit status: 0 compliant; 1 noncompliant; 2 inconclusive; 3 bad" in text
    assert "usage: portal-audit audit" in portal_audit("audit", "--help").stdout


def in_a_new_python(code: str) -> str:
    """What ``code`` prints, run by a new interpreter from the repository root."""
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return run.stdout.strip()


def test_help_version_and_controls_load_no_browser_test_runner_or_scanner() -> None:
    probe = (
        "import sys, contextlib, io\n"
        "from portal.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--version']); main(['controls'])\n"
        "with contextlib.redirect_stderr(io.StringIO()):\n"
        "    main(['check-profile', 'profiles/template.yaml'])\n"
        "print(sorted(m for m in ('playwright', 'pytest', 'sslyze', 'xdist') if m in sys.modules))"
    )
    assert in_a_new_python(probe) == "[]"


def test_a_scan_without_report_files_loads_neither_the_runner_nor_the_report_writers() -> None:
    probe = (
        "import sys, contextlib, io, socket\n"
        "from portal.cli import main\n"
        "with socket.socket() as s:\n"
        "    s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    status = main(['scan', f'127.0.0.1:{port}', '--timeout', '2'])\n"
        "heavy = ('portal.audit', 'portal.sarif', 'portal.summary', 'portal.scan_reports')\n"
        "print(status, sorted(m for m in heavy if m in sys.modules))"
    )
    # Nothing listens on the port: the scan is inconclusive (2), and it loaded only what it used.
    assert in_a_new_python(probe) == "2 []"


def test_check_profile_leaves_the_target_s_values_to_the_target_and_checks_the_rest(
    tmp_path: Path,
) -> None:
    reference = portal_audit("check-profile", "profiles/reference.yaml", env=clean_env())
    assert reference.returncode == 0, reference.stderr
    assert "a valid profile (target 'reference')" in reference.stdout
    left = reference.stdout.split("filled in when the audit starts it: ")[1].split(", ")
    assert {"base_url", "tls.ca_file", "accounts.patient.password"} <= {x.strip() for x in left}
    broken = derived_profile(tmp_path, {"timeouts.navigation_seconds": "soon"})
    refused = portal_audit("check-profile", str(broken), env=clean_env())
    assert refused.returncode == 3
    problems = refused.stderr.strip().splitlines()
    assert len(problems) == 1, problems
    assert re.fullmatch(
        rf"{re.escape(str(broken))}:\d+: timeouts\.navigation_seconds: .+", problems[0]
    )


def test_check_profile_needs_the_variables_of_a_profile_without_target() -> None:
    missing = portal_audit("check-profile", "profiles/template.yaml", env=clean_env())
    assert missing.returncode == 3
    assert re.search(
        r"profiles/template\.yaml:\d+: accounts\.patient\.password: environment variable "
        "PORTAL_PATIENT_PASSWORD is not set",
        missing.stderr,
    ), missing.stderr
    given = portal_audit(
        "check-profile", "profiles/template.yaml", env=clean_env(PORTAL_PATIENT_PASSWORD="x")
    )
    assert given.returncode == 0, given.stderr
    assert given.stdout.startswith("profiles/template.yaml: a valid profile (1 account(s))")
    absent = portal_audit("check-profile", str(ROOT / "no-such-profile.yaml"), env=clean_env())
    assert absent.returncode == 3 and "no such file" in absent.stderr


def test_runtime_and_development_pins_are_kept_apart() -> None:
    def pins(name: str) -> dict[str, str]:
        lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
        entries = [line for line in lines if line and not line.startswith(("#", "-r "))]
        assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^=\s]+", line) for line in entries), name
        return dict(line.split("==") for line in entries)

    runtime, development = pins("requirements.txt"), pins("requirements-dev.txt")
    assert not {"ruff", "mypy", "types-PyYAML"} & set(runtime)
    assert {"ruff", "mypy"} <= set(development) and not set(runtime) & set(development)
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8")
    assert {"pytest", "playwright", "sslyze", "zxcvbn"} <= set(runtime)
