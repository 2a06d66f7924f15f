"""How fast ``portal-audit scan`` is, beside the sslyze command line, on the local test servers.

portal-audit is timed as ``pip install .`` gives it: the script builds the wheel and installs it
into a new venv (compiled, no editable finder), and runs the sslyze command line with that
venv's Python, so both tools start the same interpreter with the same dependencies. A run
counts only if its scan completed (each tool's JSON output says so); otherwise the script stops.

1. On loopback, for every configuration in ``tests/tls_servers.py``, ``--repeats`` times each:
   ``portal-audit scan`` on that one server and the sslyze command line with the same kind of
   work (``--mozilla_config=intermediate --http_headers``), both as whole commands, in turns.
2. With testssl.sh on PATH, testssl's full default run on the first ``--testssl``
   configurations, once each.
3. Twenty distinct servers at once (``--concurrency 10``: every configuration, and more of them
   on other ports until there are twenty), on loopback, with the CPU-seconds the scans and the
   local servers used: there the two cores, not the network, set the pace.
4. At a distance (``--one-way-ms``, default 25: a 50 ms round trip): every server behind a
   relay that delays each direction of every connection (``benchmarks.latency_relay``, in a
   process of its own), one host at a time for each configuration (portal-audit scan and the
   sslyze command line, once each), then the twenty at once, ``--repeats`` times.

    .venv/bin/python -m benchmarks.scan_speed [--repeats 7] [--testssl 3] [--one-way-ms 25]

Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.latency_relay import relayed
from benchmarks.tls_agreement import testssl_command
from tests.installed_copy import Installed, install_wheel
from tests.tls_servers import CONFIGS, HOST, SERVER_NAME, LocalPki, RunningServer, tls_server

MANY = 20


@dataclass
class Cpu:
    """CPU-seconds of the timed commands (children) and of the servers (this process)."""

    command: float = 0.0
    servers: float = 0.0


@dataclass(frozen=True)
class Tools:
    installed: Installed
    ca_file: Path
    work: Path

    def timed(self, command: list[str], cpu: Cpu | None = None) -> float:
        children, own = resource.getrusage(resource.RUSAGE_CHILDREN), os.times()
        started = time.monotonic()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        elapsed = time.monotonic() - started
        if cpu is not None:
            after, own_after = resource.getrusage(resource.RUSAGE_CHILDREN), os.times()
            cpu.command += after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
            cpu.servers += own_after.user + own_after.system - own.user - own.system
        return elapsed

    def timed_json(
        self, command: list[str], output: Path, cpu: Cpu | None = None
    ) -> tuple[float, Any]:
        """``timed``, for a command that writes ``output``: its seconds and what it wrote."""
        output.unlink(missing_ok=True)
        seconds = self.timed(command, cpu)
        return seconds, json.loads(output.read_text(encoding="utf-8"))

    def portal_audit_scan(self, ports: Sequence[int], cpu: Cpu | None = None) -> float:
        targets = [f"{HOST}:{port}" for port in ports]
        output = self.work / "scan.json"
        seconds, written = self.timed_json(
            [
                str(self.installed.command),
                "scan",
                *targets,
                "--sni",
                SERVER_NAME,
                "--ca-file",
                str(self.ca_file),
                "--concurrency",
                "10",
                "--json",
                str(output),
            ],
            output,
            cpu,
        )
        # A scan that did not complete is not a time to compare.
        scans = [target["scan"] for target in written["targets"]]
        if len(scans) != len(ports) or any(scan["status"] != "completed" for scan in scans):
            raise RuntimeError(f"portal-audit scan of {targets} did not complete: {scans}")
        return seconds

    def sslyze_cli(self, port: int) -> float:
        output = self.work / "sslyze.json"
        seconds, written = self.timed_json(
            [
                str(self.installed.python),
                "-m",
                "sslyze",
                "--mozilla_config=intermediate",
                "--http_headers",
                "--certinfo_ca_file",
                str(self.ca_file),
                "--json_out",
                str(output),
                f"{SERVER_NAME}:{port}{{{HOST}}}",
            ],
            output,
        )
        results = written["server_scan_results"]
        commands = {
            name: attempt["status"]
            for name, attempt in (results[0].get("scan_result") or {}).items()
            if attempt["status"] != "NOT_SCHEDULED"
        }
        if results[0]["scan_status"] != "COMPLETED" or set(commands.values()) != {"COMPLETED"}:
            raise RuntimeError(f"the sslyze CLI's scan of port {port} did not complete: {commands}")
        return seconds

    def testssl_full(self, server: RunningServer) -> float:
        """testssl.sh's full default run (no check selected), JSON output, no DNS/phone-out."""
        output = self.work / f"testssl-{server.port}-{time.monotonic_ns()}.json"
        return self.timed(testssl_command(server, output))


