"""Run an audit and build its reports: ``python -m portal.audit``.

Runs the scenarios with pytest (the audit plugin does the work), then renders the Allure report
as one HTML file that makes no network request and points ``reports/latest`` at the run. Every
report file is readable by its owner only (umask 077 from the first byte, inherited by pytest and
the Allure CLI) unless ``--report-mode`` widens the run's files at the end. Exit status: 0 every
evaluated control passed, 1 at least one failed, 2 nothing failed but some could not be evaluated
(or nothing was evaluated), 3 bad profile or usage, 4 an internal error of the audit itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from portal.child_run import run_forwarding_signals
from portal.exit_status import MEANING, UsageParser, exit_statuses
from portal.report_files import (
    DEFAULT_MODE,
    MODES,
    PRIVATE_UMASK,
    ReportNetworkError,
    apply_mode,
    make_report_offline,
    secure_runs_dir,
)
from portal.resources import CHECKOUT, is_installed_copy, reports_root, steps_dir, suite_root

ROOT = suite_root()
RUNS = reports_root() / "runs"
LATEST = reports_root() / "latest"
# The checkout's Allure CLI (make setup); an installed copy uses one on PATH, if any.
ALLURE = CHECKOUT / "node_modules" / ".bin" / "allure"
ALLURE_VERSION = "3.18.0"  # package.json's
# pytest's own statuses when the audit plugin could not decide one: 3 is pytest's internal
# error, 4 its usage error and 5 "nothing selected".
PYTEST_STATUS = {3: 4, 4: 3, 5: 3}
MAX_WORKERS = 16
# Beyond this, the groups of one audit (one per account) no longer keep more workers busy.
DEFAULT_WORKERS_CAP = 4


def parse_args(
    argv: list[str], prog: str = "python -m portal.audit"
) -> tuple[argparse.Namespace, list[str]]:
    parser = UsageParser(
        prog=prog,
        description="Audit a patient portal against the portal-audit controls.",
        epilog="Other options go to pytest and its plugins: a target provider's own options "
        "(the reference portal's --weaken FLAG,FLAG) or, after --, pytest's (-- -k logout). "
        + exit_statuses()
        + ".",
    )
    parser.add_argument("--profile", default=str(ROOT / "profiles" / "reference.yaml"))
    parser.add_argument(
        "-m", dest="markexpr", default="", help="only these controls, e.g. 'session'"
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=default_workers(),
        help="checks run at the same time, in that many processes (checks of one account one "
        "after another); 1 runs them one by one in one process (default: one per core, at "
        f"most {DEFAULT_WORKERS_CAP}: {default_workers()} here)",
    )
    parser.add_argument("--allow-destructive", action="store_true")
    parser.add_argument("--deny-destructive", action="store_true")
    parser.add_argument(
        "--fail-on",
        choices=["warn"],
        default=None,
        help="warn: a control that passed with an advisory (status warn) makes the run "
        "noncompliant, exit status 1 (by default warn counts as passed)",
    )
    parser.add_argument(
        "--waivers",
        default=None,
        metavar="FILE",
        help="accepted failures, each with a reason, reference, approver and expiry date: a "
        "waived failure is reported as waived and counts as compliant",
    )
    compare = parser.add_mutually_exclusive_group()
    compare.add_argument(
        "--compare",
        default=None,
        metavar="PREVIOUS",
        help="a previous run's folder (or summary.json) to list the changes since; default: the "
        "newest earlier run of the same profile name beside this run",
    )
    compare.add_argument(
        "--no-compare", action="store_true", help="list no changes since a previous run"
    )
    parser.add_argument("--run-dir", default=None, help="where to write this run's reports")
    parser.add_argument("--no-html", action="store_true", help="skip the Allure HTML report")
    parser.add_argument(
        "--evidence-pack",
        action="store_true",
        help="also write evidence-pack.zip: the whole run with a manifest of SHA-256 digests, "
        "the tool and catalogue versions and the profile's name (check it with portal-audit "
        "verify-pack)",
    )
    parser.add_argument("--no-latest", action="store_true", help="leave reports/latest alone")
    parser.add_argument(
        "--report-mode",
        choices=sorted(MODES),
        default=DEFAULT_MODE,
        help="who may read the run's reports: private (0600/0700, the default), group "
        "(0640/0750) or world (0644/0755)",
    )
    split = argv.index("--") if "--" in argv else len(argv)
    args, provider_options = parser.parse_known_args(argv[:split])
    return args, provider_options + argv[split + 1 :]


def default_workers() -> int:
    """What the machine can hold: a worker, with its own browser, per core this process may
    run on, at most ``DEFAULT_WORKERS_CAP``. An audit is CPU-bound (docs/benchmarks.md): more
    workers than cores make every check slower and the audit no shorter."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, DEFAULT_WORKERS_CAP))


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_WORKERS}, not {value}")
    return value


