"""summary.json and the compliance matrix: the auditor's view of one run."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from portal.catalogue import Catalogue
from portal.evidence import url_without_credentials
from portal.report_files import MODES, write_private

# A control's status in the reports: a scanner's four; warn: passed, with an advisory the
# policy names (a recommendation not followed, a value near its limit, a part left unchecked);
# waived: failed, and the failure accepted by a waiver (portal.waivers).
ControlStatus = Literal["passed", "warn", "waived", "failed", "inconclusive", "skipped"]
# When a control has several scenarios, the worst outcome stands for the control.
STATUS_RANK: dict[str, int] = {
    "failed": 5,
    "inconclusive": 4,
    "waived": 3,
    "warn": 2,
    "passed": 1,
    "skipped": 0,
}
# Statuses that count as compliant (waived: an accepted risk, reported as such).
PASSING = frozenset({"passed", "warn", "waived"})
EXIT_STATUS = {"compliant": 0, "noncompliant": 1, "inconclusive": 2}


@dataclass
class ControlResult:
    control_id: str
    status: ControlStatus
    reason: str
    threshold: dict[str, Any] = field(default_factory=dict)
    threshold_note: str = ""
    measured: str = ""
    scenarios: list[str] = field(default_factory=list)
    # A passed check's advisories (warn findings); they make its status warn.
    advisories: list[str] = field(default_factory=list)
    # Where its scenarios are written: features/<area>/<name>.feature:<line>.
    locations: list[str] = field(default_factory=list)
    # The keys of the failing findings of a failed check (a waiver may name one).
    findings: list[str] = field(default_factory=list)

    def merge(self, other: ControlResult) -> ControlResult:
        worst = self if STATUS_RANK[self.status] >= STATUS_RANK[other.status] else other
        return ControlResult(
            control_id=self.control_id,
            status=worst.status,
            reason=worst.reason,
            threshold=self.threshold or other.threshold,
            threshold_note=self.threshold_note or other.threshold_note,
            measured="; ".join(m for m in (self.measured, other.measured) if m),
            scenarios=self.scenarios + other.scenarios,
            advisories=self.advisories + other.advisories,
            # The worst scenario's first: it is where the control's verdict comes from.
            locations=worst.locations
            + [x for x in self.locations + other.locations if x not in worst.locations],
            findings=sorted(set(self.findings) | set(other.findings)),
        )


def verdict(results: dict[str, ControlResult], *, fail_on_warn: bool = False) -> str:
    """Compliant only when controls were evaluated and every one of them passed (warn counts as
    passed unless ``fail_on_warn``): a run in which nothing was evaluated (all skipped, or
    stopped before any control) is inconclusive."""
    statuses = {r.status for r in results.values()}
    if "failed" in statuses or (fail_on_warn and "warn" in statuses):
        return "noncompliant"
    if "inconclusive" in statuses or not statuses & PASSING:
        return "inconclusive"
    return "compliant"


def build_summary(
    results: dict[str, ControlResult],
    catalogue: Catalogue,
    *,
    profile: str,
    target: str,
    extra: dict[str, Any],
    fail_on_warn: bool = False,
) -> dict[str, Any]:
    ordered = [c.id for c in catalogue.controls if c.id in results]
    controls = {}
    for control_id in ordered:
        result = asdict(results[control_id])
        result.pop("control_id")
        controls[control_id] = result
    counts = {status: 0 for status in STATUS_RANK}
    for control_result in results.values():
        counts[control_result.status] += 1
    return {
        "verdict": verdict(results, fail_on_warn=fail_on_warn),
        "profile": profile,
        # A credential in the portal's address (https://user:secret@host/) is never reported.
        "target": url_without_credentials(target),
        "catalogue_version": catalogue.version,
        "counts": counts,
        "controls": controls,
        **extra,
    }


def write_reports(summary: dict[str, Any], catalogue: Catalogue, run_dir: Path) -> None:
    """summary.json and the matrix (CSV, Markdown), each readable by its owner only."""
    run_dir.mkdir(parents=True, exist_ok=True, mode=MODES["private"].directory)
    summary = {**summary, "target": url_without_credentials(str(summary.get("target", "")))}
    write_private(run_dir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    rows = []
    for control_id, result in summary["controls"].items():
        control = catalogue.get(control_id)
        threshold = ", ".join(f"{k}={v}" for k, v in result["threshold"].items())
        if result["threshold_note"]:
            threshold = f"{threshold} ({result['threshold_note']})" if threshold else ""
        rows.append(
            {
                "control": control_id,
                "statement": control.statement,
                "status": result["status"],
                "threshold": threshold,
                "measured": result["measured"],
                "reason": result["reason"],
                "sources": "; ".join(control.sources),
            }
        )
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else ["control"])
    writer.writeheader()
    writer.writerows(rows)
    write_private(run_dir / "compliance-matrix.csv", table.getvalue().encode("utf-8"))
    lines = [
        f"# Compliance matrix: {summary['profile']}",
        "",
        f"Target: {summary['target']}  ",
        f"Verdict: **{summary['verdict']}**  ",
        f"Started: {summary.get('started', '')}  ",
        f"Target provider: {provider_line(summary.get('target_provider'))}",
        "",
        "| Control | Status | Requirement | Threshold applied | Measured | Reason | Sources |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [
            row["control"],
            row["status"].upper(),
            row["statement"],
            row["threshold"],
            row["measured"],
            row["reason"],
            row["sources"],
        ]
        lines.append("| " + " | ".join(matrix_cell(c) for c in cells) + " |")
    notes = summary.get("waivers") or []
    if notes:
        lines += [
            "",
            "## Waivers",
            "",
            "WAIVED rows are failures accepted by a waiver until its expiry date; they count as "
            "compliant. An expired waiver is ignored; a stale one waives a control that passes.",
            "",
            "| Control | Finding | State | Detail | Reference | Approver | Expires |",
            "|---|---|---|---|---|---|---|",
        ]
        for note in notes:
            cells = [
                note["control"],
                note["finding"] or "any",
                note["state"].upper(),
                note["detail"],
                note["reference"],
                note["approver"],
                note["expires"],
            ]
            lines.append("| " + " | ".join(matrix_cell(str(c)) for c in cells) + " |")
    write_private(run_dir / "compliance-matrix.md", ("\n".join(lines) + "\n").encode("utf-8"))


def provider_line(provider: dict[str, Any] | None) -> str:
    """The matrix's line on who started the target: none, or the provider and its facts."""
    if not provider:
        return "none (the portal at the profile's base_url)"
    facts = [
        f"{key}: {', '.join(map(str, value)) or 'none' if isinstance(value, list) else value}"
        for key, value in provider.items()
        if key != "name"
    ]
    return "; ".join([str(provider.get("name", "?")), *facts])


def matrix_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