def per_host(
    tools: Tools, names: Sequence[str], ports: Sequence[int], repeats: int
) -> tuple[list[float], list[float]]:
    """Each server alone: portal-audit scan's median and its ratio to the sslyze CLI's."""
    print("| config | portal-audit scan s | sslyze CLI s | ratio |")
    print("|---|---|---|---|")
    singles, ratios = [], []
    for name, port in zip(names, ports, strict=True):
        # Taken in turns, so that a drift of the machine's speed weighs on both alike.
        times = [(tools.portal_audit_scan([port]), tools.sslyze_cli(port)) for _ in range(repeats)]
        ours = statistics.median(t[0] for t in times)
        theirs = statistics.median(t[1] for t in times)
        singles.append(ours)
        ratios.append(ours / theirs)
        print(f"| {name} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |", flush=True)
    median = statistics.median(ratios)
    print(f"median per-host ratio (portal-audit scan / sslyze CLI): {median:.2f}")
    return singles, ratios


def many_hosts(tools: Tools, ports: Sequence[int], one: float, repeats: int) -> None:
    cpu = Cpu()
    seconds = statistics.median(tools.portal_audit_scan(ports, cpu) for _ in range(repeats))
    print(
        f"{len(ports)} hosts at --concurrency 10: {seconds:.2f} s, {seconds / one:.2f} x "
        f"the median single host ({one:.2f} s); CPU-seconds per scan: portal-audit scan "
        f"{cpu.command / repeats:.2f}, the local servers {cpu.servers / repeats:.2f} "
        f"({os.cpu_count()} cores)",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--testssl",
        type=int,
        default=3,
        metavar="N",
        help="time testssl.sh's full default run once on the first N configurations (0: not)",
    )
    parser.add_argument(
        "--one-way-ms",
        type=float,
        default=25.0,
        help="delay of each direction for the scans at a distance (0: leave them out)",
    )
    options = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="scan-speed-") as scratch,
        LocalPki.create() as pki,
        ExitStack() as stack,
    ):
        work = Path(scratch)
        print("building and installing portal-audit's wheel ...", flush=True)
        tools = Tools(install_wheel(work / "install"), pki.ca_file, work)
        # Twenty distinct servers: every configuration, and more of them on other ports (the
        # scan would scan one host:port once, however often it is given).
        names = (list(CONFIGS) * (MANY // len(CONFIGS) + 1))[:MANY]
        servers = [stack.enter_context(tls_server(name, pki)) for name in names]
        configs = list(CONFIGS)
        first = servers[: len(configs)]

        print("\n## On loopback\n")
        singles, _ = per_host(tools, configs, [s.port for s in first], options.repeats)
        one = statistics.median(singles)
        if options.testssl and not shutil.which("testssl"):
            print("testssl not on PATH (apt-get install testssl.sh): its comparison is left out")
        elif options.testssl:
            print("\n| config | testssl full run s | portal-audit scan s | testssl / scan |")
            print("|---|---|---|---|")
            testssl_ratios = []
            for server, ours in list(zip(first, singles, strict=True))[: options.testssl]:
                theirs = tools.testssl_full(server)
                testssl_ratios.append(theirs / ours)
                print(f"| {server.name} | {theirs:.1f} | {ours:.2f} | {theirs / ours:.0f} |")
            print(
                f"testssl.sh full default run / portal-audit scan, per host: "
                f"{statistics.median(testssl_ratios):.0f} x (median of {len(testssl_ratios)})"
            )
        many_hosts(tools, [s.port for s in servers], one, options.repeats)

        if options.one_way_ms > 0:
            delay = options.one_way_ms
            print(f"\n## At a distance: {delay:g} ms each way ({2 * delay:g} ms round trip)\n")
            with relayed([s.port for s in servers], delay) as relay:
                far = [relay[s.port] for s in servers]
                singles, _ = per_host(tools, configs, far[: len(configs)], 1)
                many_hosts(tools, far, statistics.median(singles), options.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
