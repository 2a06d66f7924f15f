"""The ``portal-audit`` command.

    portal-audit audit [--profile P] [options]   audit a portal (the runner, python -m portal.audit)
    portal-audit check-profile PROFILE           validate a profile without auditing
    portal-audit scan TARGET... [--json F]       TLS and header verdicts of any hosts
    portal-audit controls [--json] [--area A]    the controls catalogue: IDs, defaults, sources
    portal-audit verify-pack ZIP                 check an evidence pack against its manifest
    portal-audit --version

Each subcommand imports what it needs when it runs, so ``--help`` and ``--version`` answer at
once. Exit statuses are the audit's everywhere (``portal.exit_status.MEANING``); a usage error is 3.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from portal.exit_status import MEANING, UsageParser, exit_statuses
from portal.resources import tool_version

PROG = "portal-audit"


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
    check.add_argument(
        "--waivers", metavar="FILE", help="also validate this waiver file (audit --waivers)"
    )
    scan = commands.add_parser(
        "scan",
        help="TLS and header verdicts of any hosts, without a profile",
        description="Scan hosts' TLS and headers as the audit does (TLS_PROTOCOLS, TLS_CIPHERS, "
        "TLS_CERT, TLS_VULNS, TLS_OCSP; HDR_HSTS, HDR_CSP, HDR_MISC of the page given or of "
        "/), with the catalogue's thresholds. Targets: "
        "host, host:port or https://host[:port]/...; they are scanned at the same time.",
        epilog=exit_statuses().replace("bad profile or usage", "usage")
        + ". A target that does not answer is inconclusive.",
    )
    scan.add_argument("targets", nargs="*", metavar="TARGET")
    scan.add_argument("--targets", dest="targets_file", help="a file of targets, one per line")
    scan.add_argument("--ca-file", help="a PEM bundle trusted besides the system's")
    scan.add_argument("--sni", help="the server name to send and to check the certificate for")
    scan.add_argument(
        "--mozilla-level", choices=("intermediate", "modern"), help="Mozilla TLS profile"
    )
    scan.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a threshold of the catalogue, e.g. expiry_warning_days=14 (repeatable)",
    )
    scan.add_argument("--concurrency", type=_positive, default=10, help="servers at once")
    scan.add_argument("--timeout", type=_positive, default=10, help="seconds per network step")
    scan.add_argument(
        "--plain-http-port",
        type=_port,
        default=80,
        help="where each host's plain HTTP is asked for, for AUTH_HTTPS's redirect (default 80)",
    )
    scan.add_argument("--json", dest="json_file", help="write every verdict to this JSON file")
    scan.add_argument("--junit", dest="junit_file", help="write JUnit XML to this file")
    scan.add_argument(
        "--sarif",
        dest="sarif_file",
        help="write a SARIF 2.1.0 log (failed, inconclusive and advisory controls) to this file",
    )
    scan.add_argument(
        "--run-dir",
        help="write the audit's summary.json and compliance matrix there, one folder per target",
    )
    controls = commands.add_parser(
        "controls",
        help="list the controls catalogue",
        description="The controls the audit checks: ID, area, default thresholds, sources.",
        epilog="Exit status: 0, or 3 for a usage error.",
    )
    controls.add_argument("--json", action="store_true", help="one JSON document instead")
    controls.add_argument("--area", default=None, help="only the controls of this area")
    verify = commands.add_parser(
        "verify-pack",
        help="check an evidence pack against its manifest",
        description="Recompute the SHA-256 of every file of an evidence pack (audit "
        "--evidence-pack) and compare them with its manifest: a file changed, added or removed "
        "since the pack was written is named.",
        epilog="Exit status: 0 unaltered; 1 altered; 3 not an evidence pack or a usage error.",
    )
    verify.add_argument("pack", help="the evidence pack (evidence-pack.zip)")
    return top


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # The runner parses its own options and passes the ones it does not know to pytest.
    if arguments[:1] == ["audit"]:
        from portal.audit import main as audit_main

        return audit_main(arguments[1:], prog=f"{PROG} audit")
    options = parser().parse_args(arguments)
    if options.version:
        print(f"{PROG} {tool_version()} (controls catalogue version {_catalogue_version()})")
        return 0
    if options.command == "scan":
        return scan_hosts(options)
    if options.command == "check-profile":
        return check_profile(Path(options.profile), options.waivers)
    if options.command == "verify-pack":
        return verify_evidence(Path(options.pack))
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


def console() -> NoReturn:
    """The ``portal-audit`` console script: ``main``, and out.

    After a scan every output is written and closed and the scan's threads are done (one that
    stalled past its bound is abandoned, as an exit abandons a daemon thread), so the process
    ends at once, without the interpreter's teardown: freeing sslyze's trust stores and models
    and a thousand modules takes about 50 ms, a sixteenth of a scan of one host.
    """
    arguments = sys.argv[1:]
    scanning = arguments[:1] == ["scan"]
    if scanning:
        # Start-up creates objects that live as long as the process (modules, sslyze's and the
        # catalogue's models): the cyclic collector would search them in vain, about 20 ms.
        # scan_hosts turns it back on, for what the scan itself leaves behind.
        gc.disable()
    status = main(arguments)
    if scanning:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


def _started_up() -> None:
    """Collect garbage again if ``console`` paused the collector for the start-up; what the
    start-up made is frozen, left out of every later collection."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def verify_evidence(pack: Path) -> int:
    import zipfile

    from portal.evidence_pack import verify_pack

    try:
        manifest, problems = verify_pack(pack)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        print(f"{PROG} verify-pack: {pack}: not a readable evidence pack: {exc}", file=sys.stderr)
        return 3
    print(
        f"{pack}: {manifest.get('profile')}, started {manifest.get('started')}, verdict "
        f"{manifest.get('verdict')}, portal-audit {manifest.get('tool_version')}, "
        f"{len(manifest.get('files', []))} files"
    )
    for problem in problems:
        print(f"  {problem}")
    print("altered" if problems else "unaltered: every file matches the manifest")
    return 1 if problems else 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def scan_hosts(options: argparse.Namespace) -> int:
    from portal.scan import (
        ScanUsageError,
        exit_status,
        parse_target,
        read_targets,
        scan_targets,
        url_of,
    )
    from portal.scan import thresholds as scan_thresholds

    try:
        texts = list(options.targets)
        if options.targets_file:
            path = Path(options.targets_file)
            try:
                content = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise ScanUsageError(f"--targets {path}: {exc.strerror or exc}") from None
            texts += read_targets(content, str(path))
        if not texts:
            raise ScanUsageError("no target given (TARGET ... or --targets FILE)")
        targets = [parse_target(t, sni=options.sni, ca_file=options.ca_file) for t in texts]
        urls = [url_of(text, target) for text, target in zip(texts, targets, strict=True)]
        overrides = dict(_setting(text) for text in options.policy)
        if options.mozilla_level:
            overrides["mozilla_level"] = options.mozilla_level
        applied = scan_thresholds(overrides)
    except ScanUsageError as exc:
        print(f"{PROG} scan: {exc}", file=sys.stderr)
        return 3
    from scanners.tls_scan import load_sslyze

    load_sslyze()
    _started_up()
    results = scan_targets(
        targets,
        urls,
        applied,
        timeout=options.timeout,
        concurrency=options.concurrency,
        plain_http_port=options.plain_http_port,
    )
    for result in results:
        print(str(result.target))
        for control_id, evaluation in result.evaluations.items():
            shown = evaluation.reported
            print(f"  {control_id:<14} {shown:<12} {evaluation.one_line()}")
    if options.json_file:
        document = {"thresholds": applied, "targets": [r.as_dict() for r in results]}
        Path(options.json_file).write_text(json.dumps(document, indent=2), encoding="utf-8")
    if options.run_dir or options.junit_file or options.sarif_file:
        from portal.scan_reports import junit_xml, sarif_document, write_run_dir

        if options.run_dir:
            write_run_dir(results, applied, set(overrides), Path(options.run_dir))
        if options.junit_file:
            Path(options.junit_file).write_bytes(junit_xml(results))
        if options.sarif_file:
            document = sarif_document(results)
            Path(options.sarif_file).write_text(json.dumps(document, indent=2), encoding="utf-8")
    status = exit_status(results)
    print(f"{PROG} scan: exit status {status} ({MEANING[status]})")
    return status


