"""portal-audit built as a wheel and installed into a new virtualenv, away from the checkout.

The wheel is built from a copy of the files a source distribution carries (pyproject.toml,
setup.py, the packages, the scenarios, catalogue and profiles), installed without its
dependencies into a venv that borrows them from the development venv, and used from a directory
of its own: every subcommand, a scan whose verdicts match the checkout's, and an audit of the
reference portal whose reports land in the current directory.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from portal.resources import SUITE_FILES
from tests.installed_copy import ROOT, Installed, install_wheel
from tests.test_tls_scanner import EXPECTED_KEYS
from tests.tls_servers import HOST, SERVER_NAME, LocalPki, free_port, tls_servers

SCANNED = ("intermediate", "legacy", "self_signed", "expired")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return install_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_the_suite_s_files(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    for feature in (ROOT / "features").rglob("*.feature"):
        assert f"portal/bundled/{feature.relative_to(ROOT)}" in names, feature
    assert "portal/bundled/catalogue/controls.yaml" in names
    assert "portal/bundled/profiles/template.yaml" in names
    assert "portal/bundled/pytest.ini" in names
    assert "scanners/policies/mozilla-server-side-tls-6.0.json" in names
    assert "reference_portal/templates/account_mfa.html" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(installed.wheel) as wheel:
        declared = wheel.read(entry_points).decode()
    assert "portal-audit = portal.cli:console" in declared
    assert "portal.plugin = portal.plugin" in declared


def _pins(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {line.lower() for line in lines if line and not line.startswith("-r")}


def test_the_wheel_requires_the_runtime_pins_and_no_development_tool(installed: Installed) -> None:
    """``pip install .`` (or pipx) installs exactly requirements.txt's pins: ruff, mypy and the
    other development pins are not the installed command's dependencies."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        lines = wheel.read(metadata).decode().splitlines()
    required = {
        line.split(":", 1)[1].strip().lower() for line in lines if line.startswith("Requires-Dist:")
    }
    runtime = _pins(ROOT / "requirements.txt")
    assert required == runtime
    development = _pins(ROOT / "requirements-dev.txt")
    assert {"ruff==", "mypy==", "setuptools=="} <= {
        pin.split("==")[0] + "==" for pin in development
    }
    assert required.isdisjoint(development)


def test_setup_py_copies_the_files_portal_resources_expects() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    assigned = next(
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "SUITE_FILES" for t in node.targets)
    )
    assert ast.literal_eval(assigned) == SUITE_FILES


def test_the_installed_command_runs_from_the_installed_copy(installed: Installed) -> None:
    version = installed.run("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("portal-audit 0.1.0 ")
    listed = installed.run("controls", "--json")
    assert listed.returncode == 0, listed.stderr
    checkout = subprocess.run(
        [sys.executable, "-m", "portal.cli", "controls", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout) == json.loads(checkout.stdout)
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", "import portal; print(portal.__file__)"],
        cwd=installed.workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)
    template = installed.venv.glob("lib/python*/site-packages/portal/bundled/profiles")
    profile = next(template) / "reference.yaml"
    checked = installed.run("check-profile", str(profile))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    bad = installed.workdir / "bad.yaml"
    bad.write_text("name: x\nbase_url: ftp://portal\n", encoding="utf-8")
    refused = installed.run("check-profile", str(bad))
    assert refused.returncode == 3 and "bad.yaml" in refused.stdout + refused.stderr


def test_the_installed_scan_gives_the_checkout_s_verdicts(installed: Installed) -> None:
    dead = free_port()
    with LocalPki.create() as pki, tls_servers(list(SCANNED), pki) as running:
        arguments = [
            *(f"{HOST}:{running[name].port}" for name in SCANNED),
            f"{HOST}:{dead}",
            "--sni",
            SERVER_NAME,
            "--ca-file",
            str(pki.ca_file),
            "--plain-http-port",
            str(dead),
        ]
        from_wheel = installed.run("scan", *arguments, "--json", "wheel.json")
        from_checkout = subprocess.run(
            [sys.executable, "-m", "portal.cli", "scan", *arguments, "--json", "checkout.json"],
            cwd=installed.workdir,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert from_wheel.returncode == from_checkout.returncode == 1, from_wheel.stderr

    def verdicts(name: str) -> dict[int, dict[str, tuple[str, frozenset[str]]]]:
        document = json.loads((installed.workdir / name).read_text())
        return {
            target["port"]: {
                control: (verdict["status"], frozenset(f["key"] for f in verdict["findings"]))
                for control, verdict in target["controls"].items()
            }
            for target in document["targets"]
        }

    wheel, checkout = verdicts("wheel.json"), verdicts("checkout.json")
    assert wheel == checkout
    for name in SCANNED:
        keys = {
            k
            for c, (_, found) in wheel[running[name].port].items()
            if c != "HDR_HSTS"
            for k in found
        }
        assert keys == EXPECTED_KEYS[name], name
    assert {status for status, _ in wheel[dead].values()} == {"inconclusive"}


def test_an_installed_audit_writes_its_reports_where_it_is_run(installed: Installed) -> None:
    done = installed.run("audit", "--no-html", "-m", "hdr_hsts or tls_protocols", timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((installed.workdir / "reports/latest/summary.json").read_text())
    assert summary["verdict"] == "compliant"
    statuses = {c: v["status"] for c, v in summary["controls"].items() if v["status"] != "skipped"}
    assert statuses == {"HDR_HSTS": "passed", "TLS_PROTOCOLS": "passed"}
    assert not (ROOT / "portal" / "bundled").exists()


def test_the_allure_version_named_for_installed_copies_is_the_pinned_one() -> None:
    from portal.audit import ALLURE_VERSION

    package = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["allure"] == ALLURE_VERSION
