"""Running whole audits for the benchmarks: one audit as the runner runs it, what it concluded
and how long it and each of its scenarios took, and busy processes that load every core.

Every audit runs ``python -m portal.audit`` in a child process with its own run directory
(no ``reports/latest`` link, no HTML), so the figures are those of the real command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_PROFILE = ROOT / "profiles" / "reference.yaml"
# A whole audit of the reference portal lasts minutes; this bounds a hung one.
AUDIT_LIMIT_SECONDS = 1800


@dataclass(frozen=True)
class AuditRun:
    """One finished audit: its exit status, wall time, controls and scenario durations."""

    exit_status: int
    wall_seconds: float
    controls: dict[str, dict[str, Any]]
    # Scenario name -> seconds, from the run's junit.xml.
    scenarios: dict[str, float] = field(default_factory=dict)
    load_before: float = 0.0
    load_after: float = 0.0
    # Process that ran them (Allure's thread label) -> (start, stop, scenario), seconds from
    # the first scenario's start, in order.
    timeline: dict[str, list[tuple[float, float, str]]] = field(default_factory=dict)

    def critical_path(self) -> tuple[str, list[tuple[float, float, str]]]:
        """The process whose last scenario ended last, and its scenarios."""
        if not self.timeline:
            return "", []
        name = max(self.timeline, key=lambda key: self.timeline[key][-1][1])
        return name, self.timeline[name]

    def status(self, control_id: str) -> str:
        return str(self.controls.get(control_id, {}).get("status", "not run"))

    def reason(self, control_id: str) -> str:
        return str(self.controls.get(control_id, {}).get("reason", ""))


def run_audit(
    run_dir: Path,
    *,
    profile: Path = REFERENCE_PROFILE,
    markers: str | None = None,
    extra: Sequence[str] = (),
    html: bool = False,
) -> AuditRun:
    """Run one audit into ``run_dir`` and read what it wrote (``html``: with the Allure
    report, as ``make audit`` renders it)."""
    command = [sys.executable, "-m", "portal.audit", "--profile", str(profile)]
    command += ["--run-dir", str(run_dir), "--no-latest", *extra]
    if not html:
        command.append("--no-html")
    if markers:
        command += ["-m", markers]
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    finished = subprocess.run(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=AUDIT_LIMIT_SECONDS,
        check=False,
    )
    wall = time.monotonic() - started
    summary_file = run_dir / "summary.json"
    summary = json.loads(summary_file.read_text("utf-8")) if summary_file.exists() else {}
    return AuditRun(
        exit_status=finished.returncode,
        wall_seconds=wall,
        controls=dict(summary.get("controls", {})),
        scenarios=scenario_seconds(run_dir / "junit.xml"),
        timeline=scenario_timeline(run_dir / "allure-results"),
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def scenario_seconds(junit: Path) -> dict[str, float]:
    """Scenario name -> duration from a junit.xml (empty when there is none)."""
    if not junit.exists():
        return {}
    tree = ElementTree.parse(junit)
    return {
        case.get("name", "?"): float(case.get("time", "0") or 0) for case in tree.iter("testcase")
    }


def scenario_timeline(results: Path) -> dict[str, list[tuple[float, float, str]]]:
    """Each process's scenarios with start and stop, from Allure's result files."""
    rows: list[tuple[str, float, float, str]] = []
    for path in results.glob("*-result.json") if results.is_dir() else ():
        data = json.loads(path.read_text("utf-8"))
        labels = {label["name"]: label["value"] for label in data.get("labels", [])}
        if "start" in data and "stop" in data:
            process = labels.get("thread", "?").split("-")[0]
            rows.append((process, data["start"] / 1000, data["stop"] / 1000, data["name"]))
    if not rows:
        return {}
    first = min(row[1] for row in rows)
    timeline: dict[str, list[tuple[float, float, str]]] = {}
    for process, start, stop, name in sorted(rows, key=lambda row: row[1]):
        timeline.setdefault(process, []).append((start - first, stop - first, name))
    return timeline


@contextmanager
def busy_cores(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` processes that keep a core busy each (a CPU hog), stopped on leaving."""
    hogs = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    try:
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def machine() -> str:
    """One line on the machine the figures come from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text("utf-8").splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    cpus = f"{os.cpu_count()} CPUs" + (f" ({model})" if model else "")
    return f"{cpus}, Python {sys.version.split()[0]}"
