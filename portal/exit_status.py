"""The exit statuses every ``portal-audit`` command shares, and its usage-error parser.

Kept apart from the runner (``portal.audit``) so that a command that never audits, such as
``portal-audit scan``, starts without importing it.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

MEANING = {
    0: "compliant",
    1: "noncompliant",
    2: "inconclusive",
    3: "bad profile or usage",
    4: "internal error of the audit (traceback in internal-error.log)",
}


class UsageParser(argparse.ArgumentParser):
    """argparse with the audit's exit status for a usage error: 3, not argparse's 2, which
    means inconclusive here."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(3, f"{self.prog}: error: {message}\n")


def exit_statuses() -> str:
    return "Exit status: " + "; ".join(f"{code} {meaning}" for code, meaning in MEANING.items())
