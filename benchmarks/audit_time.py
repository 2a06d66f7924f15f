"""How long an audit of the reference portal takes, against its longest inherent wait.

Runs the whole reference audit several times and prints, per run, the runner's wall time, the
pytest part of it (the run's junit.xml), the longest wait the policy asks for (the absolute or
idle session timeout with its grace, the lockout period, the reset link lifetime: what no
amount of concurrency can shorten) and the ratio of the two; then the medians, the slowest
scenarios of the median run (their durations as pytest measured them in the worker) and its
critical path: the scenarios, with start and stop, of the process that finished last.

    .venv/bin/python -m benchmarks.audit_time [--runs 5] [--workers N] [--html]

``--workers`` is passed to the runner (its default otherwise); ``--html`` also renders the
Allure report, as ``make audit`` does.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmarks.audit_runs import REFERENCE_PROFILE, AuditRun, machine, run_audit

SLOWEST_SHOWN = 8


def longest_wait(controls: dict[str, dict[str, Any]], profile: Path) -> float:
    """The longest wait of the run (seconds): the session timeouts the run applied, with the
    probes' grace, and the lockout period and reset link lifetime the profile states (the
    probes wait for those, not for the policy's maximum)."""

    def threshold(control: str, name: str) -> float:
        return float(controls.get(control, {}).get("threshold", {}).get(name, 0) or 0)

    raw = yaml.safe_load(profile.read_text(encoding="utf-8")) or {}
    lockout = raw.get("lockout") or {}
    reset = (raw.get("passwords") or {}).get("reset") or {}
    absolute = threshold("SESS_ABS", "absolute_timeout_seconds")
    idle = threshold("SESS_IDLE", "idle_timeout_seconds")
    waits = [
        absolute + max(2.0, 0.05 * absolute) if absolute else 0.0,
        idle + max(2.0, 0.1 * idle) if idle else 0.0,
        float(lockout.get("period_seconds") or threshold("AUTH_LOCKOUT", "lockout_seconds")),
        float(
            reset.get("link_lifetime_seconds")
            or threshold("RESET_TOKEN", "max_link_lifetime_seconds")
        ),
    ]
    return max(waits)


def pytest_seconds(run_dir: Path) -> float:
    junit = run_dir / "junit.xml"
    if not junit.exists():
        return 0.0
    suite = next(ElementTree.parse(junit).iter("testsuite"), None)
    return float(suite.get("time", "0")) if suite is not None else 0.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--html", action="store_true", help="render the Allure report too")
    options = parser.parse_args(argv)
    extra = ["--workers", str(options.workers)] if options.workers else []
    print(f"machine: {machine()}; workers: {options.workers or 'the runner default'}")
    print("| run | verdict | runner wall | pytest | longest wait | pytest / wait |")
    print("|---|---|---|---|---|---|")
    runs: list[tuple[AuditRun, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="audit-time-") as scratch:
        for index in range(1, options.runs + 1):
            run_dir = Path(scratch) / f"run-{index}"
            run = run_audit(run_dir, extra=extra, html=options.html)
            pytest_wall = pytest_seconds(run_dir)
            wait = longest_wait(run.controls, REFERENCE_PROFILE)
            runs.append((run, pytest_wall, wait))
            verdict = {0: "compliant", 1: "noncompliant", 2: "inconclusive"}.get(
                run.exit_status, f"status {run.exit_status}"
            )
            print(
                f"| {index} | {verdict} | {run.wall_seconds:.0f} s | {pytest_wall:.0f} s | "
                f"{wait:.0f} s | {pytest_wall / wait if wait else float('nan'):.2f} |",
                flush=True,
            )
            for control in run.controls:
                if run.status(control) == "inconclusive":
                    print(f"  {control} inconclusive: {run.reason(control)}", flush=True)
    walls = [run.wall_seconds for run, _, _ in runs]
    pytests = [pytest_wall for _, pytest_wall, _ in runs]
    ratios = [p / w for _, p, w in runs if w]
    print(
        f"median: runner {statistics.median(walls):.0f} s, pytest {statistics.median(pytests):.0f}"
        f" s, ratio {statistics.median(ratios):.2f}"
        if ratios
        else "no run measured"
    )
    median_run = sorted(runs, key=lambda r: r[1])[len(runs) // 2][0]
    slowest = sorted(median_run.scenarios.items(), key=lambda kv: -kv[1])[:SLOWEST_SHOWN]
    print("slowest scenarios of the median run:")
    for name, seconds in slowest:
        print(f"  {seconds:6.1f} s  {name}")
    process, path = median_run.critical_path()
    if path:
        print(f"critical path of the median run: the process that ended last ({process}):")
        for start, stop, name in path:
            print(f"  {start:6.1f}-{stop:6.1f} s  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
