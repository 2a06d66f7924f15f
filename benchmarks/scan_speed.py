"""How fast ``portal-audit scan`` is, beside the sslyze command line, on the local test servers.

For every configuration in ``tests/tls_servers.py`` this times, ``--repeats`` times each, the
installed ``portal-audit scan`` command on that one server and the sslyze command line with the
same kind of work (``--mozilla_config=intermediate --http_headers``), then scans twenty
distinct servers at once (``--concurrency 10``: every configuration, and more of them on other
ports until there are twenty) and prints the medians, the per-host ratio and the many-hosts
ratio, with the CPU-seconds the scans and the local servers used. With testssl.sh on PATH it
also times testssl's full default run on the first ``--testssl`` configurations, once each.

    .venv/bin/python -m benchmarks.scan_speed [--repeats 3]

Only 127.0.0.1 is contacted. Both tools are timed as whole commands, start-up included.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from benchmarks.tls_agreement import testssl_command
from tests.tls_servers import (
    CONFIGS,
    HOST,
    SERVER_NAME,
    LocalPki,
    RunningServer,
    tls_server,
    tls_servers,
)

COMMAND = Path(sys.executable).parent / "portal-audit"
MANY = 20


@dataclass
class Cpu:
    """CPU-seconds of the timed commands (children) and of the servers (this process)."""

    command: float = 0.0
    servers: float = 0.0


CPU: dict[str, Cpu] = {}


def timed(command: list[str], account: str = "") -> float:
    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), os.times()
    started = time.monotonic()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    if account:
        after, own_after = resource.getrusage(resource.RUSAGE_CHILDREN), os.times()
        cpu = CPU.setdefault(account, Cpu())
        cpu.command += after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        cpu.servers += own_after.user + own_after.system - own.user - own.system
    return elapsed


def portal_audit_scan(
    servers: Sequence[RunningServer], ca_file: Path, work: Path, account: str = ""
) -> float:
    return timed(
        [
            str(COMMAND),
            "scan",
            *(f"{HOST}:{server.port}" for server in servers),
            "--sni",
            SERVER_NAME,
            "--ca-file",
            str(ca_file),
            "--concurrency",
            "10",
            "--json",
            str(work / "scan.json"),
        ],
        account,
    )


def sslyze_cli(server: RunningServer, ca_file: Path, work: Path) -> float:
    return timed(
        [
            sys.executable,
            "-m",
            "sslyze",
            "--mozilla_config=intermediate",
            "--http_headers",
            "--certinfo_ca_file",
            str(ca_file),
            "--json_out",
            str(work / "sslyze.json"),
            f"{SERVER_NAME}:{server.port}{{{HOST}}}",
        ]
    )


def testssl_full(server: RunningServer, work: Path) -> float:
    """testssl.sh's full default run (no check selected), JSON output, no DNS, no phone-out."""
    output = work / f"testssl-{server.port}-{time.monotonic_ns()}.json"
    return timed(testssl_command(server, output))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--testssl",
        type=int,
        default=3,
        metavar="N",
        help="time testssl.sh's full default run once on the first N configurations (0: not)",
    )
    options = parser.parse_args(argv)
    ratios = []
    print("| config | portal-audit scan s | sslyze CLI s | ratio |")
    print("|---|---|---|---|")
    with (
        tempfile.TemporaryDirectory(prefix="scan-speed-") as scratch,
        LocalPki.create() as pki,
        tls_servers(list(CONFIGS), pki) as running,
        ExitStack() as stack,
    ):
        work = Path(scratch)
        singles = []
        for name, server in running.items():
            ours = statistics.median(
                portal_audit_scan([server], pki.ca_file, work, "one host")
                for _ in range(options.repeats)
            )
            theirs = statistics.median(
                sslyze_cli(server, pki.ca_file, work) for _ in range(options.repeats)
            )
            singles.append(ours)
            ratios.append(ours / theirs)
            print(f"| {name} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |", flush=True)
        testssl_ratios = []
        if options.testssl and not shutil.which("testssl"):
            print("testssl not on PATH (apt-get install testssl.sh): its comparison is left out")
        elif options.testssl:
            print("| config | testssl full run s | portal-audit scan s | testssl / scan |")
            print("|---|---|---|---|")
            for (name, server), ours in list(zip(running.items(), singles, strict=True))[
                : options.testssl
            ]:
                theirs = testssl_full(server, work)
                testssl_ratios.append(theirs / ours)
                print(f"| {name} | {theirs:.1f} | {ours:.2f} | {theirs / ours:.0f} |", flush=True)
        # Twenty distinct servers: every configuration, and more of them on other ports (the
        # scan would scan one host:port once, however often it is given).
        names = list(CONFIGS) * (MANY // len(CONFIGS) + 1)
        extra = [stack.enter_context(tls_server(n, pki)) for n in names[len(running) : MANY]]
        many = list(running.values()) + extra
        many_seconds = statistics.median(
            portal_audit_scan(many, pki.ca_file, work, f"{MANY} hosts")
            for _ in range(options.repeats)
        )
    one = statistics.median(singles)
    print(
        f"median per-host ratio (portal-audit scan / sslyze CLI): {statistics.median(ratios):.2f}"
    )
    print(
        f"{MANY} hosts at --concurrency 10: {many_seconds:.2f} s, {many_seconds / one:.2f} x "
        f"the median single host ({one:.2f} s)"
    )
    if testssl_ratios:
        print(
            f"testssl.sh full default run / portal-audit scan, per host: "
            f"{statistics.median(testssl_ratios):.0f} x (median of {len(testssl_ratios)})"
        )
    # Scans of one host ran once per configuration and repeat; of many hosts once per repeat.
    runs = {"one host": len(singles) * options.repeats, f"{MANY} hosts": options.repeats}
    for account, cpu in CPU.items():
        count = runs[account]
        print(
            f"CPU-seconds per scan of {account}: portal-audit scan {cpu.command / count:.2f}, "
            f"the local servers {cpu.servers / count:.2f} ({os.cpu_count()} cores)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
