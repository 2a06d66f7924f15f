"""Security-header checks (HDR_HSTS, HDR_CSP, HDR_MISC, HDR_CACHE) over recorded probes.

Pure evaluation: every function here works on ``HttpProbe`` values already fetched by
``scanners.http``, so it can be tested on hand-written responses. The rules are versioned data
(``scanners.header_policy``); header values are read as browsers read them
(``scanners.header_parsing``), because a header a browser ignores protects nobody.

Each evaluator collects every issue under a stable key. If any probe could not be fetched the
result is inconclusive, unless a failure was already found elsewhere: a failure found is a failure.
Judging needs at least one successful (2xx) page among the responses: headers seen only on error
pages and redirects (a portal failing behind its proxy, a throttle, a redirect loop) are not the
portal's own, so that result is inconclusive whatever they carry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from scanners.header_parsing import (
    cache_directives,
    diagnose_hsts,
    effective_referrer_policy,
    list_members,
    parse_csp_list,
)
from scanners.header_policy import HeaderPolicy
from scanners.http import HttpProbe
from scanners.result import Evaluation, Finding, verdict

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
    recommended_max_age: int | None = None,
) -> Evaluation:
    """HDR_HSTS: every HTTPS response carries exactly one valid HSTS header, max-age >= minimum.

    ``min_max_age`` and ``recommended_max_age`` override the policy's values (profile
    settings). A max-age below the recommended value (Mozilla: 2 years) is a warning.
    Plain-http probes are not examined, since browsers ignore HSTS received over http.
    """
    minimum = policy.hsts_min_max_age if min_max_age is None else min_max_age
    recommended = (
        policy.hsts_recommended_max_age if recommended_max_age is None else recommended_max_age
    )

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
        directives, problem = diagnose_hsts(values[0])
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


# --- X-Content-Type-Options and Referrer-Policy ---------------------------------------------


def evaluate_misc(probes: Sequence[HttpProbe], policy: HeaderPolicy) -> Evaluation:
    """HDR_MISC: X-Content-Type-Options: nosniff and an accepted Referrer-Policy."""
    required_xcto = policy.content_type_options
    accepted = sorted(policy.referrer_policies)

    def check(probe: HttpProbe, findings: list[Finding]) -> str:
        where = _where(probe)
        labels: list[str] = []
        xcto_values = probe.get_all("x-content-type-options")
        members = list_members(xcto_values)
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
