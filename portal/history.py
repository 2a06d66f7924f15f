"""What changed since the previous run: the audit's run-to-run comparison (``--compare``).

Every run keeps its summary.json in its own folder (reports/runs/<time>/). After a run, its
summary is compared with a previous one: by default the newest earlier run of the same profile
name in the same runs folder, or the run folder (or summary.json) given with ``--compare``.
The changes go into summary.json (``changes``), the compliance matrix (a "Changes since"
section) and the console:

- newly failed: failed now, not before (waived does not count as failed);
- fixed: failed before, passing (passed, warn or waived) now;
- newly inconclusive: inconclusive now, evaluated before;
- measured moved: the same status, another measured value (timings aside, and each run's own
  portal address read as the same: the bundled reference portal listens on a new port per run);
- new or gone: controls checked in only one of the two runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from portal.report_files import write_private
from portal.summary import PASSING, matrix_cell

SUMMARY = "summary.json"


class CompareError(ValueError):
    """A --compare argument that names no readable summary (exit status 3)."""


def read_summary(path: Path) -> dict[str, Any]:
    """The summary of a run folder or of a summary.json file."""
    file = path / SUMMARY if path.is_dir() else path
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompareError(f"--compare {path}: no {SUMMARY} there") from None
    except (OSError, ValueError) as exc:
        raise CompareError(f"--compare {path}: cannot read {file.name}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("controls"), dict):
        raise CompareError(f"--compare {path}: {file.name} is not a portal-audit summary")
    return data


def previous_run(run_dir: Path, current: dict[str, Any]) -> Path | None:
    """The newest run beside ``run_dir`` of the same profile name that started before it."""
    best: tuple[str, Path] | None = None
    for folder in run_dir.parent.iterdir() if run_dir.parent.is_dir() else ():
        if folder == run_dir or not (folder / SUMMARY).is_file():
            continue
        try:
            other = read_summary(folder)
        except CompareError:
            continue
        started = str(other.get("started", ""))
        if other.get("profile") != current.get("profile") or started >= str(current["started"]):
            continue
        if best is None or started > best[0]:
            best = (started, folder)
    return best[1] if best else None


def changes_between(
    previous: dict[str, Any], current: dict[str, Any], since: str
) -> dict[str, Any]:
    before, now = previous["controls"], current["controls"]
    changes: dict[str, Any] = {
        "since": since,
        "previous_started": previous.get("started", ""),
        "previous_verdict": previous.get("verdict", ""),
        "newly_failed": [],
        "fixed": [],
        "newly_inconclusive": [],
        "measured_moved": [],
        "new": sorted(set(now) - set(before)),
        "gone": sorted(set(before) - set(now)),
    }
    for control_id, result in now.items():
        old = before.get(control_id)
        if old is None:
            continue
        status, was = result["status"], old["status"]
        entry = {"control": control_id, "was": was, "now": status}
        if status == "failed" and was != "failed":
            changes["newly_failed"].append({**entry, "reason": result.get("reason", "")})
        elif was == "failed" and status in PASSING:
            changes["fixed"].append(entry)
        elif status == "inconclusive" and was != "inconclusive":
            changes["newly_inconclusive"].append({**entry, "reason": result.get("reason", "")})
        elif status == was and _comparable(result, current) != _comparable(old, previous):
            changes["measured_moved"].append(
                {**entry, "measured_was": old.get("measured", ""), "measured": result["measured"]}
            )
    return changes


# Timings and durations move on every run: "median 140 ms", "after 21.3 s", "took 2.1 s".
_NOISE = re.compile(r"\d+(?:\.\d+)?\s*(?:ms|s)\b")


def _comparable(result: dict[str, Any], summary: dict[str, Any]) -> str:
    measured = str(result.get("measured", ""))
    portal = urlsplit(str(summary.get("target", ""))).netloc
    if portal:
        measured = measured.replace(portal, "<portal>")
    return _NOISE.sub("#", measured)


def change_lines(changes: dict[str, Any]) -> list[str]:
    """The changes in words, one line each (empty when nothing changed)."""
    lines = [
        f"newly failed: {c['control']} (was {c['was']}): {c['reason']}"
        for c in changes["newly_failed"]
    ]
    lines += [f"fixed: {c['control']} (was failed, now {c['now']})" for c in changes["fixed"]]
    lines += [
        f"newly inconclusive: {c['control']} (was {c['was']}): {c['reason']}"
        for c in changes["newly_inconclusive"]
    ]
    lines += [
        f"measured value moved: {c['control']}: {c['measured_was']} -> {c['measured']}"
        for c in changes["measured_moved"]
    ]
    lines += [f"new: {control} (not checked before)" for control in changes["new"]]
    lines += [f"gone: {control} (not checked this time)" for control in changes["gone"]]
    return lines


def record_changes(run_dir: Path, compare: Path | None) -> list[str]:
    """Compare this run with ``compare`` (or the previous run of its profile) and write the
    changes into its summary.json and matrix; returns the console lines."""
    current = read_summary(run_dir)
    previous_dir = compare if compare is not None else previous_run(run_dir, current)
    if previous_dir is None:
        return []
    previous = read_summary(previous_dir)
    changes = changes_between(previous, current, str(previous_dir))
    current["changes"] = changes
    write_private(run_dir / SUMMARY, (json.dumps(current, indent=2) + "\n").encode("utf-8"))
    lines = change_lines(changes)
    matrix = run_dir / "compliance-matrix.md"
    if matrix.is_file():
        section = [
            "",
            f"## Changes since {changes['previous_started']} ({changes['previous_verdict']})",
            "",
        ]
        section += [f"- {matrix_cell(line)}" for line in lines] or ["- no change"]
        text = matrix.read_text(encoding="utf-8").rstrip("\n") + "\n" + "\n".join(section)
        write_private(matrix, (text + "\n").encode("utf-8"))
    return lines
