"""Waivers: accepted risks with an owner and an end date (``--waivers FILE``).

A waiver file lists controls whose failure a hospital has accepted for a time::

    waivers:
      - control: HDR_CSP
        finding: csp.missing            # optional: only this finding is accepted
        reason: The vendor ships its CSP in release 4.2
        reference: SEC-1234             # the ticket or risk-register entry
        approver: J. Smith, CISO
        expires: 2027-03-31             # the last day it applies

It is read like a profile (bounded, strict YAML) and checked against the catalogue; every
problem is named with file:line and the run exits 3 before any browser starts.

Applied to a run's results, a waiver turns its control's failure into ``waived`` (never
passed), with the waiver's text in the reason. A waiver naming a finding applies only when
that is the control's only kind of failure. An expired waiver is ignored and the report says
so; a waiver for a control that now passes is reported as stale.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from portal.catalogue import load_catalogue
from portal.profile_file import read_raw
from portal.profile_report import Reporter, validation_errors
from portal.summary import PASSING, ControlResult

Text = Field(min_length=1, max_length=500)


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    control: str
    finding: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str = Text
    reference: str = Text
    approver: str = Text
    expires: datetime.date

    @field_validator("control")
    @classmethod
    def _known_control(cls, value: str) -> str:
        ids = [control.id for control in load_catalogue().controls]
        if value not in ids:
            raise ValueError(f"not a control of the catalogue ({', '.join(ids)})")
        return value

    def describe(self) -> str:
        scope = f" (finding {self.finding})" if self.finding else ""
        return (
            f"waived{scope} until {self.expires.isoformat()}, {self.reference}, approved by "
            f"{self.approver}: {self.reason}"
        )


class WaiverFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    waivers: list[Waiver]


def load_waivers(path: str | Path) -> list[Waiver]:
    """The waivers of ``path``; a ProfileError naming file:line and field for any problem."""
    data, lines = read_raw(Path(path))
    reporter = Reporter(str(path), lines)
    try:
        return WaiverFile.model_validate(data).waivers
    except ValidationError as exc:
        raise validation_errors(exc, reporter, WaiverFile) from None


@dataclass(frozen=True)
class Waived:
    """A run's results with the waivers applied, and what became of each waiver."""

    results: dict[str, ControlResult]
    notes: list[dict[str, Any]]


def apply_waivers(
    results: Mapping[str, ControlResult], waivers: Sequence[Waiver], today: datetime.date
) -> Waived:
    applied = dict(results)
    notes: list[dict[str, Any]] = []
    by_control: dict[str, list[Waiver]] = {}
    for waiver in waivers:
        if waiver.expires < today:
            notes.append(_note(waiver, "expired", f"expired on {waiver.expires.isoformat()}"))
        else:
            by_control.setdefault(waiver.control, []).append(waiver)
    for control_id, current in by_control.items():
        result = results.get(control_id)
        if result is None:
            for waiver in current:
                notes.append(_note(waiver, "unused", "the control was not evaluated in this run"))
            continue
        if result.status in PASSING:
            for waiver in current:
                notes.append(_note(waiver, "stale", f"the control {result.status}: remove it"))
            continue
        if result.status != "failed":
            for waiver in current:
                notes.append(_note(waiver, "unused", f"the control is {result.status}"))
            continue
        whole = [w for w in current if w.finding is None]
        covered = {w.finding for w in current if w.finding is not None}
        failing = set(result.findings)
        if whole or (failing and failing <= covered):
            used = whole[:1] or [w for w in current if w.finding in failing]
            text = "; ".join(w.describe() for w in used)
            applied[control_id] = replace(
                result, status="waived", reason=f"{text}; failure: {result.reason}"
            )
            for waiver in current:
                state = "applied" if waiver in used else "unused"
                notes.append(
                    _note(
                        waiver,
                        state,
                        "the failure is waived"
                        if state == "applied"
                        else "another waiver of the control applies",
                    )
                )
        else:
            left = ", ".join(sorted(failing - covered)) or "a failure without finding keys"
            for waiver in current:
                notes.append(_note(waiver, "unused", f"it does not cover {left}"))
    return Waived(applied, notes)


def _note(waiver: Waiver, state: str, detail: str) -> dict[str, Any]:
    return {
        "control": waiver.control,
        "finding": waiver.finding,
        "reference": waiver.reference,
        "approver": waiver.approver,
        "expires": waiver.expires.isoformat(),
        "state": state,
        "detail": detail,
    }
