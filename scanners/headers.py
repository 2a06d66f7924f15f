"""Security-header checks (HDR_HSTS, HDR_CSP, HDR_MISC, HDR_CACHE) over recorded probes, and
AUTH_HTTPS's verdicts on the plain-HTTP redirect and on where the password was sent.

Pure evaluation: every function here works on ``HttpProbe`` values already fetched by
``scanners.http``, so it can be tested on hand-written responses. The rules are versioned data in
``policies/headers-v1.json``. Parsers follow what browsers enforce (RFC 6797 for HSTS, CSP Level 3,
Fetch for nosniff, Referrer Policy), because a header a browser ignores protects nobody.

Each evaluator collects every issue under a stable key. If any probe could not be fetched the
result is inconclusive, unless a failure was already found elsewhere: a failure found is a failure.
Judging needs at least one successful (2xx) page among the responses: headers seen only on error
pages and redirects (a portal failing behind its proxy, a throttle, a redirect loop) are not the
portal's own, so that result is inconclusive whatever they carry (the header evaluators; the
AUTH_HTTPS ones judge a single plain-HTTP answer and the URLs the password went to).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from scanners.http import HttpProbe
from scanners.result import Evaluation, Finding, verdict

POLICY_PATH = Path(__file__).parent / "policies" / "headers-v1.json"

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


# --- policy -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CspRequirement:
    """A CSP directive the policy requires, and the source lists that satisfy it.

    ``fallback`` is the directive a browser consults when this one is absent (fetch directives
    such as object-src fall back to default-src; base-uri and frame-ancestors fall back to
    nothing).
    """

    directive: str
    accepted: frozenset[str]
    fallback: str | None = None

    @property
    def key(self) -> str:
        return "csp." + self.directive.replace("-", "_")

    def describe(self) -> str:
        return f"{self.directive} {' or '.join(sorted(self.accepted))}"


@dataclass(frozen=True)
class HeaderPolicy:
    version: str
    hsts_min_max_age: int
    hsts_recommended_max_age: int
    csp_required: tuple[CspRequirement, ...]
    content_type_options: str
    referrer_policies: frozenset[str]
    cache_required: tuple[str, ...]
    sources: Mapping[str, str] = field(default_factory=dict, hash=False)
    refs: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)


def load_header_policy(path: Path | None = None) -> HeaderPolicy:
    """Read the header policy (default: the bundled ``headers-v1.json``).

    A malformed file raises ValueError naming the file and the entry: that is a packaging or
    configuration error, not a property of the portal.
    """
    source = path or POLICY_PATH
    data = json.loads(source.read_text(encoding="utf-8"))

    def need(mapping: Any, key: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(mapping, dict) or not isinstance(mapping.get(key), kind):
            raise ValueError(f"{source}: missing or malformed entry {key!r}")
        return mapping[key]

    hsts = need(data, "hsts", dict)
    csp = need(data, "csp", dict)
    xcto = need(data, "x_content_type_options", dict)
    referrer = need(data, "referrer_policy", dict)
    cache = need(data, "cache_control", dict)
    requirements = tuple(
        CspRequirement(
            directive=need(entry, "directive", str).lower(),
            accepted=frozenset(v.lower() for v in need(entry, "accepted", list)),
            fallback=(entry.get("fallback") or None),
        )
        for entry in need(csp, "required", list)
    )
    sections = {
        "hsts": hsts,
        "csp": csp,
        "x_content_type_options": xcto,
        "referrer_policy": referrer,
        "cache_control": cache,
    }
    return HeaderPolicy(
        version=need(data, "version", str),
        hsts_min_max_age=need(hsts, "min_max_age", int),
        hsts_recommended_max_age=need(hsts, "recommended_max_age", int),
        csp_required=requirements,
        content_type_options=need(xcto, "required", str).lower(),
        referrer_policies=frozenset(v.lower() for v in need(referrer, "accepted", list)),
        cache_required=tuple(v.lower() for v in need(cache, "required_directives", list)),
        sources=MappingProxyType(dict(need(data, "sources", dict))),
        refs=MappingProxyType({k: tuple(v.get("refs", ())) for k, v in sections.items()}),
    )


# --- parsers ------------------------------------------------------------------------------


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
    directives, _problem = _parse_hsts(value)
    return directives


def _parse_hsts(value: str) -> tuple[HstsDirectives | None, str]:
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


def _list_members(values: Iterable[str]) -> list[str]:
    """Members of a comma-separated header list, across repeated fields, blanks dropped."""
    members: list[str] = []
    for value in values:
        parts = _split_outside_quotes(value, ",") or [value]
        members.extend(p.strip(_OWS) for p in parts if p.strip(_OWS))
    return members


# --- evaluation helpers -------------------------------------------------------------------


def _where(probe: HttpProbe) -> str:
    return f"{probe.kind} {probe.url}"


ProbeCheck = Callable[[HttpProbe, list[Finding]], str]


def _evaluate(
    probes: Sequence[HttpProbe],
    check: ProbeCheck,
    *,
    noun: str,
    threshold: str,
    passed_reason: str,
    failed_reason: str,
) -> Evaluation:
    """Run ``check`` on every fetched probe and conclude.

    ``check`` appends its findings and returns a short label of what it saw; the labels are
    tallied into ``measured``.
    """
    findings: list[Finding] = []
    labels: Counter[str] = Counter()
    unreachable = [p for p in probes if not p.reachable]
    examined = [p for p in probes if p.reachable]
    for probe in examined:
        labels[check(probe, findings)] += 1

    measured = "; ".join(
        f"{label} on {count}/{len(examined)} {noun}" for label, count in labels.most_common()
    )
    if unreachable:
        not_fetched = f"{len(unreachable)} not fetched"
        measured = f"{measured}; {not_fetched}" if measured else not_fetched

    result = verdict(
        findings,
        measured=measured,
        threshold=threshold,
        passed_reason=passed_reason,
        failed_reason=failed_reason,
    )
    unsuccessful = _no_successful_page(examined, noun)
    if unsuccessful is not None:
        # Headers seen only on error pages or redirects (a portal down behind its proxy, a
        # throttle, a redirect loop) are not the portal's pages' headers: neither verdict holds.
        if unreachable:
            unsuccessful += f"; {len(unreachable)} more not fetched"
        return Evaluation(
            status="inconclusive",
            reason=unsuccessful,
            measured=measured,
            threshold=threshold,
            findings=result.findings,
        )
    if result.status == "failed":
        return result
    if unreachable:
        shown = ", ".join(f"{_where(p)} ({p.error})" for p in unreachable[:3])
        more = f" and {len(unreachable) - 3} more" if len(unreachable) > 3 else ""
        return Evaluation(
            status="inconclusive",
            reason=f"could not fetch {len(unreachable)} of {len(probes)} {noun}: {shown}{more}",
            measured=measured,
            threshold=threshold,
            findings=result.findings,
        )
    if not examined:
        return Evaluation(
            status="inconclusive",
            reason=f"no {noun} to examine",
            measured=measured,
            threshold=threshold,
        )
    return result


def _no_successful_page(examined: Sequence[HttpProbe], noun: str) -> str | None:
    """Why ``examined`` cannot be judged when none of them answered 2xx, else None."""
    if not examined or any(p.status is not None and 200 <= p.status < 300 for p in examined):
        return None
    statuses = Counter(f"HTTP {p.status}" for p in examined)
    tally = ", ".join(
        f"{status} on {count}/{len(examined)}" for status, count in statuses.most_common()
    )
    if all(p.status is not None and p.status >= 400 for p in examined):
        return (
            f"every page answered with an error ({tally} {noun}): headers judged on error "
            "pages alone say nothing about the portal's own pages"
        )
    return (
        f"no page answered successfully ({tally} {noun}): headers judged on redirects and "
        "error pages alone say nothing about the portal's own pages"
    )


# --- HSTS ---------------------------------------------------------------------------------


def evaluate_hsts(
    probes: Sequence[HttpProbe],
    policy: HeaderPolicy,
    *,
    min_max_age: int | None = None,
) -> Evaluation:
    """HDR_HSTS: every HTTPS response carries exactly one valid HSTS header, max-age >= minimum.

    ``min_max_age`` overrides the policy minimum (a profile setting). A max-age below the
    policy's recommended value (Mozilla: 2 years) is a warning. Plain-http probes are not
    examined, since browsers ignore HSTS received over http.
    """
    minimum = policy.hsts_min_max_age if min_max_age is None else min_max_age
    recommended = policy.hsts_recommended_max_age

    def check(probe: HttpProbe, findings: list[Finding]) -> str:
        where = _where(probe)
        values = probe.get_all("strict-transport-security")
        if not values:
            findings.append(
                Finding("hsts.missing", "no Strict-Transport-Security header", where=where)
            )
            return "missing"
        if len(values) > 1:
            findings.append(
                Finding(
                    "hsts.multiple_headers",
                    f"{len(values)} Strict-Transport-Security headers; browsers use "
                    "only the first (RFC 6797 8.1) and the policy requires exactly one",
                    where=where,
                )
            )
        directives, problem = _parse_hsts(values[0])
        if directives is None:
            findings.append(
                Finding(
                    "hsts.invalid",
                    f"Strict-Transport-Security {values[0]!r} is invalid ({problem}); "
                    "browsers ignore it",
                    where=where,
                )
            )
            return "invalid"
        max_age = directives.max_age
        if max_age < minimum:
            why = " (max-age=0 tells browsers to drop HSTS)" if max_age == 0 else ""
            findings.append(
                Finding(
                    "hsts.max_age_too_short",
                    f"max-age={max_age} is below the minimum {minimum}{why}",
                    where=where,
                )
            )
        elif max_age < recommended:
            findings.append(
                Finding(
                    "hsts.max_age_below_recommended",
                    f"max-age={max_age} is below the recommended {recommended}",
                    severity="warn",
                    where=where,
                )
            )
        return f"max-age={max_age}"

    https_probes = [p for p in probes if p.scheme == "https"]
    return _evaluate(
        https_probes,
        check,
        noun="HTTPS responses",
        threshold=(
            f"one valid Strict-Transport-Security header with max-age >= {minimum} s on every "
            f"HTTPS response, warn below {recommended} s [{policy.version}]"
        ),
        passed_reason="every HTTPS response sends a valid HSTS header with a long enough max-age",
        failed_reason="HSTS is missing, invalid or too short on some HTTPS responses",
    )


# --- CSP ----------------------------------------------------------------------------------


def _sources_accepted(sources: Sequence[str], accepted: frozenset[str]) -> bool:
    # CSP3: an empty source list matches nothing, exactly like 'none'; and 'none' next to other
    # expressions is itself ignored, so a list is acceptable when all its members are.
    normalized = {s.lower() for s in sources} or {"'none'"}
    return normalized <= accepted


def evaluate_csp(probes: Sequence[HttpProbe], policy: HeaderPolicy) -> Evaluation:
    """HDR_CSP: an enforced CSP that sets every required directive to an accepted value.

    All enforced policies (repeated headers, comma-separated lists) apply at once, so a
    directive is satisfied if any of them restricts it enough. Content-Security-Policy-Report-Only
    enforces nothing and does not count. default-src stands in only for fetch directives
    (object-src), never for base-uri or frame-ancestors.
    """

    def check(probe: HttpProbe, findings: list[Finding]) -> str:
        where = _where(probe)
        policies = [p for v in probe.get_all("content-security-policy") for p in parse_csp_list(v)]
        if not policies:
            if probe.get_all("content-security-policy-report-only"):
                findings.append(
                    Finding(
                        "csp.report_only",
                        "only Content-Security-Policy-Report-Only is sent, which enforces nothing",
                        where=where,
                    )
                )
                return "report-only"
            findings.append(
                Finding("csp.missing", "no enforced Content-Security-Policy", where=where)
            )
            return "missing"

        problems: list[str] = []
        for requirement in policy.csp_required:
            seen: list[str] = []
            satisfied = False
            for parsed in policies:
                name = requirement.directive
                sources = parsed.get(name)
                if sources is None and requirement.fallback:
                    name, sources = requirement.fallback, parsed.get(requirement.fallback)
                if sources is None:
                    continue
                if _sources_accepted(sources, requirement.accepted):
                    satisfied = True
                    break
                seen.append(f"{name} {' '.join(sources)}".strip())
            if satisfied:
                continue
            if seen:
                key = f"{requirement.key}_weak"
                message = f"the CSP must set {requirement.describe()}; found {' | '.join(seen)}"
            else:
                key = f"{requirement.key}_missing"
                message = f"no enforced policy sets {requirement.directive}"
                if requirement.fallback is None and any("default-src" in p for p in policies):
                    message += " (default-src does not apply to it)"
            findings.append(Finding(key, message, where=where))
            problems.append(key.removeprefix("csp."))
        return ", ".join(problems) if problems else "compliant"

    return _evaluate(
        probes,
        check,
        noun="responses",
        threshold=(
            "enforced Content-Security-Policy with "
            + "; ".join(r.describe() for r in policy.csp_required)
            + f" [{policy.version}]"
        ),
        passed_reason="every response enforces a CSP with the required directives",
        failed_reason="the enforced CSP is missing or too weak on some responses",
    )


@dataclass(frozen=True)
class FramingCheck:
    """The sign-in page framed by a page of another origin, and its positive control.

    ``framed``: the frame showed the sign-in form. ``top_level_loaded``: the same page opened
    top-level in the same browser showed it (the positive control). ``frame_status`` and
    ``blocked_by`` come from the framed request's answer: the header that forbids framing
    (``X-Frame-Options: DENY``, ``CSP frame-ancestors 'none'``), empty when none did.
    """

    framed: bool
    top_level_loaded: bool
    frame_status: int | None
    blocked_by: str


def evaluate_framing(check: FramingCheck) -> Evaluation:
    applied = "the sign-in page refuses to be framed by another origin"
    measured = (
        f"framed by another origin: {'shown' if check.framed else 'not shown'} (HTTP "
        f"{check.frame_status if check.frame_status is not None else 'no answer'}"
        f"{', ' + check.blocked_by if check.blocked_by else ''}); top-level: "
        f"{'shown' if check.top_level_loaded else 'not shown'}"
    )
    if check.framed:
        return Evaluation(
            "failed",
            "another site can show the sign-in page in a frame (clickjacking)",
            measured=measured,
            threshold=applied,
            findings=(Finding("csp.framable", "the sign-in form was shown inside a frame"),),
        )
    if not check.top_level_loaded:
        return Evaluation(
            "inconclusive",
            "the sign-in page did not show top-level either (positive control): an empty frame "
            "proves nothing about framing",
            measured=measured,
            threshold=applied,
        )
    if check.frame_status is None:
        return Evaluation(
            "inconclusive",
            "the frame stayed empty and the framed sign-in page never answered: an empty frame "
            "proves nothing about framing",
            measured=measured,
            threshold=applied,
        )
    if not check.blocked_by:
        return Evaluation(
            "inconclusive",
            "the frame stayed empty, but its answer carried neither CSP frame-ancestors nor "
            "X-Frame-Options refusing other origins: something else kept it empty",
            measured=measured,
            threshold=applied,
        )
    if not 200 <= check.frame_status < 400:
        return Evaluation(
            "inconclusive",
            f"the framed request answered HTTP {check.frame_status}, not the sign-in page: a "
            "header on that answer says nothing about framing the sign-in page itself",
            measured=measured,
            threshold=applied,
        )
    return Evaluation(
        "passed",
        f"framing by another origin is refused ({check.blocked_by})",
        measured=measured,
        threshold=applied,
    )


# Sources that let a page of any http(s) origin frame the page, the check's own origin included.
_ANY_ANCESTOR = frozenset({"*", "http:", "https:", "http://*", "https://*"})


def _refuses_other_origins(sources: Sequence[str]) -> bool:
    """Whether a frame-ancestors source list keeps out an unrelated origin (the check's own)."""
    lowered = [s.lower() for s in sources]
    if not lowered:
        return True  # an empty list matches nothing, like 'none'
    return not any(s in _ANY_ANCESTOR or s.endswith(".invalid") for s in lowered)


def framing_header(headers: Mapping[str, str]) -> str:
    """The response header that forbids framing by other origins, described, or empty.

    A frame-ancestors list that admits any origin (``*``, a bare scheme) forbids nothing, and
    where any enforced policy sets frame-ancestors, browsers ignore X-Frame-Options.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    policies = parse_csp_list(lowered.get("content-security-policy", ""))
    ancestors = [p["frame-ancestors"] for p in policies if "frame-ancestors" in p]
    for sources in ancestors:
        if _refuses_other_origins(sources):
            shown = " ".join(sources) or "'none'"
            return f"CSP frame-ancestors {shown}"
    option = lowered.get("x-frame-options", "").strip()
    if not ancestors and option.upper() in ("DENY", "SAMEORIGIN"):
        return f"X-Frame-Options: {option.upper()}"
    return ""


# --- X-Content-Type-Options and Referrer-Policy ---------------------------------------------


def effective_referrer_policy(values: Iterable[str]) -> str | None:
    """The policy a browser applies: the last recognised token across all fields, lower-cased.

    Unknown tokens are skipped so that a new policy can be listed after a fallback.
    """
    effective = None
    for member in _list_members(values):
        if member.lower() in REFERRER_POLICIES:
            effective = member.lower()
    return effective


def evaluate_misc(probes: Sequence[HttpProbe], policy: HeaderPolicy) -> Evaluation:
    """HDR_MISC: X-Content-Type-Options: nosniff and an accepted Referrer-Policy."""
    required_xcto = policy.content_type_options
    accepted = sorted(policy.referrer_policies)

    def check(probe: HttpProbe, findings: list[Finding]) -> str:
        where = _where(probe)
        labels: list[str] = []
        xcto_values = probe.get_all("x-content-type-options")
        members = _list_members(xcto_values)
        if not xcto_values:
            findings.append(
                Finding("xcto.missing", "no X-Content-Type-Options header", where=where)
            )
            labels.append("no X-Content-Type-Options")
        elif not members or members[0].lower() != required_xcto:
            # Fetch honours only the first member of the combined list.
            findings.append(
                Finding(
                    "xcto.invalid",
                    f"X-Content-Type-Options {', '.join(xcto_values)!r}; browsers "
                    f"apply it only when the first value is {required_xcto}",
                    where=where,
                )
            )
            labels.append("X-Content-Type-Options invalid")
        else:
            labels.append(required_xcto)

        referrer_values = probe.get_all("referrer-policy")
        effective = effective_referrer_policy(referrer_values)
        if not referrer_values:
            findings.append(
                Finding("referrer_policy.missing", "no Referrer-Policy header", where=where)
            )
            labels.append("no Referrer-Policy")
        elif effective is None:
            findings.append(
                Finding(
                    "referrer_policy.invalid",
                    f"Referrer-Policy {', '.join(referrer_values)!r} holds no recognised policy",
                    where=where,
                )
            )
            labels.append("Referrer-Policy invalid")
        else:
            if effective not in policy.referrer_policies:
                findings.append(
                    Finding(
                        "referrer_policy.weak",
                        f"effective Referrer-Policy is {effective}; accepted: "
                        + ", ".join(accepted),
                        where=where,
                    )
                )
            labels.append(f"Referrer-Policy {effective}")
        return ", ".join(labels)

    return _evaluate(
        probes,
        check,
        noun="responses",
        threshold=(
            f"X-Content-Type-Options: {required_xcto}; Referrer-Policy one of "
            f"{', '.join(accepted)} [{policy.version}]"
        ),
        passed_reason="every response sends nosniff and an accepted Referrer-Policy",
        failed_reason="nosniff or an accepted Referrer-Policy is missing on some responses",
    )


# --- Cache-Control ------------------------------------------------------------------------


def cache_directives(values: Iterable[str]) -> list[str]:
    """Cache-Control directive names across all fields, lower-cased (RFC 9111 5.2)."""
    return [m.partition("=")[0].strip(_OWS).lower() for m in _list_members(values)]


def evaluate_cache(probes: Sequence[HttpProbe], policy: HeaderPolicy) -> Evaluation:
    """HDR_CACHE: every probe (signed-in pages, patient data) carries Cache-Control: no-store.

    The caller passes only responses fetched while signed in; a sign-in redirect is not a
    signed-in page and should not be among them.
    """
    required = policy.cache_required

    def check(probe: HttpProbe, findings: list[Finding]) -> str:
        where = _where(probe)
        values = probe.get_all("cache-control")
        if not values:
            findings.append(
                Finding(
                    "cache.missing",
                    f"no Cache-Control header; required: {', '.join(required)}",
                    where=where,
                )
            )
            return "no Cache-Control"
        present = cache_directives(values)
        for directive in required:
            if directive not in present:
                findings.append(
                    Finding(
                        f"cache.{directive.replace('-', '_')}_missing",
                        f"Cache-Control {', '.join(values)!r} lacks {directive}",
                        where=where,
                    )
                )
        return "Cache-Control: " + ", ".join(present)

    return _evaluate(
        probes,
        check,
        noun="signed-in responses",
        threshold=f"Cache-Control containing {', '.join(required)} [{policy.version}]",
        passed_reason="every signed-in response forbids storing it",
        failed_reason="some signed-in responses may be stored by the browser or a cache",
    )


# --- AUTH_HTTPS: the sign-in form only over HTTPS -----------------------------------------

REDIRECTS = frozenset({301, 302, 303, 307, 308})


def evaluate_https_redirect(probe: HttpProbe) -> Evaluation:
    """AUTH_HTTPS: the sign-in page requested over plain HTTP redirects to https (or plain HTTP
    is not served at all: the connection is refused).

    Finding key: ``https.plain_http_served`` (plain HTTP answered without a redirect to an
    https URL). A probe that failed any other way is inconclusive.
    """
    applied = "plain HTTP redirects to https or is not served (AUTH_HTTPS)"
    if probe.error == "connection refused":
        return Evaluation(
            "passed",
            "plain HTTP is not served at all",
            measured="plain HTTP is not served at all (connection refused)",
            threshold=applied,
        )
    if probe.error:
        return Evaluation(
            "inconclusive", f"plain HTTP could not be probed: {probe.error}", threshold=applied
        )
    location = probe.location or ""
    findings = []
    if probe.status not in REDIRECTS or not location.startswith("https://"):
        findings.append(
            Finding(
                "https.plain_http_served",
                f"plain HTTP answered {probe.status} instead of redirecting to https",
                where=probe.url,
            )
        )
    return verdict(
        findings,
        measured=f"plain HTTP answered {probe.status} -> {location or 'no redirect'}",
        threshold=applied,
        passed_reason="plain HTTP redirects to https",
        failed_reason=f"plain HTTP answered {probe.status} instead of redirecting to https",
    )


def evaluate_credentials_transport(carrying: Sequence[str]) -> Evaluation:
    """AUTH_HTTPS: every request that carried the password during sign-in went over https.

    ``carrying`` are the URLs (without query) of the requests whose body held the password.
    Finding key, one per plain-HTTP URL: ``https.password_over_plain_http``. No request seen
    carrying the password is inconclusive: the sign-in was not observed.
    """
    applied = "the password is submitted only over https (AUTH_HTTPS)"
    if not carrying:
        return Evaluation(
            "inconclusive",
            "no request carrying the password was seen during sign-in",
            threshold=applied,
        )
    plain = [url for url in carrying if not url.startswith("https://")]
    return verdict(
        [
            Finding(
                "https.password_over_plain_http",
                "the password was sent over plain HTTP",
                where=url,
            )
            for url in plain
        ],
        measured=f"requests carrying the password: {len(carrying)}, over plain HTTP: {len(plain)}",
        threshold=applied,
        passed_reason="the sign-in form is reached and submitted only over HTTPS",
        failed_reason=f"the password was sent over plain HTTP to {', '.join(plain)}",
    )
