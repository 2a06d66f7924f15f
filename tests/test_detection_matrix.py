"""The detection matrix: every control fails with its weakness on and passes with it off.

The "on" rows run only the weakened control's scenarios (a focused audit each); the "off" rows
come from one full audit of the reference portal as shipped. tests/test_audit_runs.py adds a
full run with a weakness on, showing that no other control is affected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.catalogue import load_catalogue
from tests.audits import AuditResult, implemented_controls, run_audit, weaknesses

WEAKNESSES = weaknesses()
IMPLEMENTED = sorted(implemented_controls())


def test_every_implemented_control_has_a_weakness_flag() -> None:
    broken = {w["control"] for w in WEAKNESSES}
    # PREFLIGHT is not a compliance control: its failure makes a run inconclusive
    # (tests/test_audit_runs.py shows it with a wrong password).
    missing = [c for c in IMPLEMENTED if c != "PREFLIGHT" and c not in broken]
    assert not missing, f"controls without a weakness flag in the reference portal: {missing}"
    catalogue_ids = {c.id for c in load_catalogue().controls}
    assert broken <= catalogue_ids


@pytest.mark.parametrize("weakness", WEAKNESSES, ids=[w["flag"] for w in WEAKNESSES])
def test_weakness_on_fails_its_control(weakness: dict[str, str], tmp_path: Path) -> None:
    control = weakness["control"]
    result = run_audit(tmp_path, weaken=(weakness["flag"],), markexpr=control.lower())
    assert result.status == 1, result.output
    assert result.control(control)["status"] == "failed", result.summary
    assert result.control(control)["reason"], "a failed control must say why"


@pytest.mark.parametrize("control", IMPLEMENTED)
def test_weakness_off_passes_its_control(control: str, compliant_run: AuditResult) -> None:
    assert compliant_run.control(control)["status"] == "passed", compliant_run.output
