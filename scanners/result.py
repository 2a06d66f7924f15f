"""Typed results shared by every scanner.

Scanners never assert and never raise for a failed probe: a probe that could not run is data
(``Probe`` with an error), and an evaluation that could not reach a verdict says so with the
``inconclusive`` status. Steps turn these results into test outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["passed", "failed", "inconclusive", "skipped"]
# What the reports show: a pass with advisories is "warn".
ReportedStatus = Literal["passed", "warn", "failed", "inconclusive", "skipped"]
Severity = Literal["fail", "warn"]


@dataclass(frozen=True)
class Finding:
    """One issue found by a checker, under a stable key (e.g. ``hsts.max_age_too_short``)."""

    key: str
    message: str
    severity: Severity = "fail"
    where: str = ""

    def __str__(self) -> str:
        location = f" [{self.where}]" if self.where else ""
        return f"{self.key}: {self.message}{location}"


@dataclass(frozen=True)
class Evaluation:
    """The verdict of one checker on collected data.

    ``measured`` is what was observed, in words an auditor can read ("max-age=31536000 on 4/4
    responses"); ``threshold`` is the policy value that was applied; ``reason`` is one line.
    """

    status: Status
    reason: str
    measured: str = ""
    threshold: str = ""
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def failures(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "fail")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warn")

    @property
    def reported(self) -> ReportedStatus:
        """The verdict as the reports give it: passed with warn findings is warn."""
        if self.status == "passed" and self.warnings:
            return "warn"
        return self.status

    def one_line(self, most: int = 3) -> str:
        """The reason naming the first ``most`` failing findings, for a summary's one line."""
        failing = [str(f) for f in self.findings if f.severity == "fail"]
        if not failing:
            return self.reason
        more = f"; and {len(failing) - most} more" if len(failing) > most else ""
        return f"{self.reason}: {'; '.join(failing[:most])}{more}"

    def describe(self) -> str:
        """All findings, one per line, for a failure message or an attachment."""
        lines = [self.reason]
        # Failing findings first, as "- key: message"; advisory ones after, marked so.
        lines.extend(f"- {f}" for f in self.findings if f.severity == "fail")
        lines.extend(f"  (advisory) {f}" for f in self.findings if f.severity != "fail")
        return "\n".join(lines)


def verdict(
    findings: list[Finding] | tuple[Finding, ...],
    *,
    measured: str,
    threshold: str,
    passed_reason: str,
    failed_reason: str,
) -> Evaluation:
    """Build an evaluation from collected findings: any ``fail`` finding fails the check."""
    findings = tuple(findings)
    failed = any(f.severity == "fail" for f in findings)
    return Evaluation(
        status="failed" if failed else "passed",
        reason=failed_reason if failed else passed_reason,
        measured=measured,
        threshold=threshold,
        findings=findings,
    )
