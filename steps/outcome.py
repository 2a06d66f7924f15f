"""Turning a scanner's evaluation into the scenario's outcome: the one place that decides."""

from __future__ import annotations

import pytest

from portal.errors import Inconclusive
from portal.evidence import Evidence
from portal.report_writer import mark_warning
from portal.run import ControlRecord
from scanners.result import Evaluation


def conclude(evaluation: Evaluation, record: ControlRecord, evidence: Evidence, name: str) -> None:
    """Record what was measured, attach the findings, and pass, fail, skip or go inconclusive."""
    record.measure(evaluation.measured)
    evidence.text(name, evaluation.describe())
    if evaluation.status == "inconclusive":
        raise Inconclusive(evaluation.reason)
    if evaluation.status == "skipped":
        pytest.skip(evaluation.reason)
    if evaluation.status == "failed":
        record.failure = evaluation.one_line()
        record.failing_keys = [finding.key for finding in evaluation.failures]
        raise AssertionError(evaluation.describe())
    record.reason = evaluation.reason
    if evaluation.warnings:
        record.advisories.extend(str(finding) for finding in evaluation.warnings)
        mark_warning(record)
