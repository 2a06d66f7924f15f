"""Why a portal refused a request, when the reason is not the policy being checked.

A check that concludes from a refusal ("the short password was refused", "both accounts got the
same answer") must first rule out refusals with another cause: the portal throttling the client
(HTTP 429, 503 with Retry-After, a "too many requests" page), or a CSRF, WAF or block page that
answers every request alike before the portal's logic sees it. This module recognises those
answers from their status, headers and visible text; it does no I/O and never raises.

The text patterns are regular expressions (case-insensitive); the profile's ``rate_limits``
section may add its own for a portal whose throttle or block pages say something else.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

THROTTLE_STATUSES = frozenset({429})
# 503 is a throttle only when the portal says when to come back; otherwise it is an outage.
RETRY_STATUSES = frozenset({503})

DEFAULT_THROTTLE_PATTERNS: tuple[str, ...] = (
    r"too many (requests|attempts|tries)",
    r"rate[ -]?limit(ed)?",
    r"slow down",
    r"request limit",
)
DEFAULT_BLOCK_PATTERNS: tuple[str, ...] = (
    r"\bcsrf\b",
    r"\bxsrf\b",
    r"cross[- ]site request forgery",
    r"(csrf|security|form) token (is )?(missing|invalid|expired)",
    r"referr?er (check|header|does not match|is invalid)",
    r"origin (check|header|does not match|is invalid)",
    r"request (was |has been )?blocked",
    r"web application firewall",
    r"access denied by (policy|security)",
)


@dataclass(frozen=True)
class Refusal:
    """A refusal whose cause is not the policy under test: ``kind`` is throttle or block."""

    kind: str
    reason: str
    retry_after: float | None = None

    @property
    def throttled(self) -> bool:
        return self.kind == "throttle"


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks to wait (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


def _matches(patterns: Sequence[str], text: str) -> str | None:
    for pattern in patterns:
        found = re.search(pattern, text, re.IGNORECASE)
        if found:
            return found.group(0)
    return None


def classify(
    status: int | None,
    text: str = "",
    retry_after: str | None = None,
    *,
    throttle_patterns: Sequence[str] = DEFAULT_THROTTLE_PATTERNS,
    block_patterns: Sequence[str] = DEFAULT_BLOCK_PATTERNS,
) -> Refusal | None:
    """The refusal an answer stands for when it is not the portal's own decision, else None."""
    wait = retry_after_seconds(retry_after)
    later = f", Retry-After {wait:.0f} s" if wait is not None else ""
    if status in THROTTLE_STATUSES or (status in RETRY_STATUSES and wait is not None):
        return Refusal("throttle", f"throttled by the portal: HTTP {status}{later}", wait)
    said = _matches(throttle_patterns, text)
    if said:
        where = f"HTTP {status}, " if status else ""
        return Refusal("throttle", f"throttled by the portal: {where}the page says '{said}'", wait)
    said = _matches(block_patterns, text)
    if said:
        where = f"HTTP {status}, " if status else ""
        return Refusal(
            "block",
            f"refused before the portal's logic: {where}the page says '{said}' (CSRF, WAF or "
            "block page)",
        )
    return None
