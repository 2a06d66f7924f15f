"""The detection matrix: every control fails with its weakness on and passes with it off.

The "on" rows run only the weakened control's scenarios (a focused audit each); the "off" rows
come from one full audit of the reference portal as shipped. tests/test_audit_runs.py adds a
full run with a weakness on, showing that no other control is affected.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from portal.catalogue import load_catalogue
from tests.audits import AuditResult, implemented_controls, run_audit, weaknesses

WEAKNESSES = weaknesses()
IMPLEMENTED = sorted(implemented_controls())
# Controls the reference portal cannot be made to fail, and why; each is proven otherwise.
WITHOUT_WEAKNESS = {
    # Not a compliance control: its failure makes a run inconclusive (test_audit_runs.py
    # shows it with a wrong password).
    "PREFLIGHT",
    # Debian's OpenSSL 3 has no Heartbleed, CCS injection, compression or insecure
    # renegotiation to switch on; tests/test_tls_scanner.py proves the evaluator on data.
    "TLS_VULNS",
}
# Controls whose compliant outcome on the reference portal is "skipped", with the reason.
SKIPPED_WHEN_COMPLIANT = {"TLS_OCSP": "the reference certificate names no OCSP responder"}


def test_every_implemented_control_has_a_weakness_flag() -> None:
    broken = {w["control"] for w in WEAKNESSES}
    missing = [c for c in IMPLEMENTED if c not in WITHOUT_WEAKNESS and c not in broken]
    assert not missing, f"controls without a weakness flag in the reference portal: {missing}"
    catalogue_ids = {c.id for c in load_catalogue().controls}
    assert broken <= catalogue_ids


# Audits are mostly waiting (the slow controls' timeouts), so several run at once.
PARALLEL_AUDITS = 3


@pytest.fixture(scope="module")
def weakened_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AuditResult]:
    """One focused audit per weakness flag: only the weakened control's scenarios."""

    # Made before the threads start: the factory's first call creates its base directory.
    directories = {w["flag"]: tmp_path_factory.mktemp(w["flag"]) for w in WEAKNESSES}

    def audit(weakness: dict[str, str]) -> tuple[str, AuditResult]:
        flag = weakness["flag"]
        scope = weakness["control"].lower()
        # One control, so one group: workers would have nothing to share.
        return flag, run_audit(directories[flag], weaken=(flag,), markexpr=scope, workers=1)

    with ThreadPoolExecutor(max_workers=PARALLEL_AUDITS) as pool:
        return dict(pool.map(audit, WEAKNESSES))


@pytest.mark.parametrize("weakness", WEAKNESSES, ids=[w["flag"] for w in WEAKNESSES])
def test_weakness_on_fails_its_control(
    weakness: dict[str, str], weakened_runs: dict[str, AuditResult]
) -> None:
    control = weakness["control"]
    result = weakened_runs[weakness["flag"]]
    assert result.status == 1, result.output
    assert result.control(control)["status"] == "failed", result.summary
    assert result.control(control)["reason"], "a failed control must say why"


@pytest.mark.parametrize("control", IMPLEMENTED)
def test_weakness_off_passes_its_control(control: str, compliant_run: AuditResult) -> None:
    expected = "skipped" if control in SKIPPED_WHEN_COMPLIANT else "passed"
    assert compliant_run.control(control)["status"] == expected, compliant_run.output