def new_run_dir() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return RUNS / f"{stamp}-{secrets.token_hex(2)}"


def run_pytest(args: argparse.Namespace, run_dir: Path, extra: list[str]) -> int:
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(steps_dir()),
        # The suite's own pytest settings (the scenarios' folder), wherever this runs from.
        "-c",
        str(ROOT / "pytest.ini"),
        "--rootdir",
        str(ROOT),
        "--profile",
        str(Path(args.profile).resolve()),
        "--audit-dir",
        str(run_dir),
        f"--alluredir={run_dir / 'allure-results'}",
        f"--junitxml={run_dir / 'junit.xml'}",
        "-o",
        "junit_suite_name=portal-audit",
        "-q",
        "--tb=line",
    ]
    if args.markexpr:
        command += ["-m", args.markexpr]
    if args.workers > 1:
        # pytest-xdist: scenarios in groups per account (portal.parallel, portal.roles).
        # A worker that dies is not replaced: its unfinished checks are errors (inconclusive),
        # and a stopped run's workers must stay stopped.
        command += ["-n", str(args.workers), "--dist", "loadgroup", "--max-worker-restart", "0"]
    else:
        command += ["-p", "no:xdist"]
    if args.fail_on:
        command += ["--fail-on", args.fail_on]
    if args.waivers:
        command += ["--waivers", str(Path(args.waivers).resolve())]
    if args.allow_destructive:
        command.append("--allow-destructive")
    if args.deny_destructive:
        command.append("--deny-destructive")
    # A checkout runs pytest from its root, so its targets/ providers (``-p targets...``)
    # import; an installed copy from where it was called, for the caller's own providers.
    return run_forwarding_signals(command + extra, Path.cwd() if is_installed_copy() else CHECKOUT)


def history_file(run_dir: Path, profile_name: str) -> Path:
    """Allure 3's history of a profile's runs (JSON lines, one per report), kept beside the
    runs (reports/runs/allure-history/) so each report shows the trends and every test's
    history."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", profile_name).strip("-") or "portal"
    return run_dir.parent / "allure-history" / f"{slug}.jsonl"


def render_allure(run_dir: Path, title: str, history: Path | None = None) -> str | None:
    """Render the single-file Allure report; returns a problem description or None."""
    results = run_dir / "allure-results"
    if not results.is_dir():
        return "no Allure results were written"
    allure = shutil.which("allure", path=str(ALLURE.parent)) or (
        str(ALLURE) if ALLURE.exists() else None
    )
    if allure is None and is_installed_copy():
        allure = shutil.which("allure")
        if allure is None:
            return f"no Allure report CLI on PATH (npm install -g allure@{ALLURE_VERSION})"
    if allure is None:
        return "the Allure report CLI is not installed (run `make setup`)"
    output = run_dir / "allure-report"
    if history is not None:
        history.parent.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        [
            allure,
            "awesome",
            str(results),
            "--output",
            str(output),
            "--single-file",
            "--report-name",
            title,
            *(["--history-path", str(history)] if history is not None else []),
        ],
        cwd=run_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    index = output / "index.html"
    if completed.returncode != 0 or not index.is_file():
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        return "Allure report generation failed: " + " / ".join(tail)
    try:
        make_report_offline(index)
    except ReportNetworkError as exc:
        return f"UNSAFE HTML REPORT: {exc}"
    return None


def name_junit_cases(junit: Path, reported: dict[str, dict[str, object]]) -> None:
    """junit.xml's cases named by control and area, waived ones skipped (portal.junit_report)."""
    from xml.etree.ElementTree import ParseError

    from portal.catalogue import load_catalogue
    from portal.junit_report import rewrite_junit

    try:
        rewrite_junit(junit, load_catalogue(), reported)
    except (OSError, ParseError) as exc:
        print(f"portal-audit: junit.xml left as pytest wrote it: {exc}", file=sys.stderr)


