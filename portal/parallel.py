"""Checks that run at the same time, on pytest-xdist: which process does what, and what they
hand each other.

With ``--workers N`` (``-n N --dist loadgroup``) the audit is one controller and N workers:

- the **controller** runs no scenario. It loads the profile, has the target provider start the
  portal, hands the workers what they need (``Handoff``), runs the slow probes in the
  background (their measurements reach the workers through ``portal.probe_mailbox``), gathers
  each scenario's control result from its report, and writes the reports and exit status;
- each **worker** loads the same profile with the handed variables, runs the scenarios it is
  given (one group at a time: ``portal.roles.parallel_groups`` puts the checks of one account in
  one group) and sends back, with each report, the control result it concluded.

The selected scenarios are written once by the workers (``write_selection``) so the controller
can start the probes and, if the run is stopped, name every unfinished check.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from portal.summary import ControlResult

HANDOFF_KEY = "portal_audit"
SECRETS_KEY = "portal_audit_secrets"
# The attribute of a scenario's TestReport that carries its control result (xdist relays a
# report's attributes to the controller).
RESULT_ATTRIBUTE = "portal_audit_result"
SELECTION_FILE = "selection.json"


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """The process that hands scenarios to xdist workers and runs none itself."""
    return not is_worker(config) and config.pluginmanager.get_plugin("dsession") is not None


def workers_of(config: pytest.Config) -> int:
    """How many processes run the checks at the same time (1 without workers)."""
    if not is_controller(config):
        return 1
    return int(getattr(config.option, "numprocesses", None) or 1)


@dataclass(frozen=True)
class Handoff:
    """What a worker needs from the controller to audit the same portal in the same run."""

    run_dir: str
    started: str
    variables: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    provider: dict[str, Any] | None = None


def handoff_of(config: pytest.Config) -> Handoff | None:
    """The controller's handoff, in a worker; None elsewhere."""
    if not is_worker(config):
        return None
    given = config.workerinput.get(HANDOFF_KEY)  # type: ignore[attr-defined]
    return Handoff(**given) if given else None


def send_handoff(node: Any, handoff: Handoff) -> None:
    node.workerinput[HANDOFF_KEY] = asdict(handoff)


@dataclass(frozen=True)
class Selected:
    """One selected scenario of a control: enough to report it if the run stops before it,
    and the group it runs in (``portal.roles.parallel_groups``)."""

    nodeid: str
    name: str
    control_id: str
    skipped: str | None = None
    probe_wanted: bool = False
    group: str = ""


def write_selection(run_dir: Path, selection: list[Selected]) -> None:
    """Written by every worker, the same content, into the run's work directory (removed
    with it): replaced atomically, never half-read."""
    work = run_dir / "work"
    work.mkdir(parents=True, exist_ok=True)
    partial = work / f".{SELECTION_FILE}.{os.getpid()}"
    partial.write_text(json.dumps([asdict(s) for s in selection]), encoding="utf-8")
    partial.replace(work / SELECTION_FILE)


def read_selection(run_dir: Path) -> list[Selected]:
    path = run_dir / "work" / SELECTION_FILE
    if not path.exists():
        return []
    return [Selected(**entry) for entry in json.loads(path.read_text("utf-8"))]


def attach_result(report: pytest.TestReport, result: ControlResult) -> None:
    setattr(report, RESULT_ATTRIBUTE, asdict(result))


def result_of(report: pytest.TestReport) -> ControlResult | None:
    data = getattr(report, RESULT_ATTRIBUTE, None)
    return ControlResult(**data) if isinstance(data, dict) else None


def account_scheduler(config: pytest.Config, log: Any, run_dir: Path) -> Any:
    """xdist's scope scheduler with the scenarios' groups as scopes: a group's scenarios go to
    one worker, in order, and groups are handed out as workers free up.

    The groups come from the selection the workers wrote, not from ``xdist_group`` marks:
    ``--dist loadgroup`` reads those from a suffix it writes into node IDs, which pytest 9.2's
    structured node IDs no longer carry (pytest-dev/pytest-xdist#1386), so every scenario
    would be its own group.
    """
    from xdist.scheduler import LoadScopeScheduling

    class AccountGroups(LoadScopeScheduling):
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                self.groups = {s.nodeid: s.group for s in read_selection(run_dir) if s.group}
            return self.groups.get(nodeid) or nodeid

    return AccountGroups(config, log)
