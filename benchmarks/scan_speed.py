"""How fast ``portal-audit scan`` is, beside the sslyze command line, on the local test servers.

For every configuration in ``tests/tls_servers.py`` this times, ``--repeats`` times each, the
installed ``portal-audit scan`` command on that one server and the sslyze command line with the
same kind of work (``--mozilla_config=intermediate --http_headers``), then scans twenty
servers at once (``--concurrency 10``: every configuration, and again until there are twenty)
and prints the medians, the per-host ratio and the many-hosts ratio.

    .venv/bin/python -m benchmarks.scan_speed [--repeats 3]

Only 127.0.0.1 is contacted. Both tools are timed as whole commands, start-up included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.tls_servers import CONFIGS, HOST, SERVER_NAME, LocalPki, RunningServer, tls_servers

COMMAND = Path(sys.executable).parent / "portal-audit"
MANY = 20


def timed(command: list[str]) -> float:
    started = time.monotonic()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.monotonic() - started


def portal_audit_scan(servers: Sequence[RunningServer], ca_file: Path, work: Path) -> float:
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
        ]
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args(argv)
    ratios = []
    print("| config | portal-audit scan s | sslyze CLI s | ratio |")
    print("|---|---|---|---|")
    with (
        tempfile.TemporaryDirectory(prefix="scan-speed-") as scratch,
        LocalPki.create() as pki,
        tls_servers(list(CONFIGS), pki) as running,
    ):
        work = Path(scratch)
        singles = []
        for name, server in running.items():
            ours = statistics.median(
                portal_audit_scan([server], pki.ca_file, work) for _ in range(options.repeats)
            )
            theirs = statistics.median(
                sslyze_cli(server, pki.ca_file, work) for _ in range(options.repeats)
            )
            singles.append(ours)
            ratios.append(ours / theirs)
            print(f"| {name} | {ours:.2f} | {theirs:.2f} | {ours / theirs:.2f} |", flush=True)
        servers = list(running.values())
        many = (servers * (MANY // len(servers) + 1))[:MANY]
        many_seconds = statistics.median(
            portal_audit_scan(many, pki.ca_file, work) for _ in range(options.repeats)
        )
    one = statistics.median(singles)
    print(
        f"median per-host ratio (portal-audit scan / sslyze CLI): {statistics.median(ratios):.2f}"
    )
    print(
        f"{MANY} hosts at --concurrency 10: {many_seconds:.2f} s, {many_seconds / one:.2f} x "
        f"the median single host ({one:.2f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