def _port(text: str) -> int:
    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port from 1 to 65535: {text!r}")
    return value


def _setting(text: str) -> tuple[str, str]:
    from portal.scan import ScanUsageError

    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise ScanUsageError(f"--policy {text!r}: write NAME=VALUE")
    return name.strip(), value.strip()


def check_profile(path: Path, waivers: str | None = None) -> int:
    from portal.profile_check import check_profile as check

    result = check(path, os.environ)
    print(result.describe(), file=sys.stdout if result.valid else sys.stderr)
    valid = result.valid
    if waivers:
        from portal.profile_file import ProfileError
        from portal.waivers import load_waivers

        try:
            print(f"{waivers}: {len(load_waivers(waivers))} valid waiver(s)")
        except ProfileError as exc:
            print(exc, file=sys.stderr)
            valid = False
    return 0 if valid else 3


def _catalogue_version() -> int:
    from portal.catalogue import load_catalogue

    return load_catalogue().version


def catalogue_rows(area: str | None = None) -> list[dict[str, Any]]:
    from portal.catalogue import load_catalogue

    return [
        {
            "id": control.id,
            "area": control.area,
            "criticality": control.criticality,
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
        from portal.catalogue import load_catalogue

        standards = {k: s.model_dump() for k, s in load_catalogue().standards.items()}
        print(json.dumps({"controls": rows, "standards": standards}, indent=2))
        return 0
    for row in rows:
        kind = ", ".join(k for k in ("destructive", "slow") if row[k])
        threshold = ", ".join(f"{k}={v}" for k, v in row["threshold"].items()) or "-"
        print(f"{row['id']:<18} {row['area']:<15} {threshold}" + (f"  [{kind}]" if kind else ""))
        print(f"{'':<18} {row['statement']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
