"""Session token exposure and strength (SESS_TOKEN), evaluated on recorded data.

The token values themselves never leave this module: findings name where a token appeared
(request URL, Referer header) and which cookie it was, never the value.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from scanners.result import Evaluation, Finding, verdict

ALPHABETS: tuple[tuple[str, frozenset[str]], ...] = (
    ("hex", frozenset("0123456789abcdef")),
    ("hex", frozenset("0123456789ABCDEF")),
    ("base64url", frozenset(string.ascii_letters + string.digits + "-_")),
    ("base64", frozenset(string.ascii_letters + string.digits + "+/=")),
)


@dataclass(frozen=True)
class TokenEstimate:
    samples: int
    unique: int
    length: int
    alphabet: str
    varying_positions: int
    bits: float


def _spellings(token: str) -> set[str]:
    return {token, quote(token, safe=""), quote_plus(token, safe=""), unquote(token)}


def find_tokens_in_har(har: Mapping[str, Any], tokens: Mapping[str, str]) -> list[Finding]:
    """Every request whose URL or Referer carries one of ``tokens`` (cookie name -> value)."""
    findings: list[Finding] = []
    for entry in har.get("log", {}).get("entries", []):
        request = entry.get("request", {})
        url = str(request.get("url", ""))
        referer = next(
            (
                str(h.get("value", ""))
                for h in request.get("headers", [])
                if str(h.get("name", "")).lower() == "referer"
            ),
            "",
        )
        path = url.split("?", 1)[0]
        for name, value in tokens.items():
            spellings = _spellings(value)
            if any(s in url for s in spellings):
                findings.append(
                    Finding(
                        "session.token_in_url",
                        f"the {name} session token appears in a request URL",
                        where=f"{request.get('method', 'GET')} {path}",
                    )
                )
            if referer and any(s in referer for s in spellings):
                findings.append(
                    Finding(
                        "session.token_in_referer",
                        f"the {name} session token is sent in a Referer header",
                        where=f"{request.get('method', 'GET')} {path}",
                    )
                )
    return findings


def estimate_bits(samples: Sequence[str]) -> TokenEstimate:
    """A conservative upper bound of a token's randomness from several samples.

    Bits per character come from the smallest alphabet that covers every sample; positions
    that are identical in every sample (fixed prefixes, counters' high digits) count nothing.
    """
    length = min((len(s) for s in samples), default=0)
    characters = set("".join(samples))
    name, alphabet = next(
        ((n, a) for n, a in ALPHABETS if characters <= a),
        ("bytes", frozenset(chr(i) for i in range(256))),
    )
    varying = sum(1 for i in range(length) if len({s[i] for s in samples}) > 1)
    bits = varying * math.log2(len(alphabet)) if len(samples) > 1 else 0.0
    return TokenEstimate(len(samples), len(set(samples)), length, name, varying, bits)


def evaluate_token_strength(samples: Sequence[str], min_bits: int) -> Evaluation:
    applied = f"at least {min_bits} bits of randomness, unique per sign-in"
    if len(samples) < 3:
        return Evaluation(
            "inconclusive",
            f"only {len(samples)} session token(s) could be sampled; need at least 3",
            threshold=applied,
        )
    estimate = estimate_bits(samples)
    measured = (
        f"{estimate.samples} tokens, {estimate.unique} unique, {estimate.length} "
        f"{estimate.alphabet} characters, {estimate.varying_positions} varying positions, "
        f"about {estimate.bits:.0f} bits"
    )
    findings = []
    if estimate.unique < estimate.samples:
        findings.append(
            Finding("session.token_reused", "two sign-ins received the same session token")
        )
    if estimate.bits < min_bits:
        findings.append(
            Finding(
                "session.token_too_short",
                f"about {estimate.bits:.0f} bits of randomness; at least {min_bits} required",
            )
        )
    return verdict(
        findings,
        measured=measured,
        threshold=applied,
        passed_reason=f"session tokens are unique and carry about {estimate.bits:.0f} bits",
        failed_reason="session tokens are too short or repeat",
    )


def evaluate_token_exposure(findings: list[Finding], requests_seen: int) -> Evaluation:
    applied = "the session token never appears in a URL or Referer"
    if requests_seen == 0:
        return Evaluation("inconclusive", "no request was recorded", threshold=applied)
    return verdict(
        findings,
        measured=f"{requests_seen} requests recorded, {len(findings)} carrying the token",
        threshold=applied,
        passed_reason="no recorded URL or Referer carries the session token",
        failed_reason="the session token leaks into URLs or Referer headers",
    )
