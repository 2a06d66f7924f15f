"""Do the timing probes reach a verdict on a loaded machine?

Runs the reference audit's SESS_IDLE and SESS_ABS scenarios (the probes that wait on the clock)
several times while busy processes keep every core loaded, and prints each run's verdicts and
the load, then how many runs reached a verdict (passed or failed, not inconclusive) for each.

    .venv/bin/python -m benchmarks.timing_under_load [--runs 10] [--hogs N] [--weaken FLAG]

``--hogs`` defaults to twice the number of cores. ``--weaken idle_timeout_too_long`` (or
another weakness of the reference portal) runs the same against a portal that must fail.
Exit status 0 when every run reached a verdict for both controls, else 1.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks.audit_runs import busy_cores, machine, run_audit

CONTROLS = ("SESS_IDLE", "SESS_ABS")
MARKERS = "sess_idle or sess_abs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--hogs", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--weaken", default=None, help="a weakness flag of the reference portal")
    options = parser.parse_args(argv)
    extra = ["--weaken", options.weaken] if options.weaken else []
    reached = dict.fromkeys(CONTROLS, 0)
    print(f"machine: {machine()}; {options.hogs} busy processes; {options.runs} runs")
    print("| run | wall | load 1 min (start-end) | " + " | ".join(CONTROLS) + " |")
    print("|---|---|---|" + "---|" * len(CONTROLS))
    with (
        tempfile.TemporaryDirectory(prefix="timing-under-load-") as scratch,
        busy_cores(options.hogs),
    ):
        for index in range(1, options.runs + 1):
            run = run_audit(Path(scratch) / f"run-{index}", markers=MARKERS, extra=extra)
            cells = []
            for control in CONTROLS:
                status = run.status(control)
                if status in ("passed", "failed"):
                    reached[control] += 1
                    cells.append(status)
                else:
                    cells.append(f"{status}: {run.reason(control)}")
            print(
                f"| {index} | {run.wall_seconds:.0f} s | {run.load_before:.1f}-"
                f"{run.load_after:.1f} | " + " | ".join(cells) + " |",
                flush=True,
            )
    for control in CONTROLS:
        print(f"{control}: a verdict in {reached[control]}/{options.runs} runs")
    return 0 if all(count == options.runs for count in reached.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
