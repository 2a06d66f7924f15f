"""Security-header values parsed the way browsers read them.

RFC 6797 for Strict-Transport-Security, CSP Level 3 for Content-Security-Policy, the Referrer
Policy spec, RFC 9111 for Cache-Control, and the comma-separated list syntax they share. A header
a browser ignores protects nobody, so these parsers ignore what browsers ignore and say why a
value is invalid. Pure functions on strings: no probes, no verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Every referrer policy token the Referrer Policy spec defines; anything else is ignored.
REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "same-origin",
        "origin",
        "strict-origin",
        "origin-when-cross-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(r"[0-9]+")
_CSP_WHITESPACE = re.compile(r"[\t\n\f\r ]+")
_CSP_WHITESPACE_CHARS = "\t\n\f\r "
_OWS = " \t"


@dataclass(frozen=True)
class HstsDirectives:
    max_age: int
    include_subdomains: bool = False
    preload: bool = False


def parse_hsts(value: str) -> HstsDirectives | None:
    """Parse one Strict-Transport-Security value per RFC 6797 section 6.1; None if invalid.

    Directive names are case-insensitive, values may be quoted-strings, empty directives and
    unknown directives are ignored. A header that breaks the grammar, lacks max-age or repeats a
    directive is invalid: RFC 6797 tells browsers to ignore such a header entirely.
    """
    directives, _problem = diagnose_hsts(value)
    return directives


def diagnose_hsts(value: str) -> tuple[HstsDirectives | None, str]:
    """``parse_hsts`` with the reason: (directives, "") or (None, why browsers ignore it)."""
    parts = _split_outside_quotes(value, ";")
    if parts is None:
        return None, "unterminated quoted-string"
    seen: dict[str, str | None] = {}
    for part in parts:
        part = part.strip(_OWS)
        if not part:
            continue
        name, has_value, raw_value = part.partition("=")
        name = name.strip(_OWS)
        if not _TOKEN.fullmatch(name):
            return None, f"malformed directive {part!r}"
        lowered = name.lower()
        if lowered in seen:
            return None, f"directive {name} appears more than once"
        directive_value: str | None = None
        if has_value:
            directive_value = _token_or_quoted(raw_value.strip(_OWS))
            if directive_value is None:
                return None, f"malformed value in {part!r}"
        seen[lowered] = directive_value

    if "max-age" not in seen:
        return None, "no max-age directive"
    max_age = seen["max-age"]
    if max_age is None or not _DIGITS.fullmatch(max_age):
        return None, "max-age is not a number of seconds"
    if seen.get("includesubdomains") is not None:
        return None, "includeSubDomains takes no value"
    return (
        HstsDirectives(
            max_age=int(max_age),
            include_subdomains="includesubdomains" in seen,
            preload="preload" in seen,
        ),
        "",
    )


def parse_csp(value: str) -> dict[str, list[str]]:
    """Parse one serialized policy per CSP Level 3: directive name -> source list.

    Names are lower-cased; a repeated directive is ignored after its first occurrence; a token
    with non-ASCII characters is skipped. Source expressions keep their spelling (compare
    keywords case-insensitively). A header value holding several comma-separated policies goes
    through ``parse_csp_list``.
    """
    policy: dict[str, list[str]] = {}
    for token in value.split(";"):
        token = token.strip(_CSP_WHITESPACE_CHARS)
        if not token or not token.isascii():
            continue
        pieces = _CSP_WHITESPACE.split(token, maxsplit=1)
        name = pieces[0].lower()
        if name in policy:
            continue
        rest = pieces[1] if len(pieces) > 1 else ""
        policy[name] = [s for s in _CSP_WHITESPACE.split(rest) if s]
    return policy


def parse_csp_list(value: str) -> list[dict[str, list[str]]]:
    """Parse a header value that may carry several comma-separated policies (CSP3 4.2.2)."""
    return [policy for part in value.split(",") if (policy := parse_csp(part))]


def _split_outside_quotes(value: str, separator: str) -> list[str] | None:
    """Split on ``separator`` except inside quoted-strings; None if a quote is left open."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = escaped = False
    for char in value:
        if in_quotes:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_quotes = False
            current.append(char)
        elif char == '"':
            in_quotes = True
            current.append(char)
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if in_quotes:
        return None
    parts.append("".join(current))
    return parts


def _token_or_quoted(raw: str) -> str | None:
    """The value of an HTTP token or quoted-string (unescaped), or None if it is neither."""
    if _TOKEN.fullmatch(raw):
        return raw
    if len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
        return None
    inner: list[str] = []
    escaped = False
    for char in raw[1:-1]:
        if escaped:
            inner.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            return None
        else:
            inner.append(char)
    return None if escaped else "".join(inner)


def list_members(values: Iterable[str]) -> list[str]:
    """Members of a comma-separated header list, across repeated fields, blanks dropped."""
    members: list[str] = []
    for value in values:
        parts = _split_outside_quotes(value, ",") or [value]
        members.extend(p.strip(_OWS) for p in parts if p.strip(_OWS))
    return members


def effective_referrer_policy(values: Iterable[str]) -> str | None:
    """The policy a browser applies: the last recognised token across all fields, lower-cased.

    Unknown tokens are skipped so that a new policy can be listed after a fallback.
    """
    effective = None
    for member in list_members(values):
        if member.lower() in REFERRER_POLICIES:
            effective = member.lower()
    return effective


def cache_directives(values: Iterable[str]) -> list[str]:
    """Cache-Control directive names across all fields, lower-cased (RFC 9111 5.2)."""
    return [m.partition("=")[0].strip(_OWS).lower() for m in list_members(values)]
