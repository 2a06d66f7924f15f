"""SARIF 2.1.0 logs of portal-audit's verdicts (``--sarif FILE``), for code-scanning dashboards.

One rule per control the run judged: its ID, statement, area and cited sources as tags, and a
link to the first source's standard (the catalogue's ``standards``). One result per control that
needs attention where it was judged:

- failed: ``kind: fail``, ``level: error``, the reason as message;
- warn, passed with an advisory (e.g. HSTS under the recommended two years): ``kind: fail``,
  ``level: warning``, the advisories as message;
- inconclusive: ``kind: open`` (SARIF's "not enough information to decide"), level ``none``
  as the specification requires for any kind but ``fail``;
- waived (a failure accepted by a waiver): the failure, with an external, accepted
  suppression whose justification is the waiver, so dashboards show it as suppressed.

Passed and skipped controls get no result; the run's ``properties.statuses`` counts every
control's status, so a log without results still says what was checked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from portal.catalogue import Catalogue, Control
from portal.summary import ControlResult

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "portal-audit"


@dataclass(frozen=True)
class Judged:
    """One control's verdict at one place: a scanned URL, or a feature file and line."""

    control_id: str
    status: str
    reason: str
    uri: str
    advisories: tuple[str, ...] = ()
    measured: str = ""
    line: int | None = None


def _rule(control: Control, catalogue: Catalogue) -> dict[str, Any]:
    sources = "; ".join(
        f"{source} ({catalogue.standard_of(source).name})" for source in control.sources
    )
    rule: dict[str, Any] = {
        "id": control.id,
        "name": "".join(part.capitalize() for part in control.id.split("_")),
        "shortDescription": {"text": control.statement},
        "fullDescription": {"text": f"{control.statement} Sources: {sources or 'none'}."},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": [control.area, *control.sources]},
    }
    if control.sources:
        rule["helpUri"] = catalogue.standard_of(control.sources[0]).url
        rule["help"] = {
            "text": "\n".join(
                f"{source}: {catalogue.standard_of(source).url}" for source in control.sources
            )
        }
    return rule


def _result(judged: Judged, index: int) -> dict[str, Any] | None:
    if judged.status in ("failed", "waived"):
        kind, level, text = "fail", "error", judged.reason
    elif judged.status == "inconclusive":
        kind, level, text = "open", "none", f"could not be evaluated: {judged.reason}"
    elif judged.status == "warn":
        kind, level, text = "fail", "warning", "; ".join(judged.advisories) or judged.reason
    else:
        return None
    location: dict[str, Any] = {"artifactLocation": {"uri": judged.uri}}
    if judged.line is not None:
        location["region"] = {"startLine": judged.line}
    result: dict[str, Any] = {
        "ruleId": judged.control_id,
        "ruleIndex": index,
        "kind": kind,
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {"portalAudit/v1": f"{judged.control_id}|{judged.uri}"},
    }
    if judged.status == "waived":
        result["suppressions"] = [
            {"kind": "external", "status": "accepted", "justification": judged.reason}
        ]
    if judged.measured:
        result["properties"] = {"measured": judged.measured}
    return result


def sarif_log(
    verdicts: Sequence[Judged],
    catalogue: Catalogue,
    *,
    tool_version: str,
    command: str = "",
) -> dict[str, Any]:
    """The SARIF log (one run) of ``verdicts``, their rules taken from ``catalogue``."""
    judged_ids = {judged.control_id for judged in verdicts}
    controls = [control for control in catalogue.controls if control.id in judged_ids]
    index = {control.id: position for position, control in enumerate(controls)}
    results = [
        result
        for judged in verdicts
        if (result := _result(judged, index[judged.control_id])) is not None
    ]
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if command:
        invocation["commandLine"] = command
    return {
        "$schema": SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": tool_version,
                        "rules": [_rule(control, catalogue) for control in controls],
                    }
                },
                "invocations": [invocation],
                "results": results,
                "properties": {
                    "catalogueVersion": catalogue.version,
                    "statuses": dict(Counter(judged.status for judged in verdicts)),
                },
            }
        ],
    }


def audit_verdicts(results: Iterable[ControlResult], target: str) -> list[Judged]:
    """An audit's control results, each located at the feature file and line of its (worst)
    scenario, or at the portal's address when it has none."""
    verdicts = []
    for result in results:
        uri, line = target, None
        if result.locations:
            file, _, number = result.locations[0].rpartition(":")
            uri, line = (file, int(number)) if number.isdigit() else (result.locations[0], None)
        verdicts.append(
            Judged(
                control_id=result.control_id,
                status=result.status,
                reason=result.reason,
                uri=uri,
                advisories=tuple(result.advisories),
                measured=result.measured,
                line=line,
            )
        )
    return verdicts
