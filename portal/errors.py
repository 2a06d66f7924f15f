"""Outcomes that are not verdicts."""

from __future__ import annotations


class Inconclusive(Exception):  # noqa: N818 - it names an audit outcome, not a program error
    """The check could not run (unreachable host, selector not found, broken preflight).

    Reported as *inconclusive* (Allure "broken"), never as passed or failed.
    """
