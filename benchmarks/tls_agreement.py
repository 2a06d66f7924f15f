"""Agreement and speed of three TLS checkers on the local test servers.

For every configuration in ``tests/tls_servers.py`` this runs, a few times each:

(a) this project's scanner (``scanners.tls_scan.scan_tls`` plus the evaluators, in process),
(b) the sslyze command line with the same scan commands (``python -m sslyze``, JSON output),
(c) testssl.sh (``testssl -p -s -S``, JSON output),

reduces each tool's output to three verdicts -- legacy protocol offered (SSL 2/3, TLS 1.0/1.1),
suites outside Mozilla 6.0 intermediate offered, certificate problems (untrusted / hostname /
expiring / lifespan) -- and prints a Markdown table of the verdicts, whether they agree, and
the median wall time of each tool.

    .venv/bin/python -m benchmarks.tls_agreement [--repeats 3] [--configs legacy,intermediate]

Only 127.0.0.1 is contacted; testssl runs with ``--nodns none`` and without ``--phone-out``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scanners.tls import evaluate_certificate, evaluate_ciphers, evaluate_protocols
from scanners.tls_policy import PROTOCOLS, MozillaPolicy, load_policy
from scanners.tls_scan import PROTOCOL_COMMANDS, scan_tls
from tests.tls_servers import CONFIGS, LocalPki, RunningServer, tls_servers

LEGACY_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")
WARN_DAYS = 30
TOOLS = ("scanner", "sslyze CLI", "testssl")
SSLYZE_OPTIONS = (
    "--certinfo",
    "--sslv2",
    "--sslv3",
    "--tlsv1",
    "--tlsv1_1",
    "--tlsv1_2",
    "--tlsv1_3",
    "--elliptic_curves",
    "--heartbleed",
    "--robot",
    "--openssl_ccs",
    "--reneg",
    "--compression",
    "--fallback",
)
TESTSSL_CHECKS = ("-p", "-s", "-S")
# testssl -s categories that hold no suite of Mozilla 6.0 intermediate.
_TESTSSL_WEAK_CATEGORIES = (
    "cipherlist_NULL",
    "cipherlist_aNULL",
    "cipherlist_EXPORT",
    "cipherlist_LOW",
    "cipherlist_3DES_IDEA",
    "cipherlist_AVERAGE",
)
_TESTSSL_PROTOCOL_IDS = ("SSLv2", "SSLv3", "TLS1", "TLS1_1")


@dataclass(frozen=True)
class Verdicts:
    legacy_protocols: bool
    weak_suites: bool
    certificate_problems: frozenset[str]

    def cells(self) -> tuple[str, str, str]:
        return (
            "yes" if self.legacy_protocols else "no",
            "yes" if self.weak_suites else "no",
            ", ".join(sorted(self.certificate_problems)) or "none",
        )


@dataclass
class ToolResult:
    seconds: list[float] = field(default_factory=list)
    verdicts: list[Verdicts] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def final(self) -> Verdicts | None:
        return self.verdicts[-1] if self.verdicts else None

    def stable(self) -> bool:
        return len(set(self.verdicts)) <= 1


def _days(seconds: float) -> float:
    return seconds / 86400


# --- (a) this project's scanner ---------------------------------------------------------------


def run_scanner(server: RunningServer, policy: MozillaPolicy, work: Path) -> Verdicts:
    scan = scan_tls(server.target)
    if not scan.completed:
        raise RuntimeError(scan.reason)
    now = datetime.datetime.now(datetime.UTC)
    keys = {
        finding.key
        for evaluation in (
            evaluate_protocols(scan, policy),
            evaluate_ciphers(scan, policy),
            evaluate_certificate(
                scan,
                policy,
                now=now,
                warn_days=WARN_DAYS,
                # The tools are compared on Mozilla's own limit, as their columns are.
                max_lifespan_days=policy.maximum_certificate_lifespan_days,
            ),
        )
        for finding in evaluation.findings
    }
    legacy_keys = {
        "tls.protocol.ssl2_0_offered",
        "tls.protocol.ssl3_0_offered",
        "tls.protocol.tls1_0_offered",
        "tls.protocol.tls1_1_offered",
    }
    problems = {
        "untrusted": "tls.cert.untrusted" in keys,
        "hostname": "tls.cert.hostname_mismatch" in keys,
        "expiring": bool({"tls.cert.expires_soon", "tls.cert.expired"} & keys),
        "lifespan": "tls.cert.lifespan_too_long" in keys,
    }
    return Verdicts(
        legacy_protocols=bool(legacy_keys & keys),
        weak_suites="tls.cipher.not_in_profile" in keys,
        certificate_problems=frozenset(name for name, seen in problems.items() if seen),
    )


# --- (b) sslyze command line ----------------------------------------------------------------


def run_sslyze_cli(server: RunningServer, policy: MozillaPolicy, work: Path) -> Verdicts:
    output = work / "sslyze.json"
    command = [
        sys.executable,
        "-m",
        "sslyze",
        "--quiet",
        "--mozilla_config",
        "disable",
        "--json_out",
        str(output),
        "--certinfo_ca_file",
        str(server.ca_file),
        *SSLYZE_OPTIONS,
        f"{server.server_name}:{server.port}{{{server.host}}}",
    ]
    subprocess.run(command, capture_output=True, timeout=300, check=False)
    document = json.loads(output.read_text())
    result = document["server_scan_results"][0]
    if result["scan_status"] != "COMPLETED":
        raise RuntimeError(f"sslyze: {result['connectivity_error_trace']}")
    return sslyze_verdicts(result["scan_result"], policy, time.time())


def sslyze_verdicts(scan: dict[str, Any], policy: MozillaPolicy, now: float) -> Verdicts:
    accepted: dict[str, list[str]] = {}
    for protocol in PROTOCOLS:
        attempt = scan[PROTOCOL_COMMANDS[protocol]]
        if attempt["status"] != "COMPLETED":
            raise RuntimeError(f"sslyze: {PROTOCOL_COMMANDS[protocol]} {attempt['status']}")
        accepted[protocol] = [
            item["cipher_suite"]["name"] for item in attempt["result"]["accepted_cipher_suites"]
        ]
    weak = any(
        suite not in policy.allowed_suites(protocol)
        for protocol, suites in accepted.items()
        for suite in suites
    )
    deployment = scan["certificate_info"]["result"]["certificate_deployments"][0]
    validations = deployment["path_validation_results"]
    errors = [v["validation_error"] or "" for v in validations]
    trusted_somewhere = any(v["verified_certificate_chain"] for v in validations)
    # sslyze reports one validation error per store: the first problem webpki met.
    hostname = any("subjectAltName" in error for error in errors)
    expired_error = any("not valid at validation time" in error for error in errors)
    leaf = deployment["received_certificate_chain"][0]
    not_before = datetime.datetime.fromisoformat(leaf["not_valid_before"]).timestamp()
    not_after = datetime.datetime.fromisoformat(leaf["not_valid_after"]).timestamp()
    problems = {
        "untrusted": not trusted_somewhere and not hostname and not expired_error,
        "hostname": hostname,
        "expiring": _days(not_after - now) < WARN_DAYS,
        "lifespan": _days(not_after - not_before) > policy.maximum_certificate_lifespan_days,
    }
    return Verdicts(
        legacy_protocols=any(accepted[p] for p in LEGACY_PROTOCOLS),
        weak_suites=weak,
        certificate_problems=frozenset(name for name, seen in problems.items() if seen),
    )


# --- (c) testssl.sh -------------------------------------------------------------------------


def testssl_command(server: RunningServer, output: Path, *options: str) -> list[str]:
    """testssl.sh on one local server: JSON to ``output``, quiet, no DNS lookups, no
    phone-out, trusting the test CA; ``options`` select checks (none: the full default run)."""
    return [
        "testssl",
        "--jsonfile",
        str(output),
        "--quiet",
        "--color",
        "0",
        "--warnings",
        "off",
        "--nodns",
        "none",
        "--ip",
        server.host,
        "--add-ca",
        str(server.ca_file),
        *options,
        f"{server.server_name}:{server.port}",
    ]


def run_testssl(server: RunningServer, policy: MozillaPolicy, work: Path) -> Verdicts:
    output = work / "testssl.json"
    timeouts = ("--connect-timeout", "10", "--openssl-timeout", "10")
    command = testssl_command(server, output, *timeouts, *TESTSSL_CHECKS)
    subprocess.run(command, capture_output=True, timeout=900, check=False)
    return testssl_verdicts(json.loads(output.read_text()))


def testssl_verdicts(items: list[dict[str, str]]) -> Verdicts:
    by_id = {item["id"]: item for item in items}

    def finding(identifier: str) -> str:
        return by_id.get(identifier, {}).get("finding", "")

    def severity(identifier: str) -> str:
        return by_id.get(identifier, {}).get("severity", "")

    def bad(level: str) -> bool:
        return level not in {"OK", "INFO", ""}

    def offered(identifier: str) -> bool:
        return finding(identifier).startswith("offered")

    # "failed (expired)." is an expiry, reported below; any other reason is a trust failure.
    chain_reasons = set(re.findall(r"\(([^)]*)\)", finding("cert_chain_of_trust")))
    untrusted = bad(severity("cert_chain_of_trust")) and bool(chain_reasons - {"expired"})
    expiry = finding("cert_expirationStatus")
    expiring = expiry.startswith("expired") or expiry.startswith("expires <")
    problems = {
        "untrusted": untrusted,
        "hostname": bad(severity("cert_trust")),
        "expiring": expiring and _testssl_days_left(expiry) < WARN_DAYS,
        "lifespan": bad(severity("cert_validityPeriod")),
    }
    return Verdicts(
        legacy_protocols=any(offered(identifier) for identifier in _TESTSSL_PROTOCOL_IDS),
        weak_suites=any(offered(identifier) for identifier in _TESTSSL_WEAK_CATEGORIES),
        certificate_problems=frozenset(name for name, seen in problems.items() if seen),
    )


def _testssl_days_left(expiry: str) -> float:
    """``expires < 30 days (9)`` -> 9; ``expired`` -> -1."""
    if expiry.startswith("expired"):
        return -1.0
    inside = expiry.rpartition("(")[2].rstrip(")")
    try:
        return float(inside)
    except ValueError:
        return float("inf")


# --- driver ---------------------------------------------------------------------------------

Runner = Callable[[RunningServer, MozillaPolicy, Path], Verdicts]


def measure(
    server: RunningServer, policy: MozillaPolicy, repeats: int, tools: dict[str, Runner]
) -> dict[str, ToolResult]:
    results = {name: ToolResult() for name in tools}
    for _ in range(repeats):
        for name, runner in tools.items():
            with tempfile.TemporaryDirectory() as work:
                started = time.monotonic()
                try:
                    verdicts = runner(server, policy, Path(work))
                except Exception as exc:  # a tool that breaks is reported, not fatal
                    results[name].errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                results[name].seconds.append(time.monotonic() - started)
                results[name].verdicts.append(verdicts)
    return results


def _median(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.2f}" if values else "-"


def render(rows: dict[str, dict[str, ToolResult]], repeats: int) -> str:
    lines = [
        "| config | legacy protocol offered (scanner / sslyze / testssl) "
        "| non-Mozilla suites offered | certificate problems | agree "
        "| scanner s | sslyze CLI s | testssl s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    disagreements: list[str] = []
    all_seconds: dict[str, list[float]] = {name: [] for name in TOOLS}
    for config, results in rows.items():
        verdicts = [results[name].final() for name in TOOLS]
        columns = []
        agree_all = True
        for index, label in enumerate(("protocols", "suites", "certificate")):
            cells = [v.cells()[index] if v else "error" for v in verdicts]
            same = len(set(cells)) == 1
            agree_all = agree_all and same
            columns.append(" / ".join(cells) if not same else f"{cells[0]} (all)")
            if not same:
                disagreements.append(f"{config} {label}: " + " / ".join(cells))
        unstable = [name for name in TOOLS if not results[name].stable()]
        failures = [f"{name}: {results[name].errors[0]}" for name in TOOLS if results[name].errors]
        agree = "yes" if agree_all else "**no**"
        if unstable:
            agree += f" (unstable: {', '.join(unstable)})"
        if failures:
            disagreements.extend(f"{config} error {failure}" for failure in failures)
        for name in TOOLS:
            all_seconds[name].extend(results[name].seconds)
        times = [_median(results[name].seconds) for name in TOOLS]
        lines.append(f"| {config} | {' | '.join(columns)} | {agree} | {' | '.join(times)} |")
    lines.append("")
    lines.append(
        f"Median wall time over all configurations ({repeats} runs each): "
        + ", ".join(f"{name} {_median(all_seconds[name])} s" for name in TOOLS)
    )
    if disagreements:
        lines.append("")
        lines.append("Disagreements:")
        lines.extend(f"- {item}" for item in disagreements)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3, help="runs per tool and configuration")
    parser.add_argument(
        "--configs",
        default=",".join(CONFIGS),
        help="comma-separated server configurations (default: all)",
    )
    parser.add_argument("--level", default="intermediate", help="Mozilla 6.0 level")
    args = parser.parse_args(argv)
    names = [name for name in args.configs.split(",") if name]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configurations: {', '.join(unknown)}")
    tools: dict[str, Runner] = {"scanner": run_scanner, "sslyze CLI": run_sslyze_cli}
    if shutil.which("testssl"):
        tools["testssl"] = run_testssl
    else:
        sys.stderr.write("testssl not found on PATH; its column stays empty\n")
    policy = load_policy(args.level)
    rows: dict[str, dict[str, ToolResult]] = {}
    with LocalPki.create() as pki, tls_servers(names, pki) as servers:
        for name, server in servers.items():
            sys.stderr.write(f"{name} ...\n")
            results = measure(server, policy, args.repeats, tools)
            for tool in TOOLS:
                results.setdefault(tool, ToolResult())
            rows[name] = results
    sys.stdout.write(render(rows, args.repeats) + "\n")
    sys.stdout.write(
        "\nCommand: "
        + shlex.join(
            [".venv/bin/python", "-m", "benchmarks.tls_agreement", *(argv or sys.argv[1:])]
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
