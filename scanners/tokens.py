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

_LOWER, _UPPER, _DIGITS = string.ascii_lowercase, string.ascii_uppercase, string.digits
# Smallest first: a token is credited with the smallest common alphabet that covers it.
ALPHABETS: tuple[tuple[str, frozenset[str]], ...] = (
    ("decimal", frozenset(_DIGITS)),
    ("hex", frozenset("0123456789abcdef")),
    ("hex", frozenset("0123456789ABCDEF")),
    ("base32", frozenset(_UPPER + "234567")),
    ("base32", frozenset(_LOWER + "234567")),
    ("lower-case letters and digits", frozenset(_LOWER + _DIGITS)),
    ("upper-case letters and digits", frozenset(_UPPER + _DIGITS)),
    ("letters and digits", frozenset(_LOWER + _UPPER + _DIGITS)),
    ("base64url", frozenset(_LOWER + _UPPER + _DIGITS + "-_")),
    ("base64", frozenset(_LOWER + _UPPER + _DIGITS + "+/")),
    ("printable", frozenset(string.printable)),
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


_SYMBOLS = frozenset("-_+/")
# Fixed runs this long at a segment's edge are structure (a prefix, a version digit pair); a
# single equal character between two samples is as likely chance as structure, so it counts.
_FIXED_RUN = 2


def _alphabet(characters: set[str]) -> tuple[str, int]:
    name, alphabet = next(
        ((n, a) for n, a in ALPHABETS if characters <= a),
        ("bytes", frozenset(chr(i) for i in range(256))),
    )
    return name, len(alphabet)


def _segments(samples: Sequence[str], length: int) -> list[tuple[int, int]]:
    """Spans between separators: characters other than letters, digits and ``-_+/`` that stand
    at the same position in every sample (the dots of a signed token, a UUID's dashes)."""
    first = samples[0]
    separators = [
        i
        for i in range(length)
        if not (first[i].isalnum() or first[i] in _SYMBOLS)
        and all(s[i] == first[i] for s in samples)
    ]
    if len(samples) > 1:
        separators += [
            i
            for i in range(length)
            if first[i] in "-" and i not in separators and all(s[i] == "-" for s in samples)
        ]
    bounds = [-1, *sorted(separators), length]
    return [(a + 1, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a + 1]


def _random_span(samples: Sequence[str], start: int, end: int) -> tuple[int, int]:
    """The part of a segment that varies: fixed runs at its edges are cut off."""
    if len(samples) < 2:
        return start, end

    def fixed(i: int) -> bool:
        return len({s[i] for s in samples}) == 1

    if all(fixed(i) for i in range(start, end)):
        return start, start
    lead = start
    while lead < end and fixed(lead):
        lead += 1
    trail = end
    while trail > lead and fixed(trail - 1):
        trail -= 1
    return (lead if lead - start >= _FIXED_RUN else start), (
        trail if end - trail >= _FIXED_RUN else end
    )


def estimate_bits(samples: Sequence[str]) -> TokenEstimate:
    """A conservative upper bound of a token's randomness, from its observed alphabet and structure.

    The token is cut into segments at separators (characters like ``.`` or ``-`` standing at the
    same place in every sample). In each segment, fixed runs at the edges (a prefix, a version
    digit) count nothing; every other position counts log2 of the smallest common alphabet
    covering the characters seen in that segment: 32 symbols of 36 give about 165 bits, not the
    192 a base64 alphabet would claim. From one sample nothing is known to be fixed: every
    position counts, an upper bound.
    """
    length = min((len(s) for s in samples), default=0)
    if not length:
        return TokenEstimate(len(samples), len(set(samples)), 0, "none", 0, 0.0)
    bits = 0.0
    positions = 0
    names: list[str] = []
    for start, end in _segments(samples, length):
        lead, trail = _random_span(samples, start, end)
        if trail <= lead:
            continue
        name, size = _alphabet({s[i] for s in samples for i in range(lead, trail)})
        names.append(name)
        positions += trail - lead
        bits += (trail - lead) * math.log2(size)
    alphabet = " / ".join(dict.fromkeys(names)) or "none"
    return TokenEstimate(len(samples), len(set(samples)), length, alphabet, positions, bits)


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