def point_latest(run_dir: Path) -> None:
    if LATEST.is_symlink() or LATEST.exists():
        if LATEST.is_dir() and not LATEST.is_symlink():
            shutil.rmtree(LATEST)
        else:
            LATEST.unlink()
    LATEST.symlink_to(os.path.relpath(run_dir, LATEST.parent), target_is_directory=True)


def main(argv: list[str] | None = None, prog: str = "python -m portal.audit") -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv, prog)
    # Before anything is written: every file and directory of the run (pytest's, the plugin's,
    # the Allure CLI's, all children inherit it) is created private from its first byte.
    os.umask(PRIVATE_UMASK)
    run_dir = Path(args.run_dir).resolve() if args.run_dir else new_run_dir()
    in_runs = run_dir.is_relative_to(RUNS)
    if in_runs:
        secure_runs_dir(RUNS)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _audit(args, extra, run_dir)
    finally:
        # Also narrows what a reused --run-dir held from an earlier, widened run.
        apply_mode(run_dir, args.report_mode)
        if in_runs:
            secure_runs_dir(RUNS)


def _audit(args: argparse.Namespace, extra: list[str], run_dir: Path) -> int:
    from portal.history import CompareError, read_summary

    if args.compare:
        try:
            read_summary(Path(args.compare))
        except CompareError as exc:
            print(f"portal-audit: {exc}", file=sys.stderr)
            return 3
    status_file = run_dir / "exit-status"
    status_file.unlink(missing_ok=True)
    status = run_pytest(args, run_dir, extra)
    decided = status_file.read_text(encoding="utf-8").strip() if status_file.is_file() else ""
    if decided.isdigit() and int(decided) in MEANING:
        status = int(decided)
    elif status in PYTEST_STATUS:
        status = PYTEST_STATUS[status]
    elif status not in MEANING:
        print(f"portal-audit: pytest ended with status {status}; treating it as an internal error")
        status = 4
    # Before the reports are finished: the evidence pack holds the final status.
    (run_dir / "exit-status").write_text(f"{status}\n", encoding="utf-8")
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text("utf-8")) if summary_file.is_file() else None
    junit = run_dir / "junit.xml"
    if junit.is_file():
        name_junit_cases(junit, summary["controls"] if summary else {})
    if summary is not None:
        finish_reports(args, run_dir, summary)
    print(f"portal-audit: exit status {status} ({MEANING[status]})")
    return status


def finish_reports(args: argparse.Namespace, run_dir: Path, summary: dict[str, Any]) -> None:
    """After the run: the changes since the previous run, the HTML report, the evidence pack,
    reports/latest, in that order (each may include what the one before wrote)."""
    from portal.history import CompareError, record_changes

    if not args.no_compare:
        try:
            changes = record_changes(run_dir, Path(args.compare) if args.compare else None)
        except CompareError as exc:
            changes = [f"not compared: {exc}"]
        for line in changes:
            print(f"portal-audit: since the previous run: {line}")
    if not args.no_html:
        problem = render_allure(
            run_dir,
            f"portal-audit: {summary['profile']}",
            history_file(run_dir, summary["profile"]),
        )
        if problem:
            print(f"portal-audit: {problem}", file=sys.stderr)
    if args.evidence_pack:
        from portal.evidence_pack import write_pack

        pack, digest = write_pack(run_dir)
        print(f"portal-audit: evidence pack {pack} (manifest SHA-256 {digest})")
    if not args.no_latest:
        point_latest(run_dir)
    print(f"portal-audit: {summary['verdict']} ({summary['counts']}); reports in {run_dir}")


if __name__ == "__main__":
    sys.exit(main())
