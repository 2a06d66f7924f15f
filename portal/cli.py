"""The ``portal-audit`` command.

    portal-audit audit [--profile P] [options]   audit a portal (the runner, python -m portal.audit)
    portal-audit check-profile PROFILE           validate a profile without auditing
    portal-audit controls [--json] [--area A]    the controls catalogue: IDs, defaults, sources
    portal-audit --version

Each subcommand imports what it needs when it runs, so ``--help`` and ``--version`` answer at
once. Exit statuses are the audit's everywhere (``portal.audit.MEANING``); a usage error is 3.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from portal.audit import UsageParser, exit_statuses
from portal.audit import main as audit_main

PROG = "portal-audit"


def tool_version() -> str:
    try:
        return version("portal-audit")
    except PackageNotFoundError:  # a checkout used without install
        return "unknown (not installed)"


def parser() -> UsageParser:
    top = UsageParser(
        prog=PROG,
        description="Security-hygiene compliance checks of a patient portal, from outside.",
        epilog=exit_statuses(),
    )
    top.add_argument("--version", action="store_true", help="print the version and exit")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)
    commands.add_parser(
        "audit",
        help="audit a portal against its profile (see 'portal-audit audit --help')",
        add_help=False,
    )
    check = commands.add_parser(
        "check-profile",
        help="validate a profile without auditing",
        description="Read and validate a profile as the audit would, its ${...} references "
        "filled from the environment. Values a profile's target fills in when the audit starts "
        "it are listed, not checked.",
        epilog="Exit status: 0 a valid profile; 3 a bad profile (each problem with file:line "
        "and field) or a usage error.",
    )
    check.add_argument("profile", help="the profile (YAML)")
    controls = commands.add_parser(
        "controls",
        help="list the controls catalogue",
        description="The controls the audit checks: ID, area, default thresholds, sources.",
        epilog="Exit status: 0, or 3 for a usage error.",
    )
    controls.add_argument("--json", action="store_true", help="one JSON document instead")
    controls.add_argument("--area", default=None, help="only the controls of this area")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # The runner parses its own options and passes the ones it does not know to pytest.
    if arguments[:1] == ["audit"]:
        return audit_main(arguments[1:], prog=f"{PROG} audit")
    options = parser().parse_args(arguments)
    if options.version:
        print(f"{PROG} {tool_version()} (controls catalogue version {_catalogue_version()})")
        return 0
    if options.command == "check-profile":
        return check_profile(Path(options.profile))
    if options.command == "controls":
        try:
            return list_controls(options.json, options.area)
        except BrokenPipeError:
            # The reader (head, less) stopped reading: not an error. Python's own flush at exit
            # must not meet the closed pipe again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    parser().print_help()
    return 3


def check_profile(path: Path) -> int:
    from portal.profile_check import check_profile as check

    result = check(path, os.environ)
    print(result.describe(), file=sys.stdout if result.valid else sys.stderr)
    return 0 if result.valid else 3


def _catalogue_version() -> int:
    from portal.catalogue import load_catalogue

    return load_catalogue().version


def catalogue_rows(area: str | None = None) -> list[dict[str, Any]]:
    from portal.catalogue import load_catalogue

    return [
        {
            "id": control.id,
            "area": control.area,
            "statement": control.statement,
            "threshold": control.threshold,
            "sources": control.sources,
            "destructive": control.destructive,
            "slow": control.slow,
            "marker": control.marker,
        }
        for control in load_catalogue().controls
        if area is None or control.area == area
    ]


def list_controls(as_json: bool, area: str | None) -> int:
    rows = catalogue_rows(area)
    if area is not None and not rows:
        areas = sorted({row["area"] for row in catalogue_rows()})
        print(f"{PROG}: no area {area!r}; the areas are {', '.join(areas)}", file=sys.stderr)
        return 3
    if as_json:
        print(json.dumps({"controls": rows}, indent=2))
        return 0
    for row in rows:
        kind = ", ".join(k for k in ("destructive", "slow") if row[k])
        threshold = ", ".join(f"{k}={v}" for k, v in row["threshold"].items()) or "-"
        print(f"{row['id']:<18} {row['area']:<15} {threshold}" + (f"  [{kind}]" if kind else ""))
        print(f"{'':<18} {row['statement']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
